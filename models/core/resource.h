// Contention as resources (docs/architecture.md, "Timing"): the one server model of the
// simulator. A job arriving at t starts at the earliest time >= t at which a server is free
// long enough; the difference is its queueing delay.
//
// ServerPool: N identical servers (walkers, tags). BandwidthServer: one server whose service
// time follows from an amount of work at a rate (a PCIe link direction in bytes, a DRAM
// channel in lines, an Ethernet line in bits, an issue slot per request).
//
// Initiators with a quantum call out of time order: one may reserve a server far ahead
// before another asks for an earlier time. Each server therefore keeps its busy intervals
// (not only when it is next free), so an early job fills the gap before a later reservation,
// as it would have in the real order, and timing does not depend on the quantum.
//
// Memory bound: per server, the intervals that end after both forget_before()'s time and
// `history` before the latest job start (1 ms by default; keep it above the largest quantum),
// and never more than kMaxIntervals of them (the oldest are forgotten first); storage is at
// most twice the live intervals plus a small constant (16 bytes each). A job arriving before
// what is kept finds the server free. SystemC owners call forget_before(current SystemC
// time) before each use: no initiator's local time lies behind it, so nothing is lost.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "time.h"

namespace iommusim {

class ServerPool {
public:
    static constexpr Tick kDefaultHistory = 1'000'000'000;  // 1 ms
    static constexpr size_t kMaxIntervals = size_t(1) << 15;

    explicit ServerPool(unsigned servers, Tick history = kDefaultHistory);

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
    // No job will arrive before t: intervals ending before it may go.
    void forget_before(Tick t) {
        if (t > floor_) floor_ = t;
    }
    unsigned size() const { return unsigned(busy_.size()); }
    unsigned busy_at(Tick t) const;
    // Busy intervals the server keeps (the memory bound above).
    size_t kept(unsigned server) const { return busy_[server].iv.size() - busy_[server].head; }
    // End of the server's latest busy interval (0 when it has none).
    Tick free_at(unsigned server) const {
        const Timeline& t = busy_[server];
        return t.iv.size() == t.head ? 0 : t.iv.back().end;
    }

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
    void prune(Timeline& t);
    std::vector<Timeline> busy_;
    Tick history_;
    Tick latest_ = 0;  // latest job start: intervals ending history_ before it are pruned
    Tick floor_ = 0;   // forget_before()
    // With several servers, a min-tree of their free_at() (leaves from leaves_ on, padding
    // never free): an arrival at or after every start takes the leftmost server free by
    // then, or else the one free first, in O(log servers).
    std::vector<Tick> free_tree_;
    size_t leaves_ = 0;
};

// Time per unit of work (a byte, a bit, a line, a request), kept to 2^-32 ps so that long
// runs keep the exact rate. The period is rounded down, so n units take at least
// ceil(n x period) - 1 ps and never more than ceil(n x exact period).
class Rate {
public:
    Rate() = default;
    // `ps` finite and >= 0 (0: work takes no time).
    static Rate ps_per_unit(double ps);
    // Time of `units` done alone, rounded up to whole picoseconds.
    Tick time(uint64_t units) const;
    bool zero() const { return whole_ == 0 && frac_ == 0; }

private:
    friend class BandwidthServer;
    uint64_t whole_ = 0;  // ps
    uint32_t frac_ = 0;   // 2^-32 ps
};

// One server whose service time is units x rate. A job that starts exactly where the job
// served before it ended continues that job's exact (sub-picosecond) schedule, so a busy
// period of back-to-back jobs ends at ceil(total units x period) from its start however the
// work is split; a job after a gap starts a new busy period. Gap filling and the memory
// bound are ServerPool's.
class BandwidthServer {
public:
    explicit BandwidthServer(Rate rate, Tick history = ServerPool::kDefaultHistory)
        : pool_(1, history), rate_(rate) {}

    struct Span {
        Tick start, end;
    };
    // Serve `units` ready at `ready` in the earliest gap >= ready that holds them.
    Span serve(Tick ready, uint64_t units);
    // When serve(ready, units) would start, without serving.
    Tick earliest(Tick ready, uint64_t units) const {
        return pool_.earliest(ready, rate_.time(units)).start;
    }
    // End of the latest busy interval: when everything served so far is done.
    Tick free_at() const { return pool_.free_at(0); }
    void forget_before(Tick t) { pool_.forget_before(t); }
    const Rate& rate() const { return rate_; }
    size_t kept() const { return pool_.kept(0); }

private:
    ServerPool pool_;
    Rate rate_;
    Tick last_end_ = 0;    // end of the job served last
    uint32_t credit_ = 0;  // 2^-32 ps by which last_end_ lies after that job's exact end
};

}  // namespace iommusim
