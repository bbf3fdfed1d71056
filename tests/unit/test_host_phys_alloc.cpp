#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "host/phys_alloc.h"

using namespace iommusim;

TEST_CASE("phys allocator aligns, exhausts and counts", "[host][phys]") {
    PhysAllocator a(0x10'0000, 0x4000);
    auto x = a.alloc(8, 8);
    REQUIRE(x);
    CHECK(*x == 0x10'0000);
    auto y = a.alloc(0x1000);  // default 4 KiB alignment skips past x
    REQUIRE(y);
    CHECK(*y == 0x10'1000);
    CHECK(a.bytes_in_use() == 0x1008);
    auto z = a.alloc(1, 1);  // rounded to an 8-byte block right after x
    REQUIRE(z);
    CHECK(*z == 0x10'0008);
    CHECK(a.bytes_in_use() == 0x1010);
    CHECK(a.alloc(0x2000, 0x2000) == Addr(0x10'2000));
    CHECK_FALSE(a.alloc(0x1000));  // only the unaligned tail of the first page is left
    CHECK(a.alloc(0x100, 0x100) == Addr(0x10'0100));
    CHECK(a.bytes_in_use() == 0x3110);
    CHECK_FALSE(a.alloc(0x1000, 0));  // not a power of two
}

TEST_CASE("phys allocator reuses freed blocks and coalesces", "[host][phys]") {
    PhysAllocator a(0, 0x10000);
    std::vector<Addr> blocks;
    for (int i = 0; i < 16; ++i) blocks.push_back(*a.alloc(0x1000));
    CHECK_FALSE(a.alloc(8, 8));
    CHECK(a.bytes_in_use() == 0x10000);

    a.free(blocks[3], 0x1000);
    CHECK(a.alloc(0x1000) == blocks[3]);  // the freed block, not a new one

    for (Addr b : blocks) a.free(b, 0x1000);
    CHECK(a.bytes_in_use() == 0);
    CHECK(a.alloc(0x10000, 0x10000) == Addr(0));  // all pieces merged back into one
}

TEST_CASE("phys allocator ignores bad frees", "[host][phys]") {
    PhysAllocator a(0x1000, 0x2000);
    auto x = a.alloc(0x1000);
    REQUIRE(x);
    a.free(0x8000, 0x1000);  // outside the region
    a.free(0x2000, 0x1000);  // already free
    CHECK(a.bytes_in_use() == 0x1000);
    a.free(*x, 0x1000);
    a.free(*x, 0x1000);  // double free
    CHECK(a.bytes_in_use() == 0);
    CHECK(a.alloc(0x2000, 0x1000) == Addr(0x1000));
}

TEST_CASE("phys allocator never overlaps under random use", "[host][phys]") {
    std::mt19937_64 rng(42);
    const Addr base = 0x4000'0000, size = 0x100'0000;
    PhysAllocator a(base, size);
    std::map<Addr, Addr> live;  // start -> bytes as requested
    Addr expected = 0;
    for (int step = 0; step < 20000; ++step) {
        if (live.empty() || rng() % 3 != 0) {
            const Addr bytes = 8 << (rng() % 14);
            const Addr align = Addr(8) << (rng() % 13);
            auto p = a.alloc(bytes, align);
            if (!p) continue;
            REQUIRE(*p % align == 0);
            REQUIRE(*p >= base);
            REQUIRE(*p + bytes <= base + size);
            auto next = live.lower_bound(*p);
            if (next != live.end()) REQUIRE(*p + bytes <= next->first);
            if (next != live.begin()) {
                auto prev = std::prev(next);
                REQUIRE(prev->first + prev->second <= *p);
            }
            live.emplace(*p, bytes);
            expected += bytes;
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            a.free(it->first, it->second);
            expected -= it->second;
            live.erase(it);
        }
        REQUIRE(a.bytes_in_use() == expected);
    }
    for (auto& [p, bytes] : live) a.free(p, bytes);
    CHECK(a.bytes_in_use() == 0);
    CHECK(a.alloc(size) == base);
}
