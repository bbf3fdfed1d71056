// Statistics named by the module hierarchy (system.iommu0.iotlb.misses): counters and
// latency histograms with percentiles. Registration order is output order, so the same run
// gives byte-identical output.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace iommusim {

class Counter {
public:
    Counter& operator++() { return ++v_, *this; }
    Counter& operator+=(uint64_t n) { return v_ += n, *this; }
    uint64_t value() const { return v_; }
    void reset() { v_ = 0; }
    // For statistics that are derived values (rates, elapsed times) rather than counts.
    void set_rounded(double v) { v_ = v > 0 ? uint64_t(v + 0.5) : 0; }

private:
    uint64_t v_ = 0;
};

// Log-linear buckets: values below 2^kSubBits are exact; above, each power of two is split
// into 2^kSubBits buckets (relative error below 1/2^kSubBits). Memory is bounded.
class Histogram {
public:
    static constexpr unsigned kSubBits = 6;

    void add(uint64_t v, uint64_t n = 1);
    void merge(const Histogram& o);
    void reset();

    uint64_t count() const { return count_; }
    uint64_t sum() const { return sum_; }
    uint64_t min() const { return count_ ? min_ : 0; }
    uint64_t max() const { return max_; }
    double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }
    // Smallest bucket upper bound at or below which at least p percent of samples lie,
    // clamped to max(); 0 when empty. p in [0, 100].
    uint64_t percentile(double p) const;

private:
    static size_t bucket_of(uint64_t v);
    static uint64_t bucket_upper(size_t b);
    std::vector<uint64_t> buckets_;
    uint64_t count_ = 0, sum_ = 0, min_ = ~uint64_t(0), max_ = 0;
};

class StatGroup {
public:
    explicit StatGroup(std::string name, const StatGroup* parent = nullptr);
    StatGroup(const StatGroup&) = delete;
    StatGroup& operator=(const StatGroup&) = delete;

    // Register (or find, by name) a statistic of this group. References stay valid.
    Counter& counter(const std::string& name, const std::string& doc);
    Histogram& histogram(const std::string& name, const std::string& unit, const std::string& doc);
    StatGroup& child(const std::string& name);

    const std::string& name() const { return name_; }
    std::string path() const;  // dotted, from the root
    void reset();              // zero every statistic below this group

    struct Entry {
        std::string name, doc, unit;
        Counter* counter = nullptr;  // exactly one of these is set
        Histogram* histogram = nullptr;
    };
    const std::deque<Entry>& entries() const { return entries_; }
    const std::deque<std::unique_ptr<StatGroup>>& children() const { return children_; }

private:
    std::string name_;
    const StatGroup* parent_;
    std::deque<Entry> entries_;
    std::deque<Counter> counters_;
    std::deque<Histogram> histograms_;
    std::deque<std::unique_ptr<StatGroup>> children_;
};

// The whole tree as JSON: groups are objects, counters numbers, histograms objects with
// count, sum, mean, min, p50, p90, p99, p99.9, max and the unit.
std::string to_json(const StatGroup& root);
// One line per statistic, "path.name value" (histograms: one line per field), for people
// and for diffs against golden files.
std::string to_text(const StatGroup& root);

}  // namespace iommusim
