#include "log.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <unordered_map>

#include "config.h"
#include "quote.h"

namespace iommusim::log {

namespace {

struct State {
    // Entries never move or die: channels point at them for the whole process.
    std::deque<detail::Entry> entries;
    std::unordered_map<std::string, detail::Entry*> by_name;
    detail::Entry unnamed;
    std::vector<Rule> rules;
    ClockFn clock = nullptr;
    std::FILE* out = nullptr;  // null: stderr
    std::FILE* owned = nullptr;
    std::optional<RequesterFilter> filter;
    std::vector<uint32_t> domains;  // tags the followed requester's contexts gave

    ~State() {
        if (owned) std::fclose(owned);
    }
};

State& state() {
    static State s;
    return s;
}

// The level of the longest rule naming `name` or one of its ancestors.
uint8_t level_of(const std::string& name) {
    size_t best = 0;
    uint8_t level = uint8_t(Level::Off);
    bool found = false;
    for (const Rule& r : state().rules) {
        const std::string& m = r.module;
        const bool match = name.size() >= m.size() && name.compare(0, m.size(), m) == 0 &&
                           (name.size() == m.size() || name[m.size()] == '.');
        if (match && (!found || m.size() >= best)) {
            best = m.size(), level = uint8_t(r.level), found = true;
        }
    }
    return level;
}

bool valid_name(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (size_t i = 0; i < s.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '.') {
            if (s[i - 1] == '.') return false;
        } else if (!std::isalnum(c) && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

std::FILE* output() {
    return state().out ? state().out : stderr;
}

}  // namespace

const char* to_string(Level l) {
    switch (l) {
        case Level::Off: return "off";
        case Level::Error: return "error";
        case Level::Warn: return "warn";
        case Level::Info: return "info";
        case Level::Debug: return "debug";
        case Level::Trace: return "trace";
    }
    return "?";
}

std::optional<Level> parse_level(std::string_view s) {
    std::string l(s);
    for (char& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
    for (Level v : {Level::Off, Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace})
        if (l == to_string(v)) return v;
    return std::nullopt;
}

namespace detail {

void emit(const Entry& e, Level l, Tick t, fmt::string_view f, fmt::format_args args) {
    fmt::memory_buffer b;
    // Microseconds with six decimals: every picosecond, in a column that lines up.
    if (t == kNever)
        fmt::format_to(std::back_inserter(b), "[{:>12} us] ", "-");
    else
        fmt::format_to(std::back_inserter(b), "[{:>5}.{:06} us] ", t / 1'000'000, t % 1'000'000);
    fmt::format_to(std::back_inserter(b), "{} {}: ", e.name, to_string(l));
    fmt::vformat_to(std::back_inserter(b), f, args);
    b.push_back('\n');
    std::FILE* out = output();
    std::fwrite(b.data(), 1, b.size(), out);
    if (l <= Level::Warn) std::fflush(out);
}

}  // namespace detail

Channel::Channel() : e_(&state().unnamed) {}

Channel::Channel(std::string_view name) {
    State& s = state();
    std::string n(name);
    auto it = s.by_name.find(n);
    if (it == s.by_name.end()) {
        detail::Entry& e = s.entries.emplace_back();
        e.name = n;
        e.level = level_of(n);
        it = s.by_name.emplace(n, &e).first;
    }
    e_ = it->second;
}

std::string parse_rule(std::string_view text, Rule* out) {
    const size_t eq = text.find('=');
    const std::string_view module = text.substr(0, eq);
    Rule r;
    if (!valid_name(module))
        return fmt::format(
            "{} is not MODULE or MODULE=LEVEL with MODULE a dotted name of letters, digits, '_' "
            "and '-' (e.g. system.iommu0=debug)",
            quote(text));
    r.module = std::string(module);
    if (eq != std::string_view::npos) {
        const std::string_view level = text.substr(eq + 1);
        std::optional<Level> l = parse_level(level);
        if (!l)
            return fmt::format(
                "{}: {} is not a level (expected error, warn, info, debug, trace or off)", r.module,
                quote(level));
        r.level = *l;
    }
    *out = std::move(r);
    return {};
}

void set_rules(std::vector<Rule> rules) {
    State& s = state();
    s.rules = std::move(rules);
    for (detail::Entry& e : s.entries) e.level = level_of(e.name);
}

const std::vector<Rule>& rules() {
    return state().rules;
}

std::vector<std::string> channel_names() {
    std::vector<std::string> names;
    for (const detail::Entry& e : state().entries) names.push_back(e.name);
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<std::string> unmatched_rules() {
    std::vector<std::string> errors;
    const std::vector<std::string> names = channel_names();
    for (const Rule& r : state().rules) {
        const std::string& m = r.module;
        const bool any = std::any_of(names.begin(), names.end(), [&](const std::string& n) {
            return n.size() >= m.size() && n.compare(0, m.size(), m) == 0 &&
                   (n.size() == m.size() || n[m.size()] == '.');
        });
        if (any) continue;
        std::vector<std::pair<size_t, std::string>> near;
        for (const std::string& n : names) near.push_back({edit_distance(m, n), n});
        std::sort(near.begin(), near.end());
        std::string closest;
        for (size_t i = 0; i < near.size() && i < 3; ++i)
            closest += (i ? ", " : "") + near[i].second;
        errors.push_back(fmt::format(
            "{}: no module logs under {} (modules that log are named by their statistics path; "
            "closest: {})",
            r.origin, quote(m), closest.empty() ? std::string("none in this system") : closest));
    }
    return errors;
}

void set_clock(ClockFn clock) {
    state().clock = clock;
}

Tick now() {
    return state().clock ? state().clock() : kNever;
}

void set_output(std::FILE* f) {
    State& s = state();
    if (s.owned && s.owned != f) std::fclose(s.owned), s.owned = nullptr;
    s.out = f;
}

void open_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f)
        throw std::runtime_error(
            fmt::format("cannot write log file {}: {}", quote(path), std::strerror(errno)));
    set_output(f);
    state().owned = f;
}

void flush() {
    std::fflush(output());
}

std::string parse_requester(std::string_view text, RequesterFilter* out) {
    const std::string expected = "expected BB:DD.F or BB:DD.F/PASID, e.g. 00:03.0 or 00:03.0/0x5";
    const size_t slash = text.find('/');
    const std::string bdf(text.substr(0, slash));
    auto hex = [&](size_t i) {
        const char c = bdf[i];
        return unsigned(std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                                                                    : std::tolower(c) - 'a' + 10);
    };
    bool ok = bdf.size() == 7 && bdf[2] == ':' && bdf[5] == '.';
    for (size_t i : {0, 1, 3, 4, 6}) ok = ok && std::isxdigit(static_cast<unsigned char>(bdf[i]));
    if (!ok || hex(3) * 16 + hex(4) > 31 || hex(6) > 7)
        return fmt::format("{} is not a requester ({})", quote(text), expected);
    RequesterFilter f;
    f.rid = Requester::bdf(hex(0) * 16 + hex(1), hex(3) * 16 + hex(4), hex(6)).rid;
    if (slash != std::string_view::npos) {
        uint64_t p = 0;
        const std::string e = config_detail::parse_unsigned(text.substr(slash + 1), false, 0,
                                                            Requester::kPasidMax, &p);
        if (!e.empty())
            return fmt::format("{}: the PASID {} ({})", quote(text), e,
                               "expected a number in 0..0xfffff");
        f.pasid = uint32_t(p);
    }
    *out = f;
    return {};
}

void set_requester_filter(std::optional<RequesterFilter> f) {
    state().filter = f;
    state().domains.clear();
}

bool wants(const Requester& req) {
    const std::optional<RequesterFilter>& f = state().filter;
    return !f || (req.rid == f->rid && (f->pasid == Requester::kNoPasid || req.pasid == f->pasid));
}

void note_domain(const Requester& req, uint32_t tag) {
    State& s = state();
    if (!s.filter || !wants(req)) return;
    if (std::find(s.domains.begin(), s.domains.end(), tag) == s.domains.end())
        s.domains.push_back(tag);
}

bool wants(const InvalidationScope& sc) {
    using K = InvalidationScope::Kind;
    const State& s = state();
    if (!s.filter) return true;
    switch (sc.kind) {
        case K::Global:
        case K::ContextGlobal:
        case K::Wait: return true;
        case K::ContextDevice:
        case K::DeviceTlb: return sc.matches_rid(s.filter->rid);
        default: break;
    }
    if (s.domains.empty()) return true;  // its domain is not known yet: it may be this one
    for (uint32_t d : s.domains)
        if (sc.matches_domain(d)) return true;
    return false;
}

bool wants_domain(uint32_t tag) {
    const State& s = state();
    return !s.filter || s.domains.empty() ||
           std::find(s.domains.begin(), s.domains.end(), tag) != s.domains.end();
}

void reset() {
    set_rules({});
    set_output(nullptr);
    set_clock(nullptr);
    set_requester_filter(std::nullopt);
}

}  // namespace iommusim::log
