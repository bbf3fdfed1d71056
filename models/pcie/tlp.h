// What a TLM transaction is as PCIe traffic: its TLP kind from the PcieAttr extension (or,
// for initiators without one, from the TLM command), and whether it expects a completion.
#pragma once
#include <systemc>
#include <tlm>

#include "core/payload_extent.h"  // PayloadExtent, shared with the IOMMU unit
#include "core/pcie_ext.h"

namespace iommusim {

inline PcieAttr::Tlp tlp_kind(const tlm::tlm_generic_payload& p) {
    if (const PcieAttr* a = p.get_extension<PcieAttr>()) return a->tlp;
    return p.is_write() ? PcieAttr::Tlp::MemWrite : PcieAttr::Tlp::MemRead;
}

// Posted requests (memory writes, messages) get no completion, so no return trip.
inline bool is_posted(PcieAttr::Tlp t) {
    return t == PcieAttr::Tlp::MemWrite || t == PcieAttr::Tlp::Message;
}

}  // namespace iommusim
