// Parsing and printing of parameter values (integers with multipliers, booleans, reals):
// the non-template half of config_detail::make_binding in config.h.
#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "config.h"
#include "quote.h"

namespace iommusim {

namespace config_detail {

bool binary_unit(std::string_view unit) {
    return unit == "B" || unit == "bytes" || unit == "byte" || unit == "KiB" || unit == "MiB" ||
           unit == "GiB";
}

namespace {

// The multiplier a suffix stands for; 0 if it is not one.
uint64_t multiplier(std::string_view s, bool binary) {
    static const char kLetters[] = "KMGT";
    if (s.empty()) return 1;
    const char* at = std::strchr(kLetters, s[0] == 'k' ? 'K' : s[0]);
    if (!at || !s[0]) return 0;
    const unsigned n = unsigned(at - kLetters) + 1;
    const bool iec = s.size() == 2 && s[1] == 'i';
    if (s.size() != 1 && !iec) return 0;
    uint64_t m = 1;
    for (unsigned i = 0; i < n; ++i) m *= binary || iec ? 1024 : 1000;
    return m;
}

std::string suffix_error(std::string_view t, std::string_view suffix, bool binary) {
    return fmt::format(
        "{} has an unknown multiplier {} (expected K, M, G, T (powers of {}) or Ki, Mi, Gi, "
        "Ti (powers of 1024))",
        quote(t), quote(suffix), binary ? 1024 : 1000);
}

// Digits in base 10 (a leading 0 is not octal), 0x hex or 0b binary, '_' allowed between
// digits, then an optional multiplier. "" or what is wrong.
// `t` is the whole text for messages, `s` the part without a sign.
std::string parse_magnitude(std::string_view t, std::string_view s, bool binary,
                            const std::string& expected, uint64_t* out) {
    unsigned base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) base = 16, s.remove_prefix(2);
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) base = 2, s.remove_prefix(2);
    uint64_t v = 0;
    size_t i = 0;
    bool any = false;
    for (; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '_' && any) continue;
        const unsigned d = c >= '0' && c <= '9'   ? unsigned(c - '0')
                           : c >= 'a' && c <= 'f' ? unsigned(c - 'a' + 10)
                           : c >= 'A' && c <= 'F' ? unsigned(c - 'A' + 10)
                                                  : 99;
        if (d >= base) break;
        if (v > (UINT64_MAX - d) / base)
            return fmt::format("{} is too large ({})", quote(t), expected);
        v = v * base + d;
        any = true;
    }
    if (!any || s[i - 1] == '_')
        return fmt::format("{} is not an integer ({}; e.g. 4096, 0x1000, 4Ki)", quote(t), expected);
    const uint64_t m = multiplier(s.substr(i), binary);
    if (m == 0) return suffix_error(t, s.substr(i), binary);
    if (v > UINT64_MAX / m) return fmt::format("{} is too large ({})", quote(t), expected);
    *out = v * m;
    return {};
}

// "'4Gi' (4294967296)" when the text is not the plain number.
std::string shown(std::string_view t, const std::string& value) {
    return t == value ? value : fmt::format("{} ({})", quote(t), value);
}

}  // namespace

std::string parse_unsigned(std::string_view t, bool binary, uint64_t lo, uint64_t hi,
                           uint64_t* out) {
    const std::string expected =
        fmt::format("expected an integer in {}..{}", format_unsigned(lo), format_unsigned(hi));
    uint64_t v = 0;
    if (!t.empty() && (t[0] == '-' || t[0] == '+'))
        return fmt::format("{} is not a non-negative integer ({})", quote(t), expected);
    std::string e = parse_magnitude(t, t, binary, expected, &v);
    if (!e.empty()) return e;
    if (v < lo || v > hi)
        return fmt::format("{} is out of range ({})", shown(t, std::to_string(v)), expected);
    *out = v;
    return {};
}

std::string parse_signed(std::string_view t, bool binary, int64_t lo, int64_t hi, int64_t* out) {
    const std::string expected = fmt::format("expected an integer in {}..{}", lo, hi);
    const bool neg = !t.empty() && t[0] == '-';
    uint64_t m = 0;
    const bool sign = !t.empty() && (t[0] == '-' || t[0] == '+');
    std::string e = parse_magnitude(t, sign ? t.substr(1) : t, binary, expected, &m);
    if (!e.empty()) return e;
    const uint64_t limit = neg ? uint64_t(1) << 63 : (uint64_t(1) << 63) - 1;
    if (m > limit) return fmt::format("{} is too large ({})", quote(t), expected);
    const int64_t v = neg ? int64_t(0 - m) : int64_t(m);
    if (v < lo || v > hi)
        return fmt::format("{} is out of range ({})", shown(t, std::to_string(v)), expected);
    *out = v;
    return {};
}

std::string parse_bool(std::string_view t, bool* out) {
    std::string s(t);
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (s == "true" || s == "1" || s == "yes" || s == "on") return *out = true, std::string();
    if (s == "false" || s == "0" || s == "no" || s == "off") return *out = false, std::string();
    return fmt::format("{} is not a boolean (expected true/false, yes/no, on/off or 1/0)",
                       quote(t));
}

std::string parse_double(std::string_view t, bool binary, double lo, double hi, double* out) {
    const std::string expected =
        fmt::format("expected a number in {}..{}", format_double(lo), format_double(hi));
    const std::string s(t);
    char* end = nullptr;
    const double v = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
    if (s.empty() || end == s.c_str() || !std::isfinite(v) || std::isspace(*s.c_str()))
        return fmt::format("{} is not a number ({})", quote(t), expected);
    const std::string_view suffix(end);
    const uint64_t m = multiplier(suffix, binary);
    if (m == 0) return suffix_error(t, suffix, binary);
    const double r = v * double(m);
    if (!(r >= lo && r <= hi))
        return fmt::format("{} is out of range ({})", shown(t, format_double(r)), expected);
    *out = r;
    return {};
}

std::string format_unsigned(uint64_t v) {
    // Large round sizes read better as 1Mi than 1048576, and parse back the same.
    static const char* kSuffix[] = {"Ki", "Mi", "Gi", "Ti"};
    if (v < 65536 || v % 1024) return std::to_string(v);
    int n = 0;
    while (n < 4 && v % 1024 == 0) v /= 1024, ++n;
    return std::to_string(v) + kSuffix[n - 1];
}

std::string format_double(double v) {
    return fmt::format("{}", v);
}

std::string enum_error(std::string_view t, const std::vector<std::string>& names) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return fmt::format("{} is not one of: {}", quote(t), list);
}

}  // namespace config_detail

}  // namespace iommusim
