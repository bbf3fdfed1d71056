// `iommusim replay TRACE... [-c PLATFORM.ini] [--set ...] [--out DIR]`: replay recorded traces
// through a platform (one replay device per recorded requester; several traces replay
// together as tenants of one platform), check every recorded translation, write the
// statistics.
#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <optional>

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
        o, "iommusim replay TRACE... [-c PLATFORM.ini]... [--set k=v]... [--out DIR] [options]");
    d.add_options()("trace", po::value(&traces),
                    "the trace (plain or .gz); several replay together as tenants");
    po::positional_options_description pos;
    pos.add("trace", -1);
    if (!parse(args, d, pos)) return 0;
    if (traces.empty()) throw std::invalid_argument("a TRACE file is needed (see --help)");
    open_timeline(o);
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<Config> config;
    try {
        config = load(o);
        if (o.configs.empty()) config->load_string(kDefaultPlatform, "built-in replay platform");
        open_log(o, *config);
    } catch (const ConfigError& e) {
        return report(e);
    }
    // The first pass needs two replay parameters before the platform binds them (a bad value
    // keeps the default here and is reported when the platform is built).
    bool timed = true, stop_on_error = true;
    if (const ConfigValue* v = config->find("system.replay.timed"))
        config_detail::parse_bool(v->value, &timed);
    if (const ConfigValue* v = config->find("system.replay.stop_on_error"))
        config_detail::parse_bool(v->value, &stop_on_error);
    ReplaySpec spec;
    for (const std::string& path : traces) {
        ReplayTenant tn;
        tn.trace = path;
        try {
            tn.summary = scan_trace(tn.trace, timed);
        } catch (const std::runtime_error& e) {
            fmt::print(stderr, "iommusim replay: {}\n", e.what());
            return 2;
        }
        // A bad trace is bad input: say where, and do not start a platform with nothing (or
        // the wrong thing) to replay.
        const std::vector<trace::ParseError>& bad = tn.summary.errors;
        if (!tn.summary.rids.empty() && !(stop_on_error && !bad.empty())) {
            spec.tenants.push_back(std::move(tn));
            continue;
        }
        constexpr size_t kShown = 20;
        for (size_t i = 0; i < bad.size() && i < kShown; ++i)
            fmt::print(stderr, "iommusim replay: {}\n", bad[i].str());
        if (bad.size() > kShown)
            fmt::print(stderr, "iommusim replay: ({} more errors)\n", bad.size() - kShown);
        if (tn.summary.rids.empty())
            fmt::print(stderr,
                       "iommusim replay: {}: nothing to replay: no valid map, unmap, dma or "
                       "fault record names a requester\n",
                       tn.trace);
        else
            fmt::print(stderr,
                       "iommusim replay: {}: {} bad lines, nothing replayed (with "
                       "system.replay.stop_on_error=0 they are skipped)\n",
                       tn.trace, bad.size());
        return 2;
    }
    const double scan_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::unique_ptr<System> sys;
    try {
        sys = std::make_unique<System>("system", *config, &spec);
        sys->build();
        check_log();
    } catch (const ConfigError& e) {
        return report(e);
    }
    const ReplayCheck& check = *sys->replay_check();
    const size_t tenants = sys->replay_tenants();
    auto print = [&](Metadata& run) {
        const double wall =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        uint64_t records = 0;
        for (size_t t = 0; t < tenants; ++t) records += sys->replay_host(t).records();
        fmt::print(
            "replayed {} records ({} DMAs) in {:.2f} s, {:.0f} records/s ({:.2f} s "
            "reading the trace's requesters first)\n",
            records, find_stat(sys->stats(), "system.replay.dmas")->counter->value(), wall,
            wall > 0 ? double(records) / wall : 0.0, scan_s);
        fmt::print("translations {}: checked {}, mismatches {}, faults {}\n",
                   check.translations.value(), check.checked.value(), check.mismatches.value(),
                   check.faults.value());
        for (size_t t = 0; tenants > 1 && t < tenants; ++t) {
            const ReplayHost& h = sys->replay_host(t);
            const ReplayCheck& c = sys->replay_tenant_check(t);
            fmt::print(
                "tenant {} ({}): {} records, translations {}: checked {}, mismatches {}, faults "
                "{}; IOTLB hits {}, misses {} (miss latency mean {:.0f} ns); DMA latency mean "
                "{:.0f} ns, p99 {} ns\n",
                t, h.path(), h.records(), c.translations.value(), c.checked.value(),
                c.mismatches.value(), c.faults.value(), c.tenant->iotlb_hits.value(),
                c.tenant->iotlb_misses.value(), c.tenant->miss_latency.mean(),
                c.tenant->dma_latency.mean(), c.tenant->dma_latency.percentile(99));
        }
        for (size_t i = 0; i < check.first.size(); ++i) {
            fmt::print("  mismatch at {}\n", check.first[i].str());
            run.push_back({fmt::format("mismatch{}", i), check.first[i].str()});
        }
        for (size_t t = 0; t < tenants; ++t)
            for (const std::string& e : sys->replay_host(t).errors())
                fmt::print(stderr, "iommusim replay: {}\n", e);
    };
    Metadata run{{"trace", traces[0]}};
    for (size_t t = 1; t < traces.size(); ++t)
        run.push_back({fmt::format("trace{}", t), traces[t]});
    const int rc = simulate(*sys, o, "replay", run, print);
    if (rc) return rc;
    // Errors are known once the simulation ran (the hosts collect them as they go).
    bool errors = false;
    for (size_t t = 0; t < tenants; ++t) errors |= !sys->replay_host(t).errors().empty();
    return !errors && check.mismatches.value() == 0 ? 0 : 1;
}

}  // namespace iommusim::cli
