#include "radix_page_table.h"

#include <fmt/format.h>

#include "core/why.h"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <vector>

#include "core/bits.h"

namespace iommusim {

namespace {

constexpr Addr kMax = ~Addr(0);

}  // namespace

RadixPageTable::RadixPageTable(SparseMemory& mem, PhysAllocator& alloc, const PteFormat& fmt)
    : mem_(mem), alloc_(alloc), fmt_(fmt) {
    root_ = new_table(fmt_.levels());
    if (!root_)
        throw std::runtime_error(
            fmt::format("page-table memory exhausted: no room for the root table of a {} table "
                        "({} bytes left of {})",
                        fmt_.name(), alloc_.size() - alloc_.bytes_in_use(), alloc_.size()));
}

RadixPageTable::~RadixPageTable() {
    free_subtree(root_, fmt_.levels());
}

Addr RadixPageTable::new_table(unsigned level) {
    const Addr bytes = fmt_.table_bytes(level);
    // Naturally aligned, and never below a 4 KiB page as hardware table pointers expect.
    auto pa = alloc_.alloc(bytes, std::max<Addr>(bytes, 4096));
    if (!pa) return 0;
    static const std::array<uint8_t, 4096> zero{};
    for (Addr off = 0; off < bytes; off += zero.size())
        mem_.write(*pa + off, zero.data(), size_t(std::min<Addr>(zero.size(), bytes - off)));
    ++tables_;
    return *pa;
}

void RadixPageTable::free_subtree(Addr table, unsigned level) {
    if (level > 1) {
        const Addr n = Addr(1) << fmt_.index_bits(level);
        for (Addr i = 0; i < n; ++i) {
            const uint64_t e = read_entry(table + i * fmt_.entry_size());
            if (fmt_.is_present(e, level) && !leaf_at(e, level))
                free_subtree(fmt_.address(e, level), level - 1);
        }
    }
    alloc_.free(table, fmt_.table_bytes(level));
    --tables_;
}

bool RadixPageTable::subtree_empty(Addr table, unsigned level) const {
    const Addr n = Addr(1) << fmt_.index_bits(level);
    for (Addr i = 0; i < n; ++i) {
        const uint64_t e = read_entry(table + i * fmt_.entry_size());
        if (!fmt_.is_present(e, level)) continue;
        if (leaf_at(e, level) || !subtree_empty(fmt_.address(e, level), level - 1)) return false;
    }
    return true;
}

Addr RadixPageTable::entry_addr(Addr table, unsigned level, Addr iova) const {
    const unsigned shift = fmt_.level_shift(level);
    const Addr index =
        shift >= 64 ? 0 : (iova >> shift) & ((Addr(1) << fmt_.index_bits(level)) - 1);
    return table + index * fmt_.entry_size();
}

uint64_t RadixPageTable::read_entry(Addr ea) const {
    uint8_t b[8] = {};
    mem_.read(ea, b, fmt_.entry_size());
    return load_le64(b);
}

void RadixPageTable::write_entry(Addr ea, uint64_t e) {
    uint8_t b[8];
    store_le64(b, e);
    mem_.write(ea, b, fmt_.entry_size());
}

bool RadixPageTable::leaf_at(uint64_t e, unsigned level) const {
    return level == 1 || fmt_.is_leaf(e, level);
}

Addr RadixPageTable::input_last() const {
    const unsigned top = fmt_.levels(), bits = fmt_.level_shift(top) + fmt_.index_bits(top);
    return bits >= 64 ? kMax : (Addr(1) << bits) - 1;
}

bool RadixPageTable::map_page(Addr iova, Addr pa, unsigned page_shift, Perm perm,
                              std::string* why) {
    const unsigned top = fmt_.levels();
    unsigned target = 0;
    for (unsigned l = 1; l <= top; ++l)
        if (fmt_.level_shift(l) == page_shift) target = l;
    if (!target)
        return fail(why, fmt::format("{} has no level with {}-bit pages", fmt_.name(), page_shift));
    if (!fmt_.leaf_allowed(target))
        return fail(why, fmt::format("{} level {} cannot hold a leaf", fmt_.name(), target));
    const Addr page = Addr(1) << page_shift;
    if ((iova | pa) & (page - 1))
        return fail(why, fmt::format("iova {:#x} or pa {:#x} is not aligned to the {:#x}-byte page",
                                     iova, pa, page));
    if (iova > input_last() || page - 1 > input_last() - iova)
        return fail(why, fmt::format("iova {:#x} is beyond the {:#x}-byte input range of the table",
                                     iova, input_last() + 1));
    const uint64_t leaf = fmt_.make_leaf(pa, perm, target);
    if (!fmt_.is_present(leaf, target))
        return fail(why, fmt::format("{} cannot encode a present leaf with rights {}", fmt_.name(),
                                     perm_string(perm)));
    // An address wider than the entry's address field would be cut by the encoder.
    if (fmt_.address(leaf, target) != pa)
        return fail(why, fmt::format("pa {:#x} does not fit the address field of a {} entry", pa,
                                     fmt_.name()));

    // Check the whole path before writing anything, so a failure changes nothing.
    Addr table = root_;
    unsigned level = top;
    for (; level > target; --level) {
        const uint64_t e = read_entry(entry_addr(table, level, iova));
        if (!fmt_.is_present(e, level)) break;
        if (leaf_at(e, level))
            return fail(
                why, fmt::format("iova {:#x} is already mapped by a level-{} leaf", iova, level));
        table = fmt_.address(e, level);
    }
    Addr stale = 0;  // an empty lower table the new leaf replaces
    if (level == target) {
        const uint64_t e = read_entry(entry_addr(table, level, iova));
        if (fmt_.is_present(e, level)) {
            if (leaf_at(e, level))
                return fail(why, fmt::format("iova {:#x} is already mapped", iova));
            stale = fmt_.address(e, level);
            if (!subtree_empty(stale, level - 1))
                return fail(why,
                            fmt::format("iova {:#x}: a lower table there still maps pages", iova));
        }
    }

    std::vector<Addr> fresh;  // tables for levels level-1 .. target
    for (unsigned l = level; l > target; --l) {
        const Addr t = new_table(l - 1);
        if (!t) {
            for (size_t i = 0; i < fresh.size(); ++i)
                free_subtree(fresh[i], level - 1 - unsigned(i));
            return fail(why, "page-table memory exhausted");
        }
        fresh.push_back(t);
    }
    // Fill the new tables bottom-up, then link them in with one write to the live table.
    write_entry(entry_addr(fresh.empty() ? table : fresh.back(), target, iova), leaf);
    for (size_t i = fresh.size(); i-- > 1;)
        write_entry(entry_addr(fresh[i - 1], level - 1 - unsigned(i - 1), iova),
                    fmt_.make_table(fresh[i], level - 1 - unsigned(i - 1)));
    if (!fresh.empty())
        write_entry(entry_addr(table, level, iova), fmt_.make_table(fresh[0], level));
    if (stale) free_subtree(stale, target - 1), ++replaced_;
    return true;
}

Addr RadixPageTable::split_table(unsigned level, Addr pa, Perm perm) {
    const Addr t = new_table(level);
    if (!t) return 0;
    const Addr n = Addr(1) << fmt_.index_bits(level), step = Addr(1) << fmt_.level_shift(level);
    for (Addr i = 0; i < n; ++i) {
        uint64_t e;
        if (fmt_.leaf_allowed(level)) {
            e = fmt_.make_leaf(pa + i * step, perm, level);
        } else {
            const Addr child = split_table(level - 1, pa + i * step, perm);
            if (!child) {
                free_subtree(t, level);
                return 0;
            }
            e = fmt_.make_table(child, level);
        }
        write_entry(t + i * fmt_.entry_size(), e);
    }
    return t;
}

void RadixPageTable::unmap(Addr iova, Addr size) {
    if (size == 0 || iova > input_last()) return;
    const Addr hi = size - 1 > kMax - iova ? kMax : iova + (size - 1);
    unmap_in(root_, fmt_.levels(), 0, iova, std::min(hi, input_last()));
}

void RadixPageTable::unmap_in(Addr table, unsigned level, Addr base, Addr lo, Addr hi) {
    const unsigned shift = fmt_.level_shift(level), span = shift + fmt_.index_bits(level);
    const Addr span_last = span >= 64 ? kMax : base + ((Addr(1) << span) - 1);
    const Addr first = std::max(lo, base), last = std::min(hi, span_last);
    if (first > last) return;
    const Addr entry_last = (Addr(1) << shift) - 1;
    for (Addr i = (first - base) >> shift; i <= (last - base) >> shift; ++i) {
        const Addr e_lo = base + (i << shift), e_hi = e_lo + entry_last;
        const Addr ea = table + i * fmt_.entry_size();
        const uint64_t e = read_entry(ea);
        if (!fmt_.is_present(e, level)) continue;
        Addr child;
        if (leaf_at(e, level)) {
            // A level-1 page is the smallest unit: a range touching it takes all of it.
            if (level == 1 || (lo <= e_lo && e_hi <= hi)) {
                write_entry(ea, 0);
                continue;
            }
            child = split_table(level - 1, fmt_.address(e, level), fmt_.leaf_perm(e, level));
            if (!child)
                throw std::runtime_error(fmt::format(
                    "page-table memory exhausted while splitting the level-{} page at iova {:#x}",
                    level, e_lo));
            write_entry(ea, fmt_.make_table(child, level));
        } else {
            child = fmt_.address(e, level);
        }
        unmap_in(child, level - 1, e_lo, lo, hi);
    }
}

std::optional<PageLookup> RadixPageTable::lookup(Addr iova) const {
    if (iova > input_last()) return std::nullopt;
    Addr table = root_;
    for (unsigned level = fmt_.levels(); level >= 1; --level) {
        const uint64_t e = read_entry(entry_addr(table, level, iova));
        if (!fmt_.is_present(e, level)) return std::nullopt;
        if (leaf_at(e, level)) {
            const unsigned shift = fmt_.level_shift(level);
            return PageLookup{fmt_.address(e, level) + (iova & ((Addr(1) << shift) - 1)), shift,
                              fmt_.leaf_perm(e, level)};
        }
        table = fmt_.address(e, level);
    }
    return std::nullopt;
}

}  // namespace iommusim
