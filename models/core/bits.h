// Bit-field helpers for decoding architecture-defined records.
#pragma once
#include <cstdint>

namespace iommusim {

// Mask of bits hi..lo inclusive (hi >= lo, hi <= 63).
constexpr uint64_t bit_mask(unsigned hi, unsigned lo) {
    return ((hi == 63) ? ~0ULL : ((1ULL << (hi + 1)) - 1)) & ~((1ULL << lo) - 1);
}
// Field hi..lo of v, shifted down.
constexpr uint64_t bits(uint64_t v, unsigned hi, unsigned lo) {
    return (v & bit_mask(hi, lo)) >> lo;
}
constexpr bool bit(uint64_t v, unsigned n) {
    return (v >> n) & 1;
}
// v with field hi..lo replaced by f.
constexpr uint64_t set_bits(uint64_t v, unsigned hi, unsigned lo, uint64_t f) {
    return (v & ~bit_mask(hi, lo)) | ((f << lo) & bit_mask(hi, lo));
}
constexpr uint64_t set_bit(uint64_t v, unsigned n, bool b) {
    return set_bits(v, n, n, b ? 1 : 0);
}

// Little-endian loads and stores: simulated memory is little-endian whatever the host is.
inline uint64_t load_le64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
inline void store_le64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}

}  // namespace iommusim
