#include <catch2/catch.hpp>

#include <stdexcept>

#include "host/radix_page_table.h"
#include "host_test_formats.h"

using namespace iommusim;
using namespace iommusim::test;

namespace {

constexpr Addr kTables = 0x1'0000'0000;  // where table memory comes from
constexpr Addr k2M = 0x20'0000, k1G = 0x4000'0000;

}  // namespace

TEST_CASE("page table maps 4K, 2M and 1G pages", "[host][pgtable]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x100'0000);
    const TestFormat fmt = four_level();
    RadixPageTable t(mem, alloc, fmt);
    CHECK(t.table_count() == 1);
    CHECK(alloc.bytes_in_use() == 0x1000);

    REQUIRE(t.map_page(0x1234'5000, 0xabc'd000, 12, kPermR));
    CHECK(t.table_count() == 4);
    auto hit = t.lookup(0x1234'5678);
    REQUIRE(hit);
    CHECK(hit->pa == 0xabc'd678);
    CHECK(hit->page_shift == 12);
    CHECK(hit->perm == kPermR);
    CHECK_FALSE(t.lookup(0x1234'6000));

    // The image in memory: root entry 0 -> L3 table, L3 entry 0 -> L2, L2 entry 0x91 -> L1.
    const uint64_t root_e = mem.read64(t.root());
    CHECK((root_e & 3) == 3);
    const Addr l3 = root_e & TestFormat::kAddr, l2 = mem.read64(l3) & TestFormat::kAddr;
    const Addr l1 = mem.read64(l2 + 0x91 * 8) & TestFormat::kAddr;
    CHECK(mem.read64(l1 + 0x145 * 8) == (0xabc'd000 | kPermR));

    REQUIRE(t.map_page(0x4000'0000 + 3 * k2M, 0x8000'0000, 21, kPermRW));
    hit = t.lookup(0x4000'0000 + 3 * k2M + 0x1f'ffff);
    REQUIRE(hit);
    CHECK(hit->pa == 0x801f'ffff);
    CHECK(hit->page_shift == 21);
    CHECK(hit->perm == kPermRW);

    REQUIRE(t.map_page(Addr(5) * k1G, Addr(7) * k1G, 30, kPermW));
    hit = t.lookup(Addr(5) * k1G + 0x1234'5678);
    REQUIRE(hit);
    CHECK(hit->pa == Addr(7) * k1G + 0x1234'5678);
    CHECK(hit->page_shift == 30);
    CHECK_FALSE(t.lookup(Addr(1) << 48));  // beyond the 48-bit input range
}

TEST_CASE("page table map_page refuses and changes nothing", "[host][pgtable]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x100'0000);
    const TestFormat fmt = four_level();
    RadixPageTable t(mem, alloc, fmt);
    REQUIRE(t.map_page(k2M + 0x3000, 0x5000, 12, kPermRW));
    const size_t tables = t.table_count();
    const Addr used = alloc.bytes_in_use();
    std::string why;

    CHECK_FALSE(t.map_page(k2M + 0x3000, 0x6000, 12, kPermRW, &why));
    CHECK(why == "iova 0x203000 is already mapped");
    CHECK_FALSE(t.map_page(k2M, 0x40'0000, 21, kPermRW, &why));
    CHECK(why == "iova 0x200000: a lower table there still maps pages");
    CHECK_FALSE(t.map_page(0, 0, 39, kPermRW, &why));
    CHECK(why == "test-4level level 4 cannot hold a leaf");
    CHECK_FALSE(t.map_page(0, 0, 16, kPermRW, &why));
    CHECK(why == "test-4level has no level with 16-bit pages");
    CHECK_FALSE(t.map_page(0x1000, 0x1800, 12, kPermRW, &why));
    CHECK(why == "iova 0x1000 or pa 0x1800 is not aligned to the 0x1000-byte page");
    CHECK_FALSE(t.map_page(0x1000, 0x1000, 12, kPermNone, &why));
    CHECK(why == "test-4level cannot encode a present leaf with rights ---");
    CHECK_FALSE(t.map_page(Addr(1) << 48, 0, 12, kPermR, &why));
    CHECK(why ==
          "iova 0x1000000000000 is beyond the 0x1000000000000-byte input range of the table");
    CHECK(t.table_count() == tables);
    CHECK(alloc.bytes_in_use() == used);
    CHECK(t.lookup(k2M + 0x3000)->pa == 0x5000);

    // A leaf above the target refuses a smaller page under it.
    REQUIRE(t.map_page(k1G, k1G, 30, kPermR));
    CHECK_FALSE(t.map_page(k1G + k2M, 0, 21, kPermR, &why));
    CHECK(why == "iova 0x40200000 is already mapped by a level-3 leaf");
}

TEST_CASE("page table replaces an empty lower table with a large page", "[host][pgtable]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x100'0000);
    const TestFormat fmt = four_level();
    RadixPageTable t(mem, alloc, fmt);
    REQUIRE(t.map_page(k1G + 0x5000, 0x5000, 12, kPermR));
    CHECK(t.table_count() == 4);
    t.unmap(k1G + 0x5000, 0x1000);
    CHECK(t.table_count() == 4);  // tables are kept
    CHECK_FALSE(t.lookup(k1G + 0x5000));
    REQUIRE(t.map_page(k1G, Addr(9) * k1G, 30, kPermRW));  // frees the empty L2 and L1
    CHECK(t.table_count() == 2);
    CHECK(alloc.bytes_in_use() == 2 * 0x1000);
    CHECK(t.lookup(k1G + 0x5000)->pa == Addr(9) * k1G + 0x5000);
}

TEST_CASE("page table unmap splits straddling large pages", "[host][pgtable]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x100'0000);
    const TestFormat fmt = four_level();
    RadixPageTable t(mem, alloc, fmt);
    const Addr pa = Addr(3) * k1G;
    REQUIRE(t.map_page(k1G, pa, 30, kPermRW));
    t.unmap(k1G + 5 * k2M + 0x3000, 0x2000);  // two 4 KiB pages inside the 6th 2 MiB page

    for (Addr off : {Addr(0), 5 * k2M - 1, 5 * k2M, 5 * k2M + 0x2fff, 5 * k2M + 0x5000, 6 * k2M - 1,
                     6 * k2M, k1G - 1}) {
        auto hit = t.lookup(k1G + off);
        INFO("offset " << std::hex << off);
        REQUIRE(hit);
        CHECK(hit->pa == pa + off);
        CHECK(hit->perm == kPermRW);
        CHECK(hit->page_shift == ((off >= 5 * k2M && off < 6 * k2M) ? 12 : 21));
    }
    CHECK_FALSE(t.lookup(k1G + 5 * k2M + 0x3000));
    CHECK_FALSE(t.lookup(k1G + 5 * k2M + 0x4fff));
    CHECK(t.table_count() == 4);  // root, L3, then one L2 and one L1 from the splits

    // An unaligned range takes every 4 KiB page it touches.
    t.unmap(k1G + 0x10, 1);
    CHECK_FALSE(t.lookup(k1G));
    CHECK(t.lookup(k1G + 0x1000)->pa == pa + 0x1000);
}

TEST_CASE("page table splits through a level without leaves", "[host][pgtable]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x1000'0000);
    const TestFormat fmt = no_2m();
    RadixPageTable t(mem, alloc, fmt);
    CHECK_FALSE(t.map_page(0, 0, 21, kPermR));
    REQUIRE(t.map_page(k1G, 0, 30, kPermR));
    t.unmap(k1G + k2M, 0x1000);
    CHECK(t.table_count() == 2 + 1 + 512);  // the 1 GiB page becomes 512 tables of 4 KiB pages
    CHECK_FALSE(t.lookup(k1G + k2M));
    CHECK(t.lookup(k1G + k2M + 0x1000)->page_shift == 12);
    CHECK(t.lookup(k1G + k1G - 1)->pa == k1G - 1);
}

TEST_CASE("page table with uneven levels and 64 KiB pages", "[host][pgtable]") {
    SparseMemory mem;
    PhysAllocator alloc(kTables, 0x100'0000);
    const TestFormat fmt = uneven_64k();
    RadixPageTable t(mem, alloc, fmt);
    CHECK(fmt.table_bytes(1) == 256);
    REQUIRE(t.map_page(0xc000'0000 + 0x3'0000, 0x50'0000, 16, kPermR));
    CHECK(t.lookup(0xc003'1234)->pa == 0x50'1234);
    CHECK(t.lookup(0xc003'1234)->page_shift == 16);
    REQUIRE(t.map_page(0xc020'0000, 0x80'0000, 21, kPermW));
    t.unmap(0xc020'0000 + 0x1'0000, 0x1'0000);
    CHECK(t.lookup(0xc020'ffff)->pa == 0x80'ffff);
    CHECK_FALSE(t.lookup(0xc021'0000));
    CHECK(t.lookup(0xc022'0000)->page_shift == 16);
    CHECK(t.lookup(0xc03f'ffff)->pa == 0x9f'ffff);
    CHECK_FALSE(t.lookup(Addr(1) << 32));
    std::string why;
    CHECK_FALSE(t.map_page(Addr(1) << 32, 0, 16, kPermR, &why));
}

TEST_CASE("page table memory: exhaustion and release", "[host][pgtable]") {
    SparseMemory mem;
    const TestFormat fmt = four_level();
    {
        PhysAllocator none(kTables, 0x800);
        CHECK_THROWS_AS(RadixPageTable(mem, none, fmt), std::runtime_error);
    }
    PhysAllocator alloc(kTables, 0x3000);  // root plus two tables
    {
        RadixPageTable t(mem, alloc, fmt);
        std::string why;
        CHECK_FALSE(t.map_page(0x1000, 0x1000, 12, kPermR, &why));
        CHECK(why == "page-table memory exhausted");
        CHECK(t.table_count() == 1);
        CHECK(alloc.bytes_in_use() == 0x1000);
        REQUIRE(t.map_page(k1G, 0, 30, kPermR));  // needs only the L3 table
        REQUIRE(t.map_page(0, 0, 30, kPermR));
        REQUIRE(t.map_page(Addr(2) * k1G, 0, 21, kPermR));  // and one L2 table
        CHECK_THROWS_AS(t.unmap(k1G, 0x1000), std::runtime_error);
        CHECK(t.lookup(k1G)->page_shift == 30);  // the failed split left the page whole
    }
    CHECK(alloc.bytes_in_use() == 0);
}
