// Simulated time as integer picoseconds: exact, cheap to add, convertible to sc_time at the
// SystemC boundary. Components count in their own clock's cycles and convert with Clock.
#pragma once
#include <cstdint>

namespace iommusim {

using Tick = uint64_t;  // picoseconds
constexpr Tick kTicksPerNs = 1000;
constexpr Tick kNever = ~Tick(0);

// A duration given in (fractional) nanoseconds, as a parameter often is, rounded to ticks.
inline Tick ticks_from_ns(double ns) {
    return Tick(ns * double(kTicksPerNs) + 0.5);
}

struct Clock {
    Tick period = 1000;  // 1 GHz
    constexpr Tick cycles(uint64_t n) const { return n * period; }
    static constexpr Clock from_mhz(uint64_t mhz) { return Clock{1'000'000 / mhz}; }
};

}  // namespace iommusim
