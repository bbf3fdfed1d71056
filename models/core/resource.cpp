#include "resource.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace iommusim {

BusyTimeline::Gap BusyTimeline::find_between(Tick arrival, Tick need) const {
    // The first interval ending after the arrival: the last one does (find() came here because
    // it starts after the arrival); step back while the one before it does too.
    const auto first = iv_.begin() + long(head_);
    auto it = iv_.end() - 1;
    const auto stop = it - std::min<long>(kScanBack, it - first);
    // The ends are sorted too: step back four at a time, then over as many of the (at most
    // three) intervals left as end after the arrival, counted without a branch (fewer
    // instructions than one step at a time, and still sequential loads).
    while (it - stop >= 4 && it[-4].end > arrival) it -= 4;
    if (it - stop >= 3)
        it -= long(it[-1].end > arrival) + long(it[-2].end > arrival) + long(it[-3].end > arrival);
    else
        while (it != stop && it[-1].end > arrival) --it;
    if (it == stop && it != first && it[-1].end > arrival)
        it = std::lower_bound(first, it, arrival,
                              [](const Interval& i, Tick a) { return i.end <= a; });
    Tick s = arrival;
    for (; it != iv_.end() && it->start < s + need; ++it)
        if (it->end > s) s = it->end;
    return {s, size_t(it - iv_.begin())};
}

void BusyTimeline::fill_between(const Gap& g, Tick end) {
    // find() left [g.start, end) free: only the intervals on either side can touch it.
    const auto next = iv_.begin() + long(g.at);
    const bool joins_prev = g.at > head_ && next[-1].end == g.start;
    const bool joins_next = next->start == end;
    if (joins_prev && joins_next) {
        next[-1].end = next->end;
        iv_.erase(next);
    } else if (joins_prev) {
        next[-1].end = end;
    } else if (joins_next) {
        next->start = g.start;
    } else {
        // By hand rather than vector::insert, whose out-of-line call costs about as much as
        // the move itself (an out-of-order job lands some 20 intervals before the end): the
        // last interval is copied to a new slot, the others after the gap move up one.
        const size_t n = iv_.size();
        iv_.push_back(iv_.back());
        Interval* const at = iv_.data() + g.at;
        std::memmove(at + 1, at, (n - 1 - g.at) * sizeof(Interval));
        *at = {g.start, end};
        if (n + 1 - head_ > kMaxIntervals) drop_oldest();
    }
}

void BusyTimeline::merge(Tick start, Tick until) {
    auto lo = std::lower_bound(iv_.begin() + long(head_), iv_.end(), start,
                               [](const Interval& i, Tick a) { return i.end < a; });
    auto hi = lo;
    Interval m{start, until};
    for (; hi != iv_.end() && hi->start <= until; ++hi) {
        m.start = std::min(m.start, hi->start);
        m.end = std::max(m.end, hi->end);
    }
    if (lo == hi) {
        iv_.insert(lo, m);
        if (iv_.size() - head_ > kMaxIntervals) drop_oldest();
    } else {
        *lo = m;
        iv_.erase(lo + 1, hi);
    }
}

void BusyTimeline::forget(Tick horizon) {
    // The ends are sorted: bisect for the first one at or after the horizon (the SystemC time
    // moves by a quantum between calls, so a walk would step over a quantum's intervals).
    const size_t n = iv_.size();
    head_ = size_t(std::partition_point(iv_.begin() + long(head_), iv_.end(),
                                        [horizon](const Interval& i) { return i.end < horizon; }) -
                   iv_.begin());
    if (head_ >= kCompactAt && head_ * 2 >= n) compact();
}

void BusyTimeline::drop_oldest() {
    head_ = iv_.size() - kMaxIntervals;
    if (head_ >= kCompactAt && head_ * 2 >= iv_.size()) compact();
}

// Moves fewer live intervals than were forgotten: amortised O(1).
void BusyTimeline::compact() {
    iv_.erase(iv_.begin(), iv_.begin() + long(head_));
    head_ = 0;
}

bool BusyTimeline::busy_at(Tick t) const {
    auto it = std::upper_bound(iv_.begin() + long(head_), iv_.end(), t,
                               [](Tick a, const Interval& i) { return a < i.start; });
    return it != iv_.begin() + long(head_) && std::prev(it)->end > t;
}

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

// Nothing starts after the arrival: each server is free from its free_at() on.
ServerPool::Slot ServerPool::earliest_in_order(Tick arrival) const {
    const Tick at = std::max(arrival, free_tree_[1]);
    size_t i = 1;
    while (i < leaves_) i = free_tree_[2 * i] <= at ? 2 * i : 2 * i + 1;
    return {unsigned(i - leaves_), at};
}

ServerPool::Slot ServerPool::earliest_any(Tick arrival, Tick service) const {
    const Tick need = service ? service : 1;
    Slot best{0, busy_[0].find(arrival, need).start};
    for (unsigned i = 1; i < busy_.size() && best.start > arrival; ++i) {
        const Tick s = busy_[i].find(arrival, need).start;
        if (s < best.start) best = {i, s};
    }
    return best;
}

void ServerPool::update_tree(unsigned server) {
    size_t i = leaves_ + server;
    free_tree_[i] = busy_[server].free_at();
    for (i /= 2; i >= 1; i /= 2) free_tree_[i] = std::min(free_tree_[2 * i], free_tree_[2 * i + 1]);
}

unsigned ServerPool::busy_at(Tick t) const {
    unsigned n = 0;
    for (const BusyTimeline& tl : busy_) n += tl.busy_at(t);
    return n;
}

// Flattened: the search, the fill and the vector's insertion in one frame (the out-of-order
// jobs are most of a DRAM channel's at quantum 1 us).
[[gnu::flatten]] BandwidthServer::Span BandwidthServer::serve_between(Tick ready) {
    return place(busy_.find_between(ready, last_need_));
}

Rate Rate::ps_per_unit(double ps) {
    Rate r;
    if (!(ps > 0) || !std::isfinite(ps)) return r;
    const double whole = std::floor(ps);
    r.whole_ = uint64_t(whole);
    r.frac_ = uint32_t(std::min(std::floor((ps - whole) * 0x1p32), 0x1p32 - 1));
    return r;
}

}  // namespace iommusim
