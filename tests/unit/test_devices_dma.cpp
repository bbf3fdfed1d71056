// The plain-C++ core of the DMA devices: request splitting, the tag/issue-rate scheduler,
// parameter checks, and the dma-bench address sequence.
#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/config.h"
#include "devices/dma_bench_params.h"
#include "devices/dma_engine_params.h"
#include "devices/dma_issue_scheduler.h"
#include "devices/dma_requests.h"

using namespace iommusim;

namespace {

std::vector<uint32_t> split(Addr a, uint64_t len, uint32_t max) {
    std::vector<uint32_t> out;
    while (len) {
        const uint32_t n = dma_piece_len(a, len, max);
        out.push_back(n);
        a += n, len -= n;
    }
    return out;
}

// Names declared by a params struct's visit().
template <typename P>
std::vector<std::string> names(P p) {
    std::vector<std::string> out;
    p.visit([&](const char* n, auto&, const char*, const char*, auto, auto) { out.push_back(n); });
    return out;
}

// The scheduler's rules, plainly: each tag's free time and when it became free; a request
// takes the tag free first (ties: the one freed first).
struct RefScheduler {
    std::vector<Tick> free;
    std::vector<uint64_t> freed;  // order of becoming free
    uint64_t seq;
    Tick last = 0;
    unsigned tag = 0;
    BandwidthServer slots;
    bool rated;
    RefScheduler(unsigned tags, double rate)
        : free(tags, 0),
          freed(tags),
          seq(tags),
          slots(Rate::ps_per_unit(rate > 0 ? 1e6 / rate : 0), 0),
          rated(rate > 0) {
        for (unsigned i = 0; i < tags; ++i) freed[i] = i;
    }
    DmaIssueScheduler::Grant grant(Tick ready) {
        Tick at = std::max(ready, last);
        const Tick base = at;
        auto limit = DmaIssueScheduler::Limit::None;
        if (rated && slots.earliest(at, 1) > at)
            at = slots.earliest(at, 1), limit = DmaIssueScheduler::Limit::Rate;
        tag = 0;
        for (unsigned i = 1; i < free.size(); ++i)
            if (free[i] < free[tag] || (free[i] == free[tag] && freed[i] < freed[tag])) tag = i;
        if (free[tag] > at) at = free[tag], limit = DmaIssueScheduler::Limit::Tag;
        if (rated) slots.serve(at, 1);
        last = at;
        return {uint16_t(tag), at, limit, at - base};
    }
    void complete(Tick done) {
        if (done <= free[tag] || done <= last) return;
        free[tag] = done;
        freed[tag] = seq++;
    }
    unsigned busy_at(Tick t) const {
        unsigned n = 0;
        for (const Tick f : free) n += f > t;
        return n;
    }
};

}  // namespace

TEST_CASE("DMA splitting: greedy up to the maximum, never across 4 KiB", "[devices]") {
    CHECK(split(0, 4096, 512) == std::vector<uint32_t>(8, 512));
    CHECK(split(0x1f00, 1024, 512) == std::vector<uint32_t>{256, 512, 256});
    CHECK(split(0xff0, 1000, 256) == std::vector<uint32_t>{16, 256, 256, 256, 216});
    CHECK(split(0x10, 64, 4096) == std::vector<uint32_t>{64});
    CHECK(split(0xfc0, 128, 4096) == std::vector<uint32_t>{64, 64});
    CHECK(split(0, 0, 256).empty());
    CHECK(dma_piece_count(0x1f00, 10000, 512) == 21);
    CHECK(dma_piece_count(0, uint64_t(1) << 20, 256) == 4096);
    // The last 4 KiB of the address space does not wrap.
    CHECK(split(~Addr(0) - 4095, 4096, 4096) == std::vector<uint32_t>{4096});
}

TEST_CASE("Issue scheduler: T tags at latency L give T/L requests per unit time", "[devices]") {
    const Tick L = 500'000;
    for (unsigned tags : {1u, 3u, 8u, 32u}) {
        DmaIssueScheduler s(tags, 0);
        Tick last = 0;
        for (unsigned i = 0; i < 10 * tags; ++i) {
            const auto g = s.grant(0);
            CHECK(g.at == Tick(i / tags) * L);
            CHECK(g.tag < tags);
            s.complete(g.at + L);
            last = g.at + L;
        }
        CHECK(last == 10 * L);
        CHECK(s.busy_at(last - 1) == tags);
        CHECK(s.busy_at(last) == 0);
    }
}

TEST_CASE("Issue scheduler: a tag is reused only after its completion", "[devices]") {
    DmaIssueScheduler s(4, 0);
    std::vector<Tick> free(4, 0);
    Tick ready = 0;
    for (unsigned i = 0; i < 1000; ++i) {
        const auto g = s.grant(ready);
        REQUIRE(g.at >= free[g.tag]);
        REQUIRE(g.at >= ready);
        const Tick done = g.at + 1000 + (i * 7919) % 5000;  // varying latencies
        free[g.tag] = done;
        s.complete(done);
        ready += 300;
    }
}

TEST_CASE("Issue scheduler: the issue rate spaces requests, exactly on average", "[devices]") {
    DmaIssueScheduler s(1024, 250);  // 4 ns
    for (unsigned i = 0; i < 100; ++i) {
        const auto g = s.grant(0);
        CHECK(g.at == Tick(i) * 4000);
        CHECK(g.limit == (i ? DmaIssueScheduler::Limit::Rate : DmaIssueScheduler::Limit::None));
        s.complete(g.at + 100'000);
    }
    DmaIssueScheduler f(1024, 300);  // 3333.33 ps
    Tick at = 0;
    for (unsigned i = 0; i <= 3000; ++i) {
        at = f.grant(0).at;
        f.complete(at + 1);
    }
    CHECK(at == 10'000'000);
    // A late request restarts the slot sequence from its own issue time.
    DmaIssueScheduler r(8, 100);  // 10 ns
    auto g = r.grant(0);
    CHECK(g.at == 0);
    r.complete(1);
    g = r.grant(25'000);
    CHECK(g.at == 25'000);
    r.complete(25'001);
    g = r.grant(0);
    CHECK(g.at == 35'000);
    CHECK(g.stalled == 10'000);
}

TEST_CASE("Issue scheduler: requests issue in order and report what held them", "[devices]") {
    DmaIssueScheduler s(2, 0);
    auto g = s.grant(1000);
    CHECK(g.at == 1000);
    s.complete(5000);
    g = s.grant(0);  // earlier ready time: still not before the previous issue
    CHECK(g.at == 1000);
    CHECK(g.limit == DmaIssueScheduler::Limit::None);
    s.complete(6000);
    g = s.grant(2000);
    CHECK(g.at == 5000);
    CHECK(g.limit == DmaIssueScheduler::Limit::Tag);
    CHECK(g.stalled == 3000);
}

TEST_CASE("Issue scheduler: the same grants and tags as a plain reference", "[devices]") {
    // Random tag counts, rates, ready times and latencies (coarse ones give many ties, zero
    // ones leave the tag at the front), long enough for the tags' window to slide many times.
    for (uint64_t seed : {1u, 2u, 3u, 4u, 5u, 6u}) {
        std::mt19937_64 rng(seed);
        const unsigned tags = unsigned(rng() % 70) + 1;
        const double rate = seed % 3 == 0 ? 0.0 : double(rng() % 400 + 1);
        const Tick grain = seed % 2 ? 1 : 10'000;
        DmaIssueScheduler s(tags, rate);
        RefScheduler ref(tags, rate);
        Tick ready = 0;
        for (unsigned i = 0; i < 20000; ++i) {
            ready += (rng() % 4 == 0 ? rng() % 50'000 : 0) / grain * grain;
            const auto g = s.grant(ready);
            const auto r = ref.grant(ready);
            INFO("seed " << seed << " tags " << tags << " request " << i);
            REQUIRE(g.tag == r.tag);
            REQUIRE(g.at == r.at);
            REQUIRE(g.limit == r.limit);
            REQUIRE(g.stalled == r.stalled);
            const Tick latency = rng() % 8 == 0 ? 0 : rng() % 2'000'000 / grain * grain;
            s.complete(g.at + latency);
            ref.complete(g.at + latency);
            const Tick t = g.at + rng() % 1'000'000;
            REQUIRE(s.busy_at(t) == ref.busy_at(t));
        }
    }
}

TEST_CASE("DMA engine parameters: declared and checked", "[devices]") {
    CHECK(names(DmaEngineParams{}) ==
          std::vector<std::string>{"tags", "issue_rate", "mps", "mrrs"});
    DmaEngineParams p;
    CHECK(p.valid());
    std::string why;
    p.mps = 384;
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("mps") != std::string::npos);
    p = {};
    p.mrrs = 8192;
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("mrrs") != std::string::npos);
    p = {};
    p.tags = 0;
    CHECK_FALSE(p.valid());
    p = {};
    p.issue_rate = -1;
    CHECK_FALSE(p.valid());
}

TEST_CASE("dma-bench parameters: units, stop conditions, names", "[devices]") {
    CHECK(names(DmaBenchParams{}).size() == 21);  // 14 of its own, 7 of its ATS function
    DmaBenchParams p;
    CHECK(p.valid());
    p.ats.atc_entries = 48, p.ats.atc_ways = 32;
    std::string ats_why;
    CHECK_FALSE(p.valid(&ats_why));
    CHECK(ats_why.find("ats.atc_ways") != std::string::npos);
    p = {};
    CHECK(p.valid());
    CHECK(p.unit_bytes() == 64);
    p.size = 100, p.offset = 8;
    CHECK(p.unit_bytes() == 128);
    p.window = 2048;
    CHECK(p.units() == 16);
    p.window = 100;
    std::string why;
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("window") != std::string::npos);
    p = {};
    p.count = 0;
    CHECK_FALSE(p.valid());
    p.duration_ns = 1000;
    CHECK(p.valid());
    p.bus = 1, p.device = 2, p.function = 3;
    CHECK(p.requester().rid == 0x0113);
    CHECK(parse_dma_op("write") == DmaOp::Write);
    CHECK(parse_dma_pattern("sequential") == DmaPattern::Sequential);
    CHECK(parse_dma_pattern("rand") == DmaPattern::Random);
    CHECK_FALSE(parse_dma_op("copy"));
    CHECK(std::string(to_string(DmaPattern::Random)) == "random");
}

TEST_CASE("dma-bench addresses: sequential wraps, random covers and reproduces", "[devices]") {
    DmaBenchParams p;
    p.size = 256, p.window = 1024, p.pattern = DmaPattern::Sequential;
    DmaBenchPattern seq(p, 0x1000);
    for (int i = 0; i < 9; ++i) CHECK(seq.next() == 0x1000 + Addr(i % 4) * 256);

    p.pattern = DmaPattern::Random, p.size = 64, p.offset = 4, p.window = 1 << 16;
    const uint64_t units = p.units();  // 68 -> 128-byte units: 512
    REQUIRE(units == 512);
    DmaBenchPattern a(p, 0x10'0000), b(p, 0x10'0000);
    p.seed = 99;
    DmaBenchPattern c(p, 0x10'0000);
    std::set<Addr> seen;
    bool same = true, differ = false, inside = true;
    for (int i = 0; i < 20000; ++i) {
        const Addr x = a.next();
        same &= x == b.next();
        differ |= x != c.next();
        inside &= x >= 0x10'0000 && x < 0x11'0000 && (x - 0x10'0004) % 128 == 0;
        seen.insert(x);
    }
    CHECK(same);
    CHECK(differ);
    CHECK(inside);
    CHECK(seen.size() == units);
}

TEST_CASE("DMA device parameters bind to the configuration by name", "[devices]") {
    DmaBenchParams b;
    DmaEngineParams e;
    ParamRegistry reg;
    reg.bind("system.dev0", b);
    reg.bind("system.dev0.engine", e);
    Config c;
    c.load_string(
        "[system.dev0]\nop = write\npattern = sequential\nwindow = 256K\nsize = 2K\n"
        "requester.bus = 3\n[system.dev0.engine]\ntags = 64\nissue_rate = 312.5\n",
        "test.ini");
    reg.apply(c);
    CHECK(b.op == DmaOp::Write);
    CHECK(b.pattern == DmaPattern::Sequential);
    CHECK(b.window == 256 * 1024);
    CHECK(b.size == 2048);
    CHECK(b.bus == 3);
    CHECK(e.tags == 64);
    CHECK(e.issue_rate == 312.5);
    Config bad;
    bad.load_string("[system.dev0]\npattern = fractal\n", "bad.ini");
    CHECK_THROWS_AS(reg.apply(bad), ConfigError);
}

TEST_CASE("dma-bench patterns: strided and zipf", "[devices]") {
    DmaBenchParams p;
    p.size = 64;
    p.window = 64 * 1024;  // 1024 units of 64 B
    p.pattern = DmaPattern::Strided;
    p.stride = 4096;  // 64 units
    DmaBenchPattern st(p, 0x10000);
    CHECK(st.next() == 0x10000);
    CHECK(st.next() == 0x10000 + 4096);
    for (int i = 0; i < 14; ++i) st.next();
    CHECK(st.next() == 0x10000);  // 16 strides of 4 KiB wrap a 64 KiB window

    p.pattern = DmaPattern::Zipf;
    p.zipf_s = 1.2;
    DmaBenchPattern z(p, 0);
    std::vector<uint64_t> count(1024, 0);
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
        Addr a = z.next();
        REQUIRE(a < p.window);
        ++count[a / 64];
    }
    // Rank k has probability k^-s / H(N, s): check the head against the exact weights.
    double norm = 0;
    for (int k = 1; k <= 1024; ++k) norm += std::pow(k, -1.2);
    for (int k : {1, 2, 10}) {
        const double expect = n * std::pow(k, -1.2) / norm;
        CHECK(std::abs(double(count[k - 1]) - expect) < 5 * std::sqrt(expect));
    }
    CHECK(count[0] > count[1]);
    CHECK(count[1] > count[9]);
    DmaBenchPattern z2(p, 0);
    DmaBenchPattern z3(p, 0);
    for (int i = 0; i < 100; ++i) REQUIRE(z2.next() == z3.next());  // same seed, same sequence
}
