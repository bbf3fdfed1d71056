// An SVA accelerator like Intel's Data Streaming Accelerator (DSA): several processes share
// one device, each submitting work descriptors (copy, fill, compare) that carry its PASID and
// buffer addresses in its virtual address space, by ENQCMD to one shared work queue (SWQ): a
// submission to a full queue returns Retry and the process tries again after a back-off.
// Engines take descriptors in order and move the data at their rate; every access is
// translated by the function's ATS agent (ATC, Translation Requests, and on a page that is
// not present a page request through PRI, the engine waiting for the answer: DSA's
// block-on-fault), then issued with AT = translated. A descriptor ends with its 32-byte
// completion record written to the process's memory, which the process polls. A translation
// that still fails after PRI ends the descriptor with a page-fault status.
//
// The processes' address spaces come from the host (core/sva_space.h): created, bound to
// (RID, PASID) and mapped, partly unpopulated, when the device is built. Every access's
// translation is checked against the host's intent for it (translation_mismatches).
#pragma once
#include <tlm_utils/simple_initiator_socket.h>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "ats_agent.h"
#include "core/pcie_ext.h"
#include "core/stats.h"
#include "core/sva_space.h"
#include "sva_accel_params.h"

namespace iommusim {

// One access of a descriptor, as the device issued it (tests follow every translation).
struct SvaAccess {
    size_t proc = 0;
    uint32_t pasid = 0;
    Addr va = 0, pa = 0;
    uint32_t len = 0;
    bool write = false;
    bool paged = false;  // its translation went through PRI
    bool ok = false;     // translated and completed without an error response
    Tick start = 0, done = 0;
};

class SvaAccel : public sc_core::sc_module {
public:
    tlm_utils::simple_initiator_socket<SvaAccel> dma;

    // Creates the processes in `spaces` (throws std::invalid_argument with the reason when
    // the parameters are invalid or the host refuses). `mps`: the largest request, bytes.
    SvaAccel(sc_core::sc_module_name name, const SvaAccelParams& p, SvaSpaces& spaces, uint32_t mps,
             StatGroup& stats);
    ~SvaAccel() override;

    AtsAgent* ats() { return &ats_; }
    const SvaAccelParams& params() const { return p_; }
    struct Process {
        uint32_t pasid = 0;
        size_t handle = 0;  // in the SvaSpaces
        Addr src = 0, dst = 0, comp = 0;
        uint64_t submitted = 0, completed = 0, failed = 0;
        uint32_t inflight = 0;
        // When the completion records of descriptors in flight land (the process polls them).
        std::priority_queue<Tick, std::vector<Tick>, std::greater<Tick>> landing;
        sc_core::sc_event done_ev;
    };
    const std::vector<std::unique_ptr<Process>>& processes() const { return procs_; }
    // Every access, at its completion (tests).
    void on_access(std::function<void(const SvaAccess&)> hook) { hook_ = std::move(hook); }

    bool finished() const { return finished_; }
    const sc_core::sc_event& finished_event() const { return finished_ev_; }
    double progress() const;
    // One line: descriptors, bandwidth, latency, faults and their latency, ATC hit rate.
    std::string summary() const;

private:
    struct Descriptor {
        size_t proc = 0;
        SvaOp op = SvaOp::Copy;
        Addr src = 0, dst = 0, comp = 0;
        uint32_t len = 0;
        Tick submitted = 0;
    };
    struct Done {
        bool ok = false;
        Tick done = 0;
    };
    void submitter(size_t i);
    void engine(unsigned e);
    // The descriptor from `t`; returns when its engine may take the next one.
    Tick execute(const Descriptor& d, Tick t, uint16_t* tag);
    Done access(const Descriptor& d, Addr va, uint32_t len, bool write, Tick at, uint16_t tag);
    void wait_until(Tick t);
    // Until fewer than `limit` of process `pr`'s descriptors are in flight.
    void wait_inflight(Process& pr, uint32_t limit);
    void derive_stats();  // the counters computed from others
    void end_of_simulation() override { derive_stats(); }

    SvaAccelParams p_;
    SvaSpaces& spaces_;
    uint32_t mps_;
    Requester rid_;
    StatGroup& stats_;
    AtsAgent ats_;
    std::vector<std::unique_ptr<Process>> procs_;
    std::deque<Descriptor> wq_;
    sc_core::sc_event wq_ev_;
    std::vector<uint8_t> scratch_;
    std::function<void(const SvaAccess&)> hook_;
    size_t procs_done_ = 0;
    bool finished_ = false;
    Tick start_ = kNever, end_ = 0;
    sc_core::sc_event finished_ev_;
    Counter &submitted_, &completed_, &failed_, &retries_, &bytes_, &accesses_, &paged_accesses_,
        &mismatches_, &access_errors_, &comp_failures_, &elapsed_ns_, &bandwidth_mbps_,
        &atc_hit_rate_ppm_, &requests_per_fault_milli_, &faults_per_s_;
    Histogram &latency_, &fault_latency_, &wq_occupancy_;
    Histogram &fault_request_, &fault_pri_, &fault_retry_;  // fault_latency's three parts
};

}  // namespace iommusim
