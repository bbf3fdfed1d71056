#include <catch2/catch.hpp>

#include "host/intent_map.h"

using namespace iommusim;

TEST_CASE("intent map translates and detects overlap", "[host][intent]") {
    IntentMap m;
    m.insert({0x10000, 0x3000, 0x8000'0000, kPermR});
    m.insert({0x20000, 0x1000, 0x9000'0000, kPermRW});
    CHECK(m.size() == 2);
    CHECK(m.bytes_mapped() == 0x4000);

    auto hit = m.translate(0x12345);
    REQUIRE(hit);
    CHECK(hit->pa == 0x8000'2345);
    CHECK(hit->perm == kPermR);
    CHECK_FALSE(m.translate(0x13000));
    CHECK_FALSE(m.translate(0xffff));
    REQUIRE(m.find(0x20fff));
    CHECK(m.find(0x20fff)->pa == 0x9000'0000);

    CHECK(m.overlaps(0xf000, 0x1001));
    CHECK_FALSE(m.overlaps(0xf000, 0x1000));
    CHECK(m.overlaps(0x12fff, 1));
    CHECK_FALSE(m.overlaps(0x13000, 0xd000));
    CHECK(m.overlaps(0x13000, 0xd001));
    CHECK(m.overlaps(0, ~Addr(0)));
    CHECK_FALSE(m.overlaps(0x10000, 0));
}

TEST_CASE("intent map erase trims partly covered mappings", "[host][intent]") {
    IntentMap m;
    m.insert({0x10000, 0x10000, 0x100000, kPermRW});
    m.insert({0x30000, 0x2000, 0x500000, kPermR});

    CHECK(m.erase(0x14000, 0x2000) == 0x2000);  // a hole in the middle: two pieces
    CHECK(m.size() == 3);
    CHECK(m.translate(0x13fff)->pa == 0x103fff);
    CHECK_FALSE(m.translate(0x14000));
    CHECK_FALSE(m.translate(0x15fff));
    CHECK(m.translate(0x16000)->pa == 0x106000);
    REQUIRE(m.find(0x16000));
    CHECK(m.find(0x16000)->iova == 0x16000);
    CHECK(m.find(0x16000)->size == 0xa000);

    // One range across the tail of one mapping, a gap and the head of another.
    CHECK(m.erase(0x1f000, 0x12000) == 0x2000);
    CHECK(m.translate(0x1efff)->pa == 0x10efff);
    CHECK_FALSE(m.translate(0x1f000));
    CHECK_FALSE(m.translate(0x30fff));
    CHECK(m.translate(0x31000)->pa == 0x501000);
    CHECK(m.find(0x31000)->perm == kPermR);
    CHECK(m.bytes_mapped() == 0x4000 + 0x9000 + 0x1000);

    CHECK(m.erase(0x40000, 0x1000) == 0);
    CHECK(m.erase(0, ~Addr(0)) == 0xe000);
    CHECK(m.size() == 0);
    CHECK(m.bytes_mapped() == 0);
}

TEST_CASE("intent map handles the top of the 64-bit space", "[host][intent]") {
    IntentMap m;
    const Addr top = ~Addr(0) - 0xfff;
    m.insert({top, 0x1000, 0x7000, kPermW});
    CHECK(m.translate(~Addr(0))->pa == 0x7fff);
    CHECK(m.overlaps(top - 0x1000, 0x2000));
    CHECK(m.erase(top + 0x800, 0x1000) == 0x800);  // range runs past 2^64: saturated
    CHECK(m.translate(top + 0x7ff)->pa == 0x77ff);
    CHECK_FALSE(m.translate(top + 0x800));
}

// translate() keeps its last mapping (checking mode asks for every request): what it answers
// must follow erase() and insert() at once.
TEST_CASE("intent map translate follows erase and insert after a hit", "[host][intent]") {
    IntentMap m;
    m.insert({0x10000, 0x4000, 0x8000'0000, kPermRW});
    REQUIRE(m.translate(0x11008));
    CHECK(m.translate(0x11008)->pa == 0x8000'1008);
    CHECK(m.erase(0x11000, 0x1000) == 0x1000);  // the page just translated
    CHECK_FALSE(m.translate(0x11008));
    CHECK(m.translate(0x10010)->pa == 0x8000'0010);  // the part left below
    CHECK(m.translate(0x12010)->pa == 0x8000'2010);  // and above
    m.insert({0x11000, 0x1000, 0x5000'0000, kPermR});
    REQUIRE(m.translate(0x11008));
    CHECK(m.translate(0x11008)->pa == 0x5000'0008);
    CHECK(m.translate(0x11008)->perm == kPermR);
    CHECK(m.erase(0, ~Addr(0)) == 0x4000);
    CHECK_FALSE(m.translate(0x11008));
    CHECK_FALSE(m.translate(0x12010));
}
