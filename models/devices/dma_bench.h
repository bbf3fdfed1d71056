// dma-bench as a SystemC device: a DmaEngine fed by the pcie-bench address sequence
// (dma_bench_params.h). The buffer is mapped by the platform (through the driver model); the
// device only issues DMAs to IOVAs from `iova_base`. A run reports its bandwidth (bytes of
// successful requests per second of simulated time, from the first transfer's ready time to
// the last completion) and its transfer-latency percentiles.
#pragma once
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/stats.h"
#include "dma_bench_params.h"
#include "dma_engine.h"

namespace iommusim {

struct DmaBenchResult {
    uint64_t transfers = 0, bytes = 0, faults = 0, faulted_transfers = 0;
    Tick start = 0, end = 0;             // first transfer ready, last completion
    const Histogram* latency = nullptr;  // transfer latency, ns

    Tick elapsed() const { return end > start ? end - start : 0; }
    double bandwidth() const {  // bytes/s
        return elapsed() ? double(bytes) * 1e12 / double(elapsed()) : 0.0;
    }
};

class DmaBench : public sc_core::sc_module {
public:
    tlm::tlm_initiator_socket<> dma;  // the engine's requests (bound through to it)

    // Throws std::invalid_argument when either parameter set is invalid. Bench statistics go
    // to `stats`, the engine's to stats.child("engine").
    DmaBench(sc_core::sc_module_name name, const DmaBenchParams& p, const DmaEngineParams& ep,
             Addr iova_base, StatGroup& stats);

    DmaEngine& engine() { return engine_; }
    // The function's ATS/PRI agent; null unless `ats` is enabled.
    AtsAgent* ats() { return ats_.get(); }
    const DmaBenchParams& params() const { return p_; }
    // All transfers issued; notified at the last completion.
    bool finished() const { return finished_; }
    const sc_core::sc_event& finished_event() const { return finished_ev_; }
    DmaBenchResult result() const;
    // One line for people: the run's configuration, bandwidth, latency percentiles, faults.
    std::string summary() const;

private:
    friend class DmaEngine;  // its client
    bool next_transfer(DmaTransfer& t);
    void transfer_done(const DmaTransfer& t, const DmaResult& r);
    // A latency run's ready time: not before the first of the transfers in flight completes
    // (which leaves them). Out of line, so that the common path saves no registers.
    [[gnu::noinline]] Tick after_oldest(Tick ready);
    void finish();

    DmaBenchParams p_;
    DmaEngine engine_;
    std::unique_ptr<AtsAgent> ats_;
    DmaBenchPattern pattern_;
    Requester req_;
    uint64_t issued_ = 0;
    Tick start_ = 0, end_ = 0;
    bool finished_ = false;
    sc_core::sc_event finished_ev_;
    // Completion times of the transfers in flight (latency runs): a transfer starts when the
    // earliest of the last `outstanding` completes.
    std::priority_queue<Tick, std::vector<Tick>, std::greater<Tick>> in_flight_;
    Counter &transfers_, &bytes_, &faults_, &faulted_transfers_, &elapsed_ns_, &bandwidth_,
        &bandwidth_mbps_;
    Histogram& latency_;
};

}  // namespace iommusim
