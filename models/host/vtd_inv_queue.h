// The driver's side of VT-d queued invalidation, as Linux's qi_submit_sync does it: the
// descriptors go into the invalidation queue in memory, software then writes the new tail to
// IQT and waits for the wait descriptor's status word.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "arch/vtd/vtd_invdesc.h"
#include "arch/vtd/vtd_regs.h"
#include "core/sparse_memory.h"

namespace iommusim::vtd {

class InvQueueWriter {
public:
    // A queue of 4 KiB << qs bytes at `base` (4 KiB aligned), 256-bit descriptors if `dw`.
    InvQueueWriter(SparseMemory& mem, Addr base, unsigned qs, bool dw);

    uint64_t iqa() const;  // the value software writes to IQA
    uint32_t entries() const { return iqa_.entries(); }
    // Append descriptors after the current tail given the hardware's head (IQH value). Returns
    // the IQT value to write, or nullopt when they do not fit yet (nothing is written then).
    std::optional<uint64_t> append(const std::vector<InvDesc>& descs, uint64_t iqh);

private:
    SparseMemory& mem_;
    Iqa iqa_;
    uint32_t tail_ = 0;
};

}  // namespace iommusim::vtd
