// The iommusim command-line verbs. Each returns a process exit code; bad input prints a
// message naming the option and what was expected (exit 2).
#pragma once
#include <boost/program_options.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/stats_output.h"

namespace iommusim::cli {

int demo(const std::vector<std::string>& args);
int lookup(const std::vector<std::string>& args);
int run(const std::vector<std::string>& args);
int params(const std::vector<std::string>& args);
int replay(const std::vector<std::string>& args);
int import(const std::vector<std::string>& args);

// "0x1000", "4096", "4k", "2M", "1G" -> value; throws std::invalid_argument naming `what`.
uint64_t parse_number(const std::string& text, const std::string& what);
// "BB:DD.F" -> RID; throws std::invalid_argument.
uint16_t parse_bdf(const std::string& text);

// The options `run` and `replay` share.
struct RunOptions {
    std::vector<std::string> configs, sets;
    std::string out = "results", quantum, seed;
    bool quiet = false;
    std::string timeline, timeline_window;  // --timeline FILE.json, START:END
    uint64_t timeline_max_events = 1'000'000;
    std::vector<std::string> logs;        // --log MODULE[=LEVEL], repeatable
    std::string log_file, log_requester;  // --log-file PATH, --log-requester BB:DD.F[/PASID]
};
boost::program_options::options_description run_options(RunOptions& o, const char* usage);
// false: --help was asked (and printed). Throws std::invalid_argument on bad options.
bool parse(const std::vector<std::string>& args, boost::program_options::options_description& d,
           const boost::program_options::positional_options_description& pos);
// The configuration files with --set, --quantum and --seed applied.
Config load(const RunOptions& o);
int report(const ConfigError& e);  // prints the errors; 2
// With --timeline: checks the timeline options and turns the timeline on, before the system
// is built (models name their tracks then); simulate() writes it. Throws
// std::invalid_argument on a bad option.
void open_timeline(const RunOptions& o);
// Logging (docs/user-guide.md, "Debugging with logs"): the `[log]` keys of `config` (marked
// used, so the platform does not call them unknown), then --log, --log-file and
// --log-requester, before the system is built. Throws ConfigError naming every bad rule.
void open_log(const RunOptions& o, Config& config);
// After the system is built: throws ConfigError for rules that name no module that logs.
void check_log();
}  // namespace iommusim::cli

namespace iommusim {
class System;
}

namespace iommusim::cli {
// Simulates a built system to its end, with progress on the terminal (Ctrl-C keeps the
// statistics so far), prints the summary (then `print_more`, which may add metadata), writes
// stats.json (with `run` as metadata) and stats.csv. Returns 0, 130 when interrupted, 2 when
// the output fails.
int simulate(System& sys, const RunOptions& o, const std::string& verb, Metadata run,
             const std::function<void(Metadata&)>& print_more);

}  // namespace iommusim::cli
