// Replay of a recorded trace through a platform. One ReplayDevice per recorded requester
// issues its DMAs on its own PCIe link (replay_device.h); the host process below reads the
// trace, streamed, and plays the driver: maps and unmaps go to the unit's driver model (real
// tables, its invalidations through the unit's queue), recorded invalidations to the unit.
//
// Time: with `timed`, every record happens no earlier than its recorded time (relative to
// the first record); otherwise (closed loop) the host goes as fast as the model allows and
// the devices issue back to back, limited by their tags and links. Either way an unmap (or a
// remap) of a requester waits until that requester's earlier DMAs have completed, as the
// recording guarantees, so every DMA translates against the mapping it was recorded with.
#pragma once
#include <systemc>

#include <tlm_utils/tlm_quantumkeeper.h>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/config.h"
#include "core/dma_mapper.h"
#include "core/stats.h"
#include "devices/dma_engine_params.h"
#include "devices/replay_device.h"
#include "iommu/iommu_unit.h"
#include "pcie/link_model.h"
#include "traces/trace.h"

namespace iommusim {

struct ReplayParams {
    bool timed = true;           // DMAs at their recorded times; false: closed loop
    uint64_t unknown_size = 64;  // bytes of a DMA whose size was not recorded
    bool stop_on_error = true;   // a bad trace line stops the replay (else it is skipped)
    uint64_t max_records = 0;    // 0 = all
    uint32_t queue_depth = 64;   // DMAs a device may have submitted but not yet issued
    bool large_pages = false;    // the driver may map recorded ranges with 2M/1G pages
    bool recorded_invalidations = true;

    template <typename V>
    void visit(V&& v) {
        v("timed", timed, "", "issue DMAs at their recorded times (else closed loop)", 0, 1);
        v("unknown_size", unknown_size, "bytes", "size of a DMA whose size the trace does not know",
          1, 1 << 20);
        v("stop_on_error", stop_on_error, "", "stop at the first bad trace line (else skip it)", 0,
          1);
        v("max_records", max_records, "records", "replay at most this many records; 0 = all", 0,
          ~uint64_t(0));
        v("queue_depth", queue_depth, "DMAs",
          "DMAs a replay device may hold before the host waits for it", 1, 1 << 20);
        v("large_pages", large_pages, "",
          "let the VT-d driver map recorded ranges with 2M/1G pages where aligned", 0, 1);
        v("recorded_invalidations", recorded_invalidations, "",
          "also execute the invalidations the trace recorded (besides the driver model's)", 0, 1);
    }
};

// What a replay accepts of a trace (docs/traces.md, "Limits"). Past them a run would take
// practically forever (a 2^40-byte DMA, hours of simulated idle time) or its times would
// overflow the simulator's 64-bit picoseconds; such a record is an error, never clamped.
struct ReplayLimits {
    static constexpr uint64_t kMaxDmaBytes = uint64_t(1) << 30;  // 1 GiB
    static constexpr uint64_t kMaxMapBytes = uint64_t(1) << 36;  // 64 GiB of 4 KiB pages
    // With recorded-time pacing only (closed loop ignores times):
    static constexpr uint64_t kMaxGapNs = 3600ull * 1000000000ull;  // between two records
    static constexpr uint64_t kMaxSpanNs = (uint64_t(1) << 63) / kTicksPerNs;  // from the first
};
// What is wrong with `r` for a replay, or "" if nothing: a size or range past the limits, or
// (when `timed`) a time too far after `prev_ns` (the previous record's) or `first_ns`.
std::string replay_limit_error(const trace::Record& r, uint64_t first_ns, uint64_t prev_ns,
                               bool timed);

// One tenant of a multi-tenant replay (several traces, docs/traces.md): when its records
// happen. With `timed`, a record recorded `d` ns after the trace's first happens at
// shift_ns + d / rate; closed loop ignores both.
struct ReplayTenantParams {
    uint64_t shift_ns = 0;
    double rate = 1.0;

    template <typename V>
    void visit(V&& v) {
        v("shift_ns", shift_ns, "ns", "the tenant's first record happens this late (timed only)", 0,
          ReplayLimits::kMaxSpanNs);
        v("rate", rate, "",
          "the tenant's records go this many times as fast as recorded (timed only)", 1e-3, 1e3);
    }
};

// What a first pass over a trace tells: its requesters, its length and its problems.
struct TraceSummary {
    std::vector<uint16_t> rids;             // in order of first appearance
    std::vector<uint64_t> rid_lines;        // the line of each one's first appearance
    uint64_t records = 0;                   // records a replay would apply (bad ones not counted)
    uint64_t span_ns = 0;                   // latest record time after the first (good ones)
    std::vector<trace::ParseError> errors;  // bad lines and records past the limits
};
// Reads `path` once (streamed, every bad line listed, as trace::Reader's Skip mode does).
// Throws std::runtime_error as trace::Reader.
TraceSummary scan_trace(const std::string& path, bool timed);

// Where one recorded requester's records go: its device, its domain's driver, and the unit
// whose translations it checks.
struct ReplayTarget {
    ReplayDevice* device = nullptr;
    std::unique_ptr<RecordedDomain> driver;
    IommuUnit* unit = nullptr;
    std::unordered_set<uint32_t> pasids;  // attached so far (scalable mode)
};

class ReplayHost : public sc_core::sc_module {
public:
    // `targets` maps each RID of the trace, as the platform sees it: the recorded RID plus
    // `rid_offset` (a tenant's remapping); statistics go to `stats` (system.replay, or the
    // tenant's group). `tenant` paces a tenant's records (timed only).
    ReplayHost(sc_core::sc_module_name name, std::string path, const ReplayParams& p,
               std::unordered_map<uint16_t, ReplayTarget> targets, uint64_t total_records,
               ReplayCheck& check, StatGroup& stats, uint16_t rid_offset = 0,
               const ReplayTenantParams& tenant = {});
    ~ReplayHost() override;

    // The replay device of a (platform) RID, or null if not this host's. The platform
    // routes its units' translate hooks through it (one hook per unit, shared by tenants).
    ReplayDevice* device(uint16_t rid) const {
        auto it = targets_.find(rid);
        return it == targets_.end() ? nullptr : it->second.device;
    }
    const std::unordered_map<uint16_t, ReplayTarget>& targets() const { return targets_; }
    const std::string& path() const { return path_; }

    bool finished() const { return finished_; }
    const sc_core::sc_event& finished_event() const { return finished_ev_; }
    double progress() const {
        return total_ ? std::min(1.0, double(records_.value()) / double(total_)) : 1.0;
    }
    // Trace errors ("file:line: what was expected") and maps the driver refused.
    const std::vector<std::string>& errors() const { return errors_; }
    uint64_t records() const { return records_.value(); }
    double wall_seconds() const { return wall_; }

private:
    void run();
    void apply(const trace::Record& r, uint64_t line);
    // Host time (the process's local time) and its advance; syncs when the quantum is used.
    Tick now() const;
    // When a record `since_first_ns` after the trace's first happens (timed).
    Tick when(uint64_t since_first_ns) const;
    void advance_to(Tick t);
    // Until `d` holds at most `limit` submitted transfers not yet issued in full (the host's
    // time is kept).
    void wait_pending(ReplayDevice& d, unsigned limit);
    // Until `d` has issued everything submitted to it; the host then continues at no earlier
    // than the last completion.
    void drain(ReplayDevice& d);
    // The target of `r`'s RID (attaching a PASID on first sight); `r` loses a PASID the unit
    // cannot take (legacy mode). Null (and an error) for a RID the first pass did not see.
    ReplayTarget* target(Requester& r, uint64_t line);

    std::string path_;
    ReplayParams p_;
    std::unordered_map<uint16_t, ReplayTarget> targets_;
    std::unordered_map<uint32_t, std::vector<uint16_t>> recorded_domains_;  // -> RIDs
    uint64_t total_;
    ReplayCheck& check_;
    uint16_t rid_offset_;
    ReplayTenantParams tenant_;
    tlm_utils::tlm_quantumkeeper qk_;
    uint64_t first_ns_ = 0;
    bool seen_first_ = false;
    bool finished_ = false;
    double wall_ = 0;
    sc_core::sc_event finished_ev_;
    std::vector<std::string> errors_;
    Counter &records_, &maps_, &unmaps_, &invalidations_, &dmas_, &faults_recorded_,
        &barrier_waits_, &pasid_stripped_;
};

}  // namespace iommusim
