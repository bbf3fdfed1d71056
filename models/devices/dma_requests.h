// How a DMA transfer is cut into PCIe requests: MRRS for reads, MPS for writes, never
// across a 4 KiB boundary. Plain C++, header-only (unit-tested without SystemC).
#pragma once
#include <cstdint>

#include "core/types.h"

namespace iommusim {

constexpr uint64_t kDmaBoundary = 4096;  // PCIe: a request never crosses a 4 KiB boundary

// Length of the request starting at `a` with `remaining` bytes left: greedy up to
// `max_payload`, cut at the next 4 KiB boundary.
constexpr uint32_t dma_piece_len(Addr a, uint64_t remaining, uint32_t max_payload) {
    const uint64_t to_boundary = kDmaBoundary - (a & (kDmaBoundary - 1));
    uint64_t n = remaining < max_payload ? remaining : max_payload;
    return uint32_t(n < to_boundary ? n : to_boundary);
}

// Requests a transfer of `len` bytes at `a` becomes (0 for an empty transfer).
constexpr uint64_t dma_piece_count(Addr a, uint64_t len, uint32_t max_payload) {
    uint64_t n = 0;
    while (len) {
        const uint32_t p = dma_piece_len(a, len, max_payload);
        a += p, len -= p, ++n;
    }
    return n;
}

}  // namespace iommusim
