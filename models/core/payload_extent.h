// A piece of a TLM transaction: the same payload object narrowed to part of the caller's data
// (a PCIe link's TLPs, an IOMMU's per-page pieces), then put back as it came.
#pragma once
#include <tlm>

#include "types.h"

namespace iommusim {

struct PayloadExtent {
    Addr addr;
    uint8_t* data;
    unsigned len;

    explicit PayloadExtent(const tlm::tlm_generic_payload& p)
        : addr(p.get_address()), data(p.get_data_ptr()), len(p.get_data_length()) {}
    // Bytes [offset, offset + n) of the data, addressed at `at` (a translated address).
    void narrow_to(tlm::tlm_generic_payload& p, Addr at, unsigned offset, unsigned n) const {
        p.set_address(at);
        p.set_data_ptr(data + offset);
        p.set_data_length(n);
        p.set_streaming_width(n);
        p.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    }
    // Bytes [offset, offset + n) at their own address.
    void narrow(tlm::tlm_generic_payload& p, unsigned offset, unsigned n) const {
        narrow_to(p, addr + offset, offset, n);
    }
    // The original extent again; the response status is kept.
    void restore(tlm::tlm_generic_payload& p) const {
        p.set_address(addr);
        p.set_data_ptr(data);
        p.set_data_length(len);
        p.set_streaming_width(len);
    }
};

}  // namespace iommusim
