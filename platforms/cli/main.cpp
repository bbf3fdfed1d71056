// iommusim: the program architects run. `iommusim VERB [options]`.
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <systemc>  // declares sc_main extern "C"
#include <vector>

#include "cli.h"

namespace {
void usage() {
    fmt::print(
        "usage: iommusim VERB [options]\n"
        "verbs:\n"
        "  run      simulate a system: iommusim run -c PLATFORM.ini -c WORKLOAD.ini [--set "
        "k=v]...\n"
        "           [--out DIR] [--quantum T] [--seed N]; writes DIR/stats.json and stats.csv\n"
        "  replay   replay a recorded trace through the configured IOMMU, checking every\n"
        "           recorded translation: iommusim replay TRACE [-c PLATFORM.ini] [--set k=v]\n"
        "  import   convert recordings to a trace: iommusim import qemu-vtd QEMU_LOG GUEST_FTRACE\n"
        "           -o OUT.trace (or: import ftrace FTRACE... -o OUT.trace)\n"
        "  params   list every parameter (of the system the -c files describe) with its\n"
        "           default, unit, range and doc\n"
        "  demo     build VT-d (legacy, scalable first-level, nested) and sPAPR TCE address\n"
        "           spaces, map a buffer and print every step of its translation\n"
        "  lookup   map what --map says, then walk one IOVA for one requester and print\n"
        "           every table entry read (see `iommusim lookup --help`)\n");
}
}  // namespace

// The program proper (SystemC calls it once it has started).
int sc_main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    std::string verb = argv[1];
    std::vector<std::string> args(argv + 2, argv + argc);
    try {
        if (verb == "demo") return iommusim::cli::demo(args);
        if (verb == "lookup") return iommusim::cli::lookup(args);
        if (verb == "run") return iommusim::cli::run(args);
        if (verb == "params") return iommusim::cli::params(args);
        if (verb == "replay") return iommusim::cli::replay(args);
        if (verb == "import") return iommusim::cli::import(args);
    } catch (const std::exception& e) {
        fmt::print(stderr, "iommusim {}: {}\n", verb, e.what());
        return 2;
    }
    fmt::print(
        stderr,
        "iommusim: unknown verb '{}' (expected run, params, import, replay, demo or lookup)\n",
        verb);
    return 2;
}

// SystemC prints its banner while starting up, before sc_main: silence it first, then let
// SystemC start and call sc_main.
int main(int argc, char** argv) {
    setenv("SC_COPYRIGHT_MESSAGE", "DISABLE", 0);
    return sc_core::sc_elab_and_sim(argc, argv);
}
