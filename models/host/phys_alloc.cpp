#include "phys_alloc.h"

#include <algorithm>

namespace iommusim {

namespace {

constexpr Addr kMinBlock = 8;

// Sizes are kept in 8-byte units so a freed block always coalesces with its neighbours.
Addr round_bytes(Addr bytes) {
    return (std::max(bytes, kMinBlock) + kMinBlock - 1) & ~(kMinBlock - 1);
}

}  // namespace

PhysAllocator::PhysAllocator(Addr base, Addr size) : base_(base), size_(size) {
    if (size_) free_.emplace(base_, size_);
}

std::optional<Addr> PhysAllocator::alloc(Addr bytes, Addr align) {
    if (bytes > size_) return std::nullopt;
    bytes = round_bytes(bytes);
    if (align == 0 || (align & (align - 1))) return std::nullopt;
    align = std::max(align, kMinBlock);
    // First fit from the lowest address: freed blocks below the high-water mark go first.
    for (auto it = free_.begin(); it != free_.end(); ++it) {
        const Addr start = it->first, len = it->second;
        const Addr pad = (align - (start & (align - 1))) & (align - 1);
        if (pad >= len || len - pad < bytes) continue;
        const Addr at = start + pad, tail = len - pad - bytes;
        if (pad)
            it->second = pad;
        else
            free_.erase(it);
        if (tail) free_.emplace(at + bytes, tail);
        in_use_ += bytes;
        return at;
    }
    return std::nullopt;
}

void PhysAllocator::free(Addr pa, Addr bytes) {
    bytes = round_bytes(bytes);
    // A block outside the region or overlapping free space is a caller bug; ignoring it keeps
    // the free list consistent instead of double-counting memory.
    if (pa < base_ || pa - base_ > size_ || bytes > size_ - (pa - base_)) return;
    auto next = free_.lower_bound(pa);
    if (next != free_.end() && next->first < pa + bytes) return;
    auto prev = next == free_.begin() ? free_.end() : std::prev(next);
    if (prev != free_.end() && prev->first + prev->second > pa) return;

    in_use_ -= std::min(in_use_, bytes);
    Addr start = pa, len = bytes;
    if (prev != free_.end() && prev->first + prev->second == pa) {
        start = prev->first;
        len += prev->second;
        free_.erase(prev);
    }
    if (next != free_.end() && next->first == pa + bytes) {
        len += next->second;
        free_.erase(next);
    }
    free_.emplace(start, len);
}

}  // namespace iommusim
