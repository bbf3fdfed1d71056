// JSON of the statistics, read back with the library: every value survives, odd bytes are
// escaped or refused with a clear error, derived counters refuse non-finite values.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#include "core/json.h"
#include "core/stats.h"
#include "core/stats_output.h"

using namespace iommusim;
using Catch::Matchers::Contains;

namespace {

// A name of 1-8 characters from printable ASCII (no dot or space: check_name), control
// bytes other than whitespace, quotes, backslashes and two-byte UTF-8 (µ).
std::string random_name(std::mt19937_64& rng) {
    static const char* const kPieces[] = {"a",    "Z",    "0",        "_", "\"", "\\", "/", "\x01",
                                          "\x1f", "\x7f", "\xc2\xb5", "{", "}",  ":",  ","};
    std::string s;
    const size_t n = 1 + rng() % 8;
    for (size_t i = 0; i < n; ++i) s += kPieces[rng() % (sizeof kPieces / sizeof *kPieces)];
    return s;
}

// Builds a random tree; each statistic gets a unique suffix so names never collide.
void fill(StatGroup& g, std::mt19937_64& rng, int depth, int& serial) {
    const int n = 1 + int(rng() % 4);
    for (int i = 0; i < n; ++i) {
        const std::string name = random_name(rng) + std::to_string(serial++);
        if (rng() % 2) {
            g.counter(name, "") += rng() % 3 == 0 ? std::numeric_limits<uint64_t>::max() : rng();
        } else {
            Histogram& h = g.histogram(name, random_name(rng), "");
            const int samples = int(rng() % 50);
            for (int k = 0; k < samples; ++k) h.add(rng() >> (rng() % 64));
        }
    }
    if (depth < 3)
        for (int i = 0; i < int(rng() % 3); ++i)
            fill(g.child(random_name(rng) + std::to_string(serial++)), rng, depth + 1, serial);
}

// Every "path value" line of to_text must be the value at that path of the parsed JSON.
void compare(const Json& j, const StatGroup& g) {
    for (const auto& e : g.entries()) {
        REQUIRE(j.contains(e.name));
        const Json& v = j.at(e.name);
        if (e.counter) {
            REQUIRE(v.is_number_unsigned());
            CHECK(v.get<uint64_t>() == e.counter->value());
            continue;
        }
        CHECK(v.at("unit").get<std::string>() == e.unit);
        for (const auto& f : histogram_fields(*e.histogram)) {
            if (std::string(f.name) == "mean")
                CHECK(v.at("mean").get<double>() == std::stod(f.value));
            else
                CHECK(v.at(f.name).get<uint64_t>() == std::stoull(f.value));
        }
    }
    for (const auto& c : g.children()) {
        REQUIRE(j.contains(c->name()));
        compare(j.at(c->name()), *c);
    }
}

}  // namespace

TEST_CASE("to_json of random trees reads back, with the library, to the same values",
          "[core][stats][json]") {
    for (uint64_t seed = 1; seed <= 50; ++seed) {
        INFO("seed " << seed);
        std::mt19937_64 rng(seed);
        StatGroup root("system");
        int serial = 0;
        fill(root, rng, 0, serial);
        const std::string text = to_json(root);
        const Json j = json_parse(text, "to_json output");
        compare(j.at("system"), root);
        // stats.json holds the same tree after its metadata.
        const Json s = json_parse(stats_json(root, {{"seed", std::to_string(seed)}}), "stats.json");
        CHECK(s.at("run").at("seed") == std::to_string(seed));
        CHECK(s.at("system") == j.at("system"));
        CHECK(to_json(root) == text);  // the same tree, the same bytes
    }
}

TEST_CASE("Strings that are not UTF-8 are refused, naming where they are", "[core][stats][json]") {
    StatGroup root("system");
    root.child("iommu0").histogram("lat", "n\xe9s", "");  // Latin-1, not UTF-8
    CHECK_THROWS_WITH(to_json(root), Contains("the unit of 'system.iommu0.lat'") &&
                                         Contains("'n\\xe9s'") && Contains("not valid UTF-8"));
    StatGroup bad_name("system");
    bad_name.child("dev\xff");
    CHECK_THROWS_WITH(to_json(bad_name), Contains("a statistic name in 'system'"));
    StatGroup ok("system");
    CHECK_THROWS_WITH(stats_json(ok, {{"platform", "caf\xc3"}}),  // truncated sequence
                      Contains("the value of run metadata 'platform'"));
    CHECK_THROWS_WITH(stats_json(ok, {}, {{"k\x80", "1"}}),
                      Contains("a name in the params metadata"));
    CHECK_THROWS_AS(to_json(root), std::invalid_argument);
}

TEST_CASE("Derived counters refuse NaN, infinity and values past 2^64", "[core][stats]") {
    Counter c;
    c.set_rounded(2.5);
    CHECK(c.value() == 3);
    c.set_rounded(-7.0);  // a rate never is negative: clamped, documented
    CHECK(c.value() == 0);
    c.set_rounded(1e19);
    CHECK(c.value() == 10'000'000'000'000'000'000ull);
    CHECK_THROWS_AS(c.set_rounded(std::nan("")), std::domain_error);
    CHECK_THROWS_AS(c.set_rounded(HUGE_VAL), std::domain_error);
    CHECK_THROWS_AS(c.set_rounded(-HUGE_VAL), std::domain_error);
    CHECK_THROWS_AS(c.set_rounded(18446744073709551616.0), std::domain_error);
    CHECK(c.value() == 10'000'000'000'000'000'000ull);  // unchanged by a refused value
}

TEST_CASE("json helpers: non-finite numbers and malformed text are errors", "[core][json]") {
    CHECK(json_dump(json_number(0.5, "x"), -1) == "0.5");
    CHECK_THROWS_WITH(json_number(std::nan(""), "the counter 'q'"),
                      Contains("the counter 'q' is nan"));
    CHECK_THROWS_AS(json_number(-HUGE_VAL, "x"), std::invalid_argument);
    CHECK_THROWS_WITH(json_parse("{\"a\":}", "the input"),
                      Contains("the input") && Contains("is not JSON"));
    // Control characters are escaped, UTF-8 kept as it is.
    CHECK(json_dump(json_string("a\n\x01\xc2\xb5", "x"), -1) == "\"a\\n\\u0001\xc2\xb5\"");
}
