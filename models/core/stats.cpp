#include "stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "json.h"

namespace iommusim {

namespace {

constexpr uint64_t kSub = uint64_t(1) << Histogram::kSubBits;

}  // namespace

// Bucket layout: see bucket_of() in stats.h.
uint64_t Histogram::bucket_upper(size_t b) {
    if (b < 2 * kSub) return uint64_t(b);
    const unsigned shift = unsigned(b / kSub) - 1;
    const uint64_t lower = (kSub + b % kSub) << shift;
    return lower + ((uint64_t(1) << shift) - 1);  // cannot overflow: top bucket ends at 2^64-1
}

void Histogram::grow_and_add(size_t b, uint64_t v, uint64_t n) {
    buckets_.resize(b + 1);
    size_ = buckets_.size();
    record(b, v, n);
}

Histogram Histogram::merged() const {
    Histogram m;
    m.buckets_ = buckets_;
    m.size_ = size_;
    m.sum_ = sum_, m.min_ = min_, m.max_ = max_;
    for (const Histogram* p : parts_) m.merge(*p);
    return m;
}

uint64_t Histogram::count() const {
    if (!parts_.empty()) return merged().count();
    uint64_t n = 0;
    for (uint64_t c : buckets_) n += c;
    return n;
}

double Histogram::mean() const {
    if (!parts_.empty()) return merged().mean();
    const uint64_t n = count();
    return n ? double(sum_) / double(n) : 0.0;
}

void Histogram::merge(const Histogram& o) {
    if (!o.parts_.empty()) return merge(o.merged());
    if (o.buckets_.empty()) return;
    if (size_ < o.size_) {
        buckets_.resize(o.size_);
        size_ = o.size_;
    }
    for (size_t i = 0; i < o.buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
    sum_ += o.sum_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
}

void Histogram::reset() {
    buckets_.clear();
    size_ = 0;
    sum_ = max_ = 0;
    min_ = ~uint64_t(0);
}

uint64_t Histogram::percentile(double p) const {
    if (!parts_.empty()) return merged().percentile(p);
    const uint64_t count = this->count();
    if (count == 0) return 0;
    // The rank is computed in integers (p in units of 1e-4 percent) so that e.g. p99.9 of
    // 1000 samples is rank 999 exactly, not 1000 through rounding of 0.999 * 1000.
    if (!(p > 0.0)) p = 0.0;
    if (p > 100.0) p = 100.0;
    constexpr uint64_t kScale = 1000000;  // 100 percent
    const uint64_t units = uint64_t(p * 10000.0 + 0.5);
    const uint64_t q = count / kScale, r = count % kScale;
    uint64_t rank = q * units + (r * units + kScale - 1) / kScale;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t b = 0; b < buckets_.size(); ++b) {
        seen += buckets_[b];
        if (seen >= rank) return std::min(bucket_upper(b), max_);
    }
    return max_;
}

Counter& Counter::operator=(const Counter& o) {
    v_ = o.v_;
    terms_.reset(o.terms_ ? new std::vector<Term>(*o.terms_) : nullptr);
    return *this;
}

void Counter::include(std::vector<Term> terms) {
    terms_.reset(terms.empty() ? nullptr : new std::vector<Term>(std::move(terms)));
}

uint64_t Counter::included() const {
    uint64_t n = 0;
    for (const Term& t : *terms_) n += t.counter->value() * t.weight;  // wraps like counting
    return n;
}

void Counter::set_rounded(double v) {
    // 2^64 as a double; every double below it converts exactly to uint64_t after rounding.
    constexpr double kLimit = 18446744073709551616.0;
    if (!std::isfinite(v) || v + 0.5 >= kLimit)
        throw std::domain_error(
            fmt::format("statistic value {} is not a finite count below 2^64", v));
    v_ = v > 0 ? uint64_t(v + 0.5) : 0;
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

std::vector<HistogramField> histogram_fields(const Histogram& h) {
    return {{"count", std::to_string(h.count()), true},
            {"sum", std::to_string(h.sum()), false},
            {"mean", fmt::format("{:.3f}", h.mean()), true},
            {"min", std::to_string(h.min()), false},
            {"p50", std::to_string(h.percentile(50)), true},
            {"p90", std::to_string(h.percentile(90)), true},
            {"p99", std::to_string(h.percentile(99)), true},
            {"p99.9", std::to_string(h.percentile(99.9)), true},
            {"max", std::to_string(h.max()), true}};
}

namespace {

Json json_group(const StatGroup& g) {
    Json out = Json::object();
    const std::string base = g.path();
    // Names have no dots or whitespace (check_name) but may hold other bytes.
    auto key = [&](const std::string& name) -> const std::string& {
        json_string(name, fmt::format("a statistic name in '{}'", base));
        return name;
    };
    for (const StatGroup::Entry& e : g.entries()) {
        if (e.counter) {
            out[key(e.name)] = e.counter->value();
            continue;
        }
        Json h = Json::object();
        h["unit"] = json_string(e.unit, fmt::format("the unit of '{}'", join(base, e.name)));
        // The library reads the number text, so JSON holds what the text output shows.
        for (const HistogramField& f : histogram_fields(*e.histogram))
            h[f.name] = Json::parse(f.value);
        out[key(e.name)] = std::move(h);
    }
    for (const auto& c : g.children()) out[key(c->name())] = json_group(*c);
    return out;
}

void text_group(std::string& out, const StatGroup& g) {
    const std::string base = g.path();
    for (const StatGroup::Entry& e : g.entries()) {
        const std::string p = join(base, e.name);
        if (e.counter) {
            out += fmt::format("{} {}\n", p, e.counter->value());
            continue;
        }
        for (const HistogramField& f : histogram_fields(*e.histogram))
            out += fmt::format("{}.{} {}\n", p, f.name, f.value);
    }
    for (const auto& c : g.children()) text_group(out, *c);
}

}  // namespace

Json to_json_value(const StatGroup& root) {
    // A named root is wrapped in an object under its name, so JSON paths match the dotted
    // statistic names (system.iommu0.iotlb.misses is .system.iommu0.iotlb.misses).
    if (root.name().empty()) return json_group(root);
    Json out = Json::object();
    json_string(root.name(), "the name of the statistics root");
    out[root.name()] = json_group(root);
    return out;
}

std::string to_json(const StatGroup& root) {
    return json_dump(to_json_value(root), 2) + "\n";
}

std::string to_text(const StatGroup& root) {
    std::string out;
    text_group(out, root);
    return out;
}

}  // namespace iommusim
