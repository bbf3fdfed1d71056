#include "iommu_unit.h"

#include <fstream>

#include "core/bits.h"
#include "core/payload_extent.h"
#include "core/timeline.h"

namespace iommusim {

// Translation-structure accesses as TLM transactions on the walk socket; the timed ones
// carry their issue time as the delay relative to now.
class IommuUnit::WalkPort final : public MemoryPort {
public:
    explicit WalkPort(tlm_utils::simple_initiator_socket<IommuUnit>& s) : socket_(s) {}
    MemDone read(Addr a, void* d, size_t n, Tick at) override {
        return timed(tlm::TLM_READ_COMMAND, a, static_cast<uint8_t*>(d), n, at);
    }
    MemDone write(Addr a, const void* s, size_t n, Tick at) override {
        return timed(tlm::TLM_WRITE_COMMAND, a, static_cast<uint8_t*>(const_cast<void*>(s)), n, at);
    }
    bool peek(Addr a, void* d, size_t n) override {
        setup(tlm::TLM_READ_COMMAND, a, static_cast<uint8_t*>(d), n);
        return socket_->transport_dbg(p_) == n;
    }

private:
    void setup(tlm::tlm_command c, Addr a, uint8_t* d, size_t n) {
        p_.set_command(c);
        p_.set_address(a);
        p_.set_data_ptr(d);
        p_.set_data_length(unsigned(n));
        p_.set_streaming_width(unsigned(n));
        p_.set_byte_enable_ptr(nullptr);
        p_.set_dmi_allowed(false);
        p_.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    }
    MemDone timed(tlm::tlm_command c, Addr a, uint8_t* d, size_t n, Tick at) {
        setup(c, a, d, n);
        const Tick now = sim_now();
        sc_core::sc_time delay = to_sc_time(at > now ? at - now : 0);
        socket_->b_transport(p_, delay);
        return {now + to_ticks(delay), p_.is_response_ok()};
    }
    tlm_utils::simple_initiator_socket<IommuUnit>& socket_;
    tlm::tlm_generic_payload p_;
};

IommuUnit::IommuUnit(sc_core::sc_module_name name, const UnitParams& p, Walker& walker,
                     StatGroup& stats)
    : sc_module(name),
      upstream("upstream", this),
      downstream("downstream"),
      walk("walk"),
      walker_(walker) {
    if (sc_core::sc_get_time_resolution() != sc_core::sc_time(1, sc_core::SC_PS))
        SC_REPORT_FATAL(basename(), "iommusim needs a time resolution of 1 ps");
    port_ = std::make_unique<WalkPort>(walk);
    engine_ = std::make_unique<TranslationUnit>(p, walker, *port_, stats);
    if (Timeline* t = timeline()) t->name_key(&walker, this->name());
    split_ = &stats.counter("page_splits", "DMAs split because they cross a translated page");
    untranslated_missing_ =
        &stats.counter("missing_attributes", "DMAs without PCIe attributes (rejected)");
    passthrough_ = &stats.counter("untranslated", "DMAs passed through with translation disabled");
    StatGroup& a = stats.child("ats");
    tr_requests_ = &a.counter("translation_requests", "ATS Translation Requests received");
    tr_faults_ = &a.counter("translation_request_faults",
                            "Translation Requests answered with UR (ATS not allowed, or a "
                            "non-recoverable fault)");
    tr_no_access_ = &a.counter("translation_no_access",
                               "Translation Requests completed with R = W = 0 (page not present "
                               "or no permission: PRI may make it so)");
    translated_ = &a.counter("translated_requests", "requests with AT = translated received");
    translated_rejected_ = &a.counter("translated_rejected",
                                      "translated requests rejected (UR): the function may not "
                                      "use ATS");
    inv_sent_ = &a.counter("invalidation_requests", "ATC Invalidation Requests sent to functions");
    inv_completed_ =
        &a.counter("invalidation_completions", "ATC Invalidation Completions received");
    inv_unanswered_ =
        &a.counter("invalidations_unanswered", "ATC invalidations a function never completed");
    inv_no_function_ = &a.counter("invalidations_no_function",
                                  "device-TLB invalidations for a RID with no attached function "
                                  "(done at once)");
    page_requests_ = &a.counter("page_requests", "Page Request messages received");
    page_requests_unknown_ = &a.counter("page_requests_refused",
                                        "Page Requests of an architecture without PRI (refused)");
    prg_responses_ = &a.counter("prg_responses", "PRG Response messages sent to functions");
    prg_responses_dropped_ =
        &a.counter("prg_responses_dropped", "PRG Responses for a RID with no attached function");
}

IommuUnit::~IommuUnit() = default;

MemoryPort& IommuUnit::walk_port() {
    return *port_;
}

void IommuUnit::end_of_elaboration() {
    down_ = downstream.operator->();
}

void IommuUnit::end_of_simulation() {
    if (stale_report_.empty()) return;
    std::ofstream f(stale_report_);
    f << format_stale_hits(engine_->stale_hits());
    if (!f)
        SC_REPORT_ERROR(name(),
                        ("cannot write the stale-translation report " + stale_report_).c_str());
}

IommuUnit* IommuUnit::behind(tlm::tlm_fw_transport_if<>* fw) {
    const sc_core::sc_object* socket = direct_socket_of(fw);
    auto* unit = socket ? dynamic_cast<IommuUnit*>(socket->get_parent_object()) : nullptr;
    return unit && socket == &unit->upstream ? unit : nullptr;
}

void IommuUnit::b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    transport(p, delay, p.get_extension<PcieAttr>());
}

void IommuUnit::transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay,
                          const PcieAttr* attr) {
    if (!attr) {
        ++*untranslated_missing_;
        p.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
        return;
    }
    if (attr->at == PcieAttr::At::TranslationRequest) return translation_request(p, *attr, delay);
    if (attr->at == PcieAttr::At::Translated) return translated(p, *attr, delay);
    if (!enabled_) {  // remapping off: the bus address is the physical address
        ++*passthrough_;
        down_->b_transport(p, delay);
        return;
    }
    const PayloadExtent x(p);
    const Access acc = attr->access();
    engine_->forget_before(sim_now());
    // A DMA crossing a translated page is translated (and forwarded) page by page.
    unsigned done_bytes = 0;
    while (done_bytes < x.len) {
        const Addr a = x.addr + done_bytes;
        const Tick arrival = sim_now() + to_ticks(delay);
        const TranslateOutcome o = engine_->translate(attr->req, a, acc, arrival);
        delay += to_sc_time(o.done - arrival);
        if (translate_hook_) translate_hook_(attr->req, a, arrival, o);
        if (!o.result.ok()) {
            if (fault_hook_) fault_hook_(o.result.fault, attr->req, a, acc, o.done);
            x.restore(p);
            p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
            return;
        }
        const Addr page_left = o.result.tr.page_size() - (a & (o.result.tr.page_size() - 1));
        const unsigned n = unsigned(std::min<Addr>(x.len - done_bytes, page_left));
        if (n < x.len && done_bytes == 0) ++*split_;
        x.narrow_to(p, o.result.tr.out, done_bytes, n);
        down_->b_transport(p, delay);
        done_bytes += n;
        if (!p.is_response_ok()) break;
    }
    x.restore(p);
}

namespace {
// A fault a Page Request may resolve: a paging entry not present, or rights not granted.
// The completion then says R = W = 0 and no fault is recorded (the function may use PRI).
bool recoverable(const Fault& f) {
    return (f.kind == FaultKind::NotPresent && f.level > 0) || f.kind == FaultKind::Permission;
}
}  // namespace

// A Translation Request: no memory access; its completion's data entry goes into the
// request's 8 data bytes (the completion the link then carries back as CplD).
void IommuUnit::translation_request(tlm::tlm_generic_payload& p, const PcieAttr& attr,
                                    sc_core::sc_time& delay) {
    ++*tr_requests_;
    if (p.get_data_length() < 8 || !p.get_data_ptr()) {
        ++*tr_faults_;
        p.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
        return;
    }
    const Tick arrival = sim_now() + to_ticks(delay);
    const Addr page = p.get_address() & ~Addr(0xFFF);
    ats::Completion c;
    c.range = {page, uint8_t(ats::kPageShift)};
    if (!enabled_) {  // remapping off: the untranslated address is the physical address
        c.r = c.w = true;
    } else {
        // No hook: the architecture has no ATS, and the request is unsupported.
        if (!ats_check_ ||
            !ats_check_(attr.req, page, Access::Read, PcieAttr::At::TranslationRequest, arrival)) {
            ++*tr_faults_;
            p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
            return;
        }
        engine_->forget_before(sim_now());
        // Read rights are the least a translation grants; W and X come from what it holds.
        const TranslateOutcome o = engine_->translate(attr.req, page, Access::Read, arrival);
        delay += to_sc_time(o.done - arrival);
        if (translate_hook_) translate_hook_(attr.req, page, arrival, o);
        if (o.result.ok()) {
            const Translation& t = o.result.tr;
            c.range = {t.page_out(), t.page_shift};
            c.r = t.perm & kPermR;
            c.w = t.perm & kPermW;
            c.exe = t.perm & kPermX;
            c.priv = attr.req.priv;
        } else if (recoverable(o.result.fault)) {
            ++*tr_no_access_;
        } else {
            ++*tr_faults_;
            fault_at_ = PcieAttr::At::TranslationRequest;
            if (fault_hook_) fault_hook_(o.result.fault, attr.req, page, Access::Read, o.done);
            fault_at_ = PcieAttr::At::Untranslated;
            p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
            return;
        }
    }
    store_le64(p.get_data_ptr(), c.encode());
    p.set_response_status(tlm::TLM_OK_RESPONSE);
}

// A Translated request: its address is already physical; only the function's right to use
// ATS is checked.
void IommuUnit::translated(tlm::tlm_generic_payload& p, const PcieAttr& attr,
                           sc_core::sc_time& delay) {
    ++*translated_;
    const Tick arrival = sim_now() + to_ticks(delay);
    if (enabled_ && (!ats_check_ || !ats_check_(attr.req, p.get_address(), attr.access(),
                                                PcieAttr::At::Translated, arrival))) {
        ++*translated_rejected_;
        p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
        return;
    }
    down_->b_transport(p, delay);
}

void IommuUnit::attach_function(ats::Function& f, ats::Path path, bool pri) {
    functions_[f.requester().rid] = {&f, std::move(path)};
    f.connect(*this);
    if (attach_hook_) attach_hook_(f.requester(), pri);
}

Tick IommuUnit::invalidate_atc(const InvalidationScope& s, Tick at) {
    auto it = functions_.find(s.rid);
    if (it == functions_.end()) {
        ++*inv_no_function_;
        return at;
    }
    ats::Invalidation inv;
    inv.req = Requester{s.rid};
    inv.req.pasid = s.pasid;
    inv.global = s.global;
    inv.all = s.order >= InvalidationScope::kWholeSpace;
    if (!inv.all) inv.range = {s.addr, uint8_t(ats::kPageShift + s.order)};
    inv.itag = itag_;
    itag_ = (itag_ + 1) & 31;
    ++*inv_sent_;
    const Attached& a = it->second;
    const Tick arrive = a.path.down(at, ats::kInvalidationRequestBytes);
    const Tick sent = a.f->invalidate(inv, arrive);
    if (sent == kNever) {
        ++*inv_unanswered_;
        return kNever;
    }
    ++*inv_completed_;
    return a.path.up(sent, 0);
}

void IommuUnit::send_page_response(const ats::PrgResponse& r, Tick at) {
    auto it = functions_.find(r.req.rid);
    if (it == functions_.end()) {
        ++*prg_responses_dropped_;
        return;
    }
    ++*prg_responses_;
    it->second.f->page_response(r, it->second.path.down(at, 0));
}

void IommuUnit::page_request(const ats::PageRequest& pr, Tick sent) {
    ++*page_requests_;
    auto it = functions_.find(pr.req.rid);
    const Tick at = it == functions_.end() ? sent : it->second.path.up(sent, 0);
    if (page_request_hook_) return page_request_hook_(pr, at);
    // No PRI here: a last request expecting a response gets Invalid Request.
    ++*page_requests_unknown_;
    if (pr.last && (pr.read || pr.write))
        send_page_response({pr.req, pr.prgi, ats::ResponseCode::InvalidRequest}, at);
}

// Debug access in IOVA space: a functional walk through untimed reads (accessed/dirty
// write-backs skipped, so debugging changes nothing), then the access forwarded page by page.
unsigned int IommuUnit::transport_dbg(tlm::tlm_generic_payload& p) {
    const PcieAttr* attr = p.get_extension<PcieAttr>();
    if (!attr) return 0;
    const PayloadExtent x(p);
    unsigned done_bytes = 0;
    uint8_t buf[64];
    while (done_bytes < x.len) {
        const Addr a = x.addr + done_bytes;
        walker_.start(attr->req, a, attr->access());
        for (WalkStep s = walker_.next(); s.kind != WalkStep::Kind::Done; s = walker_.next())
            if (s.kind == WalkStep::Kind::Read) {
                if (port_->peek(s.addr, buf, s.size))
                    walker_.feed(buf);
                else
                    walker_.feed_error();
            }
        const WalkResult& r = walker_.result();
        if (!r.ok()) break;
        const Addr left = r.tr.page_size() - (a & (r.tr.page_size() - 1));
        const unsigned n = unsigned(std::min<Addr>(x.len - done_bytes, left));
        x.narrow_to(p, r.tr.out, done_bytes, n);
        const unsigned got = downstream->transport_dbg(p);
        done_bytes += got;
        if (got < n) break;
    }
    x.restore(p);
    return done_bytes;
}

}  // namespace iommusim
