// Allocates simulated physical memory for translation structures (tables, queues) from one
// region, the way a kernel page allocator would. It hands out addresses only; callers
// initialise the memory through SparseMemory.
#pragma once
#include <cstdint>
#include <map>
#include <optional>

#include "core/types.h"

namespace iommusim {

class PhysAllocator {
public:
    PhysAllocator(Addr base, Addr size);

    // A block of `bytes` aligned to `align` (a power of two; blocks are at least 8 bytes),
    // or nullopt when the region is exhausted. Freed blocks are reused first.
    std::optional<Addr> alloc(Addr bytes, Addr align = 4096);
    void free(Addr pa, Addr bytes);

    Addr base() const { return base_; }
    Addr size() const { return size_; }
    Addr bytes_in_use() const { return in_use_; }

private:
    Addr base_, size_, in_use_ = 0;
    std::map<Addr, Addr> free_;  // start -> bytes, coalesced
};

}  // namespace iommusim
