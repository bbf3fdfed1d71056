#include "resource.h"

#include <algorithm>

namespace iommusim {

Tick ServerPool::fit(const Timeline& t, Tick arrival, Tick service) const {
    const auto& v = t.iv;
    const Tick need = service ? service : 1;
    // Fast path: after everything (in-order arrivals).
    if (v.size() == t.head || arrival >= v.back().end) return arrival;
    auto it = std::lower_bound(v.begin() + long(t.head), v.end(), arrival,
                               [](const Interval& i, Tick a) { return i.end <= a; });
    Tick s = arrival;
    for (; it != v.end() && it->start < s + need; ++it)
        if (it->end > s) s = it->end;
    return s;
}

ServerPool::Slot ServerPool::earliest(Tick arrival, Tick service) const {
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
    if (latest_ > history_) {  // forget what lies far behind every initiator
        const Tick horizon = latest_ - history_;
        while (t.head < v.size() && v[t.head].end < horizon) ++t.head;
        if (t.head > 4096 && t.head * 2 > v.size()) {
            v.erase(v.begin(), v.begin() + long(t.head));
            t.head = 0;
        }
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

}  // namespace iommusim
