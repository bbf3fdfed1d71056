// Skipping a test case that cannot run (its input data is absent). Catch2 2.x has no skip, and
// a case that merely returns counts as passed; IOMMUSIM_SKIP records the skip, warns with the
// reason and returns. unit_tests exits 77 when every test case it ran skipped, which ctest
// (SKIP_RETURN_CODE 77) reports as skipped: ctest runs each case on its own.
#pragma once
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

namespace iommusim::test {
// Marks the running test case as skipped (defined in main.cpp).
void skip_case(const std::string& why);
}  // namespace iommusim::test

#define IOMMUSIM_SKIP(why)                            \
    do {                                              \
        std::ostringstream skip_why_;                 \
        skip_why_ << why;                             \
        WARN("skipped: " << skip_why_.str());         \
        ::iommusim::test::skip_case(skip_why_.str()); \
        return;                                       \
    } while (0)
