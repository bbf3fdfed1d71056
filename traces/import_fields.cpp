// The importers' field tokenizer.
#include "traces/import_fields.h"

namespace iommusim::trace::import {

namespace {
int digit(char c, unsigned base) {
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : 99;
    return d < int(base) ? d : -1;
}

std::optional<uint64_t> digits(std::string_view s, unsigned base, size_t* used) {
    uint64_t v = 0;
    size_t i = 0;
    for (; i < s.size(); ++i) {
        const int d = digit(s[i], base);
        if (d < 0) break;
        if (v > (UINT64_MAX - unsigned(d)) / base) return std::nullopt;
        v = v * base + unsigned(d);
    }
    if (i == 0) return std::nullopt;
    if (used) *used = i;
    return v;
}

bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
}  // namespace

std::optional<uint64_t> hex(std::string_view s, size_t* used) {
    return digits(s, 16, used);
}

std::optional<uint64_t> number(std::string_view s, size_t* used) {
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        size_t n = 0;
        auto v = digits(s.substr(2), 16, &n);
        if (v && used) *used = n + 2;
        return v;
    }
    return digits(s, 10, used);
}

namespace {
// Each place where `key` stands as a word followed by blanks or '=': the value's offset.
template <class F>
auto each_value(std::string_view args, std::string_view key, F&& f) -> decltype(f(size_t{})) {
    for (size_t pos = args.find(key); pos != std::string_view::npos;
         pos = args.find(key, pos + 1)) {
        const size_t end = pos + key.size();
        if ((pos > 0 && word_char(args[pos - 1])) || (end < args.size() && word_char(args[end])))
            continue;
        size_t i = end;
        while (i < args.size() && (args[i] == ' ' || args[i] == '=')) ++i;
        if (i == end || i == args.size()) continue;
        if (auto v = f(i)) return v;
    }
    return {};
}
}  // namespace

std::optional<uint64_t> field(std::string_view args, std::string_view key) {
    return each_value(args, key, [&](size_t i) { return number(args.substr(i)); });
}

std::optional<uint64_t> hex_field(std::string_view args, std::string_view key) {
    return each_value(args, key, [&](size_t i) {
        std::string_view v = args.substr(i);
        if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) v.remove_prefix(2);
        return hex(v);
    });
}

size_t value_pos(std::string_view args, std::string_view key) {
    const auto p = each_value(args, key, [](size_t i) { return std::optional<size_t>(i); });
    return p ? *p : std::string_view::npos;
}

std::optional<uint64_t> seconds_ns(std::string_view s) {
    const size_t dot = s.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 >= s.size()) return std::nullopt;
    size_t n = 0;
    const auto sec = digits(s.substr(0, dot), 10, &n);
    if (!sec || n != dot || *sec > UINT64_MAX / 1000000000u) return std::nullopt;
    uint64_t frac = 0, scale = 1000000000u;
    for (size_t i = dot + 1; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9') return std::nullopt;
        if (scale > 1) {
            scale /= 10;
            frac += uint64_t(s[i] - '0') * scale;
        }
    }
    return *sec * 1000000000u + frac;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace iommusim::trace::import
