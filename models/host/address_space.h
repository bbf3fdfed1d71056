// One translated DMA address space as the driver sees it: a page table, permitted windows
// and reserved regions, an IOVA allocator, and the intent. A VT-d second-level domain, a
// first-level PASID space and a TCE window are each one AddressSpace.
#pragma once
#include <cstdint>
#include <string>

#include "intent_map.h"
#include "iova_space.h"
#include "radix_page_table.h"

namespace iommusim {

class AddressSpace {
public:
    // `input_offset` is subtracted from an IOVA before it indexes the table (a TCE window
    // starts at a bus offset; VT-d spaces use 0).
    AddressSpace(SparseMemory& mem, PhysAllocator& alloc, const PteFormat& fmt,
                 Addr input_offset = 0);

    // Map [iova, iova+size) -> pa using the largest pages that alignment and size allow.
    // Fails, changing nothing, when iova/pa/size are not aligned to the smallest page, the
    // range is not inside one permitted window or touches a reserved region, or it overlaps
    // a live mapping. `why` says which.
    bool map(Addr iova, Addr pa, Addr size, Perm perm, std::string* why = nullptr);
    // Remove [iova, iova+size) from the tables and the intent. Returns the bytes that were
    // mapped in the range.
    Addr unmap(Addr iova, Addr size);

    IovaSpace& iova() { return iova_; }
    const IovaSpace& iova() const { return iova_; }
    const IntentMap& intent() const { return intent_; }
    RadixPageTable& table() { return table_; }
    const RadixPageTable& table() const { return table_; }
    unsigned min_page_shift() const { return table_.format().level_shift(1); }
    Addr input_offset() const { return offset_; }

private:
    RadixPageTable table_;
    IovaSpace iova_;
    IntentMap intent_;
    Addr offset_;
};

}  // namespace iommusim
