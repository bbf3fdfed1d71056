#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <string>
#include <systemc>  // declares sc_main extern "C"

#include "skip.h"

// The unit tests never elaborate SystemC (benches that do are executables of their own), but
// libsystemc's main() refers to sc_main, so it must exist; reaching it is an error.
int sc_main(int, char*[]) {
    std::fputs("unit_tests does not run SystemC simulations\n", stderr);
    return 1;
}

namespace {
std::string current_case;
size_t cases_run = 0;
std::set<std::string> skipped;

// Counts the test cases a run starts, to tell "all skipped" from "some skipped".
struct CaseCounter : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    void testCaseStarting(const Catch::TestCaseInfo& info) override {
        ++cases_run;
        current_case = info.name;
    }
};
}  // namespace
CATCH_REGISTER_LISTENER(CaseCounter)

void iommusim::test::skip_case(const std::string&) {
    skipped.insert(current_case);
}

int main(int argc, char* argv[]) {
    const int rc = Catch::Session().run(argc, argv);
    if (rc == 0 && cases_run > 0 && skipped.size() == cases_run) {
        std::printf("skipped: every test case run (%zu) skipped, see the warnings above\n",
                    cases_run);
        return 77;  // ctest's SKIP_RETURN_CODE
    }
    if (!skipped.empty())
        std::printf("%zu of %zu test cases skipped (see the warnings above)\n", skipped.size(),
                    cases_run);
    return rc;
}
