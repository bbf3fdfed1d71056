// `iommusim replay TRACE [-c PLATFORM.ini] [--set ...] [--out DIR]`: replay a recorded trace
// through a platform (one replay device per recorded requester), check every recorded
// translation, write the statistics.
#include <fmt/format.h>

#include <chrono>
#include <iostream>

#include "cli.h"
#include "platforms/system.h"

namespace po = boost::program_options;

namespace iommusim::cli {

namespace {
// The platform when no -c is given: one VT-d unit (legacy mode, default parameters) in
// front of DRAM, the trace's requesters on root ports of one root complex.
constexpr const char* kDefaultPlatform = "[system]\niommus = iommu0\n[system.iommu0]\narch = vtd\n";
}  // namespace

int replay(const std::vector<std::string>& args) {
    RunOptions o;
    std::vector<std::string> traces;
    po::options_description d = run_options(
        o, "iommusim replay TRACE [-c PLATFORM.ini]... [--set k=v]... [--out DIR] [options]");
    d.add_options()("trace", po::value(&traces), "the trace (plain or .gz)");
    po::positional_options_description pos;
    pos.add("trace", 1);
    if (!parse(args, d, pos)) return 0;
    if (traces.empty()) throw std::invalid_argument("a TRACE file is needed (see --help)");
    const auto t0 = std::chrono::steady_clock::now();
    ReplaySpec spec;
    spec.trace = traces[0];
    try {
        spec.summary = scan_trace(spec.trace);
    } catch (const std::runtime_error& e) {
        fmt::print(stderr, "iommusim replay: {}\n", e.what());
        return 2;
    }
    const double scan_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::unique_ptr<System> sys;
    try {
        Config config = load(o);
        if (o.configs.empty()) config.load_string(kDefaultPlatform, "built-in replay platform");
        sys = std::make_unique<System>("system", config, &spec);
        sys->build();
    } catch (const ConfigError& e) {
        return report(e);
    }
    const ReplayHost& host = *sys->replay();
    const ReplayCheck& check = *sys->replay_check();
    auto print = [&](Metadata& run) {
        const double wall =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        fmt::print(
            "replayed {} records ({} DMAs) in {:.2f} s, {:.0f} records/s ({:.2f} s "
            "reading the trace's requesters first)\n",
            host.records(), find_stat(sys->stats(), "system.replay.dmas")->counter->value(), wall,
            wall > 0 ? double(host.records()) / wall : 0.0, scan_s);
        fmt::print("translations {}: checked {}, mismatches {}, faults {}\n",
                   check.translations.value(), check.checked.value(), check.mismatches.value(),
                   check.faults.value());
        for (size_t i = 0; i < check.first.size(); ++i) {
            fmt::print("  mismatch at {}\n", check.first[i].str());
            run.push_back({fmt::format("mismatch{}", i), check.first[i].str()});
        }
        for (const std::string& e : host.errors()) fmt::print(stderr, "iommusim replay: {}\n", e);
    };
    Metadata run{{"trace", spec.trace}};
    const int rc = simulate(*sys, o, "replay", run, print);
    if (rc) return rc;
    return host.errors().empty() && check.mismatches.value() == 0 ? 0 : 1;
}

}  // namespace iommusim::cli
