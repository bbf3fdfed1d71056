// The TCE table as a radix PteFormat, so the driver model's RadixPageTable can build the
// tables of a translated window: leaves (TCEs) only at level 1, one IO page size per
// window, indirect TCEs above. Entries are memory words: the little-endian load of the 8
// bytes in memory, whose hardware value is big-endian (tce_to_mem / tce_from_mem).
#pragma once
#include <cstdint>

#include "core/pte_format.h"
#include "tce.h"

namespace iommusim::spapr {

class TcePteFormat final : public PteFormat {
public:
    // Throws std::invalid_argument for a geometry no PHB can walk (levels outside 1..5,
    // page shift below 12, tables below 2 entries or above 2^39, reach beyond 64 bits).
    // top_bits 0 means as large as the other levels.
    TcePteFormat(unsigned page_shift, unsigned levels, unsigned level_bits, unsigned top_bits = 0);
    explicit TcePteFormat(const TceWindow& w);

    const char* name() const override { return "spapr-tce"; }
    unsigned levels() const override { return levels_; }
    unsigned index_bits(unsigned level) const override {
        return level == levels_ ? top_bits_ : level_bits_;
    }
    unsigned level_shift(unsigned level) const override {
        return page_shift_ + level_bits_ * (level - 1);
    }
    bool leaf_allowed(unsigned level) const override { return level == 1; }

    uint64_t make_table(Addr table_pa, unsigned level) const override;
    uint64_t make_leaf(Addr pa, Perm perm, unsigned level) const override;

    bool is_present(uint64_t entry, unsigned) const override {
        return tce_valid(tce_from_mem(entry));
    }
    bool is_leaf(uint64_t, unsigned level) const override { return level == 1; }
    Addr address(uint64_t entry, unsigned level) const override;
    Perm leaf_perm(uint64_t entry, unsigned) const override {
        return tce_perm(tce_from_mem(entry));
    }

    unsigned page_shift() const { return page_shift_; }

private:
    unsigned page_shift_, levels_, level_bits_, top_bits_;
};

}  // namespace iommusim::spapr
