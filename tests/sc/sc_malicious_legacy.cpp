// Malicious devices on a legacy-mode VT-d platform (second-level tables), strict and lazy
// invalidation, two unit designs, quanta 0, 1 us and 10 us: sc_malicious.h.
#include "sc_malicious.h"

int sc_main(int argc, char* argv[]) {
    using namespace iommusim::test::malicious;
    const std::vector<PlatformSpec> specs = {
        {"legacy-strict", false, true, 0, default_unit()},
        {"legacy-lazy", false, false, 0, default_unit()},
        {"legacy-strict-small", false, true, 0, small_unit()},
        {"legacy-lazy-small", false, false, 0, small_unit()},
    };
    return run("sc_malicious_legacy", argc, argv, specs, 500'000, 0x1e9ac7);
}
