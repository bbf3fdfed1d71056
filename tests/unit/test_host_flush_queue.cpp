#include <catch2/catch.hpp>

#include "host/flush_queue.h"

using namespace iommusim;

TEST_CASE("flush queue reports full at its capacity", "[host][flushq]") {
    FlushQueue q({3, 1000});
    CHECK_FALSE(q.push({1, 0x1000, 0x1000, 10}));
    CHECK_FALSE(q.push({1, 0x2000, 0x1000, 20}));
    CHECK(q.push({2, 0x3000, 0x2000, 30}));
    CHECK(q.pending() == 3);
    auto all = q.drain();
    REQUIRE(all.size() == 3);
    CHECK(all[0].iova == 0x1000);  // oldest first
    CHECK(all[2].space == 2);
    CHECK(all[2].size == 0x2000);
    CHECK(q.pending() == 0);
    CHECK(q.drain().empty());
}

TEST_CASE("flush queue times out on its oldest entry", "[host][flushq]") {
    FlushQueue q({256, 1000});
    CHECK(q.config().entries == 256);
    CHECK_FALSE(q.due(1'000'000));  // nothing pending
    q.push({0, 0x1000, 0x1000, 500});
    q.push({0, 0x2000, 0x1000, 1400});
    CHECK_FALSE(q.due(400));  // a clock before the entry's stamp
    CHECK_FALSE(q.due(1499));
    CHECK(q.due(1500));
    q.drain();
    CHECK_FALSE(q.due(1'000'000));
}

TEST_CASE("flush queue defaults follow Linux", "[host][flushq]") {
    FlushQueueConfig c;
    CHECK(c.entries == 256);
    CHECK(c.timeout_ns == 10'000'000);
}
