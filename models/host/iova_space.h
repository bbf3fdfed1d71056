// Permitted IOVA windows, reserved regions carved out of them, and an IOVA allocator that
// works top-down within the windows like Linux's (size-aligned, highest free range first),
// optionally fronted by Linux's per-CPU IOVA range caches (drivers/iommu/iova.c, iova_rcache).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
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

// Linux's IOVA range caches (alloc_iova_fast / free_iova_fast): per size order below
// IOVA_RANGE_CACHE_MAX_SIZE, each CPU has a loaded and a previous magazine of recently freed
// IOVAs, and a shared depot keeps full magazines. A cached IOVA stays allocated in the tree,
// so the top-down allocator never hands it out; the cache gives it back LIFO to the CPU that
// freed it. Defaults as in Linux 6.x: IOVA_MAG_SIZE 127 (128 before 6.5), a depot of
// MAX_GLOBAL_MAGS 32 magazines (6.0; 6.7 made it a list trimmed after 100 ms).
struct IovaRcacheConfig {
    unsigned cpus = 1;         // CPUs with a cache of their own (1..4096)
    unsigned mag_size = 127;   // IOVA_MAG_SIZE
    unsigned depot_mags = 32;  // MAX_GLOBAL_MAGS
    unsigned max_order = 6;    // IOVA_RANGE_CACHE_MAX_SIZE: orders 0..5 (up to 32 granules)
    Addr granule = 4096;       // the domain's smallest page (iovad->granule)
};

struct IovaRcacheCounts {
    uint64_t hits = 0;     // allocations served by a cache
    uint64_t misses = 0;   // cacheable allocations that went to the tree
    uint64_t inserts = 0;  // frees kept in a cache
    uint64_t to_tree = 0;  // cached IOVAs given back to the tree (depot full, or a flush)
    uint64_t flushes = 0;  // tree full: every cache flushed and the allocation retried
};

class IovaSpace {
public:
    IovaSpace();
    ~IovaSpace();
    IovaSpace(IovaSpace&&) noexcept;
    IovaSpace& operator=(IovaSpace&&) noexcept;

    void add_window(const IovaRegion& w);    // a permitted range
    void add_reserved(const IovaRegion& r);  // never mapped nor allocated

    // Empty when [iova, iova+size) lies inside one permitted window and overlaps no reserved
    // region; otherwise a sentence saying why not (names the window/region).
    std::string check(Addr iova, Addr size) const;

    // Top-down, size-aligned (to the power of two >= size) allocation inside the permitted
    // windows, at or below `limit` (an inclusive last address, e.g. a 32-bit DMA mask),
    // avoiding reserved regions and live allocations. nullopt when nothing fits.
    // With the range caches on, sizes below 2^(max_order-1) granules are rounded up to a
    // power of two (as alloc_iova_fast does) and the current CPU's cache is tried first.
    std::optional<Addr> alloc(Addr size, Addr limit = ~Addr(0));
    void free(Addr iova);  // `iova` as returned by alloc; unknown addresses are ignored
    // Handed out and not freed (a cached IOVA is not allocated, though the tree holds it).
    bool allocated(Addr iova) const;
    size_t live() const { return allocs_.size() - cached_; }

    // Turn the per-CPU range caches on (std::invalid_argument on a bad configuration).
    void enable_rcache(const IovaRcacheConfig& c);
    bool rcache_enabled() const { return rc_ != nullptr; }
    // The CPU whose cache alloc and free use (Linux: the CPU the caller runs on).
    void set_cpu(unsigned cpu);
    const IovaRcacheCounts& rcache_counts() const;
    // free_cpu_cached_iovas for every CPU and free_global_cached_iovas: all back to the tree.
    void flush_rcache();

    const std::vector<IovaRegion>& windows() const { return windows_; }
    const std::vector<IovaRegion>& reserved() const { return reserved_; }

private:
    struct Rcache;
    using Spans = std::map<Addr, Addr>;  // first -> last (inclusive), non-overlapping

    void rebuild();
    void add_gap(Addr lo, Addr hi);
    void remove_gap(Spans::iterator it);
    std::optional<Addr> fit(Addr lo, Addr hi, Addr size, Addr mask, Addr limit) const;
    std::optional<Addr> tree_alloc(Addr size, Addr limit);
    void tree_free(Addr iova);

    std::vector<IovaRegion> windows_, reserved_;
    std::map<Addr, Addr> allocs_;  // base -> size
    // Windows minus reserved regions, split at every window edge so no allocation crosses one.
    Spans segments_;
    // Free parts of the segments, also indexed by floor(log2(length)) so alloc finds the
    // highest gap that fits without walking every live allocation.
    Spans gaps_;
    std::array<Spans, 65> by_class_;
    std::unique_ptr<Rcache> rc_;  // null: no range caches
    size_t cached_ = 0;           // allocations held by a cache
};

}  // namespace iommusim
