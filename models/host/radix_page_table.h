// Builds and edits one radix page table of any PteFormat in simulated memory: the driver
// model's writer for VT-d second-level, VT-d first-level and sPAPR TCE tables alike.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/pte_format.h"
#include "core/sparse_memory.h"
#include "phys_alloc.h"

namespace iommusim {

struct PageLookup {
    Addr pa;  // translated address (offset included)
    unsigned page_shift;
    Perm perm;
};

class RadixPageTable {
public:
    // Allocates and zeroes the root table; throws std::runtime_error if the allocator is
    // exhausted. Input addresses are indexes into the table (callers subtract window bases).
    RadixPageTable(SparseMemory& mem, PhysAllocator& alloc, const PteFormat& fmt);
    ~RadixPageTable();  // returns every table to the allocator
    RadixPageTable(const RadixPageTable&) = delete;
    RadixPageTable& operator=(const RadixPageTable&) = delete;

    Addr root() const { return root_; }
    const PteFormat& format() const { return fmt_; }

    // Map one page of 2^page_shift bytes (the level whose level_shift equals page_shift).
    // iova and pa must be aligned. An empty lower table in the way is freed and replaced.
    // Fails, changing nothing, if a leaf or a non-empty table is already there, the level
    // cannot hold a leaf, or tables cannot be allocated.
    bool map_page(Addr iova, Addr pa, unsigned page_shift, Perm perm, std::string* why = nullptr);
    // Clear every leaf inside [iova, iova+size). A leaf straddling either end is first split
    // into smaller leaves so the part outside the range stays mapped. Tables are kept. A
    // level-1 page the range only touches is cleared whole. Throws std::runtime_error if a
    // split finds no table memory (that page is left whole).
    void unmap(Addr iova, Addr size);
    // The builder's own view of one address (tests of the builder; not the oracle).
    std::optional<PageLookup> lookup(Addr iova) const;
    size_t table_count() const { return tables_; }
    // Lower tables map() has replaced by a leaf so far: each change of a present table entry
    // that the unit's paging-structure caches may hold, which the driver must invalidate.
    size_t tables_replaced() const { return replaced_; }

private:
    Addr new_table(unsigned level);  // zeroed; 0 on exhaustion
    void free_subtree(Addr table, unsigned level);
    bool subtree_empty(Addr table, unsigned level) const;
    void unmap_in(Addr table, unsigned level, Addr base, Addr lo, Addr hi);
    Addr entry_addr(Addr table, unsigned level, Addr iova) const;
    uint64_t read_entry(Addr ea) const;
    void write_entry(Addr ea, uint64_t e);
    bool leaf_at(uint64_t e, unsigned level) const;
    Addr input_last() const;  // highest input address the root table covers
    // A new table of `level` whose entries map [pa, ...) with `perm` as leaves (or, where the
    // level allows none, as tables of leaves); used to split a larger leaf. 0 on exhaustion.
    Addr split_table(unsigned level, Addr pa, Perm perm);

    SparseMemory& mem_;
    PhysAllocator& alloc_;
    const PteFormat& fmt_;
    Addr root_ = 0;
    size_t tables_ = 0;
    size_t replaced_ = 0;
};

}  // namespace iommusim
