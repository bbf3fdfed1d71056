// Results of a translation: the output (Translation) or why there is none (Fault).
#pragma once
#include <cstdint>

#include "time.h"
#include "types.h"

namespace iommusim {

struct Translation {
    Addr out = 0;             // output address of the requested input address (offset included)
    uint8_t page_shift = 12;  // size of the page that produced it: 12, 21, 30, ... (TCE: 16, 24)
    Perm perm = kPermNone;    // rights granted by every level of the walk
    uint8_t mem_type = kNoMemType;  // architecture memory type (VT-d EMT) where defined
    uint32_t tag = 0;  // what the hardware tags cached entries with (VT-d DID, TCE LIOBN)

    static constexpr uint8_t kNoMemType = 0xFF;
    constexpr Addr page_size() const { return Addr(1) << page_shift; }
    constexpr Addr page_out() const { return out & ~(page_size() - 1); }
};

// Arch-neutral fault classes; `reason` carries the architecture's own code.
enum class FaultKind : uint8_t {
    None,
    TableAccess,   // reading a translation structure failed
    NotPresent,    // a present/valid bit was clear (root, context, PASID entry, PTE)
    ReservedBit,   // a reserved field was non-zero
    InvalidEntry,  // an entry's fields are inconsistent or unsupported (e.g. bad AW, TT)
    AddressRange,  // input address beyond the width or outside every window
    Permission,    // read/write/execute/privilege not granted
    Blocked,       // the configuration forbids this request kind (e.g. PASID not enabled)
};
const char* to_string(FaultKind k);

struct Fault {
    FaultKind kind = FaultKind::None;
    uint16_t reason = 0;      // architecture's fault reason / event code
    uint8_t level = 0;        // paging level where it was found, 0 if not in a page table
    Addr addr = 0;            // the input address of the faulting request
    bool suppressed = false;  // fault processing disabled (VT-d FPD): fails, but no record
};

struct WalkResult {
    Translation tr;
    Fault fault;
    uint32_t reads = 0;   // memory reads issued (every read of a nested 2D walk counts)
    uint32_t writes = 0;  // accessed/dirty updates written back

    constexpr bool ok() const { return fault.kind == FaultKind::None; }
};

// What a timed unit answered for one request (TranslationUnit::translate).
struct TranslateOutcome {
    WalkResult result;  // the translation, or the fault
    Tick done = 0;      // when it is known
    bool iotlb_hit = false;
    bool merged = false;  // waited for another request's walk of the same page
    bool stale = false;   // hit a cached translation the driver no longer intends
};

}  // namespace iommusim
