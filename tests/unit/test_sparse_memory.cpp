#include <catch2/catch.hpp>

#include "core/sparse_memory.h"

using namespace iommusim;

TEST_CASE("sparse memory reads zero, allocates only on write", "[core][memory]") {
    SparseMemory m;
    CHECK(m.read64(0x1234'5000) == 0);
    CHECK(m.pages_touched() == 0);
    m.write64(0x1234'5ff8, 0x1122334455667788ULL);
    CHECK(m.read64(0x1234'5ff8) == 0x1122334455667788ULL);
    CHECK(m.pages_touched() == 1);
    uint8_t b[8];
    REQUIRE(m.read(0x1234'5ff8, b, 8));
    CHECK(b[0] == 0x88);  // little-endian image
    CHECK(b[7] == 0x11);
}

TEST_CASE("sparse memory accesses straddle pages and stop at 52 bits", "[core][memory]") {
    SparseMemory m;
    m.write64(0x2ffc, 0xAABBCCDD'EEFF0011ULL);
    CHECK(m.pages_touched() == 2);
    CHECK(m.read64(0x2ffc) == 0xAABBCCDD'EEFF0011ULL);
    uint8_t b[8] = {};
    CHECK_FALSE(m.read(SparseMemory::kLimit - 4, b, 8));
    CHECK_FALSE(m.write(SparseMemory::kLimit, b, 1));
    CHECK(m.read(SparseMemory::kLimit - 8, b, 8));
    CHECK(m.pages_touched() == 2);
}
