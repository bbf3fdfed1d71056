// Parameters of one IOMMU translation unit, declared once: visit() names each one with its
// default, unit, one-line doc and valid range, so configuration files, `iommusim params`
// and the documentation all read the same declaration.
#pragma once
#include <cstdint>
#include <string>

#include "core/cache.h"
#include "core/config.h"
#include "core/time.h"

namespace iommusim {

// Which paging-structure-cache entries a page-selective invalidation (VT-d PSI, 6.5.2.3)
// removes besides the large-page leaves in its range, which always go.
//   domain      every non-leaf entry of the domain unless IH is set: the most the
//               specification allows, and the simplest hardware
//   range       only the entries whose region overlaps the range unless IH is set: the least
//   leaf_table  as range; and with IH set still every entry of the domain that points to a
//               leaf table (the PDE cache), in the range or not: what F&S's per-level counts
//               on Cascade Lake point to (docs/iommu.md)
enum class PsiWalkScope : uint8_t { Domain, Range, LeafTable };

template <>
struct EnumParam<PsiWalkScope> {
    static std::optional<PsiWalkScope> parse(std::string_view s) {
        for (PsiWalkScope v : values())
            if (s == name(v)) return v;
        return std::nullopt;
    }
    static std::string name(PsiWalkScope v) {
        return v == PsiWalkScope::Domain  ? "domain"
               : v == PsiWalkScope::Range ? "range"
                                          : "leaf_table";
    }
    static std::vector<PsiWalkScope> values() {
        return {PsiWalkScope::Domain, PsiWalkScope::Range, PsiWalkScope::LeafTable};
    }
};

struct CacheParams {
    uint32_t entries;
    uint32_t ways;  // 0: fully associative
    Replacement policy;
    uint32_t latency;  // lookup, in unit clock cycles

    CacheGeometry geometry(uint64_t seed = 1) const {
        uint32_t w = ways == 0 || ways > entries ? entries : ways;
        return {w ? entries / w : 1, w ? w : 1, policy, seed};
    }
};

struct UnitParams {
    uint64_t clock_mhz = 1000;
    CacheParams iotlb{64, 4, Replacement::LRU, 2};
    bool iotlb_split = false;  // separate IOTLBs per page-size class (4K, 2M, 1G)
    uint32_t iotlb_entries_2m = 16;
    uint32_t iotlb_entries_1g = 4;
    CacheParams context_cache{16, 0, Replacement::LRU, 2};
    CacheParams pasid_cache{64, 8, Replacement::LRU, 2};
    // Paging-structure caches for non-leaf entries of levels 2 (PDE) .. 5 (PML5E).
    uint32_t walk_cache_entries[4] = {32, 16, 8, 4};
    uint32_t walk_cache_ways = 4;
    uint32_t walk_cache_latency = 2;
    PsiWalkScope walk_cache_psi = PsiWalkScope::Domain;
    uint32_t walkers = 4;
    uint32_t walk_step_cycles = 2;  // walker work per step, before its memory read
    uint32_t invalidate_cycles = 8;
    bool prefetch_next_page = false;
    // Seeds the random replacement of every cache of the unit (set from the run's seed by the
    // platform, not a parameter of its own): 0 keeps each cache's fixed stream.
    uint64_t seed = 0;

    Clock clock() const { return Clock::from_mhz(clock_mhz); }

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("clock_mhz", clock_mhz, "MHz", "unit clock", 1, 10000);
        v("iotlb.entries", iotlb.entries, "entries", "IOTLB entries (4 KiB class when split)", 1,
          1 << 20);
        v("iotlb.ways", iotlb.ways, "ways", "IOTLB associativity; 0 = fully associative", 0,
          1 << 20);
        v("iotlb.policy", iotlb.policy, "", "replacement: lru, plru, fifo, random", 0, 3);
        v("iotlb.latency", iotlb.latency, "cycles", "IOTLB lookup latency", 0, 1000);
        v("iotlb.split", iotlb_split, "", "separate IOTLBs per page-size class", 0, 1);
        v("iotlb.entries_2m", iotlb_entries_2m, "entries", "2 MiB-class IOTLB entries when split",
          1, 1 << 20);
        v("iotlb.entries_1g", iotlb_entries_1g, "entries", "1 GiB-class IOTLB entries when split",
          1, 1 << 20);
        v("context_cache.entries", context_cache.entries, "entries", "context-cache entries", 1,
          1 << 16);
        v("context_cache.ways", context_cache.ways, "ways",
          "context-cache ways; 0 = fully associative", 0, 1 << 16);
        v("context_cache.latency", context_cache.latency, "cycles", "context-cache lookup", 0,
          1000);
        v("pasid_cache.entries", pasid_cache.entries, "entries", "PASID-cache entries", 1, 1 << 20);
        v("pasid_cache.ways", pasid_cache.ways, "ways", "PASID-cache ways; 0 = fully associative",
          0, 1 << 20);
        v("pasid_cache.latency", pasid_cache.latency, "cycles", "PASID-cache lookup", 0, 1000);
        v("walk_cache.l2_entries", walk_cache_entries[0], "entries",
          "level-2 (PDE) walk-cache entries; 0 = none", 0, 1 << 16);
        v("walk_cache.l3_entries", walk_cache_entries[1], "entries",
          "level-3 (PDPTE) walk-cache entries", 0, 1 << 16);
        v("walk_cache.l4_entries", walk_cache_entries[2], "entries",
          "level-4 (PML4E) walk-cache entries", 0, 1 << 16);
        v("walk_cache.l5_entries", walk_cache_entries[3], "entries",
          "level-5 (PML5E) walk-cache entries", 0, 1 << 16);
        v("walk_cache.ways", walk_cache_ways, "ways", "walk-cache ways; 0 = fully associative", 0,
          1 << 16);
        v("walk_cache.latency", walk_cache_latency, "cycles", "walk-cache lookup", 0, 1000);
        v("walk_cache.psi", walk_cache_psi, "",
          "walk-cache entries a page-selective invalidation removes: domain, range, leaf_table", 0,
          2);
        v("walkers", walkers, "walkers", "page walkers working in parallel", 1, 1024);
        v("walk_step_cycles", walk_step_cycles, "cycles", "walker work per structure read", 0,
          1000);
        v("invalidate_cycles", invalidate_cycles, "cycles", "cost of executing one invalidation", 0,
          100000);
        v("prefetch_next_page", prefetch_next_page, "", "walk the next page after a miss", 0, 1);
    }
};

}  // namespace iommusim
