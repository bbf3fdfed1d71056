// The one server model (core/resource.h): gap filling for out-of-order arrivals, the exact
// rate of a bandwidth server, and the bound on the busy intervals a server keeps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
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

namespace {

// The server model restated as plainly as possible, to check the fast one against: busy
// intervals in a deque, every search a linear scan, the same pruning rule.
struct RefTimeline {
    struct Iv {
        Tick start, end;
    };
    std::deque<Iv> iv;
    Tick fit(Tick arrival, Tick service) const {
        const Tick need = service ? service : 1;
        Tick s = arrival;
        for (const Iv& i : iv) {
            if (i.end <= s) continue;
            if (i.start >= s + need) break;
            s = i.end;
        }
        return s;
    }
    void occupy(Tick start, Tick until) {
        Iv m{start, until};
        std::deque<Iv> out;
        for (const Iv& i : iv) {
            if (i.end < m.start || i.start > m.end) {
                out.push_back(i);
            } else {  // overlaps or touches: merge
                m.start = std::min(m.start, i.start);
                m.end = std::max(m.end, i.end);
            }
        }
        auto at =
            std::find_if(out.begin(), out.end(), [&](const Iv& i) { return i.start > m.start; });
        out.insert(at, m);
        iv.swap(out);
    }
    void prune(Tick horizon) {
        while (!iv.empty() && iv.front().end < horizon) iv.pop_front();
        while (iv.size() > ServerPool::kMaxIntervals) iv.pop_front();
    }
};

struct RefPool {
    std::vector<RefTimeline> s;
    Tick history, latest = 0, floor = 0;
    RefPool(unsigned n, Tick h) : s(n), history(h) {}
    ServerPool::Slot earliest(Tick arrival, Tick service) const {
        ServerPool::Slot best{0, s[0].fit(arrival, service)};
        for (unsigned i = 1; i < s.size(); ++i) {
            const Tick t = s[i].fit(arrival, service);
            if (t < best.start) best = {i, t};
        }
        return best;
    }
    void occupy(unsigned server, Tick start, Tick until) {
        if (until <= start) return;
        s[server].occupy(start, until);
        latest = std::max(latest, start);
        s[server].prune(std::max(latest > history ? latest - history : 0, floor));
    }
    Tick free_at(unsigned server) const {
        return s[server].iv.empty() ? 0 : s[server].iv.back().end;
    }
    unsigned busy_at(Tick t) const {
        unsigned n = 0;
        for (const RefTimeline& r : s)
            for (const auto& i : r.iv) n += i.start <= t && t < i.end;
        return n;
    }
};

// Arrivals as initiators under a quantum make them: mostly ahead of the latest, often up to
// `behind` before it.
Tick arrival(std::mt19937_64& rng, Tick& latest, Tick behind) {
    latest += rng() % 300;
    return rng() % 3 == 0 && latest > behind ? latest - rng() % behind : latest;
}

}  // namespace

TEST_CASE("ServerPool: the fast paths match the plain reference, step by step", "[resource]") {
    for (uint64_t seed : {7u, 8u, 9u}) {
        for (unsigned servers : {1u, 3u, 64u}) {
            for (Tick history : {Tick(0), Tick(20'000), ServerPool::kDefaultHistory}) {
                std::mt19937_64 rng(seed * 1000 + servers + history);
                ServerPool p(servers, history);
                RefPool r(servers, history);
                Tick latest = 0;
                for (int i = 0; i < 4000; ++i) {
                    const Tick at = arrival(rng, latest, 8000);
                    const Tick service = rng() % 8 == 0 ? 0 : 1 + rng() % 500;
                    const ServerPool::Slot a = p.earliest(at, service), b = r.earliest(at, service);
                    REQUIRE(a.server == b.server);
                    REQUIRE(a.start == b.start);
                    if (rng() % 10 == 0) {  // a range that may overlap what is there: merges
                        const unsigned s = unsigned(rng() % servers);
                        const Tick from = at > 1000 ? at - rng() % 1000 : at;
                        const Tick to = from + rng() % 2000;
                        p.occupy(s, from, to);
                        r.occupy(s, from, to);
                    } else {
                        p.occupy(a.server, a.start, a.start + service);
                        r.occupy(b.server, b.start, b.start + service);
                    }
                    if (rng() % 50 == 0) {  // the SystemC time catches up
                        const Tick f = latest > 10'000 ? latest - 10'000 : 0;
                        p.forget_before(f);
                        r.floor = std::max(r.floor, f);
                    }
                    const unsigned s = unsigned(rng() % servers);
                    REQUIRE(p.free_at(s) == r.free_at(s));
                    REQUIRE(p.kept(s) == r.s[s].iv.size());
                    const Tick probe = at > 4000 ? at - rng() % 4000 : at;
                    REQUIRE(p.busy_at(probe) == r.busy_at(probe));
                }
            }
        }
    }
}

TEST_CASE("BandwidthServer: the fast paths match the plain reference, step by step", "[resource]") {
    for (uint64_t seed : {11u, 12u}) {
        for (double ps : {0.0, 10.0, 1000.0 / 3, 0.4}) {
            for (Tick history : {Tick(0), Tick(30'000), ServerPool::kDefaultHistory}) {
                std::mt19937_64 rng(seed);
                const Rate rate = Rate::ps_per_unit(ps);
                BandwidthServer b(rate, history);
                RefPool r(1, history);
                Tick last_end = 0;
                uint64_t credit = 0;  // the reference's carry, in 2^-32 ps
                Tick latest = 0;
                uint64_t units = 0;
                for (int i = 0; i < 4000; ++i) {
                    const Tick at = arrival(rng, latest, 6000);
                    // A third of the jobs repeat the amount before them (serve()'s kept time).
                    if (rng() % 3) units = rng() % 10 == 0 ? 0 : rng() % 300;
                    REQUIRE(b.earliest(at, units) == r.earliest(at, rate.time(units)).start);
                    // The exact work and the credit of a job continuing the previous one.
                    using Exact = unsigned __int128;
                    Exact e = Exact(units) * Exact(uint64_t(std::floor(ps * 0x1p32)));
                    const Tick start = r.earliest(at, rate.time(units)).start;
                    Tick end;
                    if (start == last_end && e <= credit) {
                        credit -= uint64_t(e);
                        end = start;
                    } else {
                        if (start == last_end) e -= credit;
                        const Tick service = Tick(e >> 32) + ((e & 0xffffffffu) != 0);
                        credit = uint64_t((Exact(service) << 32) - e);
                        end = last_end = start + service;
                        r.occupy(0, start, end);
                    }
                    const BandwidthServer::Span s = b.serve(at, units);
                    REQUIRE(s.start == start);
                    REQUIRE(s.end == end);
                    if (rng() % 50 == 0) {
                        const Tick f = latest > 10'000 ? latest - 10'000 : 0;
                        b.forget_before(f);
                        r.floor = std::max(r.floor, f);
                    }
                    REQUIRE(b.free_at() == r.free_at(0));
                    REQUIRE(b.kept() == r.s[0].iv.size());
                }
            }
        }
    }
}

// One job through a 1 ps-per-unit server and its one-server reference: the same start, the
// job's end (whole picoseconds, so no carry is involved), free time and kept intervals.
// Returns the job's end.
namespace {
Tick serve_both(BandwidthServer& b, RefPool& r, Tick at, uint64_t units) {
    const Tick start = r.earliest(at, units).start;
    const BandwidthServer::Span s = b.serve(at, units);
    REQUIRE(s.start == start);
    REQUIRE(s.end == start + units);
    r.occupy(0, start, start + units);
    REQUIRE(b.free_at() == r.free_at(0));
    REQUIRE(b.kept() == r.s[0].iv.size());
    return s.end;
}
}  // namespace

TEST_CASE("BandwidthServer: early jobs far behind the last interval match the reference",
          "[resource]") {
    // Many short busy intervals with gaps, then jobs arriving anywhere among them: find() steps
    // back over up to kScanBack intervals and bisects beyond, and both must agree with the
    // plain search (jobs that land just before the end, and jobs hundreds of intervals back).
    for (uint64_t seed : {21u, 22u, 23u}) {
        std::mt19937_64 rng(seed);
        BandwidthServer b(Rate::ps_per_unit(1.0));
        RefPool r(1, ServerPool::kDefaultHistory);
        Tick t = 0, last_end = 0;
        for (int i = 0; i < 3000; ++i) {
            Tick at;
            if (i % 2 || i < 600) {  // ahead: a new interval after a gap
                t += 20 + rng() % 40;
                at = t;
            } else {  // behind by 0 to ~600 intervals
                const Tick back = rng() % 4 ? rng() % 2000 : rng() % 30'000;
                at = t > back ? t - back : 0;
            }
            last_end = std::max(last_end, serve_both(b, r, at, 1 + rng() % 15));
        }
        CHECK(b.kept() > 2 * size_t(64));  // the test did reach far-back arrivals
        CHECK(b.free_at() == last_end);
    }
}

TEST_CASE("BandwidthServer: initiators taking turns by quantum match the reference", "[resource]") {
    // The platform's pattern under a quantum: each initiator runs its quantum in time order
    // after the others placed theirs, so its jobs land among theirs, each a few intervals
    // after the previous one, sometimes far ahead of it or behind it (beyond kScanBack from
    // the end: bisection).
    for (uint64_t seed : {31u, 32u, 33u}) {
        std::mt19937_64 rng(seed);
        BandwidthServer b(Rate::ps_per_unit(1.0));
        RefPool r(1, ServerPool::kDefaultHistory);
        const Tick quantum = 20'000;
        for (Tick q0 = 0; q0 < 40 * quantum; q0 += quantum) {
            b.forget_before(q0 > quantum ? q0 - quantum : 0);
            r.floor = std::max(r.floor, q0 > quantum ? q0 - quantum : 0);
            for (int initiator = 0; initiator < 4; ++initiator) {
                Tick at = q0 + rng() % 200;
                while (at < q0 + quantum) {
                    serve_both(b, r, at, 1 + rng() % 40);
                    const unsigned k = unsigned(rng() % 16);
                    if (k == 0 && at > q0 + 6000)  // back, past many intervals
                        at -= 2000 + rng() % 4000;
                    else  // ahead: mostly near, now and then far
                        at += k == 1 ? 3000 + rng() % 5000 : 20 + rng() % 200;
                }
            }
        }
        CHECK(b.kept() > size_t(100));
    }
}
