// `iommusim run` and `iommusim params`: assemble a system from platform and workload files,
// simulate it, print a summary and write stats.json and stats.csv.
#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn
#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "core/log.h"
#include "core/quote.h"
#include "core/stats_output.h"
#include "core/timeline.h"
#include "platforms/system.h"

namespace po = boost::program_options;

namespace iommusim::cli {

namespace {
std::atomic<bool> g_interrupted{false};
std::unique_ptr<Timeline> g_timeline_owner;  // what set_timeline() points to
extern "C" void on_sigint(int) {
    g_interrupted = true;
}

}  // namespace

po::options_description run_options(RunOptions& o, const char* usage) {
    po::options_description d(usage);
    d.add_options()("help,h", "this text")("config,c", po::value(&o.configs)->composing(),
                                           "configuration file (repeatable, later wins)")(
        "set", po::value(&o.sets)->composing(), "override: path.to.param=value (repeatable)")(
        "out", po::value(&o.out)->default_value(o.out), "directory for stats.json and stats.csv")(
        "quantum", po::value(&o.quantum), "global quantum, e.g. 1us, 100ns, 0 (system.quantum_ns)")(
        "seed", po::value(&o.seed), "seed of the run (system.seed)")(
        "quiet,q", po::bool_switch(&o.quiet), "no progress display")(
        "timeline", po::value(&o.timeline),
        "write a Chrome/Perfetto trace-event timeline to FILE.json (docs/timeline.md)")(
        "timeline-window", po::value(&o.timeline_window),
        "simulated time the timeline covers, START:END with units, e.g. 0:50us, 1ms: (default "
        "all)")("timeline-max-events", po::value(&o.timeline_max_events),
                "events the timeline keeps at most; later ones are dropped and the file says so "
                "(default 1000000)");
    d.add_options()("log", po::value(&o.logs)->composing(),
                    "log a module and those below it: MODULE=LEVEL (error, warn, info, debug, "
                    "trace, off) or MODULE for debug, e.g. system.iommu0=debug (repeatable)")(
        "log-file", po::value(&o.log_file), "write log lines to PATH instead of stderr")(
        "log-requester", po::value(&o.log_requester),
        "log only what concerns one requester, BB:DD.F or BB:DD.F/PASID");
    return d;
}

bool parse(const std::vector<std::string>& args, po::options_description& d,
           const po::positional_options_description& pos) {
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw std::invalid_argument(std::string(e.what()) + " (see --help)");
    }
    if (vm.count("help")) std::cout << d;
    return vm.count("help") == 0;
}

namespace {
// "1.5us" -> 1.5e6: a number and a unit (ps, ns, us, ms, s) as ps. A bare number is in
// `bare_ps` units, or only 0 when bare_ps is 0. `what` names the option and `expected` says
// what it takes, in the errors.
double parse_time_ps(const std::string& t, const std::string& what, const std::string& expected,
                     double bare_ps) {
    size_t pos = 0;
    double v = 0;
    try {
        if (t.empty() || !(std::isdigit(static_cast<unsigned char>(t[0])) || t[0] == '.'))
            throw std::invalid_argument(t);
        v = std::stod(t, &pos);
    } catch (const std::exception&) {
        throw std::invalid_argument(
            fmt::format("{}: {} is not a time ({})", what, quote(t), expected));
    }
    const std::string unit = t.substr(pos);
    const double scale = unit == "ps"   ? 1
                         : unit == "ns" ? 1e3
                         : unit == "us" ? 1e6
                         : unit == "ms" ? 1e9
                         : unit == "s"  ? 1e12
                         : unit.empty() ? (bare_ps > 0 ? bare_ps
                                           : v == 0    ? 1
                                                       : -1)
                                        : -1;
    if (scale < 0)
        throw std::invalid_argument(
            unit.empty() ? fmt::format("{}: {} has no unit ({})", what, quote(t), expected)
                         : fmt::format("{}: {} has an unknown unit {} ({})", what, quote(t),
                                       quote(unit), expected));
    const double ps = v * scale;
    if (!std::isfinite(ps) || ps >= 1.8e19)
        throw std::invalid_argument(
            fmt::format("{}: {} is out of range ({})", what, quote(t), expected));
    return ps;
}

// "1us", "250ns", "0", "1000" (ns) -> ns, a whole number in the range of system.quantum_ns.
uint64_t parse_quantum(const std::string& t) {
    const std::string expected = fmt::format(
        "expected a whole number of ns from 0 to {} with unit ps, ns, us or ms, e.g. 1us, 100ns, 0",
        SystemParams::kMaxQuantumNs);
    const double ns = parse_time_ps(t, "--quantum", expected, 1e3) / 1e3;
    if (ns > double(SystemParams::kMaxQuantumNs))
        throw std::invalid_argument(
            fmt::format("--quantum: {} is out of range ({})", quote(t), expected));
    // A fraction of a ns would be rounded (0.3ps to 0: synchronise on every transaction).
    if (ns != std::floor(ns))
        throw std::invalid_argument(
            fmt::format("--quantum: {} is not a whole number of ns ({})", quote(t), expected));
    return uint64_t(ns);
}

// One end of --timeline-window -> ps.
Tick parse_window_end(const std::string& t) {
    const std::string expected =
        "expected START:END, each a time with unit ps, ns, us, ms or s (0 needs none), END "
        "after START or empty for the end of the run, e.g. 0:50us, 10us:20us, 1ms:";
    return Tick(std::round(parse_time_ps(t, "--timeline-window", expected, 0)));
}
}  // namespace

void open_timeline(const RunOptions& o) {
    if (o.timeline.empty()) {
        if (!o.timeline_window.empty())
            throw std::invalid_argument("--timeline-window needs --timeline FILE.json");
        return;
    }
    Timeline::Options t;
    t.file = o.timeline;
    t.max_events = o.timeline_max_events;
    if (t.max_events == 0)
        throw std::invalid_argument("--timeline-max-events: expected at least 1");
    if (!o.timeline_window.empty()) {
        const std::string& w = o.timeline_window;
        const size_t colon = w.find(':');
        if (colon == std::string::npos)
            throw std::invalid_argument(fmt::format(
                "--timeline-window: {} has no ':' (expected START:END, e.g. 0:50us, 1ms:)",
                quote(w)));
        t.start = parse_window_end(w.substr(0, colon));
        if (colon + 1 < w.size()) t.end = parse_window_end(w.substr(colon + 1));
        if (t.end <= t.start)
            throw std::invalid_argument(
                fmt::format("--timeline-window: {} is empty (expected END after START)", quote(w)));
    }
    g_timeline_owner = std::make_unique<Timeline>(t);
    set_timeline(g_timeline_owner.get());
}

Config load(const RunOptions& o) {
    Config config = Config::load(o.configs, o.sets);
    // After every --set, as before: the dedicated options win, and name themselves in errors.
    std::vector<std::string> errors;
    if (!o.quantum.empty()) {
        try {
            config.set_from("--quantum", "system.quantum_ns",
                            std::to_string(parse_quantum(o.quantum)));
        } catch (const std::invalid_argument& e) {
            errors.push_back(e.what());
        }
    }
    if (!o.seed.empty()) config.set_from("--seed", "system.seed", o.seed);
    if (!errors.empty()) throw ConfigError(std::move(errors));
    return config;
}

void open_log(const RunOptions& o, Config& config) {
    std::vector<std::string> errors;
    std::vector<log::Rule> rules;
    std::string file = o.log_file, requester = o.log_requester;
    std::string file_origin = "--log-file", requester_origin = "--log-requester";
    // The [log] section: `module = level` lines, and `file` and `requester` (the options win).
    for (const std::string& key : config.keys_under("log")) {
        const ConfigValue& v = *config.find(key);
        config.mark_used(key);
        const std::string name = key.substr(4);
        if (name == "file" || name == "requester") {
            if (name == "file" && o.log_file.empty()) file = v.value, file_origin = v.origin.str();
            if (name == "requester" && o.log_requester.empty())
                requester = v.value, requester_origin = v.origin.str();
            continue;
        }
        log::Rule r;
        const std::string e = log::parse_rule(name + "=" + v.value, &r);
        if (!e.empty()) {
            errors.push_back(fmt::format("{}: log.{}", v.origin.str(), e));
            continue;
        }
        r.origin = v.origin.str();
        rules.push_back(std::move(r));
    }
    for (const std::string& text : o.logs) {
        log::Rule r;
        const std::string e = log::parse_rule(text, &r);
        if (!e.empty()) {
            errors.push_back("--log: " + e);
            continue;
        }
        r.origin = "--log " + text;
        rules.push_back(std::move(r));
    }
    std::optional<log::RequesterFilter> filter;
    if (!requester.empty()) {
        log::RequesterFilter f;
        const std::string e = log::parse_requester(requester, &f);
        if (e.empty())
            filter = f;
        else
            errors.push_back(fmt::format("{}: {}", requester_origin, e));
    }
    if (!errors.empty()) throw ConfigError(std::move(errors));
    if (!file.empty()) {
        try {
            log::open_file(file);
        } catch (const std::runtime_error& e) {
            throw ConfigError({fmt::format("{}: {}", file_origin, e.what())});
        }
    }
    log::set_requester_filter(filter);
    // Lines of code without a Tick at hand (the host driver model) take SystemC's time.
    log::set_clock([]() -> Tick { return sc_core::sc_time_stamp().value(); });
    log::set_rules(std::move(rules));
}

void check_log() {
    std::vector<std::string> errors = log::unmatched_rules();
    if (!errors.empty()) throw ConfigError(std::move(errors));
}

int report(const ConfigError& e) {
    for (const std::string& m : e.errors()) fmt::print(stderr, "iommusim: {}\n", m);
    return 2;
}

int run(const std::vector<std::string>& args) {
    RunOptions o;
    po::options_description d =
        run_options(o, "iommusim run -c PLATFORM.ini -c WORKLOAD.ini [options]");
    if (!parse(args, d, {})) return 0;
    if (o.configs.empty())
        throw std::invalid_argument("at least one -c FILE is needed (a platform and a workload)");
    open_timeline(o);
    std::unique_ptr<System> sys;
    try {
        Config config = load(o);
        open_log(o, config);
        sys = std::make_unique<System>("system", config);
        sys->build();
        check_log();
    } catch (const ConfigError& e) {
        return report(e);
    }
    return simulate(*sys, o, "run", {}, nullptr);
}

int simulate(System& system, const RunOptions& o, const std::string& verb, Metadata run,
             const std::function<void(Metadata&)>& print_more) {
    System* sys = &system;
    std::signal(SIGINT, on_sigint);
    // SystemC's "simulation stopped" notice is not news for the user.
    sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO,
                                            sc_core::SC_DO_NOTHING);
    // Progress on the terminal, from a process polling the wall clock a few times per wall-clock
    // second.
    const auto t0 = std::chrono::steady_clock::now();
    sc_core::sc_spawn(
        [&] {
            auto last = t0;
            System::PollPeriod poll;
            while (!sys->devices_done()) {
                sc_core::wait(poll.next(), sys->done_event());
                if (g_interrupted) sys->request_stop();
                const auto now = std::chrono::steady_clock::now();
                if (!o.quiet && now - last > std::chrono::seconds(1)) {
                    last = now;
                    fmt::print(stderr, "\r{:5.1f}% at {}  ", 100 * sys->progress(),
                               format_time_ps(sc_core::sc_time_stamp().value()));
                }
            }
        },
        "progress");
    sc_core::sc_start();
    std::chrono::duration<double> wall = std::chrono::steady_clock::now() - t0;
    if (!o.quiet) fmt::print(stderr, "\r");
    const bool interrupted = g_interrupted;
    sys->finish_stats();

    // Summary for people.
    fmt::print("simulated {} in {:.2f} s{}\n", format_time_ps(sc_core::sc_time_stamp().value()),
               wall.count(), interrupted ? " (interrupted: statistics so far)" : "");
    for (const std::string& s : sys->device_summaries()) fmt::print("{}\n", s);
    // Host software that left work undone when every device had finished: a defect.
    // Stopped early (time limit, Ctrl-C), work still in flight is no defect: it is listed.
    std::vector<std::string> defects;
    if (!interrupted && sys->devices_done())
        defects = sys->defects();
    else
        for (const std::string& d : sys->defects())
            fmt::print(stderr, "iommusim {}: still pending when the run stopped: {}\n", verb, d);
    for (const std::string& d : defects) fmt::print(stderr, "iommusim {}: defect: {}\n", verb, d);
    if (print_more) print_more(run);
    std::vector<SummaryLine> lines;
    for (const std::string& m : sys->iommu_names()) {
        const std::string p = "system." + m + ".";
        const StatGroup* g = find_group(sys->stats(), "system." + m + ".iotlb");
        uint64_t lookups = g ? find_stat(sys->stats(), p + "iotlb.lookups")->counter->value() : 0;
        uint64_t hits = g ? find_stat(sys->stats(), p + "iotlb.hits")->counter->value() : 0;
        lines.push_back(SummaryLine::value(
            m + " IOTLB hit rate",
            lookups ? fmt::format("{:.2f}", 100.0 * double(hits) / double(lookups)) : "-", "%"));
        lines.push_back(p + "translations");
        lines.push_back(p + "faults");
        lines.push_back(p + "hit_latency");
        lines.push_back(p + "miss_latency");
        lines.push_back(p + "walker.queueing");
        if (find_group(sys->stats(), p + "prq")) {  // the host's page request service (SVA)
            lines.push_back(p + "prq.service_latency_ns");
            lines.push_back(p + "prq.occupancy");
            lines.push_back(p + "prq.overflows_seen");
        }
    }
    if (!lines.empty()) fmt::print("{}", summary_table(sys->stats(), lines));

    // Every statistic, hierarchical and flat, with what produced it.
    run.insert(run.begin(),
               {{"version", "0.1"},
                {"simulated_ns", std::to_string(sc_core::sc_time_stamp().value() / 1000)},
                {"interrupted", interrupted ? "true" : "false"}});
    for (size_t i = 0; i < o.configs.size(); ++i)
        run.push_back({fmt::format("config{}", i), o.configs[i]});
    try {
        std::filesystem::create_directories(o.out);
        const Metadata params = sys->registry().values();
        write_files({{o.out + "/stats.json", stats_json(sys->stats(), run, params)},
                     {o.out + "/stats.csv",
                      csv_header(sys->stats(), params) + csv_row(sys->stats(), params)}});
    } catch (const std::exception& e) {
        fmt::print(stderr, "iommusim {}: {}\n", verb, e.what());
        return 2;
    }
    log::flush();
    fmt::print("wrote {0}/stats.json and {0}/stats.csv\n", o.out);
    if (Timeline* tl = timeline()) {
        try {
            tl->write();
        } catch (const std::exception& e) {
            fmt::print(stderr, "iommusim {}: timeline: {}\n", verb, e.what());
            return 2;
        }
        fmt::print("wrote {} ({} events{})\n", tl->options().file, tl->events(),
                   tl->dropped() ? fmt::format(", {} more dropped at the limit", tl->dropped())
                                 : std::string());
    }
    if (!defects.empty()) {
        fmt::print(stderr, "iommusim {}: {} defect(s): the run failed\n", verb, defects.size());
        return 1;
    }
    return interrupted ? 130 : 0;
}

int params(const std::vector<std::string>& args) {
    RunOptions o;
    po::options_description d = run_options(o, "iommusim params [-c FILE]... [--set k=v]...");
    if (!parse(args, d, {})) return 0;
    try {
        Config config = o.configs.empty() ? Config{} : load(o);
        if (o.configs.empty())  // the parameters of every kind of module, on a small system
            config.load_string(
                "[system]\niommus = iommu0, phb0\ndevices = bench0\n[system.phb0]\narch = spapr\n",
                "built-in");
        // As for a replay, so that system.replay.* is listed too (nothing else changes).
        const ReplaySpec replay;
        System sys("system", config, &replay);
        fmt::print("{}", params_table(sys.registry().list()));
    } catch (const ConfigError& e) {
        return report(e);
    }
    return 0;
}

}  // namespace iommusim::cli
