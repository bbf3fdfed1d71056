#include "tce.h"

namespace iommusim::spapr {

namespace {
unsigned ceil_log2(Addr v) {
    unsigned s = 0;
    while (s < 64 && (Addr(1) << s) < v) ++s;
    return s;
}
bool aligned(Addr a, unsigned shift) {
    return (a & ((Addr(1) << shift) - 1)) == 0;
}
}  // namespace

uint32_t ddw_page_size_mask(uint64_t page_sizes) {
    struct Flag {
        unsigned shift;
        uint32_t flag;
    };
    static constexpr Flag kFlags[] = {
        {12, kDdwPgsize4K},  {16, kDdwPgsize64K},  {24, kDdwPgsize16M},  {25, kDdwPgsize32M},
        {26, kDdwPgsize64M}, {27, kDdwPgsize128M}, {28, kDdwPgsize256M}, {34, kDdwPgsize16G}};
    uint32_t mask = 0;
    for (const Flag& f : kFlags)
        if (page_sizes & page_bit(f.shift)) mask |= f.flag;
    return mask;
}

unsigned linux_level_bits(Addr window_size, unsigned page_shift, unsigned levels,
                          unsigned min_table_shift) {
    unsigned window_shift = ceil_log2(window_size);
    unsigned entries_shift = window_shift > page_shift ? window_shift - page_shift : 0;
    if (levels == 0) levels = 1;
    unsigned per_level = (entries_shift + levels - 1) / levels;
    unsigned min_bits = min_table_shift > 3 ? min_table_shift - 3 : 0;
    return per_level > min_bits ? per_level : min_bits;
}

TceWindow TceWindow::translated(Addr bus_offset, Addr size, Addr table, unsigned page_shift,
                                unsigned levels, unsigned level_bits) {
    TceWindow w;
    w.mode = Mode::Translate;
    w.bus_offset = bus_offset;
    w.size = size;
    w.table = table;
    w.levels = uint8_t(levels);
    w.page_shift = uint8_t(page_shift);
    w.level_bits = uint8_t(level_bits ? level_bits : linux_level_bits(size, page_shift, levels));
    w.top_bits = w.level_bits;
    return w;
}

TceWindow TceWindow::bypass(Addr bus_offset, Addr size, Addr phys_base) {
    TceWindow w;
    w.mode = Mode::Bypass;
    w.bus_offset = bus_offset;
    w.size = size;
    w.phys_base = phys_base;
    return w;
}

uint64_t tve_encode(const TceWindow& w) {
    if (w.mode != TceWindow::Mode::Translate || w.levels < 1 || w.levels > kMaxLevels ||
        w.page_shift < 12 || w.page_shift > 11 + 31 || w.level_bits < kMinLevelBits ||
        w.level_bits > kMaxLevelBits || (w.levels > 1 && w.top_bits != w.level_bits) ||
        (w.levels == 1 && w.top_bits < kMinLevelBits) || !aligned(w.table, 12))
        return 0;
    unsigned bits = w.levels == 1 ? w.top_bits : w.level_bits;
    uint64_t v = set_bits(0, tve::kTableAddrHi, tve::kTableAddrLo, w.table >> 12);
    v = set_bits(v, tve::kNumLevelsHi, tve::kNumLevelsLo, w.levels - 1u);
    v = set_bits(v, tve::kTableSizeHi, tve::kTableSizeLo, bits + 3 - 11);
    return set_bits(v, tve::kIoPsizeHi, tve::kIoPsizeLo, w.page_shift - 11u);
}

TceWindow tve_decode(uint64_t tve, Addr bus_offset) {
    unsigned tts = unsigned(bits(tve, tve::kTableSizeHi, tve::kTableSizeLo));
    unsigned tps = unsigned(bits(tve, tve::kIoPsizeHi, tve::kIoPsizeLo));
    unsigned levels = unsigned(bits(tve, tve::kNumLevelsHi, tve::kNumLevelsLo)) + 1;
    TceWindow w;
    if (tts == 0 || tps == 0) return w;
    w.mode = TceWindow::Mode::Translate;
    w.bus_offset = bus_offset;
    w.table = bits(tve, tve::kTableAddrHi, tve::kTableAddrLo) << 12;
    w.levels = uint8_t(levels);
    w.page_shift = uint8_t(tps + 11);
    w.level_bits = w.top_bits = uint8_t(tts + 8);
    unsigned reach = w.reach_bits();
    w.size = Addr(1) << (reach < 59 ? reach : 59);
    return w;
}

const char* check_window(const PhbCaps& caps, const TceWindow& w) {
    if (!w.enabled()) return nullptr;
    const unsigned real = caps.real_addr_bits < 64 ? caps.real_addr_bits : 64;
    const Addr real_limit = real < 64 ? Addr(1) << real : ~Addr(0);
    if (w.bus_offset + (w.size - 1) < w.bus_offset) return "window wraps past 2^64";
    if (w.mode == TceWindow::Mode::Bypass) {
        if (!aligned(w.bus_offset | w.size | w.phys_base, 12))
            return "bypass window not 4 KiB aligned";
        if (w.phys_base >= real_limit || w.size > real_limit - w.phys_base)
            return "bypass window maps beyond the real address size";
        return nullptr;
    }
    if (w.levels < 1 || w.levels > kMaxLevels) return "number of levels not 1..5";
    if (w.page_shift < 12 || w.page_shift >= 64 || !(caps.page_sizes & page_bit(w.page_shift)))
        return "IO page size not supported by the PHB";
    // A top table smaller than the others is a model extension (the window bounds the
    // index); a single-level table has no lower levels to compare with.
    if (w.levels > 1 && (w.level_bits < kMinLevelBits || w.level_bits > kMaxLevelBits))
        return "TCE table size not 4 KiB..4 TiB";
    if (w.top_bits < 1 || w.top_bits > (w.levels > 1 ? w.level_bits : kMaxLevelBits))
        return "top TCE table size out of range";
    if (w.reach_bits() > 64) return "TCE table reaches beyond 64 address bits";
    if (w.reach_bits() < 64 && w.size > (Addr(1) << w.reach_bits()))
        return "window larger than the TCE table reaches";
    if (!aligned(w.bus_offset | w.size, w.page_shift))
        return "window not aligned to its IO page size";
    // The PHB ORs the index into the table address, so a misaligned table aliases.
    const unsigned top_shift = w.top_bits + 3u;
    const unsigned table_shift = top_shift > kTceTableAlignShift ? top_shift : kTceTableAlignShift;
    if (!aligned(w.table, table_shift)) return "TCE table not aligned to its size";
    if (w.table >= real_limit) return "TCE table beyond the real address size";
    return nullptr;
}

PhbConfig::PhbConfig(const PhbCaps& caps)
    : caps_(caps), rtt_(size_t(1) << 16, kNoPe), tvt_(caps.num_pes) {}

void PhbConfig::set_window(unsigned pe, unsigned num, const TceWindow& w) {
    if (pe < tvt_.size() && num < kWindowsPerPe) tvt_[pe][num] = w;
}

const TceWindow& PhbConfig::window(unsigned pe, unsigned num) const {
    static const TceWindow kDisabled{};
    if (pe < tvt_.size() && num < kWindowsPerPe) return tvt_[pe][num];
    return kDisabled;
}

const char* tce_fault_text(uint16_t reason) {
    switch (reason) {
        case kTceFaultNone: return "No fault";
        case kTceNoPe: return "RID not mapped to a PE by the RID Translation Table";
        case kTcePasidUnsupported: return "Request with PASID prefix; PHB does not support PASID";
        case kTceOutsideWindow: return "DMA address outside every DMA window of the PE";
        case kTceInvalidTve: return "Invalid TVE: DMA window configuration unusable";
        case kTceTableAccess: return "TCE fetch failed (table access error)";
        case kTceInvalidIndirect: return "Invalid indirect TCE (R and W clear)";
        case kTceNotValid: return "TCE not valid (R and W clear)";
        case kTceWriteNotPermitted: return "DMA write to a TCE without TCE_PCI_WRITE";
        case kTceReadNotPermitted: return "DMA read from a TCE without TCE_PCI_READ";
        case kTceReservedBits: return "TCE address beyond the real address size or reserved bits";
    }
    return "Unknown";
}

}  // namespace iommusim::spapr
