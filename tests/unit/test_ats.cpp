// The PCIe ATS vocabulary (core/ats.h): the S-bit range encoding and translation completion
// data entries, round trips over random sizes and addresses.
#include <catch2/catch.hpp>

#include "core/ats.h"
#include "support/property.h"

using namespace iommusim;
using namespace iommusim::ats;

TEST_CASE("ATS S bit: the size is the run of ones from bit 12", "[ats]") {
    CHECK(encode_range(0x12345000, 12) == 0x12345000);  // 4 KiB: S clear
    CHECK(encode_range(0x4000, 13) == (0x4000 | kSBit));
    CHECK(encode_range(0x3000, 14) == (0x1000 | kSBit));  // 16 KiB at 0: bit 12 set, 13 clear
    CHECK(encode_range(0x40000000, 30) == (0x40000000 | 0x1FFFF000 | kSBit));
    // The base's own bits below the size are not part of the encoding.
    CHECK(encode_range(0x201000, 21) == encode_range(0x200000, 21));
    CHECK(decode_range(0x7000 | kSBit) == Range{0x0, 16});
    CHECK(!decode_range(~uint64_t(0) & (kAddrMask | kSBit)).has_value());
    // All ones up to bit 62: the whole 2^64 space.
    const auto whole = decode_range((kAddrMask & ~(uint64_t(1) << 63)) | kSBit);
    REQUIRE(whole);
    CHECK(whole->shift == 64);
    CHECK(whole->base == 0);
}

TEST_CASE("ATS S bit: encode/decode round trip (property)", "[ats][property]") {
    test::Rng rng(1401);
    for (uint64_t i = 0; i < test::scaled(100000); ++i) {
        const unsigned shift = unsigned(rng.range(12, 63));
        const Addr addr = rng.g() & ~((Addr(1) << shift) - 1);
        const uint64_t f = encode_range(addr, shift);
        const std::optional<Range> r = decode_range(f);
        REQUIRE(r);
        REQUIRE(r->shift == shift);
        REQUIRE(r->base == addr);
        REQUIRE(bool(f & kSBit) == (shift > 12));
    }
}

TEST_CASE("ATS translation completion entry round trip (property)", "[ats][property]") {
    test::Rng rng(1402);
    for (uint64_t i = 0; i < test::scaled(20000); ++i) {
        Completion c;
        const unsigned shift = unsigned(rng.range(12, 63));
        c.range = {rng.g() & ~((Addr(1) << shift) - 1), uint8_t(shift)};
        const uint64_t bits = rng.g();
        c.r = bits & 1, c.w = bits & 2, c.u = bits & 4, c.exe = bits & 8;
        c.priv = bits & 16, c.global = bits & 32, c.n = bits & 64;
        const std::optional<Completion> d = Completion::decode(c.encode());
        REQUIRE(d);
        REQUIRE(d->range == c.range);
        REQUIRE((d->r == c.r && d->w == c.w && d->u == c.u && d->exe == c.exe));
        REQUIRE((d->priv == c.priv && d->global == c.global && d->n == c.n));
    }
}

TEST_CASE("ATS completion rights", "[ats]") {
    Completion c;
    c.r = true;
    CHECK(c.permits(Access::Read));
    CHECK(!c.permits(Access::Write));
    CHECK(!c.permits(Access::ReadWrite));
    CHECK(!c.permits(Access::Read, true));  // no Exe
    c.w = c.exe = true;
    CHECK(c.permits(Access::ReadWrite, true));
    c.u = true;  // untranslated only: never used as a translation
    CHECK(!c.permits(Access::Read));
    CHECK(std::string(to_string(ResponseCode::ResponseFailure)) == "response-failure");
}
