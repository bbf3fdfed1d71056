// What a TLM transaction is as PCIe traffic: its TLP kind from the PcieAttr extension (or,
// for initiators without one, from the TLM command), and whether it expects a completion.
#pragma once
#include <systemc>
#include <tlm>

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

// A piece of a transaction: the same payload object narrowed to [addr, addr + len) of the
// caller's data; restore() puts the original extent back and keeps the response status.
struct PayloadExtent {
    Addr addr;
    uint8_t* data;
    unsigned len;

    explicit PayloadExtent(const tlm::tlm_generic_payload& p)
        : addr(p.get_address()), data(p.get_data_ptr()), len(p.get_data_length()) {}
    void narrow(tlm::tlm_generic_payload& p, unsigned offset, unsigned n) const {
        p.set_address(addr + offset);
        p.set_data_ptr(data + offset);
        p.set_data_length(n);
        p.set_streaming_width(n);
        p.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    }
    void restore(tlm::tlm_generic_payload& p) const {
        p.set_address(addr);
        p.set_data_ptr(data);
        p.set_data_length(len);
        p.set_streaming_width(len);
    }
};

}  // namespace iommusim
