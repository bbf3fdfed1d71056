// Moving a transaction's bytes to or from the memory store, shared by the memory targets.
#pragma once
#include <tlm>

#include "core/pcie_ext.h"
#include "core/sparse_memory.h"

namespace iommusim {

// Reads or writes the payload's bytes at its address and sets its response (address error
// when the range is outside the store). A request whose PcieAttr says its bytes mean nothing
// (a device model's scratch buffer) is only range-checked: the store keeps no copy, so memory
// stays bounded however many pages such devices touch.
inline bool move_payload_data(SparseMemory& store, tlm::tlm_generic_payload& p) {
    const Addr a = p.get_address();
    const size_t n = p.get_data_length();
    const PcieAttr* attr = p.get_extension<PcieAttr>();
    bool ok = true;
    if (attr && !attr->contents)
        ok = SparseMemory::in_range(a, n);
    else if (p.is_write())
        ok = store.write(a, p.get_data_ptr(), n);
    else if (p.is_read())
        ok = store.read(a, p.get_data_ptr(), n);
    p.set_response_status(ok ? tlm::TLM_OK_RESPONSE : tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return ok;
}

}  // namespace iommusim
