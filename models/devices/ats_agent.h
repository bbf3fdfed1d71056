// The ATS/PRI agent of one PCIe function (core/ats.h): its Address Translation Cache (the
// shared cache template), Translation Requests sent through the function's own link (an 8-byte
// memory read with AT = translation request: its TLP and completion costs), and the Page
// Request Interface with its Outstanding Page Request Allocation. A device model asks it for
// the translation of each request before issuing it with AT = translated; the IOMMU reaches it
// with ATC invalidations and PRG responses (ats::Function).
//
//   AtsAgent agent("ats", params, Requester::bdf(1, 0, 0), stats.child("ats"));
//   agent.set_fabric([&](auto& p, auto& d) { socket->b_transport(p, d); });
//   unit.attach_function(agent, path, params.pri);             // the platform
//   AtsAgent::Result r = agent.translate(req, iova, Access::Read, t);   // in an SC_THREAD
//   ... issue the request to r.out at r.done with AT = translated, then agent.used(r.done, end)
#pragma once
#include <tlm_utils/simple_initiator_socket.h>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "ats_params.h"
#include "core/ats.h"
#include "core/cache.h"
#include "core/pcie_ext.h"
#include "core/stats.h"

namespace iommusim {

class AtsAgent : public sc_core::sc_module, public ats::Function {
public:
    // How the agent's TLPs (Translation Requests) enter the fabric: the function's own link.
    using Send = std::function<void(tlm::tlm_generic_payload&, sc_core::sc_time&)>;

    // Throws std::invalid_argument when `p` is not usable. `function`: the RID it answers for.
    AtsAgent(sc_core::sc_module_name name, const AtsParams& p, const Requester& function,
             StatGroup& stats);
    ~AtsAgent() override;

    void set_fabric(Send send) { send_ = std::move(send); }
    const AtsParams& params() const { return p_; }

    struct Result {
        bool ok = false;   // false: no usable translation (UR, no rights, PRI refused)
        Addr out = 0;      // the translated address of `iova`
        Tick done = 0;     // when it is known (ATC hit: at once)
        bool hit = false;  // from the ATC
        ats::ResponseCode response = ats::ResponseCode::Success;  // the last PRG response
        bool paged = false;                                       // went through PRI
        Tick requested = kNever, responded = kNever;  // first page request sent, last response
    };
    // The translation for a request of `req` (this function's RID, with or without PASID)
    // ready at `at`. A miss sends a Translation Request; PRI (enabled, request with a PASID, no
    // rights) sends a page request and waits for its response: call from an SC_THREAD.
    Result translate(const Requester& req, Addr iova, Access acc, Tick at);
    // A translated request issued at `issue` completed at `done`: an invalidation arriving in
    // between completes after it (the spec's ordering of invalidation completions).
    void used(Tick issue, Tick done);
    // Whether the ATC holds a translation of `iova` for `req` (tests, diagnostics).
    bool cached(const Requester& req, Addr iova) const;
    size_t atc_size() const { return atc_.size(); }
    size_t pending_page_requests() const { return pending_.size(); }

    // ---- ats::Function ----
    Requester requester() const override { return function_; }
    Tick invalidate(const ats::Invalidation& inv, Tick at) override;
    void page_response(const ats::PrgResponse& r, Tick at) override;
    void connect(ats::Host& host) override { host_ = &host; }

private:
    struct Key {
        uint32_t pasid;
        Addr vpn;  // untranslated address >> shift
        uint8_t shift;
        bool operator==(const Key& o) const {
            return vpn == o.vpn && pasid == o.pasid && shift == o.shift;
        }
    };
    struct KeyHash {
        size_t operator()(const Key& k) const { return size_t(k.vpn ^ (uint64_t(k.pasid) << 20)); }
    };
    struct Entry {
        ats::Completion c;  // what the completion said (range.base: translated base)
    };
    struct Pending {
        bool answered = false;
        ats::ResponseCode code = ats::ResponseCode::Success;
        Tick at = 0;
        sc_core::sc_event ev;
    };
    const Entry* lookup(const Requester& req, Addr iova, unsigned* shift);
    // One Translation Request through the fabric: the completion, and its arrival in *t.
    ats::Completion request(const Requester& req, Addr iova, Tick* t);
    // Send a page request for `iova`'s page and wait for its group's response; *t moves to
    // the response's arrival.
    ats::ResponseCode page_request(const Requester& req, Addr iova, Access acc, Tick* t);
    void end_of_simulation() override;

    AtsParams p_;
    Requester function_;
    Send send_;
    ats::Host* host_ = nullptr;
    SetAssocCache<Key, Entry, KeyHash> atc_;
    uint64_t shifts_seen_ = 0;
    tlm::tlm_generic_payload tr_;
    PcieAttr* tr_attr_;  // owned by tr_
    uint8_t tr_data_[8] = {};
    std::vector<std::pair<Tick, Tick>> uses_;  // translated requests in flight: (issue, done)
    std::map<uint16_t, std::unique_ptr<Pending>> pending_;  // by PRGI
    uint16_t next_prgi_ = 0;
    sc_core::sc_event credit_ev_;
    Counter *hits_, *misses_, *fills_, *evictions_, *tr_requests_, *tr_failed_, *no_access_,
        *page_requests_, *credit_waits_, *resp_success_, *resp_invalid_, *resp_failure_,
        *resp_unexpected_, *pri_failures_, *inv_requests_, *inv_completions_, *inv_entries_,
        *unanswered_;
    Histogram *round_trip_, *page_fault_;
};

}  // namespace iommusim
