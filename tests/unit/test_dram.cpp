// DRAM timing core: exact latency of an isolated access, channel bandwidth under saturation,
// line interleaving across channels, queueing, the walk LLC-hit fraction and its seed.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "memory/dram.h"

using namespace iommusim;

namespace {

constexpr Tick kNs = kTicksPerNs;

// 16 GB/s per channel makes a 64-byte line exactly 4 ns.
DramParams simple(uint32_t channels = 4) {
    DramParams p;
    p.latency_ns = 80;
    p.channels = channels;
    p.channel_gbps = 16.0;
    p.line_bytes = 64;
    return p;
}

uint64_t count(StatGroup& g, const std::string& name) {
    return g.counter(name, "").value();
}

// Bytes per ns (= GB/s) achieved by `bytes` whose transfers ended at `done` - latency.
double gbps(uint64_t bytes, Tick transfer) {
    return double(bytes) * double(kNs) / double(transfer);
}

}  // namespace

TEST_CASE("dram: an isolated access costs its lines' transfer plus the fixed latency", "[dram]") {
    StatGroup stats("mem");
    DramTiming d(simple(), stats);
    REQUIRE(d.line_ticks() == 4 * kNs);
    const Tick t0 = 1000 * kNs;

    CHECK(d.access(0x1000, 64, false, false, t0) == t0 + 4 * kNs + 80 * kNs);
    // A partial line still moves a whole line.
    CHECK(d.access(0x2008, 8, true, false, 2 * t0) == 2 * t0 + 84 * kNs);
    // Two lines on two channels transfer in parallel.
    CHECK(d.access(0x3020, 64, false, false, 3 * t0) == 3 * t0 + 84 * kNs);
    // Eight lines over four channels: two per channel, back to back.
    CHECK(d.access(0x4000, 512, false, false, 4 * t0) == 4 * t0 + 88 * kNs);
    // Zero length still goes to memory (one line).
    CHECK(d.access(0x5000, 0, false, false, 5 * t0) == 5 * t0 + 84 * kNs);

    CHECK(count(stats, "reads") == 4);
    CHECK(count(stats, "writes") == 1);
    CHECK(count(stats, "bytes_read") == 64 + 64 + 512);
    CHECK(count(stats, "bytes_written") == 8);
    uint64_t lines = 0;
    for (int c = 0; c < 4; ++c) {
        StatGroup& ch = stats.child("ch" + std::to_string(c));
        lines += count(ch, "reads") + count(ch, "writes");
        CHECK(count(ch, "busy_ps") == (count(ch, "reads") + count(ch, "writes")) * 4 * kNs);
    }
    CHECK(lines == 1 + 1 + 2 + 8 + 1);
    const Histogram& lat = stats.histogram("latency", "ns", "");
    CHECK(lat.count() == 5);
    CHECK(lat.min() == 84);
    CHECK(lat.max() == 88);
    CHECK(stats.histogram("queueing", "ns", "").max() == 0);
}

TEST_CASE("dram: lines interleave across channels by the address bits above the line", "[dram]") {
    StatGroup stats("mem");
    DramTiming d(simple(4), stats);
    CHECK(d.channel_of(0x0) == 0);
    CHECK(d.channel_of(0x3f) == 0);
    CHECK(d.channel_of(0x40) == 1);
    CHECK(d.channel_of(0xc0) == 3);
    CHECK(d.channel_of(0x100) == 0);
    d.access(0x40, 64 * 6, false, false, 0);  // lines 1..6: channels 1,2,3,0,1,2
    const uint64_t want[4] = {1, 2, 2, 1};
    for (int c = 0; c < 4; ++c)
        CHECK(count(stats.child("ch" + std::to_string(c)), "reads") == want[c]);
}

TEST_CASE("dram: back-to-back lines saturate a channel at the configured bandwidth", "[dram]") {
    // 19.2 GB/s is not a whole number of ps per line: the channel carries the fraction, so
    // a long run still achieves the exact rate.
    for (double bw : {16.0, 19.2, 25.6, 3.3}) {
        DramParams p = simple(1);
        p.channel_gbps = bw;
        StatGroup stats("mem");
        DramTiming d(p, stats);
        constexpr uint64_t kLines = 100000;
        Tick done = 0;
        for (uint64_t i = 0; i < kLines; ++i) done = d.access(i * 64, 64, i & 1, false, 0);
        const Tick transfer = done - 80 * kNs;
        INFO("bandwidth " << bw);
        CHECK(std::abs(gbps(kLines * 64, transfer) - bw) / bw < 1e-6);
        // The last access waited for all the others.
        const Histogram& q = stats.histogram("queueing", "ns", "");
        CHECK(q.count() == kLines);
        CHECK(q.max() + 1 >= (transfer - d.line_ticks()) / kNs);
    }
}

TEST_CASE("dram: arrivals slower than the channel never queue", "[dram]") {
    StatGroup stats("mem");
    DramTiming d(simple(1), stats);
    int late = 0;
    for (Tick i = 0; i < 1000; ++i)
        late += d.access(0, 64, false, false, i * 5 * kNs) != i * 5 * kNs + 84 * kNs;
    CHECK(late == 0);
    CHECK(stats.histogram("queueing", "ns", "").max() == 0);
    // Two accesses to the same channel at the same time: the second waits one line.
    CHECK(d.access(0, 64, false, false, 10000 * kNs) == 10084 * kNs);
    CHECK(d.access(0x100, 64, false, false, 10000 * kNs) == 10088 * kNs);
    CHECK(stats.histogram("queueing", "ns", "").max() == 4);
}

TEST_CASE("dram: single lines go to line mod channels, and a channel's bytes are its lines",
          "[dram]") {
    // Powers of two take the line's channel by mask, other counts by division: both must agree
    // with line % channels (one channel included), and bytes count whole lines either way.
    for (uint32_t n : {1u, 3u, 4u, 6u, 8u}) {
        StatGroup stats("mem");
        DramTiming d(simple(n), stats);
        std::vector<uint64_t> reads(n), writes(n);
        for (uint64_t line = 0; line < 40; ++line) {
            const Addr a = line * 64 + line % 7;  // inside the line, short enough to stay in it
            const bool w = line % 3 == 0;
            REQUIRE(d.channel_of(a) == line % n);
            d.access(a, 64 - line % 7, w, false, line * 1000 * kNs);
            ++(w ? writes : reads)[line % n];
        }
        d.access(0x40, 0, true, false, 50'000 * kNs);  // zero length: one line, on line 1's
        ++writes[1 % n];
        for (uint32_t c = 0; c < n; ++c) {
            INFO(n << " channels, ch" << c);
            StatGroup& ch = stats.child("ch" + std::to_string(c));
            CHECK(count(ch, "reads") == reads[c]);
            CHECK(count(ch, "writes") == writes[c]);
            CHECK(count(ch, "bytes") == 64 * (reads[c] + writes[c]));
        }
    }
}

TEST_CASE("dram: a large access spread over N channels gets N times the bandwidth", "[dram]") {
    constexpr uint64_t kBytes = 1 << 20;
    double one = 0;
    for (uint32_t n : {1u, 2u, 4u, 8u, 6u}) {
        StatGroup stats("mem");
        DramTiming d(simple(n), stats);
        const Tick transfer = d.access(0, kBytes, false, false, 0) - 80 * kNs;
        const double bw = gbps(kBytes, transfer);
        if (n == 1) one = bw;
        INFO(n << " channels: " << bw << " GB/s");
        CHECK(bw == Approx(16.0 * n).epsilon(0.01));
        CHECK(bw / one == Approx(double(n)).epsilon(0.01));
        for (uint32_t c = 0; c < n; ++c)  // spread evenly, to within one line
            CHECK(std::abs(double(count(stats.child("ch" + std::to_string(c)), "bytes")) -
                           double(kBytes) / n) <= 64);
    }
    // Many concurrent single-line DMAs at consecutive addresses spread the same way.
    StatGroup stats("mem");
    DramTiming d(simple(4), stats);
    Tick done = 0;
    for (uint64_t i = 0; i < 40000; ++i)
        done = std::max(done, d.access(i * 64, 64, true, false, 0));
    CHECK(gbps(40000 * 64, done - 80 * kNs) == Approx(64.0).epsilon(1e-6));
}

TEST_CASE("dram: walk reads hit the LLC at the configured fraction, reproducibly", "[dram]") {
    DramParams p = simple();
    p.walk_llc_hit = 0.3;
    p.llc_latency_ns = 20;
    constexpr uint64_t kN = 200000;
    auto run = [&](uint64_t seed, std::vector<Tick>* out) {
        StatGroup stats("mem");
        DramTiming d(p, stats, seed);
        uint64_t fast = 0, odd = 0;
        for (uint64_t i = 0; i < kN; ++i) {
            // Hits take exactly the LLC latency; misses go to DRAM.
            const Tick at = i * 100 * kNs;
            const Tick done = d.access(0x1000 + (i % 512) * 8, 8, false, true, at);
            fast += done - at == 20 * kNs;
            odd += done - at != 20 * kNs && done - at != 84 * kNs;
            if (out) out->push_back(done);
        }
        CHECK(odd == 0);
        CHECK(fast == count(stats, "llc_hits"));
        CHECK(count(stats, "walk_reads") == kN);
        CHECK(stats.histogram("walk_latency", "ns", "").count() == kN);
        return count(stats, "llc_hits");
    };
    std::vector<Tick> a, b, c;
    const uint64_t hits = run(7, &a);
    // Binomial: the standard deviation of the hit count is sqrt(n p (1-p)) ~ 205; allow 5.
    const double sd = std::sqrt(double(kN) * 0.3 * 0.7);
    CHECK(std::abs(double(hits) - 0.3 * kN) < 5 * sd);
    CHECK(run(7, &b) == hits);
    CHECK(a == b);  // same seed, same decisions
    run(8, &c);
    CHECK(a != c);  // another seed, other decisions

    // Data reads and walk writes never hit; 0 and 1 are exact.
    StatGroup stats("mem");
    DramTiming d(p, stats);
    int slow = 0;
    for (uint64_t i = 0; i < 1000; ++i) {
        slow += d.access(i * 64, 64, false, false, i * 100 * kNs) != i * 100 * kNs + 84 * kNs;
        slow +=
            d.access(i * 64, 8, true, true, i * 100 * kNs + 50 * kNs) != i * 100 * kNs + 134 * kNs;
    }
    CHECK(slow == 0);
    CHECK(count(stats, "llc_hits") == 0);
    CHECK(count(stats, "walk_writes") == 1000);
    CHECK(count(stats, "walk_reads") == 0);
    for (double f : {0.0, 1.0}) {
        p.walk_llc_hit = f;
        StatGroup s("mem");
        DramTiming e(p, s);
        for (uint64_t i = 0; i < 1000; ++i) e.access(i * 8, 8, false, true, i * 100 * kNs);
        CHECK(count(s, "llc_hits") == (f == 1.0 ? 1000u : 0u));
    }
}

TEST_CASE("dram: parameters declare valid ranges and out-of-range values are refused", "[dram]") {
    DramParams p;
    std::vector<std::string> names;
    p.visit(
        [&](const char* name, auto& field, const char* unit, const char* doc, auto lo, auto hi) {
            names.push_back(name);
            CHECK(std::string(doc).size() > 0);
            CHECK(unit != nullptr);
            CHECK(double(field) >= double(lo));
            CHECK(double(field) <= double(hi));
        });
    CHECK(names.size() == 6);
    CHECK(p.valid());

    std::string why;
    p.channels = 0;
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("channels") != std::string::npos);
    StatGroup stats("mem");
    CHECK_THROWS_AS(DramTiming(p, stats), std::invalid_argument);
    p = DramParams{};
    p.walk_llc_hit = 1.5;
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("walk_llc_hit") != std::string::npos);
    p.walk_llc_hit = std::nan("");
    CHECK_FALSE(p.valid());
}
