#include "stats_output.h"

#include <fmt/format.h>

#include <pthread.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>

#include "config.h"  // edit_distance
#include "json.h"
#include "quote.h"

namespace iommusim {

namespace {

std::string join(const std::string& path, const std::string& name) {
    return path.empty() ? name : path + "." + name;
}

// The histogram fields of the flat outputs (CSV, summary).
std::vector<HistogramField> hist_fields(const Histogram& h) {
    std::vector<HistogramField> out;
    for (auto& f : histogram_fields(h))
        if (f.flat) out.push_back(std::move(f));
    return out;
}

void check_unique(const Metadata& m, const char* what) {
    std::set<std::string> seen;
    for (const auto& [k, v] : m)
        if (!seen.insert(k).second)
            throw std::invalid_argument(fmt::format("{} metadata names '{}' twice", what, k));
}

Json json_object(const Metadata& m, const char* what) {
    Json out = Json::object();
    for (const auto& [k, v] : m) {
        json_string(k, fmt::format("a name in the {} metadata", what));
        out[k] = json_string(v, fmt::format("the value of {} metadata {}", what, quote(k)));
    }
    return out;
}

// Names the top level of to_json(root) uses: the root's own name, or its members.
std::vector<std::string> top_level_names(const StatGroup& root) {
    if (!root.name().empty()) return {root.name()};
    std::vector<std::string> names;
    for (const auto& e : root.entries()) names.push_back(e.name);
    for (const auto& c : root.children()) names.push_back(c->name());
    return names;
}

// RFC 4180: quote a field holding a comma, quote or line break.
std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

// Visits every statistic in output order with its full path.
template <typename F>
void for_each_stat(const StatGroup& g, const F& f) {
    const std::string base = g.path();
    for (const auto& e : g.entries()) f(join(base, e.name), e);
    for (const auto& c : g.children()) for_each_stat(*c, f);
}

std::string csv_line(const std::vector<std::string>& fields) {
    std::string out;
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csv_field(fields[i]);
    return out + "\n";
}

void all_paths(const StatGroup& g, std::vector<std::string>& out) {
    if (!g.path().empty()) out.push_back(g.path());
    for (const auto& e : g.entries()) out.push_back(join(g.path(), e.name));
    for (const auto& c : g.children()) all_paths(*c, out);
}

}  // namespace

std::string stats_json(const StatGroup& root, const Metadata& run, const Metadata& params) {
    check_unique(run, "run");
    check_unique(params, "params");
    for (const auto& n : top_level_names(root))
        if (n == "run" || n == "params")
            throw std::invalid_argument(
                fmt::format("statistic '{}' collides with the {} metadata of stats.json", n, n));
    Json out = Json::object();
    out["run"] = json_object(run, "run");
    out["params"] = json_object(params, "params");
    Json tree = to_json_value(root);
    for (auto& [k, v] : tree.items()) out[k] = std::move(v);
    return json_dump(out, 2) + "\n";
}

void write_json(const std::string& path, const StatGroup& root, const Metadata& run,
                const Metadata& params) {
    write_file(path, stats_json(root, run, params));
}

std::vector<std::string> csv_columns(const StatGroup& root, const Metadata& extra) {
    std::vector<std::string> cols;
    for (const auto& [k, v] : extra) cols.push_back(k);
    for_each_stat(root, [&](const std::string& p, const StatGroup::Entry& e) {
        if (e.counter) return cols.push_back(p);
        for (const auto& f : hist_fields(*e.histogram)) cols.push_back(p + "." + f.name);
    });
    return cols;
}

std::string csv_header(const StatGroup& root, const Metadata& extra) {
    return csv_line(csv_columns(root, extra));
}

std::string csv_row(const StatGroup& root, const Metadata& extra) {
    std::vector<std::string> vals;
    for (const auto& [k, v] : extra) vals.push_back(v);
    for_each_stat(root, [&](const std::string&, const StatGroup::Entry& e) {
        if (e.counter) return vals.push_back(std::to_string(e.counter->value()));
        for (auto& f : hist_fields(*e.histogram)) vals.push_back(std::move(f.value));
    });
    return csv_line(vals);
}

void write_csv(const std::string& path, const StatGroup& root, const Metadata& extra) {
    write_file(path, csv_header(root, extra) + csv_row(root, extra));
}

const StatGroup* find_group(const StatGroup& root, const std::string& path) {
    std::string rest = path;
    if (!root.name().empty()) {
        if (rest == root.name()) return &root;
        if (rest.compare(0, root.name().size() + 1, root.name() + ".") != 0) return nullptr;
        rest.erase(0, root.name().size() + 1);
    }
    const StatGroup* g = &root;
    size_t start = 0;
    while (g && start <= rest.size()) {
        size_t dot = std::min(rest.find('.', start), rest.size());
        const std::string name = rest.substr(start, dot - start);
        const StatGroup* next = nullptr;
        for (const auto& c : g->children())
            if (c->name() == name) next = c.get();
        g = next;
        start = dot + 1;
    }
    return g;
}

const StatGroup::Entry* find_stat(const StatGroup& root, const std::string& path) {
    const size_t dot = path.rfind('.');
    const StatGroup* g = dot == std::string::npos ? (root.name().empty() ? &root : nullptr)
                                                  : find_group(root, path.substr(0, dot));
    if (!g) return nullptr;
    const std::string name = dot == std::string::npos ? path : path.substr(dot + 1);
    for (const auto& e : g->entries())
        if (e.name == name) return &e;
    return nullptr;
}

SummaryLine SummaryLine::value(std::string label, std::string text, std::string unit) {
    SummaryLine l{std::string()};
    l.label = std::move(label);
    l.text = std::move(text);
    l.unit = std::move(unit);
    return l;
}

std::string summary_table(const StatGroup& root, const std::vector<SummaryLine>& lines) {
    using Row = std::vector<std::string>;  // statistic, value, mean .. max, unit
    std::vector<Row> rows{
        {"statistic", "value", "mean", "p50", "p90", "p99", "p99.9", "max", "unit"}};
    auto add = [&](const std::string& label, const StatGroup::Entry& e) {
        if (e.counter) return rows.push_back({label, std::to_string(e.counter->value())});
        Row r{label};
        for (auto& f : hist_fields(*e.histogram)) r.push_back(std::move(f.value));
        r.push_back(e.unit);
        rows.push_back(std::move(r));
    };
    for (const auto& l : lines) {
        if (l.path.empty()) {
            rows.push_back({l.label, l.text, "", "", "", "", "", "", l.unit});
        } else if (const StatGroup::Entry* e = find_stat(root, l.path)) {
            add(l.label.empty() ? l.path : l.label, *e);
        } else if (const StatGroup* g = find_group(root, l.path)) {
            const std::string base = l.label.empty() ? l.path : l.label;
            for (const auto& ge : g->entries()) add(join(base, ge.name), ge);
        } else {
            std::vector<std::string> paths;
            all_paths(root, paths);
            std::stable_sort(paths.begin(), paths.end(), [&](const auto& a, const auto& b) {
                return edit_distance(l.path, a) < edit_distance(l.path, b);
            });
            std::string msg = fmt::format("summary: no statistic or group '{}'", l.path);
            for (size_t i = 0; i < paths.size() && i < 3; ++i)
                msg += (i ? ", " : "; closest: ") + paths[i];
            throw std::invalid_argument(msg);
        }
    }
    // Percentile columns only when a histogram is shown, the unit column only when used.
    bool hist = false, unit = false;
    for (size_t i = 1; i < rows.size(); ++i) {
        hist = hist || (rows[i].size() > 2 && !rows[i][2].empty());
        unit = unit || (rows[i].size() > 8 && !rows[i][8].empty());
    }
    const size_t last = hist ? 8 : 2;
    size_t w[9] = {};
    for (const Row& r : rows)
        for (size_t c = 0; c < r.size(); ++c) w[c] = std::max(w[c], r[c].size());
    std::string out;
    for (const Row& r : rows) {
        // Names left-aligned, numbers right-aligned, the unit left-aligned.
        std::string line = fmt::format("{:<{}}", r[0], w[0]);
        for (size_t c = 1; c < last; ++c)
            line += fmt::format("  {:>{}}", c < r.size() ? r[c] : "", w[c]);
        if (unit && r.size() > 8) line += "  " + r[8];
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

namespace {

// `text` into `path`.tmp; throws naming `path` (the file the user asked for).
std::string write_tmp(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    auto fail = [&]() {
        const int err = errno;
        std::remove(tmp.c_str());
        throw std::runtime_error(fmt::format("cannot write '{}': {}", path, std::strerror(err)));
    };
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) fail();
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    const int err = errno;
    if (std::fclose(f) != 0 || !ok) {
        errno = ok ? errno : err;
        fail();
    }
    return tmp;
}

}  // namespace

void write_file(const std::string& path, const std::string& text) {
    write_files({{path, text}});
}

void write_files(const std::vector<std::pair<std::string, std::string>>& files) {
    std::vector<std::string> tmps;
    try {
        for (const auto& [path, text] : files) tmps.push_back(write_tmp(path, text));
    } catch (...) {
        for (const auto& t : tmps) std::remove(t.c_str());
        throw;
    }
    // Every file is complete; now replace them together. Termination signals wait until the
    // renames are done, so only SIGKILL (or a crash) in the microseconds between two renames
    // can leave a mixed set.
    sigset_t block, old;
    sigemptyset(&block);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&block, sig);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    std::string error;
    for (size_t i = 0; i < files.size(); ++i) {
        if (error.empty() && std::rename(tmps[i].c_str(), files[i].first.c_str()) != 0)
            error = fmt::format("cannot replace '{}': {}", files[i].first, std::strerror(errno));
        if (!error.empty()) std::remove(tmps[i].c_str());
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (!error.empty()) throw std::runtime_error(error);
}

std::string format_time_ps(uint64_t ps) {
    static const struct {
        uint64_t scale;
        const char* unit;
    } kUnits[] = {
        {1'000'000'000'000, "s"}, {1'000'000'000, "ms"}, {1'000'000, "us"}, {1'000, "ns"}};
    for (const auto& u : kUnits)
        if (ps >= u.scale) return fmt::format("{:.3f} {}", double(ps) / double(u.scale), u.unit);
    return fmt::format("{} ps", ps);
}

}  // namespace iommusim
