#include "config.h"
#include "quote.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace iommusim {

namespace {

std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
    return out;
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

bool is_comment(std::string_view s) {
    return s.empty() || s.front() == '#' || s.front() == ';';
}

// Dotted names of letters, digits, '_' and '-': no empty components, so "a..b" is rejected.
bool valid_name(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    char prev = 0;
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (!ok || (c == '.' && prev == '.')) return false;
        prev = c;
    }
    return true;
}

constexpr const char* kNameRule = "a dotted name of letters, digits, '_' and '-'";

std::vector<std::string_view> split_dots(std::string_view s) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i)
        if (i == s.size() || s[i] == '.')
            parts.push_back(s.substr(start, i - start)), start = i + 1;
    return parts;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> errors)
    : std::runtime_error(join_lines(errors)), errors_(std::move(errors)) {}

std::string Origin::str() const {
    if (file.empty()) return "--set";
    return line == 0 ? file : fmt::format("{}:{}", file, line);
}

// ---- reading ------------------------------------------------------------------------------

void Config::parse(const std::string& text, const std::string& name,
                   std::vector<std::string>& errors) {
    std::string section;
    bool section_ok = true;  // keys under a bad header are skipped: their names would be wrong
    std::unordered_map<std::string, int> seen;  // key -> first line, within this file
    std::istringstream in(text);
    std::string raw;
    for (int line = 1; std::getline(in, raw); ++line) {
        std::string_view s = raw;
        if (line == 1 && s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);  // UTF-8 BOM
        s = trim(s);
        if (is_comment(s)) continue;
        auto err = [&](const std::string& msg) {
            errors.push_back(fmt::format("{}:{}: {}", name, line, msg));
        };
        if (s.front() == '[') {
            const size_t close = s.find(']');
            std::string_view inner =
                close == std::string_view::npos ? s.substr(1) : trim(s.substr(1, close - 1));
            section_ok = close != std::string_view::npos && valid_name(inner) &&
                         is_comment(trim(s.substr(close + 1)));
            if (!section_ok) {
                err(fmt::format("bad section header {} (expected '[name]' with {})", quote(s),
                                kNameRule));
                continue;
            }
            section = std::string(inner);
            continue;
        }
        const size_t eq = s.find('=');
        if (eq == std::string_view::npos) {
            err(fmt::format("expected 'key = value', '[section]' or a comment, not {}", quote(s)));
            continue;
        }
        const std::string_view key = trim(s.substr(0, eq));
        if (!valid_name(key)) {
            err(key.empty() ? std::string("missing key before '='")
                            : fmt::format("bad key {} (expected {})", quote(key), kNameRule));
            continue;
        }
        const std::string full =
            section.empty() ? std::string(key) : section + "." + std::string(key);
        std::string_view rest = trim(s.substr(eq + 1));
        std::string value;
        if (!rest.empty() && rest.front() == '"') {
            // Quotes keep '#', ';' and surrounding spaces; there are no escapes.
            const size_t q = rest.find('"', 1);
            if (q == std::string_view::npos || !is_comment(trim(rest.substr(q + 1)))) {
                err(
                    fmt::format("{}: bad quoted value {} (expected \"text\" and nothing after it "
                                "but a comment)",
                                escape(full), quote(rest)));
                continue;
            }
            value = std::string(rest.substr(1, q - 1));
        } else {
            // A comment after a value must follow whitespace, so "a#b" stays one value.
            size_t cut = rest.size();
            for (size_t i = 0; i < rest.size(); ++i)
                if ((rest[i] == '#' || rest[i] == ';') && (i == 0 || is_space(rest[i - 1]))) {
                    cut = i;
                    break;
                }
            value = std::string(trim(rest.substr(0, cut)));
        }
        if (!section_ok) continue;
        auto [it, fresh] = seen.emplace(full, line);
        if (!fresh) {
            err(fmt::format("{} is set twice in this file (first at line {})", quote(full),
                            it->second));
            continue;
        }
        assign(full, std::move(value), Origin{name, line});
    }
}

void Config::assign(const std::string& key, std::string value, Origin origin) {
    if (ConfigValue* v = find_mutable(key)) {
        v->value = std::move(value);  // a later file or --set overrides, keeping the key's place
        v->origin = std::move(origin);
        return;
    }
    index_.emplace(key, values_.size());
    values_.push_back({key, std::move(value), std::move(origin), false});
}

void Config::set(const std::string& assignment, std::vector<std::string>& errors) {
    const size_t eq = assignment.find('=');
    const std::string_view key =
        trim(std::string_view(assignment).substr(0, std::min(eq, assignment.size())));
    if (eq == std::string::npos || !valid_name(key)) {
        errors.push_back(fmt::format("--set: {} should be key=value with the key {}",
                                     quote(assignment), kNameRule));
        return;
    }
    assign(std::string(key), std::string(trim(std::string_view(assignment).substr(eq + 1))),
           Origin{});
}

namespace {

bool read_file(const std::string& path, std::string& text, std::vector<std::string>& errors) {
    // A directory opens as a stream and reads as nothing: name it rather than accept it.
    std::error_code ec;
    int err = std::filesystem::is_directory(path, ec) ? EISDIR : 0;
    if (!err) {
        errno = 0;
        std::ifstream f(path, std::ios::binary);
        if (f) {
            std::ostringstream ss;
            ss << f.rdbuf();
            text = ss.str();
            if (!f.bad()) return true;
        }
        err = errno ? errno : EIO;
    }
    errors.push_back(
        fmt::format("cannot read config file {}: {}", quote(path, 1024), std::strerror(err)));
    return false;
}

}  // namespace

Config Config::load(const std::vector<std::string>& files, const std::vector<std::string>& sets) {
    Config c;
    std::vector<std::string> errors;
    for (const auto& path : files) {
        std::string text;
        if (read_file(path, text, errors)) c.parse(text, path, errors);
    }
    for (const auto& s : sets) c.set(s, errors);
    if (!errors.empty()) throw ConfigError(std::move(errors));
    return c;
}

// The single-source loaders work on a copy, so a failed load leaves the Config unchanged.
void Config::load_file(const std::string& path) {
    std::vector<std::string> errors;
    std::string text;
    Config next = *this;
    if (read_file(path, text, errors)) next.parse(text, path, errors);
    if (!errors.empty()) throw ConfigError(std::move(errors));
    *this = std::move(next);
}

void Config::load_string(const std::string& text, const std::string& name) {
    std::vector<std::string> errors;
    Config next = *this;
    next.parse(text, name, errors);
    if (!errors.empty()) throw ConfigError(std::move(errors));
    *this = std::move(next);
}

void Config::set_from(const std::string& option, const std::string& key, const std::string& value) {
    if (!valid_name(key))
        throw std::logic_error(fmt::format("option key {} is not {}", quote(key), kNameRule));
    assign(key, value, Origin{option, 0});
}

void Config::set(const std::string& assignment) {
    std::vector<std::string> errors;
    set(assignment, errors);
    if (!errors.empty()) throw ConfigError(std::move(errors));
}

// ---- access -------------------------------------------------------------------------------

ConfigValue* Config::find_mutable(const std::string& key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &values_[it->second];
}

const ConfigValue* Config::find(const std::string& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &values_[it->second];
}

std::string Config::where(const std::string& key) const {
    const ConfigValue* v = find(key);
    return v ? fmt::format("{}: {}", v->origin.str(), key) : key;
}

void Config::mark_used(const std::string& key) {
    // Remembered even when absent, so a misspelt key can be pointed at the one that was read.
    if (known_set_.insert(key).second) known_.push_back(key);
    if (ConfigValue* v = find_mutable(key)) v->used = true;
}

std::optional<std::string> Config::get_string(const std::string& key) {
    mark_used(key);
    const ConfigValue* v = find(key);
    return v ? std::optional<std::string>(v->value) : std::nullopt;
}

std::vector<std::string> Config::get_list(const std::string& key) {
    std::vector<std::string> items;
    const std::optional<std::string> v = get_string(key);
    if (!v) return items;
    size_t start = 0;
    for (size_t i = 0; i <= v->size(); ++i) {
        if (i < v->size() && (*v)[i] != ',') continue;
        std::string_view item = trim(std::string_view(*v).substr(start, i - start));
        if (!item.empty()) items.emplace_back(item);
        start = i + 1;
    }
    return items;
}

std::vector<std::string> Config::keys_under(const std::string& prefix) const {
    std::vector<std::string> keys;
    for (const auto& v : values_)
        if (prefix.empty() ||
            (v.key.size() > prefix.size() && v.key.compare(0, prefix.size(), prefix) == 0 &&
             v.key[prefix.size()] == '.'))
            keys.push_back(v.key);
    return keys;
}

std::vector<const ConfigValue*> Config::unused() const {
    std::vector<const ConfigValue*> out;
    for (const auto& v : values_)
        if (!v.used) out.push_back(&v);
    return out;
}

// ---- parameters ---------------------------------------------------------------------------

const char* to_string(ParamType t) {
    switch (t) {
        case ParamType::Unsigned: return "unsigned";
        case ParamType::Signed: return "integer";
        case ParamType::Bool: return "bool";
        case ParamType::Enum: return "enum";
        case ParamType::Double: return "real";
        case ParamType::String: return "string";
    }
    return "?";
}

void ParamRegistry::add(const std::string& prefix, const char* name, const char* unit,
                        const char* doc, config_detail::Binding binding) {
    std::string full = prefix.empty() ? std::string(name) : prefix + "." + name;
    // Both are programming errors in a module's visit() or in the assembly, not user input.
    if (!valid_name(full))
        throw std::logic_error(fmt::format("parameter name '{}' is not {}", full, kNameRule));
    if (index_.count(full))
        throw std::logic_error(fmt::format("parameter '{}' is declared twice", full));
    ParamInfo info{full, binding.type, binding.get(), unit, doc, binding.range};
    index_.emplace(full, params_.size());
    params_.push_back({std::move(info), std::move(binding)});
}

std::string ParamRegistry::unknown_message(const Config& config, const ConfigValue& v,
                                           const char* what) const {
    std::string msg = fmt::format("{}: {} {}", v.origin.str(), what, quote(v.key));
    const std::vector<std::string> near = closest(v.key, 3, config.known_keys());
    for (size_t i = 0; i < near.size(); ++i)
        msg += (i == 0 ? "; closest valid keys: " : ", ") + near[i];
    return msg;
}

void ParamRegistry::apply(Config& config, Unknown unknown) const {
    std::vector<std::string> errors;
    std::vector<std::pair<const Param*, ConfigValue*>> staged;
    // Check everything first, assign afterwards: a configuration with any error changes nothing.
    for (ConfigValue& v : config.values_) {
        auto it = index_.find(v.key);
        if (it == index_.end()) {
            if (!v.used && unknown == Unknown::Error)
                errors.push_back(unknown_message(config, v, "unknown key"));
            continue;
        }
        const Param& p = params_[it->second];
        std::string e = p.binding.set(v.value, false);
        if (e.empty())
            staged.emplace_back(&p, &v);
        else
            errors.push_back(fmt::format("{}: {}: {}", v.origin.str(), v.key, e));
    }
    if (!errors.empty()) throw ConfigError(std::move(errors));
    for (auto& [p, v] : staged) {
        p->binding.set(v->value, true);
        v->used = true;
    }
}

void ParamRegistry::check_unused(const Config& config) const {
    std::vector<std::string> errors;
    for (const ConfigValue* v : config.unused())
        errors.push_back(unknown_message(config, *v, "nothing uses key"));
    if (!errors.empty()) throw ConfigError(std::move(errors));
}

std::vector<ParamInfo> ParamRegistry::list() const {
    std::vector<ParamInfo> out;
    for (const auto& p : params_) out.push_back(p.info);
    return out;
}

std::vector<std::pair<std::string, std::string>> ParamRegistry::values() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& p : params_) out.emplace_back(p.info.name, p.binding.get());
    return out;
}

std::optional<std::string> ParamRegistry::value(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) return std::nullopt;
    return params_[it->second].binding.get();
}

size_t edit_distance(std::string_view a, std::string_view b) {
    // Optimal string alignment: a swapped pair of letters ("entires") counts as one edit.
    // Three rows of the table suffice (the transposition looks two rows back).
    std::vector<size_t> two(b.size() + 1), one(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) one[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            cur[j] =
                std::min({one[j] + 1, cur[j - 1] + 1, one[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                cur[j] = std::min(cur[j], two[j - 2] + 1);
        }
        std::swap(two, one);
        std::swap(one, cur);
    }
    return one[b.size()];
}

namespace {

// Distance over dotted components: a missing or extra component (a key put in the parent
// section) costs 1000, a changed component up to 2000 by how much of it changed. So
// "[system.iommu0] entries" is nearer "system.iommu0.iotlb.entries" than ".walkers".
size_t component_distance(std::string_view a, std::string_view b) {
    const auto pa = split_dots(a), pb = split_dots(b);
    std::vector<std::vector<size_t>> d(pa.size() + 1, std::vector<size_t>(pb.size() + 1));
    for (size_t i = 0; i <= pa.size(); ++i) d[i][0] = i * 1000;
    for (size_t j = 0; j <= pb.size(); ++j) d[0][j] = j * 1000;
    for (size_t i = 1; i <= pa.size(); ++i)
        for (size_t j = 1; j <= pb.size(); ++j) {
            const size_t len = std::max(pa[i - 1].size(), pb[j - 1].size());
            const size_t sub = len ? 2000 * edit_distance(pa[i - 1], pb[j - 1]) / len : 0;
            d[i][j] = std::min({d[i - 1][j] + 1000, d[i][j - 1] + 1000, d[i - 1][j - 1] + sub});
        }
    return d[pa.size()][pb.size()];
}

}  // namespace

std::vector<std::string> ParamRegistry::closest(const std::string& key, size_t n,
                                                const std::vector<std::string>& extra) const {
    struct Cand {
        size_t comp, chars;
        const std::string* name;
    };
    std::vector<Cand> cands;
    // The search costs key length x candidate length per candidate: a key far longer than any
    // name (a pasted file, a runaway line) gets no suggestions rather than minutes of work.
    if (key.size() > kClosestMaxKey) return {};
    std::unordered_map<std::string_view, bool> seen;
    auto consider = [&](const std::string& name) {
        if (name == key || !seen.emplace(name, true).second) return;
        cands.push_back({component_distance(key, name), edit_distance(key, name), &name});
    };
    for (const auto& p : params_) consider(p.info.name);
    for (const auto& e : extra) consider(e);
    std::sort(cands.begin(), cands.end(), [](const Cand& x, const Cand& y) {
        if (x.comp != y.comp) return x.comp < y.comp;
        if (x.chars != y.chars) return x.chars < y.chars;
        return *x.name < *y.name;
    });
    std::vector<std::string> out;
    for (size_t i = 0; i < cands.size() && i < n; ++i) out.push_back(*cands[i].name);
    return out;
}

std::string params_table(const std::vector<ParamInfo>& params) {
    static const char* kHead[] = {"parameter", "default", "unit", "range", "doc"};
    size_t w[4] = {};
    for (int c = 0; c < 4; ++c) w[c] = std::strlen(kHead[c]);
    for (const auto& p : params) {
        w[0] = std::max(w[0], p.name.size());
        w[1] = std::max(w[1], p.default_text.size());
        w[2] = std::max(w[2], p.unit.size());
        w[3] = std::max(w[3], p.range.size());
    }
    auto row = [&](const std::string& a, const std::string& b, const std::string& c,
                   const std::string& d, const std::string& e) {
        std::string line = fmt::format("{:<{}}  {:<{}}  {:<{}}  {:<{}}  {}", a, w[0], b, w[1], c,
                                       w[2], d, w[3], e);
        while (!line.empty() && line.back() == ' ') line.pop_back();
        return line + "\n";
    };
    std::string out = row(kHead[0], kHead[1], kHead[2], kHead[3], kHead[4]);
    for (const auto& p : params) out += row(p.name, p.default_text, p.unit, p.range, p.doc);
    return out;
}

}  // namespace iommusim
