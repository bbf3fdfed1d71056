// Bad configuration input: messages quote what was written (escaped, cut with its length),
// name its origin and the accepted range, and stay fast whatever the input's size.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "core/config.h"
#include "support/test_files.h"

using namespace iommusim;
using namespace iommusim::test;

namespace {

struct P {
    uint64_t quantum_ns = 1000;
    uint64_t size = 64;
    int32_t offset = 0;
    double rate = 1.0;
    template <typename V>
    void visit(V&& v) {
        v("quantum_ns", quantum_ns, "ns", "quantum", 0, 1'000'000'000);
        v("size", size, "bytes", "size", 1, uint64_t(1) << 30);
        v("offset", offset, "", "offset", -100, 100);
        v("rate", rate, "", "rate", 0.0, 1e6);
    }
};

std::string apply_one(const std::string& line) {
    Config c;
    c.load_string("[s]\n" + line + "\n", "p.ini");
    P p;
    ParamRegistry r;
    r.bind("s", p);
    const auto e = errors_of([&] { r.apply(c); });
    REQUIRE(e.size() == 1);
    return e[0];
}

}  // namespace

TEST_CASE("out-of-range, overflowing, negative and non-finite numbers are rejected",
          "[config][errors]") {
    CHECK(apply_one("quantum_ns = 18446744073709551615") ==
          "p.ini:2: s.quantum_ns: 18446744073709551615 is out of range (expected an integer in "
          "0..1000000000)");
    CHECK(apply_one("quantum_ns = 18446744073709551616") ==
          "p.ini:2: s.quantum_ns: '18446744073709551616' is too large (expected an integer in "
          "0..1000000000)");
    CHECK(apply_one("size = 0x40000000000000T") ==
          "p.ini:2: s.size: '0x40000000000000T' is too large (expected an integer in 1..1Gi)");
    CHECK(apply_one("size = -4096") ==
          "p.ini:2: s.size: '-4096' is not a non-negative integer (expected an integer in "
          "1..1Gi)");
    CHECK(apply_one("offset = -9223372036854775809") ==
          "p.ini:2: s.offset: '-9223372036854775809' is too large (expected an integer in "
          "-100..100)");
    CHECK(apply_one("rate = 1e30") ==
          "p.ini:2: s.rate: '1e30' (1e+30) is out of range (expected a number in 0..1000000)");
    CHECK(apply_one("rate = inf") ==
          "p.ini:2: s.rate: 'inf' is not a number (expected a number in 0..1000000)");
    CHECK(apply_one("rate = nan") ==
          "p.ini:2: s.rate: 'nan' is not a number (expected a number in 0..1000000)");
}

TEST_CASE("raw bytes in input are escaped in messages, never echoed", "[config][errors]") {
    CHECK(apply_one("quantum_ns = \x01\x1b[31m\xff") ==
          "p.ini:2: s.quantum_ns: '\\x01\\x1b[31m\\xff' is not an integer (expected an integer "
          "in 0..1000000000; e.g. 4096, 0x1000, 4Ki)");
    Config c;
    const auto e =
        errors_of([&] { c.load_string(std::string("\x00\x02 junk\n[a\x07]\n", 13), "b.ini"); });
    REQUIRE(e.size() == 2);
    CHECK(e[0] ==
          "b.ini:1: expected 'key = value', '[section]' or a comment, not '\\x00\\x02 junk'");
    CHECK(e[1] ==
          "b.ini:2: bad section header '[a\\x07]' (expected '[name]' with a dotted name of "
          "letters, digits, '_' and '-')");
    const auto s = errors_of([&] { c.set("\x1b]0;title\x07"); });
    CHECK(s.at(0) ==
          "--set: '\\x1b]0;title\\x07' should be key=value with the key a dotted name of "
          "letters, digits, '_' and '-'");
}

TEST_CASE("a 10 MB key errors at once, quoted with its length", "[config][errors]") {
    const std::string key(10 << 20, 'k');
    const auto t0 = std::chrono::steady_clock::now();
    Config c;
    c.load_string("[system]\n" + key + " = 1\n", "big.ini");
    P p;
    ParamRegistry r;
    r.bind("system", p);
    const auto e = errors_of([&] { r.apply(c); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(e.size() == 1);
    CHECK(e[0] ==
          "big.ini:2: unknown key 'system." + std::string(73, 'k') + "\u2026' (10485767 bytes)");
    CHECK(s < 1.0);
    // Keys of ordinary length still get suggestions; very long ones none (bounded work).
    CHECK(r.closest("system.quantum_nz").at(0) == "system.quantum_ns");
    CHECK(r.closest("system." + std::string(ParamRegistry::kClosestMaxKey, 'q')).empty());
}

TEST_CASE("a dedicated option names itself as the origin", "[config][errors]") {
    Config c;
    c.set_from("--seed", "s.quantum_ns", "-1");
    P p;
    ParamRegistry r;
    r.bind("s", p);
    const auto e = errors_of([&] { r.apply(c); });
    REQUIRE(e.size() == 1);
    CHECK(e[0] ==
          "--seed: s.quantum_ns: '-1' is not a non-negative integer (expected an integer in "
          "0..1000000000)");
    CHECK(c.where("s.quantum_ns") == "--seed: s.quantum_ns");
}

TEST_CASE("edit distance with three rows matches the definition", "[config][errors]") {
    CHECK(edit_distance("entries", "entires") == 1);
    CHECK(edit_distance("", "abc") == 3);
    CHECK(edit_distance("kitten", "sitting") == 3);
    CHECK(edit_distance("ca", "abc") == 3);  // optimal string alignment, not Damerau
    CHECK(edit_distance(std::string(5000, 'a'), std::string(4990, 'a')) == 10);
}
