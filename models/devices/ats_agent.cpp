#include "ats_agent.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "core/bits.h"

namespace iommusim {

namespace {
const AtsParams& checked(const AtsParams& p) {
    if (std::string why = p.check(); !why.empty()) throw std::invalid_argument(why);
    return p;
}
CacheGeometry atc_geometry(const AtsParams& p) {
    const uint32_t ways = p.atc_ways ? p.atc_ways : p.atc_entries;
    return {p.atc_entries / ways, ways, Replacement::LRU, 1};
}
}  // namespace

AtsAgent::AtsAgent(sc_core::sc_module_name name, const AtsParams& p, const Requester& function,
                   StatGroup& g)
    : sc_module(name),
      p_(checked(p)),
      function_(Requester{function.rid}),
      atc_(atc_geometry(p_)),
      tr_attr_(new PcieAttr) {
    tr_.set_extension(tr_attr_);
    StatGroup& a = g.child("atc");
    hits_ = &a.counter("hits", "ATC lookups that found a translation with the rights");
    misses_ = &a.counter("misses", "ATC lookups that needed a Translation Request");
    fills_ = &a.counter("fills", "translations inserted from completions");
    evictions_ = &a.counter("evictions", "valid entries replaced by fills");
    tr_requests_ = &g.counter("translation_requests", "Translation Requests sent");
    tr_failed_ = &g.counter("translation_failures",
                            "Translation Requests completed with UR/CA (ATS not allowed, fault)");
    no_access_ =
        &g.counter("no_access", "completions without the rights the request needs (R/W = 0)");
    round_trip_ =
        &g.histogram("round_trip", "ns", "Translation Request sent until its completion arrived");
    StatGroup& r = g.child("pri");
    page_requests_ = &r.counter("page_requests", "Page Request messages sent");
    credit_waits_ =
        &r.counter("credit_waits", "page requests that waited for the outstanding allocation");
    resp_success_ = &r.counter("responses_success", "PRG responses: Success");
    resp_invalid_ = &r.counter("responses_invalid_request", "PRG responses: Invalid Request");
    resp_failure_ = &r.counter("responses_failure", "PRG responses: Response Failure");
    resp_unexpected_ =
        &r.counter("responses_unexpected", "PRG responses for no outstanding group (ignored)");
    pri_failures_ =
        &r.counter("failures", "requests that failed after PRI (refused, or still no rights)");
    unanswered_ =
        &r.counter("unanswered", "page requests never answered by the end of the run (a defect)");
    page_fault_ =
        &r.histogram("fault_latency", "ns", "page request sent until its response arrived");
    StatGroup& i = g.child("invalidations");
    inv_requests_ = &i.counter("requests", "ATC Invalidation Requests received");
    inv_completions_ = &i.counter("completions", "Invalidation Completions sent");
    inv_entries_ = &i.counter("entries", "ATC entries removed by invalidations");
}

AtsAgent::~AtsAgent() = default;

const AtsAgent::Entry* AtsAgent::lookup(const Requester& req, Addr iova, unsigned* shift) {
    for (uint64_t s = shifts_seen_; s; s &= s - 1) {
        const unsigned sh = unsigned(__builtin_ctzll(s));
        if (const Entry* e = atc_.lookup({req.pasid, iova >> sh, uint8_t(sh)})) {
            *shift = sh;
            return e;
        }
    }
    return nullptr;
}

bool AtsAgent::cached(const Requester& req, Addr iova) const {
    for (uint64_t s = shifts_seen_; s; s &= s - 1) {
        const unsigned sh = unsigned(__builtin_ctzll(s));
        if (atc_.peek({req.pasid, iova >> sh, uint8_t(sh)})) return true;
    }
    return false;
}

ats::Completion AtsAgent::request(const Requester& req, Addr iova, Tick* t) {
    ++*tr_requests_;
    tr_attr_->req = req;
    tr_attr_->at = PcieAttr::At::TranslationRequest;
    tr_attr_->tlp = PcieAttr::Tlp::MemRead;
    tr_attr_->contents = true;
    tr_.set_command(tlm::TLM_READ_COMMAND);
    tr_.set_address(iova & ~Addr(0xFFF));
    tr_.set_data_ptr(tr_data_);
    tr_.set_data_length(8);
    tr_.set_streaming_width(8);
    tr_.set_byte_enable_ptr(nullptr);
    tr_.set_dmi_allowed(false);
    tr_.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    std::fill(std::begin(tr_data_), std::end(tr_data_), uint8_t(0));
    const Tick sent = *t;
    const Tick now = sim_now();
    sc_core::sc_time delay = to_sc_time(sent > now ? sent - now : 0);
    if (send_) send_(tr_, delay);
    *t = std::max(sent, sim_now() + to_ticks(delay));
    round_trip_->add((*t - sent) / kTicksPerNs);
    ats::Completion c;
    c.ok = false;
    if (!tr_.is_response_ok()) return c;
    if (std::optional<ats::Completion> d = ats::Completion::decode(load_le64(tr_data_))) c = *d;
    return c;
}

ats::ResponseCode AtsAgent::page_request(const Requester& req, Addr iova, Access acc, Tick* t) {
    // The allocation counts requests whose group has no response yet (one page per group).
    while (pending_.size() >= p_.outstanding) {
        ++*credit_waits_;
        sc_core::wait(credit_ev_);
        *t = std::max(*t, sim_now());
    }
    uint16_t prgi = next_prgi_;
    while (pending_.count(prgi)) prgi = (prgi + 1) & ats::kPrgiMask;
    next_prgi_ = (prgi + 1) & ats::kPrgiMask;
    Pending& w = *pending_.emplace(prgi, std::make_unique<Pending>()).first->second;
    ats::PageRequest pr;
    pr.req = req;
    pr.addr = iova & ~Addr(0xFFF);
    pr.prgi = prgi;
    pr.last = true;
    pr.read = acc != Access::Write;
    pr.write = acc != Access::Read;
    pr.exec = req.exec;
    ++*page_requests_;
    const Tick sent = *t;
    if (host_) host_->page_request(pr, sent);
    while (!w.answered) sc_core::wait(w.ev);
    *t = std::max(sent, w.at);
    page_fault_->add((*t - sent) / kTicksPerNs);
    const ats::ResponseCode code = w.code;
    pending_.erase(prgi);
    credit_ev_.notify(sc_core::SC_ZERO_TIME);
    return code;
}

AtsAgent::Result AtsAgent::translate(const Requester& req, Addr iova, Access acc, Tick at) {
    Result r;
    r.done = at;
    unsigned shift = 0;
    if (const Entry* e = lookup(req, iova, &shift); e && e->c.permits(acc, req.exec)) {
        ++*hits_;
        r.ok = r.hit = true;
        r.out = e->c.range.base | (iova & ((Addr(1) << shift) - 1));
        return r;
    }
    ++*misses_;
    Tick t = at;
    for (uint32_t asked = 0;;) {
        const ats::Completion c = request(req, iova, &t);
        r.done = t;
        if (!c.ok) {
            ++*tr_failed_;
            return r;
        }
        // The completion's range holds the untranslated address; untranslated-only ranges
        // and ones without any right are not kept.
        const unsigned sh = std::max<unsigned>(c.range.shift, ats::kPageShift);
        if ((c.r || c.w) && !c.u) {
            if (atc_.insert({req.pasid, iova >> sh, uint8_t(sh)}, {c})) ++*evictions_;
            ++*fills_;
            shifts_seen_ |= uint64_t(1) << sh;
        }
        if (c.permits(acc, req.exec)) {
            r.ok = true;
            r.out = c.range.base | (iova & ((Addr(1) << sh) - 1));
            return r;
        }
        ++*no_access_;
        if (!p_.pri || !req.has_pasid()) return r;
        if (asked >= p_.pri_attempts) {
            ++*pri_failures_;  // Success, and still no rights
            return r;
        }
        ++asked;
        r.paged = true;
        if (r.requested == kNever) r.requested = t;
        r.response = page_request(req, iova, acc, &t);
        r.done = r.responded = t;
        if (r.response != ats::ResponseCode::Success) {
            ++*pri_failures_;
            return r;
        }
    }
}

void AtsAgent::used(Tick issue, Tick done) {
    // Forget uses that ended before every initiator's current time.
    if (uses_.size() >= 64) {
        const Tick now = sim_now();
        uses_.erase(std::remove_if(uses_.begin(), uses_.end(),
                                   [now](const auto& u) { return u.second <= now; }),
                    uses_.end());
    }
    uses_.push_back({issue, done});
}

Tick AtsAgent::invalidate(const ats::Invalidation& inv, Tick at) {
    ++*inv_requests_;
    const Addr lo = inv.range.base;
    const Addr hi = inv.range.shift >= 64 ? ~Addr(0) : lo + ((Addr(1) << inv.range.shift) - 1);
    // Without a PASID the range goes for every PASID; with one, that PASID's entries (and,
    // with Global, every PASID's global ones).
    const size_t n = atc_.erase_if([&](const Key& k, const Entry& e) {
        if (inv.req.has_pasid() && k.pasid != inv.req.pasid && !(inv.global && e.c.global))
            return false;
        if (inv.all) return true;
        const Addr base = k.vpn << k.shift, last = base + ((Addr(1) << k.shift) - 1);
        return base <= hi && lo <= last;
    });
    *inv_entries_ += n;
    // The completion follows every translated request issued before the invalidation arrived
    // (they may have used the entries).
    Tick done = at + p_.invalidation_ns * kTicksPerNs;
    for (const auto& [issue, end] : uses_)
        if (issue <= at) done = std::max(done, end);
    ++*inv_completions_;
    return done;
}

void AtsAgent::page_response(const ats::PrgResponse& r, Tick at) {
    switch (r.code) {
        case ats::ResponseCode::Success: ++*resp_success_; break;
        case ats::ResponseCode::InvalidRequest: ++*resp_invalid_; break;
        case ats::ResponseCode::ResponseFailure: ++*resp_failure_; break;
    }
    auto it = pending_.find(r.prgi & ats::kPrgiMask);
    if (it == pending_.end() || it->second->answered) {
        ++*resp_unexpected_;
        return;
    }
    Pending& w = *it->second;
    w.answered = true;
    w.code = r.code;
    w.at = at;
    const Tick now = sim_now();
    w.ev.notify(to_sc_time(at > now ? at - now : 0));
}

void AtsAgent::end_of_simulation() {
    size_t n = 0;
    for (const auto& [prgi, w] : pending_) n += !w->answered;
    if (!n) return;
    *unanswered_ += n;
    SC_REPORT_WARNING(name(), fmt::format("{} page request(s) never answered (PRGI {})", n,
                                          pending_.begin()->first)
                                  .c_str());
}

}  // namespace iommusim
