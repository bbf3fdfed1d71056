// The arch-neutral step-wise walker: one page-table walk, written once per architecture,
// driven either instantly against SparseMemory (functional) or through the timed memory
// system (models/iommu). next() says what the walk needs; feed() hands it the bytes.
#pragma once
#include <cstdint>
#include <string>

#include "translation.h"
#include "types.h"

namespace iommusim {

class SparseMemory;

// Which translation structure a step touches (used for latency breakdown and walk caches).
enum class WalkStage : uint8_t {
    Root,         // VT-d root entry
    Context,      // VT-d context entry
    PasidDir,     // VT-d PASID directory entry
    PasidEntry,   // VT-d PASID table entry
    FirstLevel,   // VT-d first-level paging entry
    SecondLevel,  // VT-d second-level paging entry
    Tce,          // sPAPR TCE table level
};
const char* to_string(WalkStage s);

struct WalkStep {
    enum class Kind : uint8_t { Read, Write, Done };
    Kind kind = Kind::Done;
    WalkStage stage = WalkStage::Root;
    uint8_t level = 0;    // paging level, counted down to 1 at the leaf; 0 outside page tables
    uint8_t size = 0;     // bytes to read or write
    bool nested = false;  // a second-level read made to translate a first-level access
    uint8_t shift = 0;    // paging steps: one entry at this level maps 2^shift bytes
    Addr addr = 0;
    Addr input = 0;      // paging steps: the address this table level translates
    uint64_t wdata = 0;  // Write: the new 8-byte value (accessed/dirty update)
};

// The decoded device/PASID context a page walk starts from: what context and PASID caches
// hold. `arch` is the architecture's own summary (opaque to arch-neutral code).
struct WalkContext {
    uint32_t tag = 0;                      // what translations are cached under (VT-d DID)
    uint32_t pasid = Requester::kNoPasid;  // effective PASID (RID_PASID without a prefix)
    // False for a device context whose PASID stage is still to walk (a VT-d scalable-mode
    // context entry: what the context cache holds there); tag and pasid are then unused.
    bool complete = true;
    alignas(8) uint8_t arch[96] = {};
};

// What a paging-structure (walk) cache holds for one entry of level 2 or above: the entry as
// the walk left it in memory (accessed/dirty bits set; so the next table's address, or a large
// page) and the rights the levels above it granted. A walk that finds it goes on below the
// entry without reading memory, as hardware uses a cached entry, stale or not.
struct PagingEntry {
    uint64_t value = 0;       // its 8 bytes as they lie in memory, read little-endian
    Perm above = kPermNone;   // rights granted by the levels above
    uint8_t above_flags = 0;  // the architecture's other state from above (VT-d: U/S, XD)
    bool leaf = false;        // a large page: leaf-only invalidations drop it
};

class Walker {
public:
    virtual ~Walker() = default;

    // Begin translating `iova` for `req`. Any previous walk is abandoned.
    virtual void start(const Requester& req, Addr iova, Access access) = 0;
    // The next memory access the walk needs, or Done (then result() is final).
    virtual WalkStep next() = 0;
    // The `size` bytes of the last Read step (little-endian memory image).
    virtual void feed(const uint8_t* data) = 0;
    // The last Read step could not be completed (address beyond memory, bus error).
    virtual void feed_error() = 0;
    virtual const WalkResult& result() const = 0;
    // One line decoding the entry `data` read by `step` (debugging aid; not on hot paths).
    virtual std::string describe(const WalkStep& step, const uint8_t* data) const = 0;

    // True once the walk has decoded the requester's context and reads page tables next (or
    // is done without fault). The timed unit caches context() then (the PASID cache).
    virtual bool context_ready() const = 0;
    virtual WalkContext context() const = 0;
    // True once the walk has decoded the device's context (what the context cache keeps):
    // the complete context, or one whose PASID stage comes next (complete == false).
    virtual bool device_context_ready() const { return context_ready(); }
    virtual WalkContext device_context() const { return context(); }
    // Begin a walk from a cached context: at the page tables from a complete one, at the PASID
    // stage from a device context. The walker judges the request against it (PASID allowed?).
    virtual void resume(const WalkContext& ctx, const Requester& req, Addr iova, Access access) = 0;
    // Whether two contexts decode alike (checking mode: was a cached one stale?).
    virtual bool same_context(const WalkContext& a, const WalkContext& b) const;

    // After feed() or feed_cached() of a paging step: the entry as a walk cache keeps it, if
    // the entry itself is usable (present, no reserved bit set); false otherwise (a fault is
    // never cached).
    virtual bool paging_entry(PagingEntry* out) const = 0;
    // Go on with the Read step next() just returned from a walk cache's copy of its entry.
    virtual void feed_cached(const PagingEntry& e) = 0;
};

// Receives every step of a functional walk (for the walk explainer and tests).
class WalkObserver {
public:
    virtual ~WalkObserver() = default;
    virtual void on_step(const Walker& w, const WalkStep& step, const uint8_t* data) = 0;
};

// Run a walk to completion against `mem` with zero latency (the translation oracle's engine).
const WalkResult& walk_functional(Walker& w, SparseMemory& mem, const Requester& req, Addr iova,
                                  Access access, WalkObserver* obs = nullptr);

// Format every step of a walk for people: table, entry address, raw value, decoded fields.
std::string explain_walk(Walker& w, SparseMemory& mem, const Requester& req, Addr iova,
                         Access access);

}  // namespace iommusim
