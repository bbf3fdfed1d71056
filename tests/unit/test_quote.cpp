#include <catch2/catch.hpp>

#include "core/quote.h"

using iommusim::escaped;
using iommusim::quoted;

TEST_CASE("quoted keeps printable text and escapes the rest", "[quote]") {
    CHECK(quoted("system.nic0") == "'system.nic0'");
    CHECK(quoted("a'b\\c") == "'a\\'b\\\\c'");
    CHECK(quoted(std::string("\t\r\n\0\x1b\x7f\xff", 7)) == "'\\t\\r\\n\\x00\\x1b\\x7f\\xff'");
    CHECK(escaped("x\x01y") == "x\\x01y");
}

TEST_CASE("quoted cuts long input and names its length", "[quote]") {
    const std::string big(10 << 20, 'k');
    const std::string q = quoted(big);
    CHECK(q == "'" + std::string(iommusim::kQuoteMax, 'k') + "\u2026' (10485760 bytes)");
    CHECK(quoted("abcdef", 3) == "'abc\u2026' (6 bytes)");
    CHECK(quoted("abc", 3) == "'abc'");
    CHECK(escaped("abcdef", 3) == "abc\u2026");
}
