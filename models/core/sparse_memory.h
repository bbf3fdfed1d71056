// Sparse physical memory: 4 KiB pages allocated on first write, so host memory is
// proportional to the pages a simulation touches. Unwritten memory reads as zero.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "types.h"

namespace iommusim {

class SparseMemory {
public:
    static constexpr unsigned kPageShift = 12;
    static constexpr size_t kPageSize = size_t(1) << kPageShift;
    static constexpr Addr kLimit = Addr(1) << kPhysAddrBits;

    // Both return false (and do nothing) when [addr, addr+len) leaves the 52-bit space.
    bool read(Addr addr, void* dst, size_t len) const;
    bool write(Addr addr, const void* src, size_t len);

    uint64_t read64(Addr addr) const;  // zero outside the address space
    void write64(Addr addr, uint64_t v);

    // [addr, addr + len) lies inside the modelled physical space.
    static bool in_range(Addr addr, size_t len) { return addr < kLimit && len <= kLimit - addr; }
    size_t pages_touched() const { return pages_.size(); }
    size_t bytes_allocated() const { return pages_.size() * kPageSize; }

private:
    using Page = std::array<uint8_t, kPageSize>;
    static constexpr unsigned kRecent = 1024;  // direct-mapped memo of recent page lookups

    const uint8_t* find(uint64_t pfn) const;
    uint8_t* touch(uint64_t pfn);

    std::unordered_map<uint64_t, std::unique_ptr<Page>> pages_;
    struct Memo {
        uint64_t pfn = ~0ULL;
        uint8_t* page = nullptr;
    };
    mutable std::array<Memo, kRecent> recent_{};
};

}  // namespace iommusim
