// One recorded requester as a PCIe endpoint: the DMAs the trace says it made, issued in
// recorded order by a DmaEngine (tags, issue rate, MRRS/MPS/4 KiB splitting) on the device's
// own link. The replay host submits them; the IOMMU's translate hook hands every
// translation of this requester back here, where it is compared with the recorded address.
#pragma once
#include <deque>
#include <optional>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/stats.h"
#include "core/translation.h"
#include "dma_engine.h"

namespace iommusim {

// A recorded translation that differs from what the replayed unit answered.
struct Mismatch {
    enum class What : uint8_t { Wrong, Fault, Untranslated };
    uint64_t line = 0;  // trace line of the DMA record
    Requester req;
    Addr iova = 0, expected = 0, got = 0;
    What what = What::Wrong;
    std::string str() const;  // "line 41 00:02.0 iova 0x..: expected 0x.., got 0x.."
};

// The verdicts of every replay device, in one place (system.replay.*). A tenant's check
// (multi-tenant replay: system.replay.tenantN.*) also counts its IOTLB hits and misses, miss
// latency and DMA latency, and passes every verdict on to `total`.
struct ReplayCheck {
    explicit ReplayCheck(StatGroup& g);
    ReplayCheck(StatGroup& g, ReplayCheck& total);
    void mismatch(const Mismatch& m);
    // A translation of a replayed DMA that arrived at the unit at `arrival`.
    void translated(Tick arrival, const TranslateOutcome& o);
    void checked_one();
    void dma_done(uint64_t latency_ns);

    Counter &translations, &checked, &mismatches, &faults;
    Histogram& latency;
    std::vector<Mismatch> first;  // the first kFirst, in order
    static constexpr size_t kFirst = 10;

    struct Tenant {
        ReplayCheck& total;
        Counter &iotlb_hits, &iotlb_misses;
        Histogram &miss_latency, &dma_latency;
    };
    std::optional<Tenant> tenant;  // a tenant's check only
};

class ReplayDevice : public sc_core::sc_module {
public:
    tlm::tlm_initiator_socket<> dma;  // the engine's requests (bound through to it)

    // What the trace recorded of one DMA: its translation when has_pa.
    struct Expect {
        uint64_t line = 0;
        Addr iova = 0, pa = 0;
        bool has_pa = false;
    };

    // Throws std::invalid_argument when `ep` is invalid. The engine's statistics go to
    // stats.child("engine").
    ReplayDevice(sc_core::sc_module_name name, const DmaEngineParams& ep, StatGroup& stats,
                 ReplayCheck& check);

    // From the replay host: issue `t` (its `ready` time set) and check it against `e`.
    void submit(const DmaTransfer& t, const Expect& e);
    // Submitted transfers not yet issued in full.
    unsigned pending() const { return unsigned(inflight_.size()); }
    // How many of the pending transfers, oldest first, must finish before the 4 KiB pages
    // [lo, lo + len) may change: up to and including the last one touching them (0: none).
    unsigned pending_through(Addr lo, uint64_t len) const;
    // Latest completion of any transfer so far.
    Tick last_done() const { return last_done_; }
    // Notified whenever a transfer has been issued in full.
    const sc_core::sc_event& progress_event() const { return progress_; }
    // From the IOMMU's translate hook: a translation of this device's requests.
    void observe(Addr iova, Tick arrival, const TranslateOutcome& o);
    std::string summary() const;

private:
    struct Inflight {
        Expect e;
        Requester req;
        Addr lo = 0, hi = 0;  // the 4 KiB pages the transfer touches
        bool seen = false, bad = false, fault = false;
        Addr got = 0;
    };
    void completed(const DmaTransfer& t, const DmaResult& r);

    DmaEngine engine_;
    ReplayCheck& check_;
    std::deque<Inflight> inflight_;  // in submission order = issue order
    Tick last_done_ = 0;
    sc_core::sc_event progress_;
    Counter &dmas_, &checked_, &mismatches_;
    Histogram& latency_;
};

}  // namespace iommusim
