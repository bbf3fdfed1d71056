#include "tce_format.h"

#include <stdexcept>

namespace iommusim::spapr {

TcePteFormat::TcePteFormat(unsigned page_shift, unsigned levels, unsigned level_bits,
                           unsigned top_bits)
    : page_shift_(page_shift),
      levels_(levels),
      level_bits_(levels > 1 ? level_bits : 0),
      top_bits_(top_bits ? top_bits : level_bits) {
    const unsigned max_top = levels > 1 ? level_bits : kMaxLevelBits;
    if (levels < 1 || levels > kMaxLevels || page_shift < 12 ||
        (levels > 1 && (level_bits < 1 || level_bits > kMaxLevelBits)) || top_bits_ < 1 ||
        top_bits_ > max_top || page_shift_ + level_bits_ * (levels_ - 1) + top_bits_ > 64)
        throw std::invalid_argument("spapr-tce: unsupported TCE table geometry");
}

TcePteFormat::TcePteFormat(const TceWindow& w)
    : TcePteFormat(w.page_shift, w.levels, w.level_bits, w.top_bits) {}

uint64_t TcePteFormat::make_table(Addr table_pa, unsigned) const {
    return tce_to_mem(tce_make_indirect(table_pa));
}

uint64_t TcePteFormat::make_leaf(Addr pa, Perm perm, unsigned) const {
    return tce_to_mem(tce_make(tce_rpn_addr(pa, page_shift_), perm));
}

Addr TcePteFormat::address(uint64_t entry, unsigned level) const {
    uint64_t tce = tce_from_mem(entry);
    return level == 1 ? tce_rpn_addr(tce, page_shift_) : tce_indirect_addr(tce);
}

}  // namespace iommusim::spapr
