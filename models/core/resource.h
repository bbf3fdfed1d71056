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
//
// Speed: every job of every TLP passes here several times (tags, both link directions, a DRAM
// channel), so the common cases are inline and allocation-free: an in-order job compares
// with the last interval only, and an out-of-order one is placed with a single search (find,
// then fill the gap it found) plus a short move of the intervals after it, in one call off
// the in-order path (BandwidthServer::serve_between). The search walks back from the last
// interval (an early job usually lands a few intervals before the end), and only past
// kScanBack intervals searches the rest by bisection.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "time.h"

namespace iommusim {

// One server's busy intervals: disjoint, not touching, sorted by start; [head, size) are live
// (pruning advances head and compacts now and then). The building block of ServerPool and
// BandwidthServer.
class BusyTimeline {
public:
    static constexpr size_t kMaxIntervals = size_t(1) << 15;

    // Where a job fits: its start, and the index before which its interval goes.
    struct Gap {
        Tick start;
        size_t at;
    };
    // The earliest start >= arrival with `need` (>= 1) free ticks from it on.
    Gap find(Tick arrival, Tick need) const {
        return starts_after(arrival) ? find_between(arrival, need) : find_last(arrival);
    }
    // Whether an interval starts after the arrival (an out-of-order arrival).
    bool starts_after(Tick arrival) const {
        const size_t n = iv_.size();
        return n != head_ && arrival < iv_[n - 1].start;
    }
    // find() when nothing starts after the arrival (in-order arrivals): only the last interval
    // can be in the way.
    Gap find_last(Tick arrival) const {
        const size_t n = iv_.size();
        if (n == head_) return {arrival, n};
        const Tick end = iv_[n - 1].end;
        return {arrival > end ? arrival : end, n};
    }
    // find() when an interval starts after the arrival.
    Gap find_between(Tick arrival, Tick need) const;
    // Mark [g.start, end) busy, g from find() with need >= end - g.start and nothing changed
    // since: it merges with the neighbours it touches.
    void fill(const Gap& g, Tick end) {
        const size_t n = iv_.size();
        if (g.at == n) {  // after everything: extend the last interval or append
            if (n != head_ && iv_[n - 1].end == g.start)
                iv_[n - 1].end = end;
            else
                append(g.start, end);
            return;
        }
        fill_between(g, end);
    }
    // Mark [start, until) busy, merging with every interval it overlaps or touches.
    void occupy(Tick start, Tick until) {
        const size_t n = iv_.size();
        if (n == head_ || start > iv_[n - 1].end)
            append(start, until);
        else if (start >= iv_[n - 1].start)  // touches the last interval: extend it
            iv_[n - 1].end = until > iv_[n - 1].end ? until : iv_[n - 1].end;
        else
            merge(start, until);
    }
    // Forget the intervals that end before `horizon` (the oldest beyond kMaxIntervals go as
    // new ones come). Every job calls it, right after fill() or occupy() of a job that takes
    // time, so an interval is kept: mostly the oldest still ends after the horizon, one compare.
    void prune(Tick horizon) {
        if (iv_[head_].end < horizon) forget(horizon);
    }
    bool busy_at(Tick t) const;
    size_t kept() const { return iv_.size() - head_; }
    // End of the latest busy interval (0 when none is kept).
    Tick free_at() const { return iv_.size() == head_ ? 0 : iv_.back().end; }

private:
    static constexpr size_t kCompactAt = 32;  // dead intervals before the vector is compacted
    // Intervals find_between() steps back over before it bisects the rest: a bounded scan of
    // sequential loads is cheaper than bisection's dependent ones at the usual distances.
    static constexpr long kScanBack = 32;
    struct Interval {
        Tick start, end;
    };
    void fill_between(const Gap& g, Tick end);
    void merge(Tick start, Tick until);
    void append(Tick start, Tick end) {
        iv_.push_back({start, end});
        if (iv_.size() - head_ > kMaxIntervals) drop_oldest();
    }
    void forget(Tick horizon);
    void drop_oldest();
    void compact();

    std::vector<Interval> iv_;
    size_t head_ = 0;
};

class ServerPool {
public:
    static constexpr Tick kDefaultHistory = 1'000'000'000;  // 1 ms
    static constexpr size_t kMaxIntervals = BusyTimeline::kMaxIntervals;

    explicit ServerPool(unsigned servers, Tick history = kDefaultHistory);

    struct Slot {
        unsigned server;
        Tick start;  // >= arrival
    };
    // The earliest start >= arrival on any server with a free gap of at least `service`
    // (ties: the lowest server). Keep it with occupy().
    Slot earliest(Tick arrival, Tick service = 0) const {
        if (leaves_ && arrival >= latest_) return earliest_in_order(arrival);
        return earliest_any(arrival, service);
    }
    // Mark [start, until) busy on `server` (overlaps with existing intervals merge).
    void occupy(unsigned server, Tick start, Tick until) {
        if (until <= start) return;
        BusyTimeline& t = busy_[server];
        t.occupy(start, until);
        if (start > latest_) latest_ = start;
        t.prune(horizon());
        if (leaves_) update_tree(server);
    }
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
    size_t kept(unsigned server) const { return busy_[server].kept(); }
    // End of the server's latest busy interval (0 when it has none).
    Tick free_at(unsigned server) const { return busy_[server].free_at(); }

private:
    // Intervals ending before it go: history_ behind the latest start, or forget_before().
    Tick horizon() const {
        const Tick h = latest_ > history_ ? latest_ - history_ : 0;
        return h > floor_ ? h : floor_;
    }
    Slot earliest_in_order(Tick arrival) const;
    Slot earliest_any(Tick arrival, Tick service) const;
    void update_tree(unsigned server);

    std::vector<BusyTimeline> busy_;
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
    Tick time(uint64_t units) const { return ceil_ps(exact(units)); }
    bool zero() const { return whole_ == 0 && frac_ == 0; }

private:
    friend class BandwidthServer;
    using Exact = unsigned __int128;  // ps x 2^32
    Exact exact(uint64_t units) const { return Exact(units) * ((Exact(whole_) << 32) | frac_); }
    static Tick ceil_ps(Exact e) { return Tick(e >> 32) + ((e & 0xffffffffu) != 0); }
    uint64_t whole_ = 0;  // ps
    uint32_t frac_ = 0;   // 2^-32 ps
};

// One server whose service time is units x rate. A job that starts exactly where the job
// served before it ended continues that job's exact (sub-picosecond) schedule, so a busy
// period of back-to-back jobs ends at ceil(total units x period) from its start however the
// work is split; a job after a gap starts a new busy period. Gap filling and the memory
// bound are ServerPool's (one server).
class BandwidthServer {
public:
    explicit BandwidthServer(Rate rate, Tick history = ServerPool::kDefaultHistory)
        : rate_(rate), history_(history), history_at_(history) {}

    struct Span {
        Tick start, end;
    };
    // Serve `units` ready at `ready` in the earliest gap >= ready that holds them.
    Span serve(Tick ready, uint64_t units) {
        // Callers repeat the same amount (a link's TLPs of one kind, DRAM's single lines):
        // the 128-bit product is kept for the last one, split in whole and 2^-32 ps so that
        // the rest is 64-bit arithmetic.
        if (units != last_units_) {
            last_units_ = units;
            const Rate::Exact e = rate_.exact(units);
            last_whole_ = Tick(e >> 32);
            last_frac_ = uint32_t(e);
            const Tick alone = Rate::ceil_ps(e);
            last_need_ = alone ? alone : 1;
        }
        if (busy_.starts_after(ready)) return serve_between(ready);
        return place(busy_.find_last(ready));
    }
    // When serve(ready, units) would start, without serving.
    Tick earliest(Tick ready, uint64_t units) const {
        const Tick alone = rate_.time(units);
        return busy_.find(ready, alone ? alone : 1).start;
    }
    // End of the latest busy interval: when everything served so far is done.
    Tick free_at() const { return busy_.free_at(); }
    void forget_before(Tick t) {
        if (t > horizon_) {
            horizon_ = t;
            history_at_ = t > ~Tick(0) - history_ ? ~Tick(0) : t + history_;
        }
    }
    const Rate& rate() const { return rate_; }
    size_t kept() const { return busy_.kept(); }

private:
    // serve() of an out-of-order job: the search and the placement in one call, off the
    // in-order path.
    [[gnu::noinline]] Span serve_between(Tick ready);
    // The job of the last amount in the gap g (from find(ready, last_need_)).
    [[gnu::always_inline]] Span place(const BusyTimeline::Gap& g) {
        Tick whole = last_whole_;
        uint32_t frac = last_frac_;
        // The job was fitted without credit (it is at most 1 ps longer); take the credit if it
        // continues the previous job's busy period.
        if (g.start == last_end_) {
            if (whole == 0 && frac <= credit_) {  // done within the picosecond already taken
                credit_ -= frac;
                return {g.start, g.start};
            }
            whole -= frac < credit_;  // borrow
            frac -= credit_;
        }
        // Rounded up to whole picoseconds; the credit is what the rounding added.
        const Tick service = whole + (frac != 0);
        credit_ = uint32_t(0) - frac;
        last_end_ = g.start + service;
        if (service) {  // as ServerPool::occupy: a job of no time keeps nothing
            busy_.fill(g, last_end_);
            // The history bound of the latest start, kept only when it passes the horizon.
            if (g.start > history_at_) {
                horizon_ = g.start - history_;
                history_at_ = g.start;
            }
            busy_.prune(horizon_);
        }
        return {g.start, last_end_};
    }

    BusyTimeline busy_;
    Rate rate_;
    Tick history_;
    // Intervals ending before it go: the latest of forget_before() and history_ before the
    // latest start (both only move forward, so one value keeps their maximum).
    Tick horizon_ = 0;
    // horizon_ + history_ (saturated): only a start after it moves the horizon (one compare
    // per job instead of the subtraction and two).
    Tick history_at_;
    Tick last_end_ = 0;        // end of the job served last
    uint64_t last_units_ = 0;  // serve()'s last amount, its exact time (whole ps and 2^-32
    Tick last_whole_ = 0;      // ps) and the need find() is given (its rounded time, >= 1)
    Tick last_need_ = 1;
    uint32_t last_frac_ = 0;
    uint32_t credit_ = 0;  // 2^-32 ps by which last_end_ lies after that job's exact end
};

}  // namespace iommusim
