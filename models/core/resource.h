// Contention as resources (ARCHITECTURE.md, "Timing"): a pool of N identical servers. A job
// arriving at t starts at max(t, earliest free server); the difference is its queueing delay.
#pragma once
#include <cstdint>
#include <vector>

#include "time.h"

namespace iommusim {

class ServerPool {
public:
    explicit ServerPool(unsigned servers) : free_at_(servers ? servers : 1, 0) {}

    struct Slot {
        unsigned server;
        Tick start;  // >= arrival
    };
    // The server that frees first and when the job can start on it. Call occupy() to keep it.
    Slot earliest(Tick arrival) const {
        unsigned best = 0;
        for (unsigned i = 1; i < free_at_.size(); ++i)
            if (free_at_[i] < free_at_[best]) best = i;
        return {best, free_at_[best] > arrival ? free_at_[best] : arrival};
    }
    void occupy(unsigned server, Tick until) { free_at_[server] = until; }
    // Reserve a server for `service` from the earliest possible start; returns the start.
    Tick acquire(Tick arrival, Tick service) {
        Slot s = earliest(arrival);
        occupy(s.server, s.start + service);
        return s.start;
    }
    unsigned size() const { return unsigned(free_at_.size()); }
    unsigned busy_at(Tick t) const {
        unsigned n = 0;
        for (Tick f : free_at_) n += f > t;
        return n;
    }

private:
    std::vector<Tick> free_at_;
};

}  // namespace iommusim
