#include <catch2/catch.hpp>

#include "core/quote.h"

using iommusim::escape;
using iommusim::quote;

TEST_CASE("quoted keeps printable text and escapes the rest", "[quote]") {
    CHECK(quote("system.nic0") == "'system.nic0'");
    CHECK(quote("a'b\\c") == "'a\\'b\\\\c'");
    CHECK(quote(std::string("\t\r\n\0\x1b\x7f\xff", 7)) == "'\\t\\r\\n\\x00\\x1b\\x7f\\xff'");
    CHECK(escape("x\x01y") == "x\\x01y");
}

TEST_CASE("quoted cuts long input and names its length", "[quote]") {
    const std::string big(10 << 20, 'k');
    const std::string q = quote(big);
    CHECK(q == "'" + std::string(iommusim::kQuoteMax, 'k') + "\u2026' (10485760 bytes)");
    CHECK(quote("abcdef", 3) == "'abc\u2026' (6 bytes)");
    CHECK(quote("abc", 3) == "'abc'");
    CHECK(escape("abcdef", 3) == "abc\u2026");
}
