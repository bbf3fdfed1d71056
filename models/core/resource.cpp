#include "resource.h"

#include <algorithm>
#include <cmath>

namespace iommusim {

namespace {
constexpr size_t kCompactAt = 32;  // dead intervals before the vector is compacted
}  // namespace

ServerPool::ServerPool(unsigned servers, Tick history)
    : busy_(servers ? servers : 1), history_(history) {
    if (busy_.size() > 1) {
        leaves_ = 1;
        while (leaves_ < busy_.size()) leaves_ *= 2;
        free_tree_.assign(2 * leaves_, ~Tick(0));
        for (size_t i = 0; i < busy_.size(); ++i) free_tree_[leaves_ + i] = 0;
        for (size_t i = leaves_ - 1; i >= 1; --i)
            free_tree_[i] = std::min(free_tree_[2 * i], free_tree_[2 * i + 1]);
    }
}

Tick ServerPool::fit(const Timeline& t, Tick arrival, Tick service) const {
    const auto& v = t.iv;
    if (v.size() == t.head) return arrival;
    // Fast path: nothing starts after the arrival (in-order arrivals), so only the last
    // interval can be in the way.
    if (arrival >= v.back().start) return std::max(arrival, v.back().end);
    const Tick need = service ? service : 1;
    auto it = std::lower_bound(v.begin() + long(t.head), v.end(), arrival,
                               [](const Interval& i, Tick a) { return i.end <= a; });
    Tick s = arrival;
    for (; it != v.end() && it->start < s + need; ++it)
        if (it->end > s) s = it->end;
    return s;
}

ServerPool::Slot ServerPool::earliest(Tick arrival, Tick service) const {
    if (leaves_ && arrival >= latest_) {
        // Nothing starts after the arrival: each server is free from its free_at() on.
        const Tick at = std::max(arrival, free_tree_[1]);
        size_t i = 1;
        while (i < leaves_) i = free_tree_[2 * i] <= at ? 2 * i : 2 * i + 1;
        return {unsigned(i - leaves_), at};
    }
    Slot best{0, fit(busy_[0], arrival, service)};
    for (unsigned i = 1; i < busy_.size() && best.start > arrival; ++i) {
        Tick s = fit(busy_[i], arrival, service);
        if (s < best.start) best = {i, s};
    }
    return best;
}

void ServerPool::occupy(unsigned server, Tick start, Tick until) {
    if (until <= start) return;
    Timeline& t = busy_[server];
    auto& v = t.iv;
    if (v.size() == t.head || start > v.back().end) {
        v.push_back({start, until});
    } else if (start >= v.back().start) {  // touches the last interval: extend it
        v.back().end = std::max(v.back().end, until);
    } else {  // out of order: merge with every interval it touches
        auto lo = std::lower_bound(v.begin() + long(t.head), v.end(), start,
                                   [](const Interval& i, Tick a) { return i.end < a; });
        auto hi = lo;
        Interval m{start, until};
        for (; hi != v.end() && hi->start <= until; ++hi) {
            m.start = std::min(m.start, hi->start);
            m.end = std::max(m.end, hi->end);
        }
        if (lo == hi) {
            v.insert(lo, m);
        } else {
            *lo = m;
            v.erase(lo + 1, hi);
        }
    }
    if (start > latest_) latest_ = start;
    prune(t);
    if (leaves_) {
        size_t i = leaves_ + server;
        free_tree_[i] = free_at(server);
        for (i /= 2; i >= 1; i /= 2)
            free_tree_[i] = std::min(free_tree_[2 * i], free_tree_[2 * i + 1]);
    }
}

void ServerPool::prune(Timeline& t) {
    auto& v = t.iv;
    // Forget what lies far behind every initiator, and the oldest beyond the count bound.
    const Tick horizon = std::max(latest_ > history_ ? latest_ - history_ : 0, floor_);
    while (t.head < v.size() && v[t.head].end < horizon) ++t.head;
    if (v.size() - t.head > kMaxIntervals) t.head = v.size() - kMaxIntervals;
    // Compacting moves fewer live intervals than were forgotten: amortised O(1).
    if (t.head >= kCompactAt && t.head * 2 >= v.size()) {
        v.erase(v.begin(), v.begin() + long(t.head));
        t.head = 0;
    }
}

unsigned ServerPool::busy_at(Tick t) const {
    unsigned n = 0;
    for (const Timeline& tl : busy_) {
        auto it = std::upper_bound(tl.iv.begin() + long(tl.head), tl.iv.end(), t,
                                   [](Tick a, const Interval& i) { return a < i.start; });
        if (it != tl.iv.begin() + long(tl.head) && std::prev(it)->end > t) ++n;
    }
    return n;
}

Rate Rate::ps_per_unit(double ps) {
    Rate r;
    if (!(ps > 0) || !std::isfinite(ps)) return r;
    const double whole = std::floor(ps);
    r.whole_ = uint64_t(whole);
    r.frac_ = uint32_t(std::min(std::floor((ps - whole) * 0x1p32), 0x1p32 - 1));
    return r;
}

namespace {
using Exact = unsigned __int128;  // ps x 2^32
Exact exact(uint64_t whole, uint32_t frac, uint64_t units) {
    return Exact(units) * ((Exact(whole) << 32) | frac);
}
Tick ceil_ps(Exact e) {
    return Tick(e >> 32) + ((e & 0xffffffffu) != 0);
}
}  // namespace

Tick Rate::time(uint64_t units) const {
    return ceil_ps(exact(whole_, frac_, units));
}

BandwidthServer::Span BandwidthServer::serve(Tick ready, uint64_t units) {
    Exact e = exact(rate_.whole_, rate_.frac_, units);
    // Fit the job without credit (it is at most 1 ps longer), then take the credit if it
    // continues the previous job's busy period.
    const Tick start = pool_.earliest(ready, ceil_ps(e)).start;
    if (start == last_end_) {
        if (e <= credit_) {  // done within the picosecond the previous job already took
            credit_ -= uint32_t(e);
            return {start, start};
        }
        e -= credit_;
    }
    const Tick service = ceil_ps(e);
    credit_ = uint32_t((Exact(service) << 32) - e);
    last_end_ = start + service;
    pool_.occupy(0, start, last_end_);
    return {start, last_end_};
}

}  // namespace iommusim
