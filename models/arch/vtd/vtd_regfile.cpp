// Register access, global commands and register-based invalidation. Fault logging and the
// page request queue are in vtd_regfile_faults.cpp, the invalidation queue engine in
// vtd_regfile_queue.cpp.
#include <algorithm>

#include <fmt/format.h>

#include "vtd_regfile.h"

namespace iommusim::vtd {

namespace {

constexpr uint64_t kLo32 = 0xffff'ffffULL;
// Bits software can write (the rest are RsvdZ or read-only).
constexpr uint64_t kRtaddrMask = bit_mask(63, 12) | bit_mask(11, 10);
constexpr uint64_t kCcmdMask = bit_mask(63, 61) | bit_mask(33, 0);
constexpr uint64_t kIvaMask = bit_mask(63, 12) | bit_mask(6, 0);
constexpr uint64_t kIotlbMask = bit_mask(63, 63) | bit_mask(61, 60) | bit_mask(49, 32);
constexpr uint64_t kIqaMask = bit_mask(63, 12) | bit_mask(11, 11) | bit_mask(2, 0);
constexpr uint64_t kPqaMask = bit_mask(63, 12) | bit_mask(2, 0);
constexpr uint64_t kIrtaMask = bit_mask(63, 12) | bit_mask(11, 11) | bit_mask(3, 0);
// End of the fixed-offset registers (the last variable-range MTRR).
constexpr uint32_t kFixedEnd = reg::mtrr_physmask(reg::kMtrrVarCount - 1) + 8;

bool overlaps(uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1) {
    return a0 < b1 && b0 < a1;
}

uint64_t plain_mask(uint32_t reg) {
    switch (reg) {
        case reg::FEDATA:
        case reg::IEDATA:
        case reg::PEDATA: return 0xffff;
        case reg::FEADDR:
        case reg::IEADDR:
        case reg::PEADDR: return 0xffff'fffc;
        case reg::IRTA: return kIrtaMask;
        case reg::MTRRCAP: return 0;
        default: return ~0ULL;
    }
}

}  // namespace

const char* to_string(Interrupt i) {
    switch (i) {
        case Interrupt::Fault: return "fault";
        case Interrupt::InvalidationCompletion: return "invalidation-completion";
        case Interrupt::PageRequest: return "page-request";
    }
    return "?";
}

RegFileConfig RegFileConfig::scalable_unit() {
    RegFileConfig c;
    Cap& k = c.cap;
    k.nd = 6;  // 16-bit domain IDs
    k.sagaw = 0b0110;
    k.mgaw = 47;
    k.fro = 0x400 / 16;
    k.sllps = 0b11;
    k.psi = true;
    k.nfr = 7;
    k.mamv = 18;
    k.dwd = k.drd = k.fl1gp = true;
    Ecap& e = c.ecap;
    e.c = e.qi = e.dt = e.ir = e.eim = e.pt = e.sc = true;
    e.iro = 0x500 / 16;
    e.mhmv = 0xf;
    e.nest = e.prs = e.srs = e.pasid = e.pds = e.smts = true;
    e.pss = 19;
    e.slads = e.slts = e.flts = e.smpwcs = e.rps = e.adms = true;
    return c;
}

std::string RegFileConfig::layout_error() const {
    const uint32_t f0 = cap.frcd_offset(0), f1 = cap.frcd_offset(cap.num_fault_regs());
    const uint32_t i0 = ecap.iva_offset(), i1 = i0 + 16;
    if (overlaps(f0, f1, 0, kFixedEnd))
        return fmt::format(
            "fault recording registers {:#x}-{:#x} (CAP.FRO) overlap fixed registers", f0, f1 - 1);
    if (overlaps(i0, i1, 0, kFixedEnd))
        return fmt::format("IVA/IOTLB registers at {:#x} (ECAP.IRO) overlap fixed registers", i0);
    if (overlaps(f0, f1, i0, i1))
        return fmt::format("IVA/IOTLB registers at {:#x} overlap fault recording registers", i0);
    return "";
}

uint64_t RegisterFile::Counters::descriptors_total() const {
    uint64_t t = 0;
    for (uint64_t n : descriptors) t += n;
    return t;
}

RegisterFile::RegisterFile(const RegFileConfig& cfg, MemoryPort& mem, Hooks& hooks, const Params& p)
    : cfg_(cfg),
      mem_(mem),
      hooks_(hooks),
      p_(p),
      clk_(p.clock()),
      frcd_(cfg.cap.num_fault_regs(), std::array<uint64_t, 2>{0, 0}),
      ring_(p.clock(), p.desc_cycles) {}

uint32_t RegisterFile::mmio_bytes() const {
    const uint32_t end = std::max(
        {kFixedEnd, cfg_.cap.frcd_offset(cfg_.cap.num_fault_regs()), cfg_.ecap.iva_offset() + 16});
    return (end + 0xfff) & ~0xfffu;
}

// ---- MMIO decoding ----

bool RegisterFile::present(uint32_t r) const {
    const Cap& c = cfg_.cap;
    const Ecap& e = cfg_.ecap;
    // Registers of features the unit lacks are RsvdZ (chapter 11, each register's text).
    if (r >= reg::IQH && r <= reg::IQERCD) return e.qi;
    if (r == reg::IRTA) return e.ir;
    if (r >= reg::PQH && r <= reg::PEUADDR) return e.prs;
    if (r >= reg::MTRRCAP) return e.mts;
    if (r == reg::PMEN) return c.plmr || c.phmr;
    if (r == reg::PLMBASE || r == reg::PLMLIMIT) return c.plmr;
    if (r == reg::PHMBASE || r == reg::PHMLIMIT) return c.phmr;
    if (r == reg::AFLOG) return c.afl;
    return true;
}

RegisterFile::Loc RegisterFile::locate(uint32_t off) const {
    Loc l;
    const uint32_t iva = cfg_.ecap.iva_offset();
    if (off >= iva && off < iva + 16) {
        l.slot = Slot::Reg;
        l.reg = off < iva + 8 ? iva : iva + 8;
        l.dword = (off - l.reg) / 4;
        return l;
    }
    const uint32_t f0 = cfg_.cap.frcd_offset(0);
    if (off >= f0 && off < cfg_.cap.frcd_offset(cfg_.cap.num_fault_regs())) {
        l.slot = Slot::Frcd;
        l.reg = (off - f0) / reg::kFrcdBytes;
        l.dword = (off - f0) % reg::kFrcdBytes / 4;
        return l;
    }
    if (find_reg(off)) {
        l.reg = off;
    } else if (const RegInfo* r = off >= 4 ? find_reg(off - 4) : nullptr; r && r->bytes == 8) {
        l.reg = off - 4;
        l.dword = 1;
    } else {
        return l;
    }
    if (present(l.reg)) l.slot = Slot::Reg;
    return l;
}

uint64_t RegisterFile::read(uint32_t offset, unsigned size) {
    if ((size != 4 && size != 8) || offset % size) {
        ++n_.bad_accesses;
        return 0;
    }
    bool known = true;
    uint64_t v = read32(offset, known);
    if (size == 8) v |= uint64_t(read32(offset + 4, known)) << 32;
    if (!known) ++n_.unknown_accesses;
    return v;
}

Tick RegisterFile::write(uint32_t offset, unsigned size, uint64_t value, Tick at) {
    if ((size != 4 && size != 8) || offset % size) {
        ++n_.bad_accesses;
        return at;
    }
    bool known = true;
    Tick done = at;
    // Low doubleword first: the triggers of CCMD and IOTLB_REG sit in their upper halves.
    write32(offset, uint32_t(value), at, done, known);
    if (size == 8) write32(offset + 4, uint32_t(value >> 32), at, done, known);
    if (!known) ++n_.unknown_accesses;
    return done;
}

uint32_t RegisterFile::read32(uint32_t off, bool& known) {
    const Loc l = locate(off);
    switch (l.slot) {
        case Slot::None: known = false; return 0;
        case Slot::Frcd: return uint32_t(frcd_[l.reg][l.dword / 2] >> (32 * (l.dword % 2)));
        case Slot::Reg: break;
    }
    return uint32_t(reg_value(l.reg) >> (32 * l.dword));
}

void RegisterFile::write32(uint32_t off, uint32_t v, Tick at, Tick& done, bool& known) {
    const Loc l = locate(off);
    if (l.slot == Slot::None) {
        known = false;
        return;
    }
    if (l.slot == Slot::Frcd) {
        // Only F (bit 127) is writable: RW1C. PPF follows the F bits.
        if (l.dword == 3 && (v >> 31)) {
            frcd_[l.reg][1] &= ~frcd::F.mask();
            clear_status(0, at, done);
        }
        return;
    }
    const RegInfo* info = find_reg(l.reg);
    const bool wide = info ? info->bytes == 8 : true;  // IVA and IOTLB_REG are 64-bit
    if (!wide) return write_reg(l.reg, false, v, at, done);
    const uint64_t cur = reg_value(l.reg);
    const uint64_t merged =
        l.dword ? (cur & kLo32) | (uint64_t(v) << 32) : (cur & ~kLo32) | uint64_t(v);
    write_reg(l.reg, l.dword == 1, merged, at, done);
}

uint64_t RegisterFile::reg_value(uint32_t r) const {
    if (r == cfg_.ecap.iva_offset()) return iva_;
    if (r == cfg_.ecap.iotlb_offset()) return iotlb_;
    switch (r) {
        case reg::VER: return cfg_.ver;
        case reg::CAP: return cfg_.cap.encode();
        case reg::ECAP: return cfg_.ecap.encode();
        case reg::GCMD: return 0;  // write-only
        case reg::GSTS: return gsts_;
        case reg::RTADDR: return rtaddr_;
        case reg::CCMD: return ccmd_;
        case reg::FSTS: return fsts();
        case reg::FECTL: return fectl_;
        case reg::PMEN: return pmen_;
        case reg::IQH: return iqh_;
        case reg::IQT: return iqt_;
        case reg::IQA: return iqa_;
        case reg::ICS: return ics_;
        case reg::IECTL: return iectl_;
        case reg::IQERCD: return iqercd_;
        case reg::PQH: return pqh_;
        case reg::PQT: return pqt_;
        case reg::PQA: return pqa_;
        case reg::PRS: return prs_;
        case reg::PECTL: return pectl_;
        default: break;
    }
    auto it = plain_.find(r);
    return it == plain_.end() ? 0 : it->second;
}

void RegisterFile::write_reg(uint32_t r, bool hi, uint64_t v, Tick at, Tick& done) {
    auto ectl_write = [&](uint32_t& ctl, Interrupt which) {
        ctl = (ctl & ~ectl::IM) | (uint32_t(v) & ectl::IM);
        // An interrupt held pending by IM goes out when software unmasks it.
        if (!(ctl & ectl::IM) && (ctl & ectl::IP)) signal(which, ctl, at);
    };
    if (r == cfg_.ecap.iva_offset()) {
        iva_ = v & kIvaMask;
        return;
    }
    if (r == cfg_.ecap.iotlb_offset()) {
        iotlb_ = (iotlb_ & ~kIotlbMask) | (v & kIotlbMask);
        if (hi && iotlb_reg::IVT.get(&iotlb_)) done = std::max(done, iotlb_command(at));
        return;
    }
    switch (r) {
        case reg::GCMD: done = std::max(done, global_command(uint32_t(v), at)); return;
        case reg::RTADDR: rtaddr_ = v & kRtaddrMask; return;
        case reg::CCMD:
            ccmd_ = (ccmd_ & ~kCcmdMask) | (v & kCcmdMask);
            if (hi && ccmd::ICC.get(&ccmd_)) done = std::max(done, context_command(at));
            return;
        case reg::FSTS: clear_status(uint32_t(v) & fsts::kRw1c, at, done); return;
        case reg::FECTL: ectl_write(fectl_, Interrupt::Fault); return;
        case reg::IECTL: ectl_write(iectl_, Interrupt::InvalidationCompletion); return;
        case reg::PECTL: ectl_write(pectl_, Interrupt::PageRequest); return;
        case reg::PMEN:
            // No DMA is held back in this model, so the status follows the enable at once.
            pmen_ = (v & pmen::EPM) ? (pmen::EPM | pmen::PRS) : 0;
            return;
        case reg::IQT:
            iqt_ = v & kIqOffsetMask;
            if (!hi) done = std::max(done, process_queue(at));
            return;
        case reg::IQA: iqa_ = v & kIqaMask; return;
        case reg::ICS:
            if (v & ics::IWC) {
                ics_ &= ~ics::IWC;
                iectl_ &= ~ectl::IP;  // the pending condition was serviced (6.5.2.10)
            }
            return;
        case reg::PQH: pqh_ = v & kPqOffsetMask; return;
        case reg::PQT: pqt_ = v & kPqOffsetMask; return;
        case reg::PQA: pqa_ = v & kPqaMask; return;
        case reg::PRS:
            prs_ &= ~(uint32_t(v) & (prs::PPR | prs::PRO));
            if (!prs_) pectl_ &= ~ectl::IP;  // 7.5
            return;
        case reg::VER:
        case reg::CAP:
        case reg::ECAP:
        case reg::GSTS:
        case reg::IQH:
        case reg::IQERCD: return;  // read-only
        default: plain_[r] = v & plain_mask(r); return;
    }
}

// ---- Global command (11.4.4.1) ----

Tick RegisterFile::global_command(uint32_t cmd, Tick at) {
    const Tick t = at + clk_.cycles(p_.command_cycles);
    Tick done = t;
    // One-shot commands act when written as 1.
    if (cmd & gcmd::SRTP) {
        root_ = Rtaddr::decode(rtaddr_);
        gsts_ |= gsts::RTPS;
        IOMMUSIM_LOG(log_, Info, t, "root table at {:#x}, {} mode", root_.rta,
                     root_.ttm == Ttm::Scalable ? "scalable"
                     : root_.ttm == Ttm::Legacy ? "legacy"
                                                : "reserved");
    }
    // WBF completes at once: GSTS.WBFS is never seen Set.
    if ((cmd & gcmd::SIRTP) && cfg_.ecap.ir) gsts_ |= gsts::IRTPS;

    // Persistent controls act when the written value differs from the status.
    auto changed = [&](uint32_t c, uint32_t s) { return bool(cmd & c) != bool(gsts_ & s); };
    if (changed(gcmd::TE, gsts::TES)) {
        gsts_ ^= gsts::TES;
        IOMMUSIM_LOG(log_, Info, t, "translation {}", gsts_ & gsts::TES ? "enabled" : "disabled");
        if (!(gsts_ & gsts::TES) && cfg_.ecap.smts) {
            // Translation Disable invalidates every DMA remapping cache on SMTS hardware.
            InvalidationScope s;
            for (auto k : {InvalidationScope::Kind::ContextGlobal,
                           InvalidationScope::Kind::PasidCache, InvalidationScope::Kind::Global}) {
                s.kind = k;
                s.domain = InvalidationScope::kAllDomains;
                s.pasid = InvalidationScope::kAllPasids;
                done = std::max(done, hooks_.invalidate(s, t));
            }
        }
    }
    if (cfg_.ecap.ir && changed(gcmd::IRE, gsts::IRES)) gsts_ ^= gsts::IRES;
    if (cfg_.ecap.ir && changed(gcmd::CFI, gsts::CFIS)) gsts_ ^= gsts::CFIS;
    if (cfg_.ecap.qi && changed(gcmd::QIE, gsts::QIES)) {
        gsts_ ^= gsts::QIES;
        IOMMUSIM_LOG(log_, Info, t, "queued invalidation {}",
                     gsts_ & gsts::QIES ? "enabled" : "disabled");
        iqh_ = 0;  // IQH resets whenever queued invalidation is disabled (11.4.9.1)
        // Descriptors already between head and tail are fetched at once (6.5.2).
        if (gsts_ & gsts::QIES) done = std::max(done, process_queue(t));
    }
    // The fault recording index restarts when both translations are off (7.2.1).
    if (!(gsts_ & (gsts::TES | gsts::IRES))) next_fault_ = 0;
    return done;
}

// ---- Register-based invalidation (11.4.6) ----

// Major version 6 and later, a TTM other than legacy, or an enabled queue make the request
// "incorrect": ignored with an actual granularity of 0.
Tick RegisterFile::context_command(Tick at) {
    const Tick t = at + clk_.cycles(p_.reg_inv_cycles);
    Tick done = t;
    uint64_t caig = 0;
    const bool allowed =
        ver_major(cfg_.ver) < 6 && root_.ttm == Ttm::Legacy && !(gsts_ & gsts::QIES);
    if (auto c = allowed ? decode_ccmd(ccmd_) : std::nullopt) {
        const InvalidationScope s = scope_of(*c);
        IOMMUSIM_LOG_IF(log_, Debug, log::wants(s), t, "register invalidation (CCMD): {}",
                        to_string(s));
        done = hooks_.invalidate(s, t);
        caig = uint64_t(c->g);
    } else {
        IOMMUSIM_LOG(log_, Debug, t, "register invalidation (CCMD) refused: CAIG 0");
    }
    ++(caig ? n_.register_invalidations : n_.register_invalidation_errors);
    ccmd::ICC.put(&ccmd_, 0);
    ccmd::CAIG.put(&ccmd_, caig);
    return done;
}

Tick RegisterFile::iotlb_command(Tick at) {
    const Tick t = at + clk_.cycles(p_.reg_inv_cycles);
    Tick done = t;
    uint64_t iaig = 0;
    const bool allowed =
        ver_major(cfg_.ver) < 6 && root_.ttm == Ttm::Legacy && !(gsts_ & gsts::QIES);
    auto r = allowed ? decode_iotlb_reg(iotlb_, iva_) : std::nullopt;
    if (r && r->g == IotlbGranularity::Page) {
        if (!cfg_.cap.psi)
            r->g = IotlbGranularity::Domain;  // a coarser invalidation is allowed (11.4.6.3)
        else if (r->am > cfg_.cap.mamv)
            r.reset();  // unsupported address mask: error
    }
    if (r) {
        const InvalidationScope s = scope_of(*r);
        IOMMUSIM_LOG_IF(log_, Debug, log::wants(s), t, "register invalidation (IOTLB_REG): {}",
                        to_string(s));
        done = hooks_.invalidate(s, t);
        iaig = uint64_t(r->g);
    } else {
        IOMMUSIM_LOG(log_, Debug, t, "register invalidation (IOTLB_REG) refused: IAIG 0");
    }
    ++(iaig ? n_.register_invalidations : n_.register_invalidation_errors);
    iotlb_reg::IVT.put(&iotlb_, 0);
    iotlb_reg::IAIG.put(&iotlb_, iaig);
    return done;
}

WalkerConfig RegisterFile::walker_config(WalkerConfig w) const {
    const Cap& c = cfg_.cap;
    const Ecap& e = cfg_.ecap;
    w.rtaddr = root_.rta;
    w.scalable = root_.ttm == Ttm::Scalable;
    w.mgaw = c.mgaw_bits();
    w.sagaw = c.sagaw;
    w.sl_2m = c.sllps & 1;
    w.sl_1g = c.sllps & 2;
    w.fl_1g = c.fl1gp;
    w.fl_5level = c.fl5lp;
    w.pass_through = e.pt;
    w.snoop_control = e.sc;
    w.device_tlb = e.dt;
    w.nested = e.nest;
    return w;
}

}  // namespace iommusim::vtd
