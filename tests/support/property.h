// Helpers for seeded property tests: scale control and random choices.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <random>

namespace iommusim::test {

// IOMMUSIM_PROPERTY_SCALE shrinks (sanitizer builds) or grows the operation counts.
inline uint64_t scaled(uint64_t n) {
    const char* s = std::getenv("IOMMUSIM_PROPERTY_SCALE");
    double f = s ? std::atof(s) : 1.0;
    uint64_t v = uint64_t(double(n) * (f > 0 ? f : 1.0));
    return v ? v : 1;
}

struct Rng {
    std::mt19937_64 g;
    explicit Rng(uint64_t seed) : g(seed) {}
    uint64_t below(uint64_t n) { return n ? g() % n : 0; }
    uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }  // inclusive
    bool chance(unsigned percent) { return below(100) < percent; }
};

}  // namespace iommusim::test
