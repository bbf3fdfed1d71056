// `iommusim replay TRACE [-c PLATFORM.ini] [--set ...] [--out DIR]`: replay a recorded trace
// through the configured IOMMU, check every recorded translation, write the statistics.
#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>

#include "cli.h"
#include "core/stats_output.h"
#include "platforms/replay.h"

namespace po = boost::program_options;

namespace iommusim::cli {

int replay(const std::vector<std::string>& args) {
    std::vector<std::string> configs, sets, traces;
    std::string out = "results";
    po::options_description d("iommusim replay TRACE [-c PLATFORM.ini] [--set k=v]... [--out DIR]");
    d.add_options()("help,h", "this text")("config,c", po::value(&configs)->composing(),
                                           "configuration file (repeatable)")(
        "set", po::value(&sets)->composing(), "override: path.to.param=value (repeatable)")(
        "out", po::value(&out)->default_value(out), "directory for stats.json and stats.csv")(
        "trace", po::value(&traces), "the trace (plain or .gz)");
    po::positional_options_description pos;
    pos.add("trace", 1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw std::invalid_argument(std::string(e.what()) + " (see --help)");
    }
    if (vm.count("help")) {
        std::cout << d;
        return 0;
    }
    if (traces.empty()) throw std::invalid_argument("a TRACE file is needed");
    StatGroup stats("system");
    ParamRegistry registry;
    Replay replay(registry);
    try {
        Config config = Config::load(configs, sets);
        registry.apply(config);
        registry.check_unused(config);
    } catch (const ConfigError& e) {
        for (const std::string& m : e.errors()) fmt::print(stderr, "iommusim: {}\n", m);
        return 2;
    }
    ReplayResult r;
    try {
        r = replay.run(traces[0], stats);
    } catch (const std::runtime_error& e) {
        fmt::print(stderr, "iommusim replay: {}\n", e.what());
        return 2;
    }
    fmt::print(
        "replayed {} records ({} maps, {} unmaps, {} invalidations, {} DMAs) in {:.2f} s, {:.0f} "
        "records/s\n",
        r.records, r.maps, r.unmaps, r.invalidations, r.dmas, r.wall_seconds,
        r.wall_seconds > 0 ? double(r.records) / r.wall_seconds : 0.0);
    fmt::print("translations {}: checked {}, mismatches {}, faults {}\n", r.translations,
               r.translations_checked, r.mismatches, r.faults);
    for (const Mismatch& m : r.first_mismatches)
        fmt::print("  mismatch at line {}: {} iova {:#x}: expected {:#x}, got {}\n", m.line,
                   to_string(m.req), m.iova, m.expected,
                   m.fault ? std::string("a fault") : fmt::format("{:#x}", m.got));
    for (const std::string& e : r.errors) fmt::print(stderr, "iommusim replay: {}\n", e);
    std::vector<SummaryLine> lines{"system.iommu0.iotlb", "system.iommu0.miss_latency",
                                   "system.replay.translation_latency"};
    fmt::print("{}", summary_table(stats, lines));
    Metadata run{{"trace", traces[0]}, {"records", std::to_string(r.records)}};
    for (size_t i = 0; i < std::min<size_t>(r.first_mismatches.size(), 10); ++i) {
        const Mismatch& m = r.first_mismatches[i];
        run.push_back({fmt::format("mismatch{}", i),
                       fmt::format("line {} {} iova {:#x} expected {:#x} got {}", m.line,
                                   to_string(m.req), m.iova, m.expected,
                                   m.fault ? std::string("fault") : fmt::format("{:#x}", m.got))});
    }
    try {
        std::filesystem::create_directories(out);
        write_json(out + "/stats.json", stats, run, registry.values());
        write_csv(out + "/stats.csv", stats, registry.values());
    } catch (const std::exception& e) {
        fmt::print(stderr, "iommusim replay: {}\n", e.what());
        return 2;
    }
    fmt::print("wrote {0}/stats.json and {0}/stats.csv\n", out);
    return r.errors.empty() && r.mismatches == 0 ? 0 : 1;
}

}  // namespace iommusim::cli
