#include "vtd_iommu.h"

namespace iommusim {

VtdIommu::VtdIommu(sc_core::sc_module_name name, const vtd::RegFileConfig& regs,
                   const vtd::WalkerConfig& hw, const UnitParams& p, StatGroup& stats,
                   const vtd::RegFileParams& rp)
    : sc_module(name), mmio("mmio"), hw_(hw), walker_(hw) {
    unit_ = std::make_unique<IommuUnit>("unit", p, walker_, stats);
    vtd::RegFileHooks& hooks = *this;
    regs_ = std::make_unique<vtd::RegisterFile>(regs, unit_->walk_port(), hooks, rp);
    regs_->set_log_name(stats.path() + ".regs");
    unit_->on_fault([this](const Fault& f, const Requester& r, Addr iova, Access a, Tick at) {
        regs_->record_fault(f, r, iova, a, at);
    });
    StatGroup& g = stats.child("regs");
    device_tlb_invs_ = &g.counter("device_tlb_invalidations",
                                  "ATS invalidations sent (completed at once: no device ATCs yet)");
    page_responses_ = &g.counter("page_responses", "page group responses forwarded");
    interrupts_ = &g.counter("interrupts",
                             "fault, invalidation-completion and page-request interrupts raised");
    mmio_errors_ = &g.counter("mmio_errors", "MMIO accesses of a size other than 4 or 8 bytes");
    mmio.register_b_transport(this, &VtdIommu::mmio_b_transport);
    sync_state();
}

VtdIommu::~VtdIommu() = default;

// SRTP latches the root table and mode; TE switches translation.
void VtdIommu::sync_state() {
    walker_.config() = regs_->walker_config(hw_);
    unit_->set_translation_enabled(regs_->translation_enabled());
}

Tick VtdIommu::invalidate(const InvalidationScope& s, Tick at) {
    return unit_->engine().invalidate(s, at);
}

Tick VtdIommu::device_tlb(const InvalidationScope&, Tick at) {
    ++*device_tlb_invs_;
    return at;
}

Tick VtdIommu::page_response(const vtd::PageGroupResponse&, Tick at) {
    ++*page_responses_;
    return at;
}

Tick VtdIommu::mmio_write(uint32_t offset, unsigned size, uint64_t value, Tick at) {
    const Tick done = regs_->write(offset, size, value, at);
    sync_state();
    return done;
}

void VtdIommu::interrupt(vtd::Interrupt, Tick) {
    ++*interrupts_;
}

void VtdIommu::mmio_b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    const unsigned n = p.get_data_length();
    if ((n != 4 && n != 8) || p.get_byte_enable_ptr()) {
        ++*mmio_errors_;
        p.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
        return;
    }
    const uint32_t off = uint32_t(p.get_address());
    uint8_t* d = p.get_data_ptr();
    if (p.is_read()) {
        const uint64_t v = regs_->read(off, n);
        for (unsigned i = 0; i < n; ++i) d[i] = uint8_t(v >> (8 * i));
    } else if (p.is_write()) {
        uint64_t v = 0;
        for (unsigned i = 0; i < n; ++i) v |= uint64_t(d[i]) << (8 * i);
        const Tick at = to_ticks(sc_core::sc_time_stamp() + delay);
        const Tick done = mmio_write(off, n, v, at);
        delay += to_sc_time(done > at ? done - at : 0);
    }
    p.set_response_status(tlm::TLM_OK_RESPONSE);
}

}  // namespace iommusim
