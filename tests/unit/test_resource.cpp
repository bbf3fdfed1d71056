// The one server model (core/resource.h): gap filling for out-of-order arrivals, the exact
// rate of a bandwidth server, and the bound on the busy intervals a server keeps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "core/resource.h"

using namespace iommusim;

TEST_CASE("ServerPool: an early job fills the gap before a later reservation", "[resource]") {
    ServerPool p(1);
    CHECK(p.acquire(10'000, 1000) == 10'000);  // reserved ahead by a far-running initiator
    CHECK(p.acquire(0, 1000) == 0);            // the gap before it
    CHECK(p.acquire(9'500, 1000) == 11'000);   // too short a gap: after the reservation
    CHECK(p.acquire(1'000, 8000) == 1'000);    // exactly fits [1000, 9000)
    CHECK(p.busy_at(500) == 1);
    CHECK(p.busy_at(9'200) == 0);
    CHECK(p.free_at(0) == 12'000);
    // Two servers: the lowest free one, else the one free first.
    ServerPool two(2);
    CHECK(two.earliest(0).server == 0);
    two.occupy(0, 0, 100);
    CHECK(two.earliest(50).server == 1);
    two.occupy(1, 50, 300);
    const ServerPool::Slot s = two.earliest(60, 10);
    CHECK(s.server == 0);
    CHECK(s.start == 100);
}

TEST_CASE("ServerPool: in-order arrivals are first come, first served", "[resource]") {
    std::mt19937_64 rng(42);
    ServerPool p(1);
    Tick free = 0, t = 0;
    for (int i = 0; i < 20000; ++i) {
        t += rng() % 300;
        const Tick service = 1 + rng() % 400;
        const Tick want = std::max(t, free);
        REQUIRE(p.acquire(t, service) == want);
        free = want + service;
    }
}

TEST_CASE("ServerPool: out-of-order jobs never overlap and never start early", "[resource]") {
    for (uint64_t seed : {1u, 2u, 3u}) {
        std::mt19937_64 rng(seed);
        ServerPool p(1);
        struct Job {
            Tick start, end;
        };
        std::vector<Job> done;
        Tick latest = 0;
        for (int i = 0; i < 3000; ++i) {
            // Arrivals up to 5 us behind the latest, as initiators under a quantum.
            latest += rng() % 200;
            const Tick at = latest > 5000 ? latest - rng() % 5000 : latest;
            const Tick service = 1 + rng() % 100;
            const Tick s = p.acquire(at, service);
            REQUIRE(s >= at);
            done.push_back({s, s + service});
        }
        std::sort(done.begin(), done.end(),
                  [](const Job& a, const Job& b) { return a.start < b.start; });
        for (size_t i = 1; i < done.size(); ++i) REQUIRE(done[i].start >= done[i - 1].end);
    }
}

TEST_CASE("ServerPool: memory stays bounded by the history and the interval cap", "[resource]") {
    // One job every 100 ns with gaps: 1 ms of history holds about 10 000 intervals.
    ServerPool p(1);
    Tick t = 0;
    size_t most = 0;
    for (int i = 0; i < 200000; ++i, t += 100'000) {
        p.acquire(t, 10'000);
        most = std::max(most, p.kept(0));
    }
    CHECK(most <= ServerPool::kDefaultHistory / 100'000 + 2);
    // Without a time bound, the count bound holds.
    ServerPool q(1, ~Tick(0));
    for (size_t i = 0; i < ServerPool::kMaxIntervals + 1000; ++i) q.acquire(Tick(i) * 10, 5);
    CHECK(q.kept(0) == ServerPool::kMaxIntervals);
    // forget_before(t) (the SystemC time) drops what ends before t and changes nothing for
    // jobs arriving from t on.
    ServerPool a(1), b(1);
    t = 0;
    for (int i = 0; i < 5000; ++i, t += 100'000) {
        a.forget_before(t > 1'000'000 ? t - 1'000'000 : 0);
        REQUIRE(a.acquire(t, 10'000) == b.acquire(t, 10'000));
        REQUIRE(a.acquire(t - 50'000 * (t > 0), 5'000) == b.acquire(t - 50'000 * (t > 0), 5'000));
    }
    CHECK(a.kept(0) <= 2 * (1'000'000 / 100'000) + 2);
    CHECK(b.kept(0) > 1000);
    // What was forgotten is free again: a straggler from before the history starts at once.
    ServerPool h(1, 1000);
    h.acquire(0, 500);
    h.acquire(10'000, 500);
    CHECK(h.acquire(100, 10) == 100);
}

TEST_CASE("Rate: kept to 2^-32 ps, rounded up for a job alone", "[resource]") {
    CHECK(Rate::ps_per_unit(10).time(672) == 6720);
    CHECK(Rate::ps_per_unit(1000.0 / 3).time(1) == 334);
    CHECK(Rate::ps_per_unit(1000.0 / 3).time(3) == 1000);  // the period is rounded down
    CHECK(Rate::ps_per_unit(0).zero());
    CHECK(Rate::ps_per_unit(0).time(100) == 0);
    CHECK(Rate::ps_per_unit(-1).zero());
}

TEST_CASE("BandwidthServer: back to back keeps the exact rate, a gap restarts", "[resource]") {
    BandwidthServer s(Rate::ps_per_unit(1000.0 / 3));  // 333.33 ps per unit
    Tick end = 0;
    for (int i = 0; i < 3000; ++i) end = s.serve(0, 1).end;
    CHECK(end == 1'000'000);  // ceil of the exact total, not 3000 x 334
    const BandwidthServer::Span a = s.serve(2'000'000, 1);  // after a gap: alone again
    CHECK(a.start == 2'000'000);
    CHECK(a.end == 2'000'334);
    // Split work takes what the whole would: 300 units one by one or at once.
    BandwidthServer one(Rate::ps_per_unit(1000.0 / 3)), whole(Rate::ps_per_unit(1000.0 / 3));
    for (int i = 0; i < 300; ++i) end = one.serve(0, 1).end;
    CHECK(end == whole.serve(0, 300).end);
    // Out of order: an early job fills the gap before a later one.
    BandwidthServer g(Rate::ps_per_unit(10));
    CHECK(g.serve(5000, 100).start == 5000);
    CHECK(g.serve(0, 100).start == 0);
    CHECK(g.serve(0, 400).start == 1000);  // [1000, 5000) holds it
    CHECK(g.serve(0, 1).start == 6000);    // nothing left before 6000
    CHECK(g.free_at() == 6010);
}
