#include "address_space.h"

#include <fmt/format.h>

#include "core/why.h"

namespace iommusim {

namespace {

constexpr Addr kMax = ~Addr(0);

}  // namespace

AddressSpace::AddressSpace(SparseMemory& mem, PhysAllocator& alloc, const PteFormat& fmt,
                           Addr input_offset)
    : table_(mem, alloc, fmt), offset_(input_offset) {}

bool AddressSpace::map(Addr iova, Addr pa, Addr size, Perm perm, std::string* why) {
    const PteFormat& fmt = table_.format();
    const Addr min_page = Addr(1) << min_page_shift();
    if (size == 0) return fail(why, fmt::format("iova {:#x}: cannot map an empty range", iova));
    if ((iova | pa | size) & (min_page - 1))
        return fail(why, fmt::format("iova {:#x} pa {:#x} size {:#x} is not aligned to the "
                                     "{:#x}-byte page of {}",
                                     iova, pa, size, min_page, fmt.name()));
    std::string bad = iova_.check(iova, size);
    if (!bad.empty()) return fail(why, std::move(bad));
    const Addr last = iova + (size - 1);  // check() guarantees no wrap
    // The table indexes iova - offset; the window must lie inside what the root covers.
    const unsigned top = fmt.levels(), bits = fmt.level_shift(top) + fmt.index_bits(top);
    const Addr input_last = bits >= 64 ? kMax : (Addr(1) << bits) - 1;
    if (iova < offset_ || last - offset_ > input_last)
        return fail(why, fmt::format("iova {:#x} size {:#x} is outside the table's input range "
                                     "{:#x}-{:#x}",
                                     iova, size, offset_, offset_ + input_last));
    if (intent_.overlaps(iova, size)) {
        const Mapping* m = intent_.find(iova);
        if (!m) {
            intent_.for_each([&](const Mapping& x) {
                if (!m && x.iova > iova && x.iova <= last) m = &x;
            });
        }
        return fail(why, fmt::format("iova {:#x} size {:#x} overlaps the live mapping {:#x}-{:#x}",
                                     iova, size, m->iova, m->iova + (m->size - 1)));
    }

    Addr done = 0;
    while (done < size) {
        const Addr in = iova - offset_ + done, out = pa + done, left = size - done;
        // Largest allowed page that both addresses are aligned to and the rest can fill.
        unsigned shift = min_page_shift();
        for (unsigned l = top; l >= 2; --l) {
            const unsigned s = fmt.level_shift(l);
            if (!fmt.leaf_allowed(l) || s >= 64) continue;
            const Addr page = Addr(1) << s;
            if (((in | out) & (page - 1)) == 0 && page <= left) {
                shift = s;
                break;
            }
        }
        std::string err;
        if (!table_.map_page(in, out, shift, perm, &err)) {
            table_.unmap(iova - offset_, done);
            return fail(why, fmt::format("iova {:#x}: {}", iova + done, err));
        }
        done += Addr(1) << shift;
    }
    intent_.insert(Mapping{iova, size, pa, perm});
    return true;
}

Addr AddressSpace::unmap(Addr iova, Addr size) {
    if (size == 0) return 0;
    // Whole smallest pages only: the range is widened to the pages it touches.
    const Addr mask = (Addr(1) << min_page_shift()) - 1;
    const Addr last = (size - 1 > kMax - iova ? kMax : iova + (size - 1)) | mask;
    const Addr first = iova & ~mask;
    // [first, last] may span all 2^64 bytes, which one size cannot express: erase in two parts.
    Addr removed = intent_.erase(first, last - first);
    removed += intent_.erase(last, 1);
    if (last >= offset_) {
        const Addr lo = first < offset_ ? 0 : first - offset_, hi = last - offset_;
        table_.unmap(lo, hi - lo);
        table_.unmap(hi, 1);
    }
    return removed;
}

}  // namespace iommusim
