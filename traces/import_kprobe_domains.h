// Internal to the QEMU importer: the VT-d domain of each guest map/unmap whose
// __iommu_map/__iommu_unmap kprobe named its struct iommu_domain pointer. The pointer is the
// guest's name of a domain, QEMU's translations name its domain ID: the devices attached to
// the pointer (intel_iommu_attach_device kprobes) and the map events whose pages QEMU
// translated tie the two. See docs/traces.md, "Kprobes".
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "traces/import_align.h"

namespace iommusim::trace::align {

struct KprobeDomains {
    std::vector<std::optional<uint32_t>> domain;  // per op: the VT-d domain ID, when tied
    std::vector<std::optional<uint16_t>> rid;     // per op: a device attached to that domain
    size_t pointers = 0;                          // distinct domain pointers of the ops
    std::vector<std::string> notes;               // pointers not tied, or tied with dissent
};

// `ops` as for align() (guest clock); `timeline` as for align().
KprobeDomains kprobe_domains(const std::vector<GuestOp>& ops, const GuestTrace& guest,
                             const std::vector<Point>& timeline);

}  // namespace iommusim::trace::align
