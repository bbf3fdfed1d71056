#include "vtd_iommu.h"

#include "arch/vtd/vtd_fault.h"

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
        regs_->record_fault(f, r, iova, a, at,
                            unit_->fault_at() == PcieAttr::At::TranslationRequest
                                ? vtd::AddrType::TranslationRequest
                                : vtd::AddrType::Untranslated);
    });
    StatGroup& g = stats.child("regs");
    device_tlb_invs_ =
        &g.counter("device_tlb_invalidations",
                   "device-TLB invalidation descriptors executed (ATC invalidations)");
    page_responses_ =
        &g.counter("page_responses", "page group response descriptors forwarded to functions");
    pr_refused_ = &g.counter("page_requests_refused",
                             "page requests refused before the queue (no PRI in legacy mode, "
                             "context not present, PRE clear)");
    pr_auto_responses_ = &g.counter("page_responses_auto",
                                    "page group responses the unit sent itself (refused or "
                                    "overflowed requests last in their group)");
    unit_->on_ats_check([this](const Requester& r, Addr a, Access acc, PcieAttr::At at, Tick t) {
        return ats_check(r, a, acc, at, t);
    });
    unit_->on_page_request([this](const ats::PageRequest& pr, Tick at) { page_request(pr, at); });
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

Tick VtdIommu::device_tlb(const InvalidationScope& s, Tick at) {
    ++*device_tlb_invs_;
    return unit_->invalidate_atc(s, at);
}

// A posted message: the queue goes on once it has left.
Tick VtdIommu::page_response(const vtd::PageGroupResponse& r, Tick at) {
    ++*page_responses_;
    Requester req{r.rid};
    if (r.pp) req.pasid = r.pasid;
    unit_->send_page_response({req, r.prgi, ats::ResponseCode(r.rc)}, at);
    return at;
}

std::optional<VtdIommu::AtsBits> VtdIommu::ats_bits(uint16_t rid) {
    const vtd::WalkerConfig& c = walker_.config();
    MemoryPort& mem = unit_->walk_port();
    const unsigned bus = rid >> 8, devfn = rid & 0xff;
    uint64_t root[2], ctx[2];
    if (!mem.peek(c.rtaddr + Addr(bus) * 16, root, 16)) return std::nullopt;
    AtsBits b;
    if (!c.scalable) {
        const vtd::RootEntry re{root[0], root[1]};
        if (!re.p() || !mem.peek(re.ctp() + Addr(devfn) * 16, ctx, 16)) return std::nullopt;
        const vtd::ContextEntry ce{ctx[0], ctx[1]};
        if (!ce.p()) return std::nullopt;
        b.ats = ce.tt() == vtd::TranslationType::DeviceTlb;
        return b;  // legacy mode has no PASIDs and no page requests
    }
    const vtd::ScalableRootEntry re{root[0], root[1]};
    const bool upper = devfn >= 128;
    if (!(upper ? re.up() : re.lp())) return std::nullopt;
    const Addr ctp = upper ? re.uctp() : re.lctp();
    if (!mem.peek(ctp + Addr(devfn & 0x7f) * 32, ctx, 16)) return std::nullopt;
    vtd::ScalableContextEntry ce;
    ce.qw[0] = ctx[0], ce.qw[1] = ctx[1];
    if (!ce.p()) return std::nullopt;
    b.ats = ce.dte();
    b.pri = ce.pre();
    b.pasid = ce.paside();
    return b;
}

// Translation and translated requests need a present context entry that enables the
// device-TLB (legacy TT = 01b: fault 0xD otherwise; scalable mode DTE: 0x44).
bool VtdIommu::ats_check(const Requester& r, Addr a, Access acc, PcieAttr::At at, Tick t) {
    const std::optional<AtsBits> b = ats_bits(r.rid);
    if (b && b->ats) return true;
    const bool sm = walker_.config().scalable;
    Fault f;
    f.kind = b ? FaultKind::Blocked : FaultKind::NotPresent;
    f.reason = b ? (sm ? vtd::kSmContextDteClear : vtd::kFrContextTtBlocked)
                 : (sm ? vtd::kSmContextNotPresent : vtd::kFrContextNotPresent);
    f.addr = a;
    regs_->record_fault(f, r, a, acc, t,
                        at == PcieAttr::At::Translated ? vtd::AddrType::Translated
                                                       : vtd::AddrType::TranslationRequest);
    return false;
}

void VtdIommu::auto_response(const ats::PageRequest& pr, ats::ResponseCode code, Tick at) {
    ++*pr_auto_responses_;
    unit_->send_page_response({pr.req, pr.prgi, code}, at);
}

// 7.4.1: the context entry must be present with PRE set (scalable mode only), or the request
// is refused: a fault record, and an Invalid Request response when it was last in its group.
// Accepted requests first drop what the IOTLB holds for the page (the software that services
// them will change it), then go to the page request queue.
void VtdIommu::page_request(const ats::PageRequest& pr, Tick at) {
    const bool needs_response = pr.last && (pr.read || pr.write);
    const std::optional<AtsBits> b = ats_bits(pr.req.rid);
    const bool sm = walker_.config().scalable;
    if (!sm || !b || !b->pri || (pr.req.has_pasid() && !b->pasid)) {
        ++*pr_refused_;
        if (sm) {
            Fault f;
            f.kind = b ? FaultKind::Blocked : FaultKind::NotPresent;
            f.reason = !b        ? vtd::kSmContextNotPresent
                       : !b->pri ? vtd::kSmContextPreClear
                                 : vtd::kSmContextPasidDisabled;
            f.addr = pr.addr;
            regs_->record_fault(f, pr.req, pr.addr, pr.write ? Access::Write : Access::Read, at);
        }
        if (needs_response) auto_response(pr, ats::ResponseCode::InvalidRequest, at);
        return;
    }
    InvalidationScope s;
    s.kind =
        pr.req.has_pasid() ? InvalidationScope::Kind::PasidPage : InvalidationScope::Kind::Page;
    s.domain = InvalidationScope::kAllDomains;
    s.pasid = pr.req.pasid;
    s.addr = pr.addr & ~Addr(0xFFF);
    unit_->engine().invalidate(s, at);
    vtd::PageRequest d;
    d.pp = pr.req.has_pasid();
    d.rid = pr.req.rid;
    d.pasid = d.pp ? pr.req.pasid : 0;
    d.exe = pr.exec;
    d.pmr = pr.req.priv;
    d.rdr = pr.read;
    d.wrr = pr.write;
    d.lpig = pr.last;
    d.prgi = pr.prgi;
    d.addr = pr.addr & ~Addr(0xFFF);
    const vtd::PageRequestResult res = regs_->page_request(d, at);
    if (page_request_hook_) page_request_hook_(d, res);
    if (res.respond) auto_response(pr, ats::ResponseCode(res.code), res.done);
}

Tick VtdIommu::mmio_write(uint32_t offset, unsigned size, uint64_t value, Tick at) {
    const Tick done = regs_->write(offset, size, value, at);
    sync_state();
    return done;
}

void VtdIommu::interrupt(vtd::Interrupt i, Tick at) {
    ++*interrupts_;
    if (interrupt_hook_) interrupt_hook_(i, at);
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

void vtd::enable_device_tlb(SparseMemory& store, const vtd::WalkerConfig& hw, uint16_t rid,
                            bool pri) {
    const unsigned bus = rid >> 8, devfn = rid & 0xff;
    uint64_t root[2];
    store.read(hw.rtaddr + Addr(bus) * 16, root, 16);
    if (!hw.scalable) {
        const vtd::RootEntry re{root[0], root[1]};
        if (!re.p()) return;
        const Addr a = re.ctp() + Addr(devfn) * 16;
        const vtd::ContextEntry ce{store.read64(a), store.read64(a + 8)};
        // A pass-through context stays so: device-TLB is the translated type's ATS form.
        if (!ce.p() || ce.tt() != vtd::TranslationType::Untranslated) return;
        store.write64(a, ce.lo | (uint64_t(vtd::TranslationType::DeviceTlb) << 2));
        return;
    }
    const vtd::ScalableRootEntry re{root[0], root[1]};
    const bool upper = devfn >= 128;
    if (!(upper ? re.up() : re.lp())) return;
    const Addr a = (upper ? re.uctp() : re.lctp()) + Addr(devfn & 0x7f) * 32;
    uint64_t qw0 = store.read64(a);
    if (!(qw0 & 1)) return;
    qw0 |= uint64_t(1) << 2;           // DTE
    if (pri) qw0 |= uint64_t(1) << 4;  // PRE
    store.write64(a, qw0);
}

}  // namespace iommusim
