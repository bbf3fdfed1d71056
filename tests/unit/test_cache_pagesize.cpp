// The cache template serving a page-size-aware IOTLB: entries keyed by (tag, page number at
// their size, size); a lookup probes each supported size, so a 2 MiB or 1 GiB entry hits for
// any 4 KiB inside it, and invalidation by range removes every size that overlaps.
#include <catch2/catch.hpp>

#include "core/cache.h"
#include "core/types.h"

using namespace iommusim;

namespace {
struct TlbKey {
    uint32_t tag;
    Addr vpn;  // iova >> shift
    uint8_t shift;
    bool operator==(const TlbKey& o) const {
        return tag == o.tag && vpn == o.vpn && shift == o.shift;
    }
};
struct TlbKeyHash {
    size_t operator()(const TlbKey& k) const { return size_t(k.vpn ^ (uint64_t(k.tag) << 20)); }
};
using Tlb = SetAssocCache<TlbKey, Addr, TlbKeyHash>;

const Addr* probe(Tlb& tlb, uint32_t tag, Addr iova, unsigned* hit_shift) {
    for (unsigned shift : {12u, 21u, 30u})
        if (const Addr* pa = tlb.lookup({tag, iova >> shift, uint8_t(shift)})) {
            *hit_shift = shift;
            return pa;
        }
    return nullptr;
}
}  // namespace

TEST_CASE("cache template: page-size-aware lookups", "[cache]") {
    Tlb tlb({16, 4, Replacement::TreePLRU, 1});
    tlb.insert({1, 0x4020'0000 >> 21, 21}, 0x8000'0000);      // 2 MiB page
    tlb.insert({1, 0x1234'5000 >> 12, 12}, 0x5000);           // 4 KiB page
    tlb.insert({2, Addr(3) << 30 >> 30, 30}, Addr(7) << 30);  // 1 GiB page, other tag
    unsigned shift = 0;
    const Addr* pa = probe(tlb, 1, 0x4020'0000 + 0x1f'f123, &shift);
    REQUIRE(pa);
    CHECK(shift == 21);
    CHECK(*pa + (0x1f'f123) == 0x801f'f123);
    REQUIRE(probe(tlb, 1, 0x1234'5678, &shift));
    CHECK(shift == 12);
    REQUIRE(probe(tlb, 2, (Addr(3) << 30) + 0x3fff'ffff, &shift));
    CHECK(shift == 30);
    CHECK_FALSE(probe(tlb, 1, (Addr(3) << 30) + 5, &shift));  // tag separates domains
    CHECK_FALSE(probe(tlb, 1, 0x4040'0000, &shift));          // just past the 2 MiB page

    // Page-selective invalidation of [0x4030'0000, +4 KiB) removes the 2 MiB entry holding it.
    const Addr lo = 0x4030'0000, hi = lo + 0xfff;
    size_t n = tlb.erase_if([&](const TlbKey& k, const Addr&) {
        Addr base = k.vpn << k.shift, last = base + ((Addr(1) << k.shift) - 1);
        return k.tag == 1 && base <= hi && last >= lo;
    });
    CHECK(n == 1);
    CHECK_FALSE(probe(tlb, 1, 0x4020'0000, &shift));
    CHECK(probe(tlb, 1, 0x1234'5000, &shift));
}
