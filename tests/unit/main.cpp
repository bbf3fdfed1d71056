#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <cstdio>
#include <systemc>  // declares sc_main extern "C"

// The unit tests never elaborate SystemC (benches that do are executables of their own), but
// libsystemc's main() refers to sc_main, so it must exist; reaching it is an error.
int sc_main(int, char*[]) {
    std::fputs("unit_tests does not run SystemC simulations\n", stderr);
    return 1;
}
