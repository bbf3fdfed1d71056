// Statistics named by the module hierarchy (system.iommu0.iotlb.misses): counters and
// latency histograms with percentiles. Registration order is output order, so the same run
// gives byte-identical output.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace iommusim {

class Counter {
public:
    // One term of a counter that includes others (include()): `weight` per count of `counter`.
    struct Term {
        const Counter* counter;
        uint64_t weight;
    };

    Counter() = default;
    Counter(const Counter& o) { *this = o; }
    Counter& operator=(const Counter& o);

    Counter& operator++() { return ++v_, *this; }
    Counter& operator+=(uint64_t n) { return v_ += n, *this; }
    uint64_t value() const { return terms_ ? v_ + included() : v_; }
    void reset() { v_ = 0; }  // its own counts: the included counters keep theirs
    // This counter also counts each term's counter (which must outlive it) times its weight,
    // summed when read: e.g. a link's TLPs as the sum of its per-kind TLP counts, so that a
    // TLP is counted once, not twice. Exact, modulo 2^64 as counting is.
    void include(std::vector<Term> terms);
    // For statistics that are derived values (rates, elapsed times) rather than counts:
    // rounded to the nearest integer, negative values to 0. Throws std::domain_error for NaN,
    // infinity or a value past 2^64 (a model bug, never silently a wrong number).
    void set_rounded(double v);

private:
    uint64_t included() const;
    uint64_t v_ = 0;
    std::unique_ptr<const std::vector<Term>> terms_;  // see include(); null: none
};

// Log-linear buckets: values below 2^kSubBits are exact; above, each power of two is split
// into 2^kSubBits buckets (relative error below 1/2^kSubBits). Memory is bounded.
class Histogram {
public:
    static constexpr unsigned kSubBits = 6;

    // Inline: every TLP adds to several histograms on its way through the platform. The
    // count is not kept apart (it is the buckets' sum), and growth, which happens only the
    // first few times a new magnitude shows up, is a call off this path, so the common case
    // needs no saved registers (reset() keeps the capacity: steady-state adds never allocate).
    void add(uint64_t v, uint64_t n = 1) {
        if (n == 0) return;
        const size_t b = bucket_of(v);
        if (__builtin_expect(b >= size_, 0)) return grow_and_add(b, v, n);
        record(b, v, n);
    }
    void merge(const Histogram& o);
    void reset();  // its own samples: the parts stay
    // This histogram also holds the samples of `parts` (which must outlive it), merged when
    // read: e.g. all requests' latency as the hits' and the misses', so that a request is
    // added once, not twice. The merge is exact: reads equal those of one histogram with
    // every sample added.
    void include(std::vector<const Histogram*> parts) { parts_ = std::move(parts); }

    uint64_t count() const;
    uint64_t sum() const { return parts_.empty() ? sum_ : merged().sum_; }
    uint64_t min() const {
        if (!parts_.empty()) return merged().min();
        return buckets_.empty() ? 0 : min_;
    }
    uint64_t max() const { return parts_.empty() ? max_ : merged().max_; }
    double mean() const;
    // Smallest bucket upper bound at or below which at least p percent of samples lie,
    // clamped to max(); 0 when empty. p in [0, 100].
    uint64_t percentile(double p) const;

private:
    // [0, 2*2^kSubBits) hold one value each; after that, group g >= 2 covers
    // [2^kSubBits << (g-1), 2^kSubBits << g) in 2^kSubBits sub-buckets of width 2^(g-1). The
    // largest index (for 2^64-1) is 58*64+63 = 3775: never more than ~30 KiB of buckets.
    static size_t bucket_of(uint64_t v) {
        constexpr uint64_t kSub = uint64_t(1) << kSubBits;
        if (v < 2 * kSub) return size_t(v);
        const unsigned shift = 63u - unsigned(__builtin_clzll(v)) - kSubBits;  // msb - kSubBits
        // (shift + 1) * kSub + (v >> shift) - kSub, with v >> shift in [kSub, 2 * kSub)
        return (size_t(shift) << kSubBits) + size_t(v >> shift);
    }
    static uint64_t bucket_upper(size_t b);
    void record(size_t b, uint64_t v, uint64_t n) {
        buckets_[b] += n;
        sum_ += v * n;  // wraps modulo 2^64, like the counters
        if (v < min_) min_ = v;
        if (v > max_) max_ = v;
    }
    [[gnu::noinline]] void grow_and_add(size_t b, uint64_t v, uint64_t n);
    // Its own samples and its parts' (recursively), as one histogram without parts.
    Histogram merged() const;
    // Empty exactly when nothing was added since construction or reset(): add() and merge()
    // of nothing leave it untouched.
    std::vector<uint64_t> buckets_;
    size_t size_ = 0;  // buckets_.size(), kept apart: add() compares once instead of computing it
    uint64_t sum_ = 0, min_ = ~uint64_t(0), max_ = 0;
    std::vector<const Histogram*> parts_;  // see include()
};

// The fields of a histogram, in output order, as JSON number text (mean with three
// decimals): one list for every writer, so stats.json, the text, CSV and the summary agree.
struct HistogramField {
    const char* name;
    std::string value;
    bool flat;  // also in the flat outputs (CSV, summary), which leave out sum and min
};
std::vector<HistogramField> histogram_fields(const Histogram& h);

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

// The whole tree as JSON (nlohmann/json, two-space indent): groups are objects, counters
// numbers, histograms objects with the unit, then count, sum, mean, min, p50, p90, p99,
// p99.9 and max. Throws std::invalid_argument for a name or unit that is not valid UTF-8.
std::string to_json(const StatGroup& root);
// The same as a JSON value (for writers that add members, such as stats_json).
nlohmann::ordered_json to_json_value(const StatGroup& root);
// One line per statistic, "path.name value" (histograms: one line per field), for people
// and for diffs against golden files.
std::string to_text(const StatGroup& root);

}  // namespace iommusim
