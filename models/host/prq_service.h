// The host's page request service for SVA, as Linux's intel-iommu does it (drivers/iommu/
// intel/prq.c, io-pgfault.c, iommu-sva.c): on the page request interrupt a threaded handler
// clears PRS.PPR, reads PQT and PQH through the unit's registers, reads each 32-byte
// page_req_dsc from the queue in memory, refuses malformed ones, gathers the requests of a
// page request group until the one with LPIG, and queues the group to a workqueue; a worker
// runs handle_mm_fault for each page in the process's first-level table and answers the group
// with one page group response written to the invalidation queue (with a wait descriptor, as
// qi_submit_sync does). The handler then advances PQH and, after draining an overflow, clears
// PRS.PRO. A process in a guest (nested translation) gets its groups forwarded to the guest's
// handler through the VMM at a configurable extra hop cost, and the guest's response comes back
// through a trapped write.
//
// Plain C++ with explicit time: the platform calls interrupt() when the unit raises the page
// request interrupt and run_until() at next_event(); every action happens at its own Tick.
// A ledger follows every request the unit wrote (note_sent) or the service read, until it is
// answered, and reports those never answered.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <tuple>
#include <vector>

#include "arch/vtd/vtd_invdesc.h"
#include "arch/vtd/vtd_regfile.h"
#include "core/log.h"
#include "core/sparse_memory.h"
#include "core/stats.h"
#include "core/unit_access.h"
#include "dma_api.h"
#include "sva_process.h"
#include "viommu.h"
#include "vtd_inv_queue.h"

namespace iommusim::sva {

// system.<unit>.prq.*: where the queue lies and what each software step costs (docs/sva.md
// cites the source or says "allowance" for each default).
struct PrqParams {
    Addr prq_base = 0;        // the page request queue (4 KiB aligned); 0: the platform chooses
    uint32_t pqs = 0;         // PQA.PQS: 4 KiB << pqs bytes, 128 << pqs entries
    Addr status_addr = 0;     // the response's wait descriptor writes here; 0: platform chooses
    double irq_ns = 5000;     // interrupt raised -> threaded handler running
    double desc_ns = 100;     // prq_event_thread: one descriptor read, checked and reported
    double group_ns = 3000;   // a complete group queued -> an iopf worker running it
    double fault_ns = 1000;   // handle_mm_fault for one page (zero-filled anonymous page)
    double respond_ns = 200;  // build the response and submit it (before the unit's work)
    uint32_t workers = 4;     // iopf workqueue concurrency (CPUs running groups at once)
    // A process in a guest (nested): the extra hops. Defaults from the vIOMMU's parameters.
    double guest_inject_ns = 4000;  // host fault queue -> VMM -> vPRQ entry + interrupt + VM entry
    double guest_irq_ns = 5000;     // the guest's own interrupt -> threaded handler
    double guest_exit_ns = ViommuParams{}.vm_exit_ns;       // the guest's response traps
    double guest_passdown_ns = ViommuParams{}.passdown_ns;  // VMM hands it to the host
    uint32_t guest_vcpus = 1;  // guest CPUs running its fault handler at once

    // Why these values cannot be programmed, or "" (a misaligned queue or status address).
    std::string error() const;

    template <typename V>
    void visit(V&& v) {
        v("prq_base", prq_base, "bytes", "page request queue address (0: platform chooses)",
          Addr(0), ~Addr(0));
        v("pqs", pqs, "", "PQA.PQS: 128 << pqs entries of 32 bytes", 0, 7);
        v("status_addr", status_addr, "bytes",
          "where the response's wait descriptor writes (0: platform chooses)", Addr(0), ~Addr(0));
        v("irq_ns", irq_ns, "ns", "page request interrupt to the threaded handler running", 0.0,
          1e9);
        v("desc_ns", desc_ns, "ns", "handler's work per page request descriptor", 0.0, 1e9);
        v("group_ns", group_ns, "ns", "complete group queued until a worker runs it", 0.0, 1e9);
        v("fault_ns", fault_ns, "ns", "handle_mm_fault for one page", 0.0, 1e9);
        v("respond_ns", respond_ns, "ns", "building and submitting one page group response", 0.0,
          1e9);
        v("workers", workers, "", "groups handled at once (iopf workqueue concurrency)", 1, 1024);
        v("guest_inject_ns", guest_inject_ns, "ns",
          "nested: host fault queue to the guest's virtual PRQ and interrupt", 0.0, 1e9);
        v("guest_irq_ns", guest_irq_ns, "ns", "nested: guest interrupt to its handler running", 0.0,
          1e9);
        v("guest_exit_ns", guest_exit_ns, "ns", "nested: the guest's response write traps", 0.0,
          1e9);
        v("guest_passdown_ns", guest_passdown_ns, "ns",
          "nested: VMM passes the guest's response to the host", 0.0, 1e9);
        v("guest_vcpus", guest_vcpus, "", "nested: guest CPUs handling groups at once", 1, 1024);
    }
};

// What the service counts (docs/stats.md, "SVA page requests").
struct PrqStats {
    Counter &requests, &groups, &stop_markers, &bad_requests, &guest_groups;
    Counter &resp_success, &resp_invalid, &resp_failure, &response_errors;
    Counter &auto_responses, &overflows_seen, &overflow_clears, &partial_discarded;
    Counter &populated, &present, &no_vma, &no_permission, &no_memory, &handler_runs;
    Histogram &service_latency, &occupancy, &group_size;
    explicit PrqStats(StatGroup& g);
};

// Every request the unit wrote to the PRQ (or the service read from it), until answered.
class PrqLedger {
public:
    struct Entry {
        uint64_t seq = 0;  // order in which the ledger first saw it
        vtd::PageRequest req;
        Tick sent = kNever;  // written to the PRQ (note_sent), kNever if not told
        Tick read = kNever;  // read by the handler, kNever if not yet
    };
    // Requests the unit wrote (or the handler read without a note) end in exactly one of
    // answered, answered_by_unit, discarded, stop_markers or pending (balance() checks it).
    uint64_t written = 0;           // noted as written to the PRQ by the unit
    uint64_t read = 0;              // read from the PRQ by the handler
    uint64_t unnoted = 0;           // read without a matching note_sent
    uint64_t answered = 0;          // covered by a software page group response
    uint64_t answered_by_unit = 0;  // read, then covered by the unit's automatic response
    uint64_t discarded = 0;         // in partial groups dropped after an overflow (as Linux)
    uint64_t stop_markers = 0;      // LPIG without read or write: no response due
    // Requests the unit refused (PRQ full or overflowed), never written.
    uint64_t refused_answered = 0;  // last in group: the unit answered (Success)
    uint64_t refused_dropped = 0;   // not last: no response due
    uint64_t stray_responses = 0;   // a software response for a group with nothing pending

    // Requests written or read and never answered, oldest first.
    std::vector<Entry> unanswered() const;
    size_t pending() const { return unread_.size() + open_count_; }
    // One line per unanswered request: who, which group, address, when written and read.
    std::vector<std::string> report() const;
    // Every written request ended one way or is pending: "" or what does not add up.
    std::string balance() const;

private:
    friend class PrqService;
    using Key = std::tuple<uint16_t, uint32_t, uint16_t>;  // RID, PASID (or kNoPasid), PRGI
    static Key key_of(const vtd::PageRequest& r);
    Entry& on_written(const vtd::PageRequest& r, Tick at);
    // The handler read `r`: the oldest unread entry (checked against it), or a new one.
    Entry on_read(const vtd::PageRequest& r, Tick at);
    void open(const Entry& e);
    // Close the group of `k`: the requests it covered (none: stray).
    std::vector<Entry> close(const Key& k);

    uint64_t next_seq_ = 0;
    std::deque<Entry> unread_;                // written, not yet read, in PRQ order
    std::map<Key, std::vector<Entry>> open_;  // read, waiting for their group's response
    size_t open_count_ = 0;
};

class PrqService {
public:
    // `iq` is the invalidation queue the unit executes, the same one `feeder` writes the
    // driver's invalidations to; `mem` holds the PRQ. Throws std::invalid_argument with
    // p.error() when the parameters cannot be programmed.
    PrqService(ProcessTable& procs, RegisterAccess& unit, SparseMemory& mem,
               vtd::InvQueueWriter& iq, VtdQueueFeeder& feeder, const PrqParams& p,
               StatGroup& stats);

    // intel_iommu_enable_prq: PQH = PQT = 0, PQA, the interrupt unmasked (PECTL). Needs
    // prq_base and status_addr set. Returns when the writes are done.
    Tick enable(Tick at);
    // The unit raised its page request interrupt at `at`.
    void interrupt(Tick at);
    // What the unit did with a request the device sent (its page_request result): the
    // ledger's sent side and the start of the service latency. Optional, but without it the
    // latency starts at the handler's read and refused requests are not followed.
    void note_sent(const vtd::PageRequest& pr, const vtd::PageRequestResult& res);
    // Run the software due at or before `now`, each step at its own Tick. Returns
    // next_event().
    Tick run_until(Tick now);
    Tick next_event() const;
    // The software stops answering (a hung handler): nothing more runs; the ledger keeps
    // what was pending.
    void stop() { stopped_ = true; }

    const PrqLedger& ledger() const { return ledger_; }
    const PrqParams& params() const { return p_; }
    void set_log_name(const std::string& name) { log_ = log::Channel(name); }

private:
    enum class Ev : uint8_t {
        Handler,
        HandlerDone,
        WorkerDone,
        WorkerFree,
        GuestArrive,
        GuestDone,
        GuestFree
    };
    struct Event {
        Tick t;
        uint64_t seq;
        Ev kind;
        uint64_t group;
        bool operator>(const Event& o) const { return std::tie(t, seq) > std::tie(o.t, o.seq); }
    };
    struct Group {
        PrqLedger::Key key;
        vtd::PageRequest last;  // the LPIG request: PP, RID, PASID, PRGI of the response
        std::vector<vtd::PageRequest> reqs;
        Process* proc = nullptr;
        bool guest = false;
        Tick ready = 0;
    };

    void schedule(Tick t, Ev kind, uint64_t group = 0);
    void run_handler(Tick t);
    void handler_done(Tick t, uint32_t tail);
    void dispatch(uint64_t id, Tick t);
    void start_native(Tick t);
    void start_guest(Tick t);
    Tick service_ns(const Group& g, bool guest) const;
    vtd::PageResponseCode handle(Group& g);
    Tick respond(const vtd::PageRequest& last, vtd::PageResponseCode code, Tick at);
    bool bad(const vtd::PageRequest& r, const char** why) const;

    ProcessTable& procs_;
    RegisterAccess& unit_;
    SparseMemory& mem_;
    vtd::InvQueueWriter& iq_;
    VtdQueueFeeder& feeder_;
    PrqParams p_;
    PrqStats st_;
    PrqLedger ledger_;
    log::Channel log_;

    uint32_t entries_ = 128;
    bool stopped_ = false;
    bool handler_busy_ = false, handler_again_ = false;
    std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
    uint64_t event_seq_ = 0, next_group_ = 1;
    uint32_t wait_seq_ = 0;
    std::map<PrqLedger::Key, std::vector<vtd::PageRequest>> partial_;  // iopf's partial list
    std::map<uint64_t, Group> groups_;                                 // complete, in service
    std::deque<uint64_t> native_q_, guest_q_;
    uint32_t native_busy_ = 0, guest_busy_ = 0;
};

}  // namespace iommusim::sva
