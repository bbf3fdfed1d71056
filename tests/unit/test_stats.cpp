#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/stats.h"

using namespace iommusim;

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// Percentile of a sorted sample set by the histogram's definition: the value of rank
// ceil(n * p), at least rank 1. p is given in units of 0.01 percent so the rank is exact.
uint64_t reference(const std::vector<uint64_t>& sorted, uint64_t p_bp) {
    const uint64_t n = sorted.size();
    uint64_t rank = (n * p_bp + 9999) / 10000;
    if (rank == 0) rank = 1;
    return sorted[rank - 1];
}

// Percentiles to compare: a sweep plus the ones the output reports.
std::vector<uint64_t> percentiles_bp() {
    std::vector<uint64_t> ps;
    for (uint64_t p = 0; p <= 10000; p += 37) ps.push_back(p);
    for (uint64_t p : {1, 5000, 9000, 9900, 9990, 9999, 10000}) ps.push_back(p);
    return ps;
}

void require_same(const Histogram& a, const Histogram& b) {
    REQUIRE(a.count() == b.count());
    REQUIRE(a.sum() == b.sum());
    REQUIRE(a.min() == b.min());
    REQUIRE(a.max() == b.max());
    for (uint64_t p : percentiles_bp()) REQUIRE(a.percentile(p / 100.0) == b.percentile(p / 100.0));
}

struct Distribution {
    const char* name;
    std::function<uint64_t(std::mt19937_64&)> draw;
};

std::vector<Distribution> distributions() {
    return {
        {"uniform small",
         [](std::mt19937_64& g) { return std::uniform_int_distribution<uint64_t>(0, 200)(g); }},
        {"uniform 1e6",
         [](std::mt19937_64& g) { return std::uniform_int_distribution<uint64_t>(0, 1000000)(g); }},
        {"exponential",
         [](std::mt19937_64& g) {
             return uint64_t(std::exponential_distribution<double>(1.0 / 5000.0)(g));
         }},
        {"lognormal",
         [](std::mt19937_64& g) {
             return uint64_t(std::lognormal_distribution<double>(8.0, 2.5)(g));
         }},
        // Pareto with alpha 1.1: heavy tail, capped so the double fits in 64 bits.
        {"pareto",
         [](std::mt19937_64& g) {
             const double u = std::uniform_real_distribution<double>(0.0, 1.0)(g);
             const double x = 100.0 / std::pow(1.0 - u, 1.0 / 1.1);
             return x >= 1.8e19 ? uint64_t(1) << 63 : uint64_t(x);
         }},
        {"full 64-bit",
         [](std::mt19937_64& g) {
             const uint64_t v = g();  // separate statements: argument order is unspecified
             return v >> (g() % 64);
         }},
    };
}

}  // namespace

TEST_CASE("Histogram starts empty", "[core][stats]") {
    Histogram h;
    REQUIRE(h.count() == 0);
    REQUIRE(h.sum() == 0);
    REQUIRE(h.min() == 0);
    REQUIRE(h.max() == 0);
    REQUIRE(h.mean() == 0.0);
    REQUIRE(h.percentile(0) == 0);
    REQUIRE(h.percentile(50) == 0);
    REQUIRE(h.percentile(100) == 0);
}

TEST_CASE("Histogram percentiles are exact on small values", "[core][stats]") {
    Histogram h;
    for (uint64_t v = 1; v <= 100; ++v) h.add(v);
    REQUIRE(h.count() == 100);
    REQUIRE(h.sum() == 5050);
    REQUIRE(h.min() == 1);
    REQUIRE(h.max() == 100);
    REQUIRE(h.mean() == Approx(50.5));
    REQUIRE(h.percentile(0) == 1);
    REQUIRE(h.percentile(1) == 1);
    REQUIRE(h.percentile(1.5) == 2);
    REQUIRE(h.percentile(50) == 50);
    REQUIRE(h.percentile(90) == 90);
    REQUIRE(h.percentile(99) == 99);
    REQUIRE(h.percentile(99.9) == 100);
    REQUIRE(h.percentile(100) == 100);
    // Out-of-range p is clamped rather than read out of bounds.
    REQUIRE(h.percentile(-5) == 1);
    REQUIRE(h.percentile(250) == 100);

    SECTION("every percentile of 0..127 matches the sorted reference") {
        Histogram all;
        std::vector<uint64_t> ref;
        for (uint64_t v = 0; v < 128; ++v)
            for (uint64_t k = 0; k <= v % 3; ++k) {
                all.add(v);
                ref.push_back(v);
            }
        for (uint64_t p : percentiles_bp()) REQUIRE(all.percentile(p / 100.0) == reference(ref, p));
    }
}

TEST_CASE("Histogram p99.9 of 1000 samples is rank 999", "[core][stats]") {
    // 0.999 * 1000 is not exactly 999 in floating point; the rank must still be 999.
    Histogram h;
    for (uint64_t v = 1; v <= 1000; ++v) h.add(v < 1000 ? 5 : 100);
    REQUIRE(h.percentile(99.9) == 5);
    REQUIRE(h.percentile(100) == 100);
}

TEST_CASE("Histogram weighted add equals repeated add", "[core][stats]") {
    Histogram a, b;
    for (uint64_t v : {0ull, 3ull, 77ull, 1000ull, 123456789ull}) {
        a.add(v, 5);
        for (int i = 0; i < 5; ++i) b.add(v);
    }
    a.add(42, 0);  // zero weight changes nothing, not even min
    require_same(a, b);
    REQUIRE(a.count() == 25);
}

TEST_CASE("Histogram bucket bounds around powers of two", "[core][stats]") {
    for (unsigned k = 0; k < 64; ++k) {
        const uint64_t p2 = uint64_t(1) << k;
        for (uint64_t v : {p2 - 1, p2, p2 + 1}) {
            INFO("value " << v);
            Histogram h;
            h.add(v);
            h.add(kMax);
            const uint64_t up = h.percentile(50);  // upper bound of v's bucket
            REQUIRE(up >= v);
            REQUIRE(up - v <= v >> Histogram::kSubBits);
            if (v < (uint64_t(1) << (Histogram::kSubBits + 1))) REQUIRE(up == v);
            if (up == kMax) continue;
            // up is the last value of its bucket: up + 1 starts the next one.
            Histogram next;
            next.add(up + 1);
            next.add(kMax);
            REQUIRE(next.percentile(50) > up);
        }
    }
    Histogram top;
    top.add(kMax);
    REQUIRE(top.percentile(50) == kMax);
    REQUIRE(top.min() == kMax);
    REQUIRE(top.max() == kMax);
}

TEST_CASE("Histogram relative error is bounded against a sorted reference", "[core][stats]") {
    for (const Distribution& d : distributions()) {
        INFO("distribution " << d.name);
        std::mt19937_64 rng(0x5eed0000 + std::string(d.name).size());
        Histogram h;
        std::vector<uint64_t> ref;
        uint64_t sum = 0;
        for (int i = 0; i < 100003; ++i) {
            const uint64_t v = d.draw(rng);
            h.add(v);
            ref.push_back(v);
            sum += v;
        }
        std::sort(ref.begin(), ref.end());
        REQUIRE(h.count() == ref.size());
        REQUIRE(h.sum() == sum);
        REQUIRE(h.min() == ref.front());
        REQUIRE(h.max() == ref.back());
        for (uint64_t p : percentiles_bp()) {
            const uint64_t want = reference(ref, p), got = h.percentile(p / 100.0);
            INFO("p" << p / 100.0 << " want " << want << " got " << got);
            // Never below the true value, and above it by less than 1/2^kSubBits.
            REQUIRE(got >= want);
            REQUIRE(got - want <= want >> Histogram::kSubBits);
            if (want < 128) REQUIRE(got == want);
        }
        REQUIRE(h.percentile(100) == ref.back());
    }
}

TEST_CASE("Histogram merge equals adding everything to one", "[core][stats]") {
    std::mt19937_64 rng(42);
    for (const Distribution& d : distributions()) {
        INFO("distribution " << d.name);
        Histogram all, parts[3];
        for (int i = 0; i < 20000; ++i) {
            const uint64_t v = d.draw(rng);
            all.add(v);
            parts[rng() % 3].add(v);
        }
        Histogram merged;
        for (const Histogram& p : parts) merged.merge(p);
        require_same(merged, all);

        Histogram empty;
        merged.merge(empty);  // merging nothing changes nothing, min included
        require_same(merged, all);
        empty.merge(all);
        require_same(empty, all);
    }
}

TEST_CASE("Histogram including parts reads as one with every sample added", "[core][stats]") {
    std::mt19937_64 rng(7);
    for (const Distribution& d : distributions()) {
        INFO("distribution " << d.name);
        Histogram all, own, parts[2], total;
        total.include({&parts[0], &parts[1]});
        require_same(total, Histogram());  // empty parts: empty, min 0
        for (int i = 0; i < 20000; ++i) {
            const uint64_t v = d.draw(rng);
            all.add(v);
            const unsigned k = unsigned(rng() % 4);
            (k < 2 ? parts[k] : total).add(v);  // own samples count too
        }
        require_same(total, all);
        Histogram merged;
        merged.merge(total);  // merging a histogram with parts takes its parts' samples
        require_same(merged, all);
        total.reset();  // own samples only: the parts keep theirs
        for (Histogram& p : parts) p.reset();
        require_same(total, Histogram());
        parts[1].add(9);
        Histogram nine;
        nine.add(9);
        require_same(total, nine);
    }
}

TEST_CASE("Histogram reset returns to empty", "[core][stats]") {
    Histogram h;
    for (uint64_t v : {5ull, 500ull, 5000000ull}) h.add(v);
    h.reset();
    REQUIRE(h.count() == 0);
    REQUIRE(h.sum() == 0);
    REQUIRE(h.min() == 0);
    REQUIRE(h.max() == 0);
    REQUIRE(h.percentile(50) == 0);
    h.add(7);
    Histogram fresh;
    fresh.add(7);
    require_same(h, fresh);
}

TEST_CASE("Histogram add, merge and reset in random order match a reference", "[core][stats]") {
    // add() compares with a bucket count kept apart from the buckets: interleave every way the
    // buckets change (growth, a merge from more or fewer buckets, reset) and compare with a
    // histogram built afresh from the samples, and with the samples themselves.
    std::mt19937_64 rng(0x5ca1e);
    for (const Distribution& d : distributions()) {
        INFO("distribution " << d.name);
        Histogram h[2];
        std::vector<uint64_t> ref[2];
        for (int i = 1; i <= 6000; ++i) {
            const unsigned k = unsigned(rng() % 2);
            const uint64_t op = rng() % 100;
            if (op < 96) {
                const uint64_t v = d.draw(rng);
                h[k].add(v);
                ref[k].push_back(v);
            } else if (op < 98) {
                h[k].merge(h[1 - k]);
                ref[k].insert(ref[k].end(), ref[1 - k].begin(), ref[1 - k].end());
            } else {
                h[k].reset();
                ref[k].clear();
            }
            if (i % 500) continue;
            for (unsigned j = 0; j < 2; ++j) {
                INFO("step " << i << " histogram " << j);
                Histogram fresh;
                uint64_t sum = 0;
                for (uint64_t v : ref[j]) {
                    fresh.add(v);
                    sum += v;
                }
                require_same(h[j], fresh);
                REQUIRE(h[j].count() == ref[j].size());
                REQUIRE(h[j].sum() == sum);
                if (ref[j].empty()) continue;
                REQUIRE(h[j].min() == *std::min_element(ref[j].begin(), ref[j].end()));
                REQUIRE(h[j].max() == *std::max_element(ref[j].begin(), ref[j].end()));
            }
        }
    }
}

TEST_CASE("Counter including others reads as counting every event in it too", "[core][stats]") {
    // A link direction's wire bytes: per-kind TLP counts times their fixed overheads plus the
    // payload bytes, against a counter that adds each TLP's bytes as it goes.
    std::mt19937_64 rng(0xc0de);
    const uint64_t overhead[3] = {24, 20, uint64_t(1) << 62};  // the last one wraps
    Counter kinds[3], payload, reference, total;
    uint64_t own = 0;
    total.include({{&kinds[0], overhead[0]},
                   {&kinds[1], overhead[1]},
                   {&kinds[2], overhead[2]},
                   {&payload, 1}});
    REQUIRE(total.value() == 0);
    for (int i = 0; i < 10000; ++i) {
        const unsigned k = unsigned(rng() % 4);
        const uint64_t bytes = rng() % 4097;
        if (k < 3) {
            ++kinds[k];
            payload += bytes;
            reference += overhead[k] + bytes;
        } else {  // own counts add to the included ones
            total += bytes;
            reference += bytes;
            own += bytes;
        }
        if (i % 97 == 0) REQUIRE(total.value() == reference.value());
    }
    REQUIRE(total.value() == reference.value());
    const Counter copy = total;  // a copy includes the same counters
    REQUIRE(copy.value() == reference.value());
    total.reset();  // its own counts only
    REQUIRE(total.value() == reference.value() - own);
    for (Counter& c : kinds) c.reset();
    payload.reset();
    REQUIRE(total.value() == 0);
    ++kinds[1];
    REQUIRE(total.value() == overhead[1]);
}

TEST_CASE("StatGroup registers, finds and names statistics", "[core][stats]") {
    StatGroup root("system");
    StatGroup& iommu = root.child("iommu0");
    StatGroup& iotlb = iommu.child("iotlb");
    REQUIRE(root.path() == "system");
    REQUIRE(iotlb.path() == "system.iommu0.iotlb");
    REQUIRE(&root.child("iommu0") == &iommu);
    REQUIRE(&iommu.child("iotlb") == &iotlb);

    Counter& hits = iotlb.counter("hits", "IOTLB hits");
    Histogram& lat = iotlb.histogram("latency", "ns", "Lookup latency");
    ++hits;
    // References stay valid while many more statistics are registered.
    for (int i = 0; i < 1000; ++i) iotlb.counter("c" + std::to_string(i), "filler");
    REQUIRE(&iotlb.counter("hits", "ignored on lookup") == &hits);
    REQUIRE(&iotlb.histogram("latency", "ns", "") == &lat);
    REQUIRE(hits.value() == 1);

    REQUIRE(iotlb.entries().size() == 1002);
    REQUIRE(iotlb.entries()[0].name == "hits");
    REQUIRE(iotlb.entries()[0].doc == "IOTLB hits");
    REQUIRE(iotlb.entries()[0].counter == &hits);
    REQUIRE(iotlb.entries()[1].histogram == &lat);
    REQUIRE(iotlb.entries()[1].unit == "ns");
    REQUIRE(iotlb.entries()[2].name == "c0");

    StatGroup unnamed("");
    REQUIRE(unnamed.child("a").child("b").path() == "a.b");
}

TEST_CASE("StatGroup rejects kind clashes and bad names", "[core][stats]") {
    StatGroup root("system");
    StatGroup& g = root.child("iommu0");
    g.counter("misses", "");
    g.histogram("latency", "ns", "");
    g.child("iotlb");

    using Catch::Contains;
    REQUIRE_THROWS_AS(g.histogram("misses", "ns", ""), std::logic_error);
    REQUIRE_THROWS_WITH(g.histogram("misses", "ns", ""), Contains("system.iommu0.misses"));
    REQUIRE_THROWS_WITH(g.counter("latency", ""), Contains("system.iommu0.latency"));
    REQUIRE_THROWS_WITH(g.child("misses"), Contains("system.iommu0.misses"));
    REQUIRE_THROWS_WITH(g.counter("iotlb", ""), Contains("system.iommu0.iotlb"));
    REQUIRE_THROWS_WITH(g.histogram("iotlb", "ns", ""), Contains("system.iommu0.iotlb"));
    REQUIRE_THROWS_WITH(g.histogram("latency", "cycles", ""), Contains("system.iommu0.latency"));
    REQUIRE_THROWS_AS(g.counter("", ""), std::logic_error);
    REQUIRE_THROWS_AS(g.counter("a.b", ""), std::logic_error);
    REQUIRE_THROWS_AS(g.child("has space"), std::logic_error);
    // A failed registration leaves nothing behind.
    REQUIRE(g.entries().size() == 2);
    REQUIRE(g.children().size() == 1);
}

namespace {

void build_small_tree(StatGroup& root) {
    root.counter("requests", "Translation requests") += 5;
    Histogram& lat = root.histogram("latency", "ns", "Request latency");
    for (uint64_t v : {10ull, 1000ull, 5000ull}) lat.add(v);
    StatGroup& iotlb = root.child("iommu0").child("iotlb");
    iotlb.counter("hits", "") += 7;
    iotlb.counter("misses", "") += 3;
    Histogram& walk = iotlb.histogram("walk", "cycles", "");
    for (uint64_t v : {0ull, 0ull, 2ull}) walk.add(v);
    root.child("idle");
    root.histogram("unused", "ns", "");
}

}  // namespace

TEST_CASE("to_json writes the tree exactly", "[core][stats]") {
    StatGroup root("system");
    build_small_tree(root);
    // 1000 lies in the bucket [1000, 1007], so p50 reports its upper bound; 5000's bucket
    // ends at 5055 but percentiles are clamped to the maximum. The layout is nlohmann/json's
    // (two-space indent); the mean is the number the text output shows (0.000 reads as 0.0).
    const std::string want = R"({
  "system": {
    "requests": 5,
    "latency": {
      "unit": "ns",
      "count": 3,
      "sum": 6010,
      "mean": 2003.333,
      "min": 10,
      "p50": 1007,
      "p90": 5000,
      "p99": 5000,
      "p99.9": 5000,
      "max": 5000
    },
    "unused": {
      "unit": "ns",
      "count": 0,
      "sum": 0,
      "mean": 0.0,
      "min": 0,
      "p50": 0,
      "p90": 0,
      "p99": 0,
      "p99.9": 0,
      "max": 0
    },
    "iommu0": {
      "iotlb": {
        "hits": 7,
        "misses": 3,
        "walk": {
          "unit": "cycles",
          "count": 3,
          "sum": 2,
          "mean": 0.667,
          "min": 0,
          "p50": 0,
          "p90": 2,
          "p99": 2,
          "p99.9": 2,
          "max": 2
        }
      }
    },
    "idle": {}
  }
}
)";
    REQUIRE(to_json(root) == want);

    StatGroup unnamed("");
    REQUIRE(to_json(unnamed) == "{}\n");
    unnamed.counter("x", "") += 1;
    REQUIRE(to_json(unnamed) == "{\n  \"x\": 1\n}\n");
}

TEST_CASE("to_text writes one line per value in JSON order", "[core][stats]") {
    StatGroup root("system");
    build_small_tree(root);
    root.child("idle").counter("n", "") += 0;
    const std::string want =
        "system.requests 5\n"
        "system.latency.count 3\n"
        "system.latency.sum 6010\n"
        "system.latency.mean 2003.333\n"
        "system.latency.min 10\n"
        "system.latency.p50 1007\n"
        "system.latency.p90 5000\n"
        "system.latency.p99 5000\n"
        "system.latency.p99.9 5000\n"
        "system.latency.max 5000\n"
        "system.unused.count 0\n"
        "system.unused.sum 0\n"
        "system.unused.mean 0.000\n"
        "system.unused.min 0\n"
        "system.unused.p50 0\n"
        "system.unused.p90 0\n"
        "system.unused.p99 0\n"
        "system.unused.p99.9 0\n"
        "system.unused.max 0\n"
        "system.iommu0.iotlb.hits 7\n"
        "system.iommu0.iotlb.misses 3\n"
        "system.iommu0.iotlb.walk.count 3\n"
        "system.iommu0.iotlb.walk.sum 2\n"
        "system.iommu0.iotlb.walk.mean 0.667\n"
        "system.iommu0.iotlb.walk.min 0\n"
        "system.iommu0.iotlb.walk.p50 0\n"
        "system.iommu0.iotlb.walk.p90 2\n"
        "system.iommu0.iotlb.walk.p99 2\n"
        "system.iommu0.iotlb.walk.p99.9 2\n"
        "system.iommu0.iotlb.walk.max 2\n"
        "system.idle.n 0\n";
    REQUIRE(to_text(root) == want);
}

TEST_CASE("to_json escapes strings", "[core][stats]") {
    StatGroup root("r\"oot\\");
    root.histogram("h", "a\"b\\c\nd\te\x01\x1f/\xc2\xb5s", "");
    const std::string out = to_json(root);
    REQUIRE(out.find(R"("r\"oot\\": {)") != std::string::npos);
    REQUIRE(out.find(R"("unit": "a\"b\\c\nd\te\u0001\u001f/)"
                     "\xc2\xb5"
                     R"(s")") != std::string::npos);
}

TEST_CASE("Statistics output is deterministic and reset is recursive", "[core][stats]") {
    auto build = [](StatGroup& root, bool fill) {
        std::mt19937_64 rng(7);
        for (int m = 0; m < 4; ++m) {
            StatGroup& g = root.child("iommu" + std::to_string(m));
            Counter& c = g.counter("requests", "");
            Histogram& h = g.child("walk").histogram("latency", "ns", "");
            if (!fill) continue;
            for (int i = 0; i < 5000; ++i) {
                ++c;
                h.add(uint64_t(std::lognormal_distribution<double>(6.0, 1.5)(rng)));
            }
        }
    };
    StatGroup a("system"), b("system"), empty("system");
    build(a, true);
    build(b, true);
    build(empty, false);
    REQUIRE(to_json(a) == to_json(b));
    REQUIRE(to_text(a) == to_text(b));
    REQUIRE(to_json(a) != to_json(empty));

    a.reset();
    REQUIRE(to_json(a) == to_json(empty));
    REQUIRE(to_text(a) == to_text(empty));

    // Resetting a subtree leaves the rest alone.
    b.child("iommu1").reset();
    REQUIRE(b.child("iommu1").counter("requests", "").value() == 0);
    REQUIRE(b.child("iommu1").child("walk").histogram("latency", "ns", "").count() == 0);
    REQUIRE(b.child("iommu0").counter("requests", "").value() == 5000);
}
