// intel-iommu's bring-up of one VT-d unit through its registers, shared by the bundle and the
// benches that build a unit by hand.
#pragma once
#include <cstdint>

#include "core/time.h"
#include "core/types.h"
#include "core/unit_access.h"

namespace iommusim::vtd {

// How the bring-up's register writes are timed: all issued at `at` (the bundle's model of a
// driver that does not wait between them), or each one at the previous one's completion.
enum class WriteOrder { AtOnce, Chained };

// Root table address (with TTM = scalable mode when `scalable`), GCMD.SRTP, the invalidation
// queue's address `iqa`, GCMD.QIE, then GCMD.QIE | TE. Returns the last write's completion.
Tick enable_unit(RegisterAccess& unit, Addr rtaddr, bool scalable, uint64_t iqa, Tick at,
                 WriteOrder order);

}  // namespace iommusim::vtd
