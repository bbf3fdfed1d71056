// Contention as resources (docs/architecture.md, "Timing"): a pool of N identical servers. A job
// arriving at t starts at the earliest time >= t at which some server is free long enough;
// the difference is its queueing delay.
//
// Initiators with a quantum call out of time order: one may reserve a server far ahead
// before another asks for an earlier time. Each server therefore keeps its busy intervals
// (not only when it is next free), so an early job fills the gap before a later reservation,
// as it would have in the real order. Intervals older than `history` behind the latest
// arrival are forgotten; keep it above the largest quantum.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "time.h"

namespace iommusim {

class ServerPool {
public:
    explicit ServerPool(unsigned servers, Tick history = 1'000'000'000 /* 1 ms */)
        : busy_(servers ? servers : 1), history_(history) {}

    struct Slot {
        unsigned server;
        Tick start;  // >= arrival
    };
    // The earliest start >= arrival on any server with a free gap of at least `service`
    // (ties: the lowest server). Keep it with occupy().
    Slot earliest(Tick arrival, Tick service = 0) const;
    // Mark [start, until) busy on `server` (overlaps with existing intervals merge).
    void occupy(unsigned server, Tick start, Tick until);
    // earliest() + occupy() for a job of known length; returns its start.
    Tick acquire(Tick arrival, Tick service) {
        Slot s = earliest(arrival, service);
        occupy(s.server, s.start, s.start + service);
        return s.start;
    }
    unsigned size() const { return unsigned(busy_.size()); }
    unsigned busy_at(Tick t) const;

private:
    struct Interval {
        Tick start, end;
    };
    // Per server: disjoint intervals sorted by start; [head, size) are live (pruning only
    // advances head, compacting now and then). Arrivals are mostly in time order, so the
    // common case appends or extends the last interval.
    struct Timeline {
        std::vector<Interval> iv;
        size_t head = 0;
    };
    Tick fit(const Timeline& t, Tick arrival, Tick service) const;
    std::vector<Timeline> busy_;
    Tick history_;
    Tick latest_ = 0;  // latest arrival seen: intervals ending history_ before it are pruned
};

}  // namespace iommusim
