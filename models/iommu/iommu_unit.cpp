#include "iommu_unit.h"

#include <fstream>

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
      upstream("upstream"),
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
    upstream.register_b_transport(this, &IommuUnit::b_transport);
    upstream.register_transport_dbg(this, &IommuUnit::transport_dbg);
}

IommuUnit::~IommuUnit() = default;

MemoryPort& IommuUnit::walk_port() {
    return *port_;
}

void IommuUnit::end_of_simulation() {
    if (stale_report_.empty()) return;
    std::ofstream f(stale_report_);
    f << format_stale_hits(engine_->stale_hits());
    if (!f)
        SC_REPORT_ERROR(name(),
                        ("cannot write the stale-translation report " + stale_report_).c_str());
}

void IommuUnit::b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    const PcieAttr* attr = p.get_extension<PcieAttr>();
    if (!attr) {
        ++*untranslated_missing_;
        p.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
        return;
    }
    if (!enabled_) {  // remapping off: the bus address is the physical address
        ++*passthrough_;
        downstream->b_transport(p, delay);
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
        downstream->b_transport(p, delay);
        done_bytes += n;
        if (!p.is_response_ok()) break;
    }
    x.restore(p);
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
