// Internal to the QEMU importer: places the guest's map/unmap events (guest clock) on QEMU's
// timeline so that every translation QEMU performed falls inside a mapping live at that moment.
// The algorithm is described in docs/traces.md, "Importers".
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "traces/import_ftrace.h"

namespace iommusim::trace::align {

// What the alignment needs of one item of QEMU's timeline (records in log order).
struct Point {
    enum class Type : uint8_t { Translation, PageInval, Other };
    Type type = Type::Other;
    uint64_t ns = 0;
    // Translation: the full IOVA and its GPA, who translated, and the leaf entry's W bit.
    Addr iova = 0, gpa = 0;
    uint16_t rid = 0;
    std::optional<uint32_t> domain;
    std::optional<bool> writable;
    // PageInval (page-selective IOTLB invalidation): domain, [addr, addr + bytes).
    Addr addr = 0;
    uint64_t bytes = 0;
};

// Where one guest map/unmap goes.
struct Placement {
    size_t slot = 0;  // immediately before timeline item `slot` (timeline size: after all)
    uint64_t ns = 0;  // on QEMU's clock
    bool anchored = false;
    std::optional<uint32_t> domain;
    std::optional<uint16_t> rid;
    Perm perm = kPermR | kPermW;  // map: narrowed to r when the leaf entries had no W bit
};

struct Result {
    std::vector<Placement> ops;               // one per op, slots non-decreasing
    std::vector<size_t> unexplained;          // timeline indices of translations no op explains
    std::vector<size_t> unmatched_unmaps;     // op indices of unmaps with nothing mapped there
    std::vector<size_t> conflicting_domains;  // op indices of maps translated by two domains
    size_t causal_conflicts = 0;              // ops whose causal window the translations contradict
    std::vector<size_t> guessed_unmaps;       // op indices of unmaps over several domains' mappings
                                              // whose domain nothing decided (the latest was taken)
};

// Per op, timeline slots [first, second] that causality allows (import_align_fit.h).
using Windows = std::vector<std::pair<size_t, size_t>>;

// `ops`: map and unmap only, in guest order. `start_ns`: earliest time an op may get.
// `causal`: empty, or one window per op that narrows where the op may go. `known`: empty, or
// per op the domain a kprobe named (import_kprobe_domains.h), which the op keeps.
Result align(const std::vector<GuestOp>& ops, const std::vector<Point>& timeline, uint64_t start_ns,
             const Windows& causal = {}, const std::vector<std::optional<uint32_t>>& known = {});

}  // namespace iommusim::trace::align
