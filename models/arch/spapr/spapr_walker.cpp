#include "spapr_walker.h"

#include <fmt/format.h>

namespace iommusim::spapr {

namespace {
// Bypass translations are reported as pages of at most 1 GiB (the largest IO page size),
// so caches of the timing model hold them like any other translation.
constexpr unsigned kBypassMaxShift = 30;

bool beyond_real(Addr a, unsigned real_addr_bits) {
    return real_addr_bits < 64 && (a >> real_addr_bits) != 0;
}
}  // namespace

void SpaprWalker::start(const Requester& req, Addr iova, Access access) {
    res_ = WalkResult{};
    iova_ = iova;
    offset_ = 0;
    access_ = access;
    walking_ = false;
    pe_ = PhbConfig::kNoPe;
    window_ = -1;
    tag_ = 0;
    level_ = 0;

    const PhbCaps& caps = phb_->caps();
    // PHB3/PHB4 DMA carries no PASID; a prefixed request cannot be attributed.
    if (req.has_pasid()) return fail(FaultKind::Blocked, kTcePasidUnsupported);
    const uint16_t pe = phb_->pe(req.rid);
    if (pe == PhbConfig::kNoPe || pe >= caps.num_pes) return fail(FaultKind::Blocked, kTceNoPe);
    pe_ = pe;

    const TceWindow* w = nullptr;
    for (unsigned n = 0; n < kWindowsPerPe && !w; ++n) {
        const TceWindow& c = phb_->window(pe, n);
        if (c.contains(iova)) {
            w = &c;
            window_ = int8_t(n);
        }
    }
    if (!w) return fail(FaultKind::AddressRange, kTceOutsideWindow);
    // Without a LIOBN (PowerNV) the TVE index PE#*2+window names the table.
    tag_ = w->liobn ? w->liobn : (uint32_t(pe) << 1) | uint32_t(window_);
    if (check_window(caps, *w)) return fail(FaultKind::InvalidEntry, kTceInvalidTve);
    offset_ = iova - w->bus_offset;

    if (w->mode == TceWindow::Mode::Bypass) return start_bypass(*w, offset_);
    levels_ = w->levels;
    page_shift_ = w->page_shift;
    level_bits_ = w->levels > 1 ? w->level_bits : 0;
    top_bits_ = w->top_bits;
    level_ = levels_;
    table_ = w->table;
    walking_ = true;
}

void SpaprWalker::start_bypass(const TceWindow& w, Addr offset) {
    // The largest aligned block around the address that lies in the window and maps
    // linearly (bus and real addresses agree modulo its size).
    const Addr delta = w.bus_offset - w.phys_base;
    unsigned s = kBypassMaxShift;
    for (; s > kPageShift4K; --s) {
        const Addr m = (Addr(1) << s) - 1;
        const Addr block = iova_ & ~m;
        if ((delta & m) == 0 && block >= w.bus_offset && block + m <= w.last()) break;
    }
    finish(w.phys_base + offset, s, kPermRW);
}

Addr SpaprWalker::entry_addr() const {
    const unsigned shift = page_shift_ + level_bits_ * (level_ - 1u);
    const unsigned bits = level_ == levels_ ? top_bits_ : level_bits_;
    const uint64_t index = (offset_ >> shift) & ((uint64_t(1) << bits) - 1);
    // The PHB ORs the index into the table address (QEMU pnv_phb3/4 do the same).
    return table_ | (index * kTceEntrySize);
}

WalkStep SpaprWalker::next() {
    WalkStep s;
    if (!walking_) return s;
    s.kind = WalkStep::Kind::Read;
    s.stage = WalkStage::Tce;
    s.level = level_;
    s.size = kTceEntrySize;
    s.addr = entry_addr();
    s.input = offset_;
    s.shift = uint8_t(page_shift_ + level_bits_ * (level_ - 1));
    return s;
}

// The PE and its windows are PHB registers: the context costs no memory reads.
WalkContext SpaprWalker::context() const {
    WalkContext c;
    c.tag = pe_;
    return c;
}

void SpaprWalker::resume(const WalkContext&, const Requester& req, Addr iova, Access access) {
    start(req, iova, access);
}

void SpaprWalker::feed(const uint8_t* data) {
    indirect_ok_ = false;
    if (!walking_) return;
    decode(load_be64(data));
}

bool SpaprWalker::paging_entry(PagingEntry* out) const {
    if (!indirect_ok_) return false;
    *out = PagingEntry{__builtin_bswap64(indirect_), kPermNone, 0, false};  // as in memory
    return true;
}

// A cached indirect TCE: the next table without reading this level (rights live in the leaf).
void SpaprWalker::feed_cached(const PagingEntry& e) {
    indirect_ok_ = false;
    if (!walking_) return;
    decode(__builtin_bswap64(e.value));
}

void SpaprWalker::decode(uint64_t tce) {
    ++res_.reads;
    const PhbCaps& caps = phb_->caps();
    if (level_ > 1) {
        if (!tce_valid(tce)) return fail(FaultKind::NotPresent, kTceInvalidIndirect, level_);
        const Addr next = tce_indirect_addr(tce);
        if (beyond_real(next, caps.real_addr_bits) ||
            (caps.strict_reserved && tce_low_reserved(tce, kTceTableAlignShift)))
            return fail(FaultKind::ReservedBit, kTceReservedBits, level_);
        indirect_ = tce;
        indirect_ok_ = true;
        table_ = next;
        --level_;
        return;
    }
    if (!tce_valid(tce)) return fail(FaultKind::NotPresent, kTceNotValid, 1);
    const Addr pa = tce_rpn_addr(tce, page_shift_);
    if (beyond_real(pa, caps.real_addr_bits) ||
        (caps.strict_reserved && tce_low_reserved(tce, page_shift_)))
        return fail(FaultKind::ReservedBit, kTceReservedBits, 1);
    const Perm have = tce_perm(tce);
    // Execute and privilege requests are not distinguished: a TCE grants only R and W.
    if (access_ != Access::Read && !(have & kPermW))
        return fail(FaultKind::Permission, kTceWriteNotPermitted, 1);
    if (access_ != Access::Write && !(have & kPermR))
        return fail(FaultKind::Permission, kTceReadNotPermitted, 1);
    finish(pa | (offset_ & ((Addr(1) << page_shift_) - 1)), page_shift_, have);
}

void SpaprWalker::feed_error() {
    indirect_ok_ = false;
    if (!walking_) return;
    ++res_.reads;
    fail(FaultKind::TableAccess, kTceTableAccess, level_);
}

void SpaprWalker::fail(FaultKind kind, uint16_t reason, uint8_t level) {
    walking_ = false;
    res_.tr = Translation{};
    res_.fault = Fault{kind, reason, level, iova_};
}

void SpaprWalker::finish(Addr out, unsigned page_shift, Perm perm) {
    walking_ = false;
    res_.fault = Fault{};
    res_.tr.out = out;
    res_.tr.page_shift = uint8_t(page_shift);
    res_.tr.perm = perm;
    res_.tr.tag = tag_;
}

std::string SpaprWalker::describe(const WalkStep& step, const uint8_t* data) const {
    if (!data || step.stage != WalkStage::Tce || step.size != kTceEntrySize) return {};
    const uint64_t tce = load_be64(data);
    if (step.level > 1) {
        if (!tce_valid(tce)) return fmt::format("indirect TCE {:#018x}: invalid (R=W=0)", tce);
        return fmt::format("indirect TCE {:#018x}: next table {:#x} {}", tce,
                           tce_indirect_addr(tce), perm_string(tce_perm(tce)));
    }
    if (!tce_valid(tce)) return fmt::format("TCE {:#018x}: not valid (R=W=0)", tce);
    return fmt::format("TCE {:#018x}: page {:#x} ({} KiB) {}", tce, tce_rpn_addr(tce, page_shift_),
                       (Addr(1) << page_shift_) >> 10, perm_string(tce_perm(tce)));
}

}  // namespace iommusim::spapr
