// The outputs of a run: stats.json (every statistic, hierarchical, with run metadata and the
// parameters used), stats.csv (one flat row, so rows of a sweep concatenate) and a short
// aligned table for the terminal. Same statistics, same bytes. See docs/config.md.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/stats.h"

namespace iommusim {

// Ordered name/value pairs (platform file, seed, parameter values ...); written as strings.
using Metadata = std::vector<std::pair<std::string, std::string>>;

// {"run": {...}, "params": {...}, then the members to_json(root) writes}, so statistic paths
// stay JSON paths (.system.iommu0.iotlb.misses). Throws std::invalid_argument when the tree
// itself has a top-level member "run" or "params", or a metadata name repeats.
std::string stats_json(const StatGroup& root, const Metadata& run = {},
                       const Metadata& params = {});
void write_json(const std::string& path, const StatGroup& root, const Metadata& run = {},
                const Metadata& params = {});

// Flat columns: `extra` names first (e.g. the swept parameters), then every statistic in
// registration order (a group's own statistics, then its children), by full dotted path.
// Histograms expand to .count, .mean, .p50, .p90, .p99, .p99.9 and .max.
std::vector<std::string> csv_columns(const StatGroup& root, const Metadata& extra = {});
std::string csv_header(const StatGroup& root, const Metadata& extra = {});  // ends in '\n'
std::string csv_row(const StatGroup& root, const Metadata& extra = {});     // ends in '\n'
void write_csv(const std::string& path, const StatGroup& root, const Metadata& extra = {});

// One line of the terminal summary: a statistic (or a group: its own statistics) by path,
// or a value the caller derived, such as a hit rate.
struct SummaryLine {
    SummaryLine(const char* stat_path) : path(stat_path) {}
    SummaryLine(std::string stat_path) : path(std::move(stat_path)) {}
    static SummaryLine value(std::string label, std::string text, std::string unit = "");

    std::string label;  // shown instead of the path when set
    std::string path;   // empty for a derived value
    std::string text, unit;
};
// Columns: statistic, value (histograms: sample count), mean, p50, p90, p99, p99.9, max,
// unit. Throws std::invalid_argument naming a path that is no statistic or group, with the
// closest existing paths.
std::string summary_table(const StatGroup& root, const std::vector<SummaryLine>& lines);

// The statistic or group at a full dotted path (as to_text names it), or nullptr.
const StatGroup::Entry* find_stat(const StatGroup& root, const std::string& path);
const StatGroup* find_group(const StatGroup& root, const std::string& path);

// Writes through `path`.tmp renamed over `path`, so an interrupted run never leaves half a
// file. Throws std::runtime_error naming the path and the system's reason.
void write_file(const std::string& path, const std::string& text);
// (path, text) pairs written the same way, renamed only once all are written (with SIGINT,
// SIGTERM, SIGHUP and SIGQUIT held back meanwhile), so files that belong together (stats.json
// and stats.csv) are replaced together; on a failure the .tmp files are removed.
void write_files(const std::vector<std::pair<std::string, std::string>>& files);

// Simulated time for people: "157.652 ms", "1.000 us", "750 ps" (s, ms, us, ns, ps).
std::string format_time_ps(uint64_t ps);

}  // namespace iommusim
