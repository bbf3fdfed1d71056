#include "stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace iommusim {

namespace {

constexpr uint64_t kSub = uint64_t(1) << Histogram::kSubBits;

}  // namespace

// Bucket layout: [0, 2*kSub) holds one value each; after that, group g >= 2 covers
// [kSub << (g-1), kSub << g) in kSub sub-buckets of width 2^(g-1). The largest index (for
// 2^64-1) is 58*64+63 = 3775, so a histogram never holds more than ~30 KiB of buckets.
size_t Histogram::bucket_of(uint64_t v) {
    if (v < 2 * kSub) return size_t(v);
    const unsigned msb = 63u - unsigned(__builtin_clzll(v));
    const unsigned shift = msb - kSubBits;
    return size_t(shift + 1) * kSub + size_t((v >> shift) - kSub);
}

uint64_t Histogram::bucket_upper(size_t b) {
    if (b < 2 * kSub) return uint64_t(b);
    const unsigned shift = unsigned(b / kSub) - 1;
    const uint64_t lower = (kSub + b % kSub) << shift;
    return lower + ((uint64_t(1) << shift) - 1);  // cannot overflow: top bucket ends at 2^64-1
}

void Histogram::add(uint64_t v, uint64_t n) {
    if (n == 0) return;
    const size_t b = bucket_of(v);
    // Growth happens only the first few times a new magnitude shows up; reset() keeps the
    // capacity, so steady-state adds never allocate.
    if (__builtin_expect(b >= buckets_.size(), 0)) buckets_.resize(b + 1);
    buckets_[b] += n;
    count_ += n;
    sum_ += v * n;  // wraps modulo 2^64, like the counters
    if (v < min_) min_ = v;
    if (v > max_) max_ = v;
}

void Histogram::merge(const Histogram& o) {
    if (o.count_ == 0) return;
    if (buckets_.size() < o.buckets_.size()) buckets_.resize(o.buckets_.size());
    for (size_t i = 0; i < o.buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
}

void Histogram::reset() {
    buckets_.clear();
    count_ = sum_ = max_ = 0;
    min_ = ~uint64_t(0);
}

uint64_t Histogram::percentile(double p) const {
    if (count_ == 0) return 0;
    // The rank is computed in integers (p in units of 1e-4 percent) so that e.g. p99.9 of
    // 1000 samples is rank 999 exactly, not 1000 through rounding of 0.999 * 1000.
    if (!(p > 0.0)) p = 0.0;
    if (p > 100.0) p = 100.0;
    constexpr uint64_t kScale = 1000000;  // 100 percent
    const uint64_t units = uint64_t(p * 10000.0 + 0.5);
    const uint64_t q = count_ / kScale, r = count_ % kScale;
    uint64_t rank = q * units + (r * units + kScale - 1) / kScale;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t b = 0; b < buckets_.size(); ++b) {
        seen += buckets_[b];
        if (seen >= rank) return std::min(bucket_upper(b), max_);
    }
    return max_;
}

StatGroup::StatGroup(std::string name, const StatGroup* parent)
    : name_(std::move(name)), parent_(parent) {}

std::string StatGroup::path() const {
    if (!parent_) return name_;
    std::string p = parent_->path();
    return p.empty() ? name_ : p + "." + name_;
}

namespace {

std::string join(const std::string& path, const std::string& name) {
    return path.empty() ? name : path + "." + name;
}

// Dots would make paths ambiguous and whitespace would break the "path value" text format.
void check_name(const StatGroup& g, const std::string& name) {
    if (name.empty() || name.find_first_of(". \t\n\r\f\v") != std::string::npos)
        throw std::logic_error(
            fmt::format("statistic name '{}' in '{}' must be non-empty, without dots or whitespace",
                        name, g.path()));
}

const char* kind_of(const StatGroup::Entry& e) {
    return e.counter ? "counter" : "histogram";
}

}  // namespace

Counter& StatGroup::counter(const std::string& name, const std::string& doc) {
    check_name(*this, name);
    for (Entry& e : entries_) {
        if (e.name != name) continue;
        if (e.counter) return *e.counter;
        throw std::logic_error(
            fmt::format("statistic '{}' is a {}, not a counter", join(path(), name), kind_of(e)));
    }
    for (const auto& c : children_)
        if (c->name() == name)
            throw std::logic_error(
                fmt::format("statistic '{}' is a group, not a counter", join(path(), name)));
    Counter& c = counters_.emplace_back();
    Entry& e = entries_.emplace_back();
    e.name = name;
    e.doc = doc;
    e.counter = &c;
    return c;
}

Histogram& StatGroup::histogram(const std::string& name, const std::string& unit,
                                const std::string& doc) {
    check_name(*this, name);
    for (Entry& e : entries_) {
        if (e.name != name) continue;
        if (!e.histogram)
            throw std::logic_error(fmt::format("statistic '{}' is a {}, not a histogram",
                                               join(path(), name), kind_of(e)));
        // Two modules feeding one histogram in different units would silently mix them.
        if (e.unit != unit)
            throw std::logic_error(fmt::format("histogram '{}' has unit '{}', not '{}'",
                                               join(path(), name), e.unit, unit));
        return *e.histogram;
    }
    for (const auto& c : children_)
        if (c->name() == name)
            throw std::logic_error(
                fmt::format("statistic '{}' is a group, not a histogram", join(path(), name)));
    Histogram& h = histograms_.emplace_back();
    Entry& e = entries_.emplace_back();
    e.name = name;
    e.doc = doc;
    e.unit = unit;
    e.histogram = &h;
    return h;
}

StatGroup& StatGroup::child(const std::string& name) {
    check_name(*this, name);
    for (const auto& c : children_)
        if (c->name() == name) return *c;
    for (const Entry& e : entries_)
        if (e.name == name)
            throw std::logic_error(
                fmt::format("statistic '{}' is a {}, not a group", join(path(), name), kind_of(e)));
    children_.push_back(std::make_unique<StatGroup>(name, this));
    return *children_.back();
}

void StatGroup::reset() {
    for (Counter& c : counters_) c.reset();
    for (Histogram& h : histograms_) h.reset();
    for (auto& c : children_) c->reset();
}

namespace {

struct Field {
    const char* name;
    std::string value;  // already formatted as a JSON number
};

// One list for both writers, so JSON and text always agree on fields and order.
std::vector<Field> fields_of(const Histogram& h) {
    return {
        {"count", std::to_string(h.count())},      {"sum", std::to_string(h.sum())},
        {"mean", fmt::format("{:.3f}", h.mean())}, {"min", std::to_string(h.min())},
        {"p50", std::to_string(h.percentile(50))}, {"p90", std::to_string(h.percentile(90))},
        {"p99", std::to_string(h.percentile(99))}, {"p99.9", std::to_string(h.percentile(99.9))},
        {"max", std::to_string(h.max())}};
}

void json_string(std::string& out, const std::string& s) {
    out += '"';
    for (char ch : s) {
        const unsigned char c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20)
                    out += fmt::format("\\u{:04x}", unsigned(c));
                else
                    out += ch;  // UTF-8 passes through unchanged
        }
    }
    out += '"';
}

void indent(std::string& out, int depth) {
    out.append(size_t(depth) * 2, ' ');
}

void json_group(std::string& out, const StatGroup& g, int depth) {
    out += '{';
    bool first = true;
    auto key = [&](const std::string& name) {
        out += first ? "\n" : ",\n";
        first = false;
        indent(out, depth + 1);
        json_string(out, name);
        out += ": ";
    };
    for (const StatGroup::Entry& e : g.entries()) {
        key(e.name);
        if (e.counter) {
            out += std::to_string(e.counter->value());
            continue;
        }
        // Histograms stay on one line: a tree of them remains easy to scan and to diff.
        out += "{\"unit\": ";
        json_string(out, e.unit);
        for (const Field& f : fields_of(*e.histogram)) {
            out += ", \"";
            out += f.name;
            out += "\": ";
            out += f.value;
        }
        out += '}';
    }
    for (const auto& c : g.children()) {
        key(c->name());
        json_group(out, *c, depth + 1);
    }
    if (!first) {
        out += '\n';
        indent(out, depth);
    }
    out += '}';
}

void text_group(std::string& out, const StatGroup& g) {
    const std::string base = g.path();
    for (const StatGroup::Entry& e : g.entries()) {
        const std::string p = join(base, e.name);
        if (e.counter) {
            out += fmt::format("{} {}\n", p, e.counter->value());
            continue;
        }
        for (const Field& f : fields_of(*e.histogram))
            out += fmt::format("{}.{} {}\n", p, f.name, f.value);
    }
    for (const auto& c : g.children()) text_group(out, *c);
}

}  // namespace

std::string to_json(const StatGroup& root) {
    std::string out;
    // A named root is wrapped in an object under its name, so JSON paths match the dotted
    // statistic names (system.iommu0.iotlb.misses is .system.iommu0.iotlb.misses).
    if (root.name().empty()) {
        json_group(out, root, 0);
    } else {
        out += "{\n";
        indent(out, 1);
        json_string(out, root.name());
        out += ": ";
        json_group(out, root, 1);
        out += "\n}";
    }
    out += '\n';
    return out;
}

std::string to_text(const StatGroup& root) {
    std::string out;
    text_group(out, root);
    return out;
}

}  // namespace iommusim
