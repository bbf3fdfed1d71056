// The generic DMA engine of an endpoint: a device model hands it transfers (requester, IOVA,
// length, direction) and it issues them on `dma` as PCIe requests, each a TLM transaction
// with a PcieAttr extension. Reads are cut at MRRS, writes at MPS, never across 4 KiB. A
// request issues when a tag is free and the issue rate allows; its tag frees at its
// completion, which b_transport returns in the delay (docs/architecture.md, "Timing"), so
// latency is computed, not waited for. With an ATS agent (ats_agent.h) each request is
// translated by the function's ATC first (a miss: a Translation Request, perhaps a page
// request) and issues with AT = translated once its translation is known. Error responses (IOMMU
// faults come back as TLM_ADDRESS_ERROR_RESPONSE) are counted per transfer and reported; the engine
// carries on.
#pragma once
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/tlm_quantumkeeper.h>
#include <deque>
#include <functional>
#include <memory>
#include <systemc>
#include <tlm>
#include <vector>

#include "ats_agent.h"
#include "core/log.h"
#include "core/pcie_ext.h"
#include "core/stats.h"
#include "dma_engine_params.h"
#include "dma_issue_scheduler.h"
#include "dma_requests.h"

namespace iommusim {

struct DmaTransfer {
    Requester req;  // RID, PASID, PRIV/EXEC of every request of the transfer
    Addr iova = 0;
    uint64_t length = 0;
    bool write = false;  // device -> host (MemWrite); otherwise a host -> device read
    // When the device made the transfer available (absolute ps). 0: when the engine takes it
    // (submit(): the submitting process's time; a source: the engine's current time).
    Tick ready = 0;
    uint64_t id = 0;          // the device's cookie, returned in the result
    uint8_t* data = nullptr;  // bytes to write / read into; null: a scratch buffer (contents
                              // meaningless: memory times the access, keeps nothing)
    PcieAttr::At at = PcieAttr::At::Untranslated;  // Translated when a device ATC hit
};

struct DmaResult {
    uint64_t id = 0;
    Tick submitted = 0;     // the transfer's ready time
    Tick first_issue = 0;   // when its first request issued
    Tick done = 0;          // completion of its last-completing request
    uint64_t pieces = 0;    // requests (TLPs) it became
    uint64_t bytes_ok = 0;  // bytes of requests that completed successfully
    uint64_t faults = 0;    // requests that got an error response
    Addr fault_iova = 0;    // address of the first of those
    tlm::tlm_response_status status = tlm::TLM_OK_RESPONSE;  // of the first error
    Tick latency() const { return done - submitted; }
};

class DmaEngine : public sc_core::sc_module {
public:
    tlm_utils::simple_initiator_socket<DmaEngine> dma;

    // Called once per transfer after its last request has issued; `done` may lie ahead of
    // the current time (it is when the completion arrives).
    using CompleteHook = std::function<void(const DmaTransfer&, const DmaResult&)>;
    // Asked for the next transfer whenever the submit queue is empty; false: nothing now
    // (call kick() when there is).
    using Source = std::function<bool(DmaTransfer&)>;

    // Throws std::invalid_argument naming the parameter when `p` is invalid. Statistics are
    // registered in `stats`.
    DmaEngine(sc_core::sc_module_name name, const DmaEngineParams& p, StatGroup& stats);
    ~DmaEngine() override;

    // Both hooks from one object, called without std::function's indirections:
    // `c.next_transfer(t)` as the Source, `c.transfer_done(t, r)` as the CompleteHook (the
    // engine must be able to call them; `c` must outlive the engine's run). Or the hooks
    // one by one: either way, this replaces the client set before.
    template <typename Client>
    void set_client(Client& c) {
        client_ = &c;
        next_ = [](void* p, DmaTransfer& t) { return static_cast<Client*>(p)->next_transfer(t); };
        done_ = [](void* p, const DmaTransfer& t, const DmaResult& r) {
            static_cast<Client*>(p)->transfer_done(t, r);
        };
    }
    void on_complete(CompleteHook hook) {
        hooks_.complete = std::move(hook);
        set_client(hooks_);
    }
    void set_source(Source src) {
        hooks_.source = std::move(src);
        set_client(hooks_);
    }
    // Translate every request through `agent` (null: none); its Translation Requests leave
    // by `dma` too.
    void set_ats(AtsAgent* agent);
    // Queue a transfer (from any process); transfers issue in submission order.
    void submit(const DmaTransfer& t);
    // Wake the engine to ask its source again.
    void kick() { wake_.notify(sc_core::SC_ZERO_TIME); }

    // The engine's current time: its last issue (the quantum keeper's local time).
    Tick now() const { return to_ticks(qk_.get_current_time()); }
    const DmaEngineParams& params() const { return p_; }
    // Every transfer's latency (ns), as handed to the completion hook.
    const Histogram& transfer_latency() const { return transfer_latency_; }
    // Counts a device may report as its own (Counter::include) rather than count again.
    struct Counts {
        const Counter &transfers, &bytes_read, &bytes_written, &faults, &faulted_transfers;
    };
    Counts counts() const {
        return {transfers_, bytes_read_, bytes_written_, faults_, faulted_transfers_};
    }
    // Requests in flight at time t.
    unsigned in_flight(Tick t) const { return sched_.busy_at(t); }

private:
    struct Slot;
    struct Hooks {
        Source source;
        CompleteHook complete;
        bool next_transfer(DmaTransfer& t) { return source && source(t); }
        void transfer_done(const DmaTransfer& t, const DmaResult& r) {
            if (complete) complete(t, r);
        }
    };
    // The standard quantum keeper with the SystemC time read inline: sc_time_stamp() is a
    // library call, and the engine asks for the time several times per request (from the
    // simulation context kept at construction: sc_get_curr_simcontext() checks a global).
    class QuantumKeeper : public tlm_utils::tlm_quantumkeeper {
    public:
        const sc_core::sc_time& stamp() const { return sim_->time_stamp(); }
        bool need_sync() const override { return stamp() + m_local_time >= m_next_sync_point; }
        void reset() override {
            m_local_time = sc_core::SC_ZERO_TIME;
            m_next_sync_point = stamp() + compute_local_quantum();
        }
        sc_core::sc_time get_current_time() const override { return stamp() + m_local_time; }

    private:
        const sc_core::sc_simcontext* sim_ = sc_core::sc_get_curr_simcontext();
    };
    void run();
    void issue(DmaTransfer& t);
    // Move the local time to `at` (synchronising when the quantum is used up); returns the
    // SystemC time afterwards.
    Tick advance(Tick at);
    // Add ps to a counter kept in ns without losing the sub-ns remainders.
    struct NsSum {
        Counter& c;
        Tick ps = 0;
        Tick ns = 0;  // ps / kTicksPerNs, as added to c so far
        void add(Tick t) {
            ps += t;
            const Tick now_ns = ps / kTicksPerNs;
            c += now_ns - ns;
            ns = now_ns;
        }
    };

    DmaEngineParams p_;
    DmaIssueScheduler sched_;
    QuantumKeeper qk_;
    std::unique_ptr<Slot> slot_;  // the one reusable payload
    std::vector<uint8_t> scratch_;
    std::deque<DmaTransfer> queue_;
    sc_core::sc_event wake_;
    // What a read ([0]) and a write ([1]) differ in, looked up once per transfer.
    struct Direction {
        uint32_t max_payload;  // MRRS, MPS
        tlm::tlm_command cmd;
        PcieAttr::Tlp tlp;
        Counter* bytes;
    };
    Direction dirs_[2];
    Hooks hooks_;
    // The client (set_client()) and its hooks, called with it.
    void* client_;
    bool (*next_)(void*, DmaTransfer&);
    void (*done_)(void*, const DmaTransfer&, const DmaResult&);
    AtsAgent* ats_ = nullptr;
    Counter &transfers_, &pieces_, &bytes_read_, &bytes_written_, &faults_, &faulted_transfers_,
        &tag_stalls_, &rate_stalls_;
    NsSum tag_stall_ns_, rate_stall_ns_;
    Histogram &transfer_latency_, &piece_latency_;
    log::Channel log_;  // each transfer at trace level, faulted ones at debug
};

}  // namespace iommusim
