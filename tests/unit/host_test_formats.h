// Test-only page-table formats for the host builder tests: a table of (shift, bits, leaf?) per
// level, entries with R/W in bits 0/1 (present = R|W), bit 7 = large page, address 51:12.
#pragma once
#include <utility>
#include <vector>

#include "core/bits.h"
#include "core/pte_format.h"

namespace iommusim::test {

struct TestLevel {
    unsigned shift, bits;
    bool leaf;
};

class TestFormat final : public PteFormat {
public:
    TestFormat(const char* name, std::vector<TestLevel> levels)
        : name_(name), lv_(std::move(levels)) {}

    const char* name() const override { return name_; }
    unsigned levels() const override { return unsigned(lv_.size()); }
    unsigned index_bits(unsigned level) const override { return lv_[level - 1].bits; }
    unsigned level_shift(unsigned level) const override { return lv_[level - 1].shift; }
    bool leaf_allowed(unsigned level) const override { return lv_[level - 1].leaf; }

    uint64_t make_table(Addr pa, unsigned) const override { return (pa & kAddr) | 3; }
    uint64_t make_leaf(Addr pa, Perm perm, unsigned level) const override {
        return (pa & kAddr) | (perm & kPermRW) | (level > 1 ? kLarge : 0);
    }
    bool is_present(uint64_t e, unsigned) const override { return (e & 3) != 0; }
    bool is_leaf(uint64_t e, unsigned level) const override { return level == 1 || (e & kLarge); }
    Addr address(uint64_t e, unsigned) const override { return e & kAddr; }
    Perm leaf_perm(uint64_t e, unsigned) const override { return Perm(e & kPermRW); }

    static constexpr uint64_t kAddr = bit_mask(51, 12), kLarge = 1u << 7;

private:
    const char* name_;
    std::vector<TestLevel> lv_;
};

// x86-like: 4 levels of 512 entries, 4 KiB pages, 2 MiB and 1 GiB leaves.
inline TestFormat four_level() {
    return TestFormat("test-4level", {{12, 9, true}, {21, 9, true}, {30, 9, true}, {39, 9, false}});
}
// Uneven: 64 KiB pages, 32-entry last level, 2 MiB leaves, a 4-entry root covering 4 GiB.
inline TestFormat uneven_64k() {
    return TestFormat("test-64k", {{16, 5, true}, {21, 9, true}, {30, 2, false}});
}
// 1 GiB leaves but no 2 MiB ones: splitting a 1 GiB page needs tables of 4 KiB leaves.
inline TestFormat no_2m() {
    return TestFormat("test-no2m", {{12, 9, true}, {21, 9, false}, {30, 9, true}, {39, 9, false}});
}

}  // namespace iommusim::test
