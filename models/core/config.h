// Configuration: INI files read in order, then `--set key=value` overrides, every value
// remembering where it came from; and the registry that binds each module's parameter struct
// (its visit() declarations) to dotted names, applies the configuration to it and lists it
// for `iommusim params`. Errors name file, line, key and what was expected, and are reported
// all together; nothing is assigned unless everything is valid. See docs/config.md.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/cache.h"

namespace iommusim {

// Every configuration problem found, one message per line ("file:line: key: what").
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<std::string> errors);
    const std::vector<std::string>& errors() const { return errors_; }

private:
    std::vector<std::string> errors_;
};

struct Origin {
    std::string file;  // empty: a --set override; with line 0: a named option ("--seed")
    int line = 0;
    std::string str() const;  // "file:line", "--set" or the option's name
};

struct ConfigValue {
    std::string key;  // full dotted name: section + "." + key
    std::string value;
    Origin origin;
    bool used = false;  // applied to a parameter or read by the platform assembly
};

class Config {
public:
    // Files in order (a later file overrides an earlier one), then the `key=value`
    // assignments in order. Collects every error of every file and assignment.
    static Config load(const std::vector<std::string>& files,
                       const std::vector<std::string>& sets = {});

    // One source each; they throw ConfigError and then leave the Config as it was.
    void load_file(const std::string& path);
    void load_string(const std::string& text, const std::string& name);  // name: for messages
    void set(const std::string& assignment);                             // "a.b.c=value"
    // A value given by a dedicated option (`--seed 5` for system.seed): like --set, but
    // messages name `option` as its origin.
    void set_from(const std::string& option, const std::string& key, const std::string& value);

    const std::vector<ConfigValue>& values() const { return values_; }
    const ConfigValue* find(const std::string& key) const;
    bool has(const std::string& key) const { return find(key) != nullptr; }
    // "file:line: key" for messages about a key's value; just the key when it is not set.
    std::string where(const std::string& key) const;

    // Values the platform assembly reads itself (topology, counts): reading marks them used.
    std::optional<std::string> get_string(const std::string& key);
    // Comma-separated list ("nic0, nvme0"), items trimmed, empty items dropped; {} if unset.
    std::vector<std::string> get_list(const std::string& key);
    // Keys starting with `prefix.`, in the order they were first given.
    std::vector<std::string> keys_under(const std::string& prefix) const;
    void mark_used(const std::string& key);
    std::vector<const ConfigValue*> unused() const;
    // Keys the assembly read or marked, given or not: candidates for "closest valid key".
    const std::vector<std::string>& known_keys() const { return known_; }

private:
    friend class ParamRegistry;
    void parse(const std::string& text, const std::string& name, std::vector<std::string>& errors);
    void assign(const std::string& key, std::string value, Origin origin);
    void set(const std::string& assignment, std::vector<std::string>& errors);
    ConfigValue* find_mutable(const std::string& key);

    std::vector<ConfigValue> values_;
    std::unordered_map<std::string, size_t> index_;
    std::vector<std::string> known_;
    std::unordered_set<std::string> known_set_;
};

// Enumerations a parameter may have: specialise with parse (text -> value, aliases allowed),
// name (value -> canonical text) and values (every value, for `iommusim params`).
template <typename E>
struct EnumParam;  // deliberately undefined: an enum parameter needs a specialisation

template <>
struct EnumParam<Replacement> {
    static std::optional<Replacement> parse(std::string_view s) { return parse_replacement(s); }
    static std::string name(Replacement r) { return to_string(r); }
    static std::vector<Replacement> values() {
        return {Replacement::LRU, Replacement::TreePLRU, Replacement::FIFO, Replacement::Random};
    }
};

enum class ParamType : uint8_t { Unsigned, Signed, Bool, Enum, Double, String };
const char* to_string(ParamType t);

struct ParamInfo {
    std::string name;  // full dotted name
    ParamType type;
    std::string default_text;  // the field's value when bound
    std::string unit, doc;
    std::string range;  // "1..1024", "lru, plru, fifo, random", "true/false", "" (strings)
};

namespace config_detail {

// One parameter's access, type-erased. set() parses `text`, checks it and, when `commit`,
// stores it; it returns "" or what was expected.
struct Binding {
    ParamType type;
    std::function<std::string(std::string_view text, bool commit)> set;
    std::function<std::string()> get;
    std::string range;
};

// Sizes in bytes read K/M/G as powers of 1024 (a "4K" page); other units read them as
// powers of 1000 ("200G" bit/s). Ki/Mi/Gi/Ti are always binary.
bool binary_unit(std::string_view unit);
std::string parse_unsigned(std::string_view t, bool binary, uint64_t lo, uint64_t hi,
                           uint64_t* out);
std::string parse_signed(std::string_view t, bool binary, int64_t lo, int64_t hi, int64_t* out);
std::string parse_bool(std::string_view t, bool* out);
std::string parse_double(std::string_view t, bool binary, double lo, double hi, double* out);
std::string format_unsigned(uint64_t v);
std::string format_double(double v);
std::string enum_error(std::string_view t, const std::vector<std::string>& names);

// A declared bound (int, uint64_t, double) in the field's own type, saturating.
template <typename T, typename X>
T clamp_to(X x) {
    using L = std::numeric_limits<T>;
    if constexpr (std::is_floating_point_v<X>) {
        if (!(x > double(L::lowest()))) return L::lowest();
        if (!(x < double(L::max()))) return L::max();
        return T(x);
    } else {
        uint64_t u = 0;
        if constexpr (std::is_signed_v<X>) {
            const int64_t s = int64_t(x);
            if (s < 0) {
                if constexpr (std::is_signed_v<T>)
                    return s < int64_t(L::lowest()) ? L::lowest() : T(s);
                else
                    return 0;
            }
            u = uint64_t(s);
        } else {
            u = uint64_t(x);
        }
        return u > uint64_t(L::max()) ? L::max() : T(u);
    }
}

template <typename T, typename Lo, typename Hi>
Binding make_binding(T& field, std::string_view unit, Lo lo, Hi hi) {
    (void)unit, (void)lo, (void)hi;  // bools, enums and strings have no numeric range
    if constexpr (std::is_same_v<T, bool>) {
        return {ParamType::Bool,
                [&field](std::string_view t, bool commit) {
                    bool v = false;
                    std::string e = parse_bool(t, &v);
                    if (e.empty() && commit) field = v;
                    return e;
                },
                [&field] { return std::string(field ? "true" : "false"); }, "true/false"};
    } else if constexpr (std::is_enum_v<T>) {
        using E = EnumParam<T>;
        std::vector<std::string> names;
        for (T v : E::values()) names.push_back(E::name(v));
        std::string range;
        for (const auto& n : names) range += (range.empty() ? "" : ", ") + n;
        return {ParamType::Enum,
                [&field, names](std::string_view t, bool commit) {
                    std::optional<T> v = E::parse(t);
                    if (!v) return enum_error(t, names);
                    if (commit) field = *v;
                    return std::string();
                },
                [&field] { return std::string(E::name(field)); }, range};
    } else if constexpr (std::is_floating_point_v<T>) {
        const double l = double(lo), h = double(hi);
        const bool bin = binary_unit(unit);
        return {ParamType::Double,
                [&field, l, h, bin](std::string_view t, bool commit) {
                    double v = 0;
                    std::string e = parse_double(t, bin, l, h, &v);
                    if (e.empty() && commit) field = T(v);
                    return e;
                },
                [&field] { return format_double(double(field)); },
                format_double(l) + ".." + format_double(h)};
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
        const uint64_t l = clamp_to<T>(lo), h = clamp_to<T>(hi);
        const bool bin = binary_unit(unit);
        return {ParamType::Unsigned,
                [&field, l, h, bin](std::string_view t, bool commit) {
                    uint64_t v = 0;
                    std::string e = parse_unsigned(t, bin, l, h, &v);
                    if (e.empty() && commit) field = T(v);
                    return e;
                },
                [&field] { return format_unsigned(uint64_t(field)); },
                format_unsigned(l) + ".." + format_unsigned(h)};
    } else if constexpr (std::is_integral_v<T>) {
        const int64_t l = clamp_to<T>(lo), h = clamp_to<T>(hi);
        const bool bin = binary_unit(unit);
        return {ParamType::Signed,
                [&field, l, h, bin](std::string_view t, bool commit) {
                    int64_t v = 0;
                    std::string e = parse_signed(t, bin, l, h, &v);
                    if (e.empty() && commit) field = T(v);
                    return e;
                },
                [&field] { return std::to_string(int64_t(field)); },
                std::to_string(l) + ".." + std::to_string(h)};
    } else {
        static_assert(std::is_same_v<T, std::string>, "unsupported parameter type");
        return {ParamType::String,
                [&field](std::string_view t, bool commit) {
                    if (commit) field = std::string(t);
                    return std::string();
                },
                [&field] { return field; }, ""};
    }
}

}  // namespace config_detail

// Which parameters exist. Bound structs must outlive the registry's use of them; bind
// before apply (the value at bind time is the documented default).
class ParamRegistry {
public:
    enum class Unknown { Error, Ignore };

    // Declares every parameter of `params` (its visit()) under `prefix` ("system.iommu0").
    template <typename P>
    void bind(const std::string& prefix, P& params) {
        params.visit(Binder{*this, prefix});
    }

    // Assigns every config value naming a parameter. Unknown keys (no parameter, not marked
    // used) are errors unless `unknown` is Ignore (for staged assembly; check_unused later).
    // Throws ConfigError with every problem; then no parameter has changed.
    void apply(Config& config, Unknown unknown = Unknown::Error) const;
    // Throws ConfigError naming every value nobody applied or read, with the closest keys.
    void check_unused(const Config& config) const;

    std::vector<ParamInfo> list() const;
    // Current values, in declaration order (e.g. for the run metadata of stats.json).
    std::vector<std::pair<std::string, std::string>> values() const;
    std::optional<std::string> value(const std::string& name) const;
    bool contains(const std::string& name) const { return index_.count(name) != 0; }

    // Up to `n` valid names closest to `key` (parameters and `extra`, e.g. used config keys);
    // none for a key longer than kClosestMaxKey bytes (the search is quadratic in length).
    static constexpr size_t kClosestMaxKey = 256;
    std::vector<std::string> closest(const std::string& key, size_t n = 3,
                                     const std::vector<std::string>& extra = {}) const;

private:
    struct Binder {
        ParamRegistry& r;
        std::string prefix;
        template <typename T, typename Lo, typename Hi>
        void operator()(const char* name, T& field, const char* unit, const char* doc, Lo lo,
                        Hi hi) const {
            r.add(prefix, name, unit, doc, config_detail::make_binding(field, unit, lo, hi));
        }
    };
    struct Param {
        ParamInfo info;
        config_detail::Binding binding;
    };
    void add(const std::string& prefix, const char* name, const char* unit, const char* doc,
             config_detail::Binding binding);
    std::string unknown_message(const Config& config, const ConfigValue& v, const char* what) const;

    std::vector<Param> params_;
    std::unordered_map<std::string, size_t> index_;
};

// `iommusim params`: an aligned table of name, default, unit, range and doc.
std::string params_table(const std::vector<ParamInfo>& params);

// Edit distance (insertions, deletions, substitutions, adjacent transpositions).
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace iommusim
