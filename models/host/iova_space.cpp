#include "iova_space.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <unordered_set>
#include <utility>

namespace iommusim {

namespace {

constexpr Addr kMax = ~Addr(0);

unsigned floor_log2(Addr v) {
    return 63 - unsigned(__builtin_clzll(v));
}  // v > 0

// Size class of the gap [lo, hi]: floor(log2(length)), 64 for the whole 64-bit space.
unsigned gap_class(Addr lo, Addr hi) {
    return hi - lo == kMax ? 64 : floor_log2(hi - lo + 1);
}

std::string describe(const IovaRegion& r) {
    std::string range = fmt::format("{:#x}-{:#x}", r.base, r.last());
    return r.name.empty() ? range : r.name + " " + range;
}

// The parts of [lo, hi] not covered by `holes` (sorted by first address), in order.
std::vector<std::pair<Addr, Addr>> subtract(Addr lo, Addr hi,
                                            const std::vector<std::pair<Addr, Addr>>& holes) {
    std::vector<std::pair<Addr, Addr>> out;
    Addr cur = lo;
    for (const auto& [h_lo, h_hi] : holes) {
        if (h_hi < cur || h_lo > hi) continue;
        if (h_lo > cur) out.emplace_back(cur, h_lo - 1);
        if (h_hi >= hi) return out;
        cur = h_hi + 1;
    }
    out.emplace_back(cur, hi);
    return out;
}

}  // namespace

IovaRegion x86_msi_region() {
    return IovaRegion{0xFEE0'0000, 0x10'0000, "msi"};
}

void IovaSpace::add_window(const IovaRegion& w) {
    if (w.size == 0) return;
    windows_.push_back(w);
    rebuild();
}

void IovaSpace::add_reserved(const IovaRegion& r) {
    if (r.size == 0) return;
    reserved_.push_back(r);
    rebuild();
}

std::string IovaSpace::check(Addr iova, Addr size) const {
    const std::string what = fmt::format("iova {:#x} size {:#x}", iova, size);
    if (size == 0) return what + " is an empty range";
    if (size - 1 > kMax - iova) return what + " wraps past the end of the 64-bit address space";
    const Addr last = iova + (size - 1);

    bool inside = false;
    const IovaRegion* partly = nullptr;
    for (const IovaRegion& w : windows_) {
        if (w.contains(iova) && w.contains(last)) inside = true;
        if (!partly && w.base <= last && w.last() >= iova) partly = &w;
    }
    if (!inside && partly)
        return what + " crosses the edge of permitted window " + describe(*partly);
    if (!inside) {
        std::string list;
        for (const IovaRegion& w : windows_) list += (list.empty() ? "" : ", ") + describe(w);
        return what + " is outside every permitted window (" +
               (list.empty() ? std::string("none defined") : list) + ")";
    }
    for (const IovaRegion& r : reserved_)
        if (r.base <= last && r.last() >= iova)
            return what + " overlaps reserved region " + describe(r);
    return {};
}

std::optional<Addr> IovaSpace::fit(Addr lo, Addr hi, Addr size, Addr mask, Addr limit) const {
    hi = std::min(hi, limit);
    if (hi < lo || hi - lo < size - 1) return std::nullopt;
    const Addr at = (hi - (size - 1)) & mask;
    if (at < lo) return std::nullopt;
    return at;
}

std::optional<Addr> IovaSpace::tree_alloc(Addr size, Addr limit) {
    if (size == 0) return std::nullopt;
    // Align to the power of two >= size; above 2^63 only address 0 is aligned.
    const unsigned order = size == 1 ? 0 : floor_log2(size - 1) + 1;
    const Addr mask = order >= 64 ? 0 : ~((Addr(1) << order) - 1);

    std::optional<Addr> best;
    Spans::iterator best_gap = gaps_.end();
    // At most one gap straddles `limit`; if anything fits in it, nothing lies higher.
    auto top = gaps_.upper_bound(limit);
    if (top != gaps_.begin()) {
        --top;
        if (top->second > limit) {
            best = fit(top->first, top->second, size, mask, limit);
            if (best) best_gap = top;
        }
    }
    const bool straddled = best.has_value();
    // Gaps of class > order always fit (length >= 2 * align); smaller classes down to
    // floor(log2(size)) may, depending on alignment. Larger classes first give a bound early.
    const int min_class = int(floor_log2(size));
    for (int c = 64; !straddled && c >= min_class; --c) {
        const Spans& cls = by_class_[size_t(c)];
        for (auto it = cls.upper_bound(limit); it != cls.begin();) {
            --it;
            if (it->second > limit) continue;  // the straddling gap, handled above
            if (best && it->second < *best) break;
            if (auto at = fit(it->first, it->second, size, mask, limit)) {
                if (!best || *at > *best) {
                    best = at;
                    best_gap = gaps_.find(it->first);
                }
                break;
            }
        }
    }
    if (!best) return std::nullopt;

    const Addr lo = best_gap->first, hi = best_gap->second, at = *best, last = at + (size - 1);
    remove_gap(best_gap);
    if (at > lo) add_gap(lo, at - 1);
    if (last < hi) add_gap(last + 1, hi);
    allocs_.emplace(at, size);
    return at;
}

void IovaSpace::tree_free(Addr iova) {
    auto a = allocs_.find(iova);
    if (a == allocs_.end()) return;
    const Addr last = iova + (a->second - 1);
    allocs_.erase(a);

    auto seg = segments_.upper_bound(iova);
    if (seg != segments_.begin() && std::prev(seg)->second >= iova) --seg;
    for (; seg != segments_.end() && seg->first <= last; ++seg) {
        Addr lo = std::max(seg->first, iova), hi = std::min(seg->second, last);
        // Coalesce with free neighbours of the same segment only.
        if (lo > seg->first) {
            auto left = gaps_.upper_bound(lo);
            if (left != gaps_.begin() && (--left)->second == lo - 1) {
                lo = left->first;
                remove_gap(left);
            }
        }
        if (hi < seg->second) {
            auto right = gaps_.find(hi + 1);
            if (right != gaps_.end()) {
                hi = right->second;
                remove_gap(right);
            }
        }
        add_gap(lo, hi);
    }
}

// ---------------------------------------------------------------------------------------------
// Per-CPU IOVA range caches (Linux drivers/iommu/iova.c: iova_rcache_get/_insert)

struct IovaSpace::Rcache {
    using Mag = std::vector<Addr>;  // IOVA bases, pushed and popped at the end
    struct Cpu {
        Mag loaded, prev;
    };
    struct Bin {
        std::vector<Cpu> cpus;
        std::vector<Mag> depot;  // full magazines
    };
    IovaRcacheConfig cfg;
    std::vector<Bin> bins;  // by order (log2 of the size in granules)
    unsigned cpu = 0;
    std::unordered_set<Addr> held;  // every cached base
    IovaRcacheCounts n;
};

bool IovaSpace::allocated(Addr iova) const {
    return allocs_.count(iova) != 0 && !(rc_ && rc_->held.count(iova));
}

IovaSpace::IovaSpace() = default;
IovaSpace::~IovaSpace() = default;
IovaSpace::IovaSpace(IovaSpace&&) noexcept = default;
IovaSpace& IovaSpace::operator=(IovaSpace&&) noexcept = default;

namespace {

constexpr unsigned kMaxRcacheCpus = 4096;

unsigned ceil_log2(Addr v) {
    return v <= 1 ? 0 : floor_log2(v - 1) + 1;
}

}  // namespace

void IovaSpace::enable_rcache(const IovaRcacheConfig& c) {
    if (c.cpus < 1 || c.cpus > kMaxRcacheCpus || c.mag_size < 1 || c.max_order < 1 ||
        c.max_order > 20 || c.granule == 0 || (c.granule & (c.granule - 1)))
        throw std::invalid_argument(fmt::format(
            "iova rcache: cpus {} (expected 1..{}), mag_size {} (>= 1), max_order {} (1..20), "
            "granule {:#x} (a power of two)",
            c.cpus, kMaxRcacheCpus, c.mag_size, c.max_order, c.granule));
    if (rc_) flush_rcache();
    rc_ = std::make_unique<Rcache>();
    rc_->cfg = c;
    rc_->bins.resize(c.max_order);
    for (auto& b : rc_->bins) b.cpus.resize(c.cpus);
}

void IovaSpace::set_cpu(unsigned cpu) {
    if (!rc_) return;
    if (cpu >= kMaxRcacheCpus)
        throw std::invalid_argument(fmt::format(
            "iova rcache: cpu {} out of range (expected below {})", cpu, kMaxRcacheCpus));
    if (cpu >= rc_->bins[0].cpus.size())
        for (auto& b : rc_->bins) b.cpus.resize(cpu + 1);
    rc_->cpu = cpu;
}

const IovaRcacheCounts& IovaSpace::rcache_counts() const {
    static const IovaRcacheCounts none;
    return rc_ ? rc_->n : none;
}

void IovaSpace::flush_rcache() {
    if (!rc_) return;
    std::vector<Addr> all;
    for (auto& b : rc_->bins) {
        for (auto& c : b.cpus) {
            all.insert(all.end(), c.loaded.begin(), c.loaded.end());
            all.insert(all.end(), c.prev.begin(), c.prev.end());
            c.loaded.clear(), c.prev.clear();
        }
        for (auto& m : b.depot) all.insert(all.end(), m.begin(), m.end());
        b.depot.clear();
    }
    for (Addr a : all) tree_free(a);
    rc_->held.clear();
    rc_->n.to_tree += all.size();
    cached_ = 0;
}

std::optional<Addr> IovaSpace::alloc(Addr size, Addr limit) {
    if (!rc_) return tree_alloc(size, limit);
    if (size == 0) return std::nullopt;
    const Addr g = rc_->cfg.granule;
    Addr pages = size / g + (size % g != 0);
    const unsigned max_order = rc_->cfg.max_order;
    // As alloc_iova_fast: cacheable sizes become powers of two, so that a freed range fits
    // any later request of its order.
    if (pages < (Addr(1) << (max_order - 1))) pages = Addr(1) << ceil_log2(pages);
    const unsigned order = ceil_log2(pages);
    if (pages > ~Addr(0) / g) return tree_alloc(size, limit);  // cannot be cached anyway
    const Addr len = pages * g;
    if (order < max_order) {
        Rcache::Bin& b = rc_->bins[order];
        Rcache::Cpu& c = b.cpus[rc_->cpu];
        bool have = true;
        if (c.loaded.empty()) {
            if (!c.prev.empty()) {
                std::swap(c.loaded, c.prev);
            } else if (!b.depot.empty()) {
                c.loaded = std::move(b.depot.back());
                b.depot.pop_back();
            } else {
                have = false;
            }
        }
        if (have) {
            // iova_magazine_pop: the newest entry that ends at or below the limit.
            Rcache::Mag& m = c.loaded;
            for (size_t i = m.size(); i-- > 0;) {
                if (m[i] + (len - 1) > limit) continue;
                const Addr a = m[i];
                m[i] = m.back();
                m.pop_back();
                rc_->held.erase(a);
                --cached_;
                ++rc_->n.hits;
                return a;
            }
        }
        ++rc_->n.misses;
    }
    auto a = tree_alloc(len, limit);
    if (!a && cached_) {  // the tree is full: give every cached range back, then retry
        ++rc_->n.flushes;
        flush_rcache();
        a = tree_alloc(len, limit);
    }
    return a;
}

void IovaSpace::free(Addr iova) {
    if (!rc_) return tree_free(iova);
    auto it = allocs_.find(iova);
    if (it == allocs_.end() || rc_->held.count(iova)) return;
    const Addr g = rc_->cfg.granule, size = it->second, pages = size / g;
    const unsigned order = ceil_log2(pages);
    if (size % g != 0 || (pages & (pages - 1)) != 0 || order >= rc_->cfg.max_order)
        return tree_free(iova);
    Rcache::Bin& b = rc_->bins[order];
    Rcache::Cpu& c = b.cpus[rc_->cpu];
    const size_t mag = rc_->cfg.mag_size;
    Rcache::Mag spill;
    if (c.loaded.size() >= mag) {
        if (c.prev.size() < mag) {
            std::swap(c.loaded, c.prev);
        } else {
            // Both full: the loaded one goes to the depot, or back to the tree when the
            // depot is full (Linux 6.0 __iova_rcache_insert).
            if (b.depot.size() < rc_->cfg.depot_mags)
                b.depot.push_back(std::move(c.loaded));
            else
                spill = std::move(c.loaded);
            c.loaded = {};
        }
    }
    c.loaded.push_back(iova);
    rc_->held.insert(iova);
    ++cached_;
    ++rc_->n.inserts;
    for (Addr a : spill) {
        rc_->held.erase(a);
        --cached_;
        tree_free(a);
    }
    rc_->n.to_tree += spill.size();
}

void IovaSpace::add_gap(Addr lo, Addr hi) {
    gaps_.emplace(lo, hi);
    by_class_[gap_class(lo, hi)].emplace(lo, hi);
}

void IovaSpace::remove_gap(Spans::iterator it) {
    by_class_[gap_class(it->first, it->second)].erase(it->first);
    gaps_.erase(it);
}

void IovaSpace::rebuild() {
    segments_.clear();
    gaps_.clear();
    for (Spans& c : by_class_) c.clear();

    std::vector<Addr> edges;
    for (const IovaRegion& w : windows_) {
        edges.push_back(w.base);
        if (w.last() != kMax) edges.push_back(w.last() + 1);
    }
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());

    std::vector<std::pair<Addr, Addr>> holes;
    for (const IovaRegion& r : reserved_) holes.emplace_back(r.base, r.last());
    std::sort(holes.begin(), holes.end());
    for (size_t i = 0; i < edges.size(); ++i) {
        const Addr lo = edges[i], hi = i + 1 < edges.size() ? edges[i + 1] - 1 : kMax;
        if (std::none_of(windows_.begin(), windows_.end(),
                         [lo](const IovaRegion& w) { return w.contains(lo); }))
            continue;
        for (const auto& [s_lo, s_hi] : subtract(lo, hi, holes)) segments_.emplace(s_lo, s_hi);
    }

    std::vector<std::pair<Addr, Addr>> used;
    for (const auto& [base, size] : allocs_) used.emplace_back(base, base + (size - 1));
    for (const auto& [s_lo, s_hi] : segments_)
        for (const auto& [g_lo, g_hi] : subtract(s_lo, s_hi, used)) add_gap(g_lo, g_hi);
}

}  // namespace iommusim
