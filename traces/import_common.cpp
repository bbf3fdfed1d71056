// Shared pieces of the importers: report, record counting, line source and field parsers.
#include "traces/import_common.h"

#include <cstring>
#include <stdexcept>

#include "traces/trace_input.h"
#include "traces/trace_line.h"

namespace iommusim::trace {

namespace {
constexpr size_t kReadChunk = 256 * 1024;
constexpr const char* kKindNames[] = {"map", "unmap", "inval", "dma", "fault"};
}  // namespace

uint64_t ImportReport::total() const {
    uint64_t n = 0;
    for (uint64_t c : records) n += c;
    return n;
}

std::string ImportReport::summary(size_t max_errors) const {
    std::string s = std::to_string(total()) + " records (";
    for (size_t k = 0; k < records.size(); ++k)
        s += (k ? ", " : "") + std::to_string(records[k]) + " " + kKindNames[k];
    s += ") from " + std::to_string(lines) + " lines, " + std::to_string(skipped) + " skipped, " +
         std::to_string(errors.size() + errors_unlisted) + " errors\n";
    if (records[size_t(Kind::Dma)])
        s += "dma: " + std::to_string(dma_sized) + " with size, " + std::to_string(dma_unsized) +
             " size=?; " + std::to_string(dma_dir_known) + " with direction, " +
             std::to_string(dma_dir_unknown) + " dir=?\n";
    if (ops_anchored || ops_interpolated)
        s += "guest map/unmap placement: " + std::to_string(ops_anchored) +
             " at their invalidation, " + std::to_string(ops_interpolated) + " by clock offset\n";
    if (ops_unattributed)
        s += std::to_string(ops_unattributed) + " map/unmap without requester (00:00.0)\n";
    for (size_t i = 0; i < errors.size() && i < max_errors; ++i)
        s += "error: " + errors[i].str() + "\n";
    if (errors.size() + errors_unlisted > max_errors)
        s += "(" + std::to_string(errors.size() + errors_unlisted - max_errors) + " more errors)\n";
    for (const std::string& n : notes) s += "note: " + n + "\n";
    return s;
}

void ImportReport::error(const std::string& file, uint64_t line, std::string what) {
    if (errors.size() < kMaxErrors)
        errors.push_back({file, line, std::move(what)});
    else
        ++errors_unlisted;
}

void emit(const Record& r, const RecordSink& sink, ImportReport& report) {
    ++report.records[size_t(r.kind)];
    if (r.kind == Kind::Dma) {
        ++(r.size_known ? report.dma_sized : report.dma_unsized);
        ++(r.dir != Dir::Unknown ? report.dma_dir_known : report.dma_dir_unknown);
    }
    sink(r);
}

// ---- LineSource ----

struct LineSource::Impl {
    explicit Impl(const std::string& path) : in(path) {}
    detail::Input in;
    ImportReport* report = nullptr;
    std::unique_ptr<char[]> buf{new char[kReadChunk]};
    size_t pos = 0, end = 0;
    bool eof = false;
};

LineSource::LineSource(const std::string& path, ImportReport& report) : path_(path) {
    try {
        impl_ = std::make_unique<Impl>(path);
    } catch (const std::runtime_error& e) {
        throw std::runtime_error("cannot read '" + path + "': " + e.what());
    }
    impl_->report = &report;
}

LineSource::~LineSource() = default;

bool LineSource::next(std::string& line) {
    Impl& im = *impl_;
    for (;;) {
        line.clear();
        bool any = false, too_long = false;
        for (;;) {
            if (im.pos == im.end) {
                if (im.eof) break;
                const long n = im.in.read(im.buf.get(), kReadChunk);
                if (n < 0)
                    throw std::runtime_error(path_ + ":" + std::to_string(line_ + 1) + ": " +
                                             im.in.error());
                if (n == 0) {
                    im.eof = true;
                    break;
                }
                im.pos = 0;
                im.end = size_t(n);
            }
            any = true;
            const char* base = im.buf.get();
            const void* nl = std::memchr(base + im.pos, '\n', im.end - im.pos);
            const size_t stop = nl ? size_t(static_cast<const char*>(nl) - base) : im.end;
            if (!too_long && line.size() + (stop - im.pos) > kMaxLine) {
                too_long = true;  // the rest of it is dropped as it comes, never held
                line.clear();
            }
            if (!too_long) line.append(base + im.pos, stop - im.pos);
            im.pos = nl ? stop + 1 : im.end;
            if (nl) break;
        }
        if (!any) return false;
        ++line_;
        ++im.report->lines;
        if (too_long) {
            im.report->error(path_, line_,
                             "line longer than " + std::to_string(kMaxLine) + " bytes, not used");
            continue;
        }
        if (const void* nul = std::memchr(line.data(), '\0', line.size())) {
            const size_t at = size_t(static_cast<const char*>(nul) - line.data());
            im.report->error(path_, line_,
                             "NUL byte at column " + std::to_string(at + 1) +
                                 " (not a line of text), line not used: " + detail::quoted(line));
            continue;
        }
        while (!line.empty() && line.back() == '\r') line.pop_back();
        return true;
    }
}

// ---- Field parsers ----

namespace import {

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

std::optional<uint16_t> bdf(std::string_view s) {
    // Optional PCI segment: "0000:00:02.0".
    const size_t first = s.find(':');
    if (first != std::string_view::npos && s.find(':', first + 1) != std::string_view::npos)
        s.remove_prefix(first + 1);
    size_t n = 0;
    const auto bus = hex(s, &n);
    if (!bus || n != 2 || s.size() < 4 || s[2] != ':') return std::nullopt;
    s.remove_prefix(3);
    const auto dev = hex(s, &n);
    if (!dev || n != 2 || s.size() < 4 || s[2] != '.') return std::nullopt;
    s.remove_prefix(3);
    const auto fn = hex(s, &n);
    if (!fn || n != s.size() || n > 2 || *bus > 0xff || *dev > 0x1f || *fn > 7) return std::nullopt;
    return uint16_t((*bus << 8) | (*dev << 3) | *fn);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace import
}  // namespace iommusim::trace
