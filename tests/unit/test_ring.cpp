// Arch-neutral in-memory queues: consumer fetch/advance with timing, producer push with the
// N-1 capacity and overflow, and memory errors.
#include <catch2/catch.hpp>

#include <cstring>

#include "core/bits.h"
#include "core/memory_port.h"
#include "core/sparse_memory.h"
#include "iommu/ring.h"

using namespace iommusim;

TEST_CASE("ring consumer fetches at the head with the memory's latency", "[ring]") {
    SparseMemory store;
    FixedLatencyMemory mem(store, 50);
    RingConsumer q({0x1000, 4, 16});
    CHECK(q.empty());
    for (uint32_t i = 0; i < 4; ++i) store.write64(0x1000 + 16 * i, 100 + i);
    REQUIRE(q.set_tail(3));
    CHECK_FALSE(q.set_tail(4));  // outside the queue
    CHECK(q.pending() == 3);
    uint8_t e[16];
    MemDone d = q.fetch(e, mem, 1000);
    CHECK(d.ok);
    CHECK(d.at == 1050);
    CHECK(load_le64(e) == 100);
    CHECK(q.head() == 0);  // fetch does not consume
    q.advance();
    CHECK(q.pop(e, mem, 2000).at == 2050);
    CHECK(load_le64(e) == 101);
    CHECK(q.head() == 2);
    q.pop(e, mem, 0);
    CHECK(q.empty());
    // Wrap-around.
    REQUIRE(q.set_tail(1));
    CHECK(q.pending() == 2);
    q.pop(e, mem, 0);
    CHECK(load_le64(e) == 103);
    CHECK(q.head() == 0);

    RingConsumer none;
    CHECK_FALSE(none.fetch(e, mem, 5).ok);
    RingConsumer far({Addr(1) << 60, 4, 16});
    far.set_tail(1);
    CHECK_FALSE(far.pop(e, mem, 0).ok);
    CHECK(far.head() == 0);
}

TEST_CASE("ring producer holds N-1 entries and reports overflow", "[ring]") {
    SparseMemory store;
    FixedLatencyMemory mem(store, 20);
    RingProducer q({0x8000, 4, 32});
    uint8_t e[32];
    for (int i = 0; i < 3; ++i) {
        std::memset(e, 0x10 + i, sizeof e);
        const Tick at = Tick(100 * i);
        const RingProducer::Push p = q.push(e, mem, at);
        CHECK(p.written);
        CHECK_FALSE(p.overflow);
        CHECK(p.done == at + 20);
    }
    CHECK(q.full());
    CHECK(q.used() == 3);
    const RingProducer::Push over = q.push(e, mem, 500);
    CHECK(over.overflow);
    CHECK_FALSE(over.written);
    CHECK(over.done == 500);
    CHECK(mem.writes() == 3);
    CHECK(store.read64(0x8000 + 32 * 2) == 0x1212121212121212ULL);
    // Software consumed two: two slots free again, writes wrap to entry 3 then 0.
    REQUIRE(q.set_head(2));
    CHECK(q.push(e, mem, 0).written);
    CHECK(q.tail() == 0);
    CHECK(q.push(e, mem, 0).written);
    CHECK(q.full());

    RingProducer bad({Addr(1) << 60, 4, 32});
    const RingProducer::Push p = bad.push(e, mem, 7);
    CHECK(p.error);
    CHECK(bad.tail() == 0);
    RingProducer none;
    CHECK(none.push(e, mem, 0).overflow);
}
