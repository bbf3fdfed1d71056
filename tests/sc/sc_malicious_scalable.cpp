// Malicious devices on a scalable-mode VT-d platform (two first-level and two second-level
// domains), strict and lazy invalidation, two unit designs, quanta 0, 1 us and 10 us:
// sc_malicious.h.
#include "sc_malicious.h"

int sc_main(int argc, char* argv[]) {
    using namespace iommusim::test::malicious;
    const std::vector<PlatformSpec> specs = {
        {"scalable-strict", true, true, 2, default_unit()},
        {"scalable-lazy", true, false, 2, default_unit()},
        {"scalable-strict-small", true, true, 2, small_unit()},
        {"scalable-lazy-small", true, false, 2, small_unit()},
    };
    return run("sc_malicious_scalable", argc, argv, specs, 500'000, 0x5ca1ab1e);
}
