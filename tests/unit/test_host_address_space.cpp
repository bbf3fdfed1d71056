#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "host/address_space.h"
#include "host_test_formats.h"

using namespace iommusim;
using namespace iommusim::test;

namespace {

constexpr Addr kTables = Addr(1) << 44;
constexpr Addr k2M = 0x20'0000, k1G = 0x4000'0000, k4G = 0x1'0000'0000;

unsigned shift_at(const AddressSpace& as, Addr iova) {
    auto hit = as.table().lookup(iova - as.input_offset());
    return hit ? hit->page_shift : 0;
}

}  // namespace

TEST_CASE("address space maps with the largest pages alignment allows", "[host][aspace]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x100'0000);
    const TestFormat fmt = four_level();
    AddressSpace as(mem, alloc, fmt);
    as.iova().add_window({0, k4G, "dma32"});
    CHECK(as.min_page_shift() == 12);

    REQUIRE(as.map(0x1ff000, 0x7ff000, 0x402000, kPermRW));  // congruent modulo 2 MiB
    CHECK(shift_at(as, 0x1ff000) == 12);
    CHECK(shift_at(as, 0x200000) == 21);
    CHECK(shift_at(as, 0x5fffff) == 21);
    CHECK(shift_at(as, 0x600000) == 12);
    CHECK(shift_at(as, 0x601000) == 0);
    CHECK(as.table().lookup(0x4abcde)->pa == 0xaabcde);
    CHECK(as.intent().size() == 1);
    CHECK(as.intent().bytes_mapped() == 0x402000);

    REQUIRE(as.map(0x1000'0000, 0x300'1000, 0x40'0000, kPermR));  // pa not 2 MiB-aligned
    CHECK(shift_at(as, 0x1000'0000) == 12);
    CHECK(shift_at(as, 0x103f'f000) == 12);

    REQUIRE(as.map(2 * k1G, 5 * k1G, k1G + k2M, kPermW));
    CHECK(shift_at(as, 2 * k1G) == 30);
    CHECK(shift_at(as, 3 * k1G) == 21);
    CHECK(as.intent().translate(3 * k1G + 5)->pa == 6 * k1G + 5);
}

TEST_CASE("address space map refuses bad requests and changes nothing", "[host][aspace]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x100'0000);
    const TestFormat fmt = four_level();
    AddressSpace as(mem, alloc, fmt);
    as.iova().add_window({0, k4G, "dma32"});
    as.iova().add_reserved(x86_msi_region());
    REQUIRE(as.map(0x10000, 0x10000, 0x4000, kPermRW));
    const size_t tables = as.table().table_count();
    std::string why;

    CHECK_FALSE(as.map(0x20000, 0x20800, 0x1000, kPermR, &why));
    CHECK(why ==
          "iova 0x20000 pa 0x20800 size 0x1000 is not aligned to the 0x1000-byte page of "
          "test-4level");
    CHECK_FALSE(as.map(0x20000, 0, 0, kPermR, &why));
    CHECK(why == "iova 0x20000: cannot map an empty range");
    CHECK_FALSE(as.map(k4G, 0, 0x1000, kPermR, &why));
    CHECK(why ==
          "iova 0x100000000 size 0x1000 is outside every permitted window (dma32 "
          "0x0-0xffffffff)");
    CHECK_FALSE(as.map(0xfee0'0000, 0, 0x1000, kPermR, &why));
    CHECK(why == "iova 0xfee00000 size 0x1000 overlaps reserved region msi 0xfee00000-0xfeefffff");
    CHECK_FALSE(as.map(0x8000, 0, 0x9000, kPermR, &why));
    CHECK(why == "iova 0x8000 size 0x9000 overlaps the live mapping 0x10000-0x13fff");
    CHECK_FALSE(as.map(0x13000, 0, 0x1000, kPermR, &why));
    CHECK(why == "iova 0x13000 size 0x1000 overlaps the live mapping 0x10000-0x13fff");
    CHECK_FALSE(as.map(0x20000, 0, 0x1000, kPermNone, &why));
    CHECK(why == "iova 0x20000: test-4level cannot encode a present leaf with rights ---");

    CHECK(as.intent().size() == 1);
    CHECK(as.table().table_count() == tables);
    CHECK_FALSE(as.table().lookup(0x20000));
}

TEST_CASE("address space rolls back a map that runs out of table memory", "[host][aspace]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x4000);  // root + 3: enough for one L1 table, not two
    const TestFormat fmt = four_level();
    {
        AddressSpace as(mem, alloc, fmt);
        as.iova().add_window({0, k4G, "dma32"});
        std::string why;
        CHECK_FALSE(as.map(k2M - 0x1000, 0x1000, 0x2000, kPermR, &why));
        CHECK(why == "iova 0x200000: page-table memory exhausted");
        CHECK(as.intent().size() == 0);
        CHECK_FALSE(as.table().lookup(k2M - 0x1000));
        REQUIRE(as.map(k2M - 0x2000, 0x1000, 0x2000, kPermR));
    }
    CHECK(alloc.bytes_in_use() == 0);
}

TEST_CASE("address space unmap rounds to pages and reports bytes", "[host][aspace]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x100'0000);
    const TestFormat fmt = four_level();
    AddressSpace as(mem, alloc, fmt);
    as.iova().add_window({0, k4G, "dma32"});
    REQUIRE(as.map(0x10000, 0x50000, 0x3000, kPermRW));
    CHECK(as.unmap(0x11800, 0x10) == 0x1000);
    CHECK(as.intent().size() == 2);
    CHECK_FALSE(as.table().lookup(0x11000));
    CHECK(as.table().lookup(0x12000)->pa == 0x52000);
    CHECK(as.unmap(0, ~Addr(0)) == 0x2000);
    CHECK(as.unmap(0x10000, 0) == 0);
    CHECK_FALSE(as.table().lookup(0x10000));
    CHECK(as.intent().bytes_mapped() == 0);
}

TEST_CASE("address space with an input offset and 64 KiB pages", "[host][aspace]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x100'0000);
    const TestFormat fmt = uneven_64k();
    const Addr off = 0x8001'0000;  // not 2 MiB-aligned: large pages follow iova - offset
    AddressSpace as(mem, alloc, fmt, off);
    as.iova().add_window({off, 2 * k4G, "tce"});
    CHECK(as.min_page_shift() == 16);
    std::string why;

    REQUIRE(as.map(off + k2M, 0x40'0000, k2M, kPermR));
    CHECK(shift_at(as, off + k2M) == 21);
    CHECK(as.table().lookup(k2M + 0x1234)->pa == 0x40'1234);
    REQUIRE(as.map(0x8060'0000, 0x80'0000, k2M, kPermR));  // 2 MiB-aligned iova: 64 KiB pages
    CHECK(shift_at(as, 0x8060'0000) == 16);
    CHECK_FALSE(as.map(off + 0x1000, 0, 0x10000, kPermR, &why));
    CHECK(why ==
          "iova 0x80011000 pa 0x0 size 0x10000 is not aligned to the 0x10000-byte page of "
          "test-64k");
    CHECK_FALSE(as.map(off - 0x10000, 0, 0x10000, kPermR, &why));
    CHECK(why.find("outside every permitted window (tce 0x80010000-0x28000ffff)") !=
          std::string::npos);
    CHECK_FALSE(as.map(off + k4G, 0, 0x10000, kPermR, &why));
    CHECK(why ==
          "iova 0x180010000 size 0x10000 is outside the table's input range "
          "0x80010000-0x18000ffff");
    CHECK(as.unmap(off, k4G) == 2 * k2M);
}

namespace {

struct RefPage {
    Addr pa;
    Perm perm;
};

// Random map/unmap against an independent per-page model of what should be mapped.
class Property {
public:
    // Small mappings go to [offset, offset+hot); 1 GiB ones (if the format has them) at
    // offset+2*hot. Checks sample the whole window.
    Property(PhysAllocator& alloc, const TestFormat& fmt, Addr offset, Addr window, Addr hot,
             uint64_t seed)
        : fmt_(fmt),
          as_(mem_, alloc, fmt, offset),
          gran_(Addr(1) << fmt.level_shift(1)),
          off_(offset),
          window_(window),
          hot_(hot),
          rng_(seed) {
        as_.iova().add_window({offset, window, "win"});
    }

    void run(int steps) {
        for (int step = 0; step < steps; ++step) {
            INFO("step " << step);
            if (ref_.empty() || rng_() % 2)
                map_one();
            else
                unmap_one();
            REQUIRE(as_.intent().bytes_mapped() == ref_.size() * gran_);
            for (int i = 0; i < 16; ++i) check(sample());
            for (int i = 0; i < 8 && !ref_.empty(); ++i) {
                auto it = ref_.lower_bound(sample());
                if (it == ref_.end()) it = ref_.begin();
                check(it->first + rng_() % gran_);
            }
            if (step % 250 == 0) check_all();
        }
        CHECK(as_.unmap(off_, window_) == ref_.size() * gran_);
        ref_.clear();
        check_all();
    }

    const std::set<unsigned>& shifts() const { return shifts_; }

private:
    Addr pick(Addr n) { return rng_() % n; }
    Addr sample() { return off_ + (pick(5) ? pick(hot_) : pick(window_)); }

    void map_one() {
        Addr size = gran_ * (1 + pick((Addr(4) << 20) / gran_));
        if (pick(4) == 0) size = k2M * (1 + pick(2));
        const Addr aligns[] = {gran_, std::max<Addr>(gran_, 0x10000), k2M};
        Addr iova = off_ + (pick(hot_) & ~(aligns[pick(3)] - 1));
        if (fmt_.leaf_allowed(3) && pick(100) == 0)
            iova = off_ + 2 * hot_, size = k1G + k2M * pick(3) + gran_ * pick(3);
        Addr pa = pick(Addr(1) << 40) & ~(gran_ - 1);
        if (pick(2)) pa = (pa & ~(k1G - 1)) + ((iova - off_) & (k1G - 1));  // large pages fit
        const Perm perm = Perm(1 + pick(3));

        bool free = true;
        auto it = ref_.lower_bound(iova);
        if (it != ref_.end() && it->first < iova + size) free = false;
        std::string why;
        INFO("map " << std::hex << iova << " " << pa << " " << size);
        REQUIRE(as_.map(iova, pa, size, perm, &why) == free);
        if (!free) {
            CHECK(why.find("overlaps the live mapping") != std::string::npos);
        } else {
            for (Addr o = 0; o < size; o += gran_) ref_[iova + o] = {pa + o, perm};
        }
        edges(iova, size);
    }

    void unmap_one() {
        auto it = ref_.lower_bound(sample());
        if (it == ref_.end()) it = ref_.begin();
        Addr iova, size;
        if (pick(5) < 2) {
            const Mapping* m = as_.intent().find(it->first);
            REQUIRE(m);
            iova = m->iova, size = m->size;
        } else {
            const Addr back = pick(512) * gran_;
            iova = it->first - std::min(back, it->first - off_);
            size = gran_ * (1 + pick(2048));
            if (pick(4) == 0) iova += pick(gran_), size = 1 + pick(size);  // unaligned bytes
        }
        const Addr first = iova & ~(gran_ - 1), end = (iova + size + gran_ - 1) & ~(gran_ - 1);
        Addr expect = 0;
        for (auto r = ref_.lower_bound(first); r != ref_.end() && r->first < end;) {
            expect += gran_;
            r = ref_.erase(r);
        }
        INFO("unmap " << std::hex << iova << " " << size);
        REQUIRE(as_.unmap(iova, size) == expect);
        edges(first, end - first);
    }

    void edges(Addr iova, Addr size) {
        for (Addr a : {iova - 1, iova, iova + gran_, iova + size - 1, iova + size}) check(a);
    }

    void check(Addr a) {
        std::optional<RefPage> want;
        auto it = ref_.find(a & ~(gran_ - 1));
        if (it != ref_.end()) want = RefPage{it->second.pa + (a & (gran_ - 1)), it->second.perm};
        INFO("iova " << std::hex << a);
        auto intent = as_.intent().translate(a);
        std::optional<PageLookup> table;
        if (a >= off_) table = as_.table().lookup(a - off_);
        REQUIRE(bool(intent) == bool(want));
        REQUIRE(bool(table) == bool(want));
        if (!want) return;
        CHECK(intent->pa == want->pa);
        CHECK(intent->perm == want->perm);
        CHECK(table->pa == want->pa);
        CHECK(table->perm == want->perm);
        shifts_.insert(table->page_shift);
        // The whole leaf must be wanted too: check its first and last granule.
        const Addr ps = Addr(1) << table->page_shift, lo = a - ((a - off_) & (ps - 1));
        for (Addr g : {lo, lo + ps - gran_}) {
            auto r = ref_.find(g);
            REQUIRE(r != ref_.end());
            CHECK(r->second.pa == table->pa - (a - g));
        }
    }

    // Walk the image in memory with the test format's own bit layout and compare every leaf.
    void check_all() {
        Addr leaf_bytes = 0, bad = 0, first_bad = 0;
        walk(as_.table().root(), fmt_.levels(), 0, [&](Addr va, Addr size, Addr pa, Perm p) {
            leaf_bytes += size;
            for (Addr o = 0; o < size; o += gran_) {
                auto r = ref_.find(off_ + va + o);
                if (r != ref_.end() && r->second.pa == pa + o && r->second.perm == p) continue;
                if (!bad++) first_bad = off_ + va + o;
            }
        });
        INFO("first wrong leaf granule at iova " << std::hex << first_bad);
        REQUIRE(bad == 0);
        REQUIRE(leaf_bytes == ref_.size() * gran_);
        for (const auto& [iova, page] : ref_) REQUIRE(as_.intent().translate(iova)->pa == page.pa);
    }

    template <typename Fn>
    void walk(Addr table, unsigned level, Addr base, Fn&& fn) {
        const unsigned shift = fmt_.level_shift(level);
        for (Addr i = 0; i < (Addr(1) << fmt_.index_bits(level)); ++i) {
            const uint64_t e = mem_.read64(table + 8 * i);
            if (!(e & 3)) continue;
            const Addr va = base + (i << shift);
            if (level == 1 || (e & TestFormat::kLarge))
                fn(va, Addr(1) << shift, e & TestFormat::kAddr, Perm(e & 3));
            else
                walk(e & TestFormat::kAddr, level - 1, va, fn);
        }
    }

    const TestFormat& fmt_;
    SparseMemory mem_;
    AddressSpace as_;
    Addr gran_, off_, window_, hot_;
    std::mt19937_64 rng_;
    std::map<Addr, RefPage> ref_;
    std::set<unsigned> shifts_;  // leaf sizes seen by check()  // granule iova -> expected pa, perm
};

}  // namespace

TEST_CASE("address space property: 4-level 4 KiB format", "[host][aspace][property]") {
    const TestFormat fmt = four_level();
    PhysAllocator alloc(kTables, 0x1000'0000);
    {
        Property p(alloc, fmt, 0, 2 * k4G, 2 * k1G, 20240611);
        p.run(4000);
        CHECK(p.shifts() == std::set<unsigned>{12, 21, 30});
        CHECK(alloc.bytes_in_use() > 0);
    }
    CHECK(alloc.bytes_in_use() == 0);  // every table went back
}

TEST_CASE("address space property: uneven 64 KiB format with offset", "[host][aspace][property]") {
    const TestFormat fmt = uneven_64k();
    PhysAllocator alloc(kTables, 0x1000'0000);
    {
        Property p(alloc, fmt, 0x8001'0000, k4G, k1G, 77);
        p.run(3000);
        CHECK(p.shifts() == std::set<unsigned>{16, 21});
    }
    CHECK(alloc.bytes_in_use() == 0);
}
