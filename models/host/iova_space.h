// Permitted IOVA windows, reserved regions carved out of them, and an IOVA allocator that
// works top-down within the windows like Linux's (size-aligned, highest free range first).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace iommusim {

struct IovaRegion {
    Addr base = 0;
    Addr size = 0;  // > 0; base + size may reach 2^64, so compare with last()
    std::string name;

    Addr last() const { return base + (size - 1); }
    bool contains(Addr a) const { return a >= base && a <= last(); }
};

// x86 interrupt address range: DMA writes there are MSIs, never translated.
IovaRegion x86_msi_region();  // 0xFEE00000-0xFEEFFFFF, "msi"

class IovaSpace {
public:
    void add_window(const IovaRegion& w);    // a permitted range
    void add_reserved(const IovaRegion& r);  // never mapped nor allocated

    // Empty when [iova, iova+size) lies inside one permitted window and overlaps no reserved
    // region; otherwise a sentence saying why not (names the window/region).
    std::string check(Addr iova, Addr size) const;

    // Top-down, size-aligned (to the power of two >= size) allocation inside the permitted
    // windows, at or below `limit` (an inclusive last address, e.g. a 32-bit DMA mask),
    // avoiding reserved regions and live allocations. nullopt when nothing fits.
    std::optional<Addr> alloc(Addr size, Addr limit = ~Addr(0));
    void free(Addr iova);  // `iova` as returned by alloc; unknown addresses are ignored
    bool allocated(Addr iova) const;
    size_t live() const { return allocs_.size(); }

    const std::vector<IovaRegion>& windows() const { return windows_; }
    const std::vector<IovaRegion>& reserved() const { return reserved_; }

private:
    using Spans = std::map<Addr, Addr>;  // first -> last (inclusive), non-overlapping

    void rebuild();
    void add_gap(Addr lo, Addr hi);
    void remove_gap(Spans::iterator it);
    std::optional<Addr> fit(Addr lo, Addr hi, Addr size, Addr mask, Addr limit) const;

    std::vector<IovaRegion> windows_, reserved_;
    std::map<Addr, Addr> allocs_;  // base -> size
    // Windows minus reserved regions, split at every window edge so no allocation crosses one.
    Spans segments_;
    // Free parts of the segments, also indexed by floor(log2(length)) so alloc finds the
    // highest gap that fits without walking every live allocation.
    Spans gaps_;
    std::array<Spans, 65> by_class_;
};

}  // namespace iommusim
