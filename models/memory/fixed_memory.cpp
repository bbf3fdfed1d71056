#include "fixed_memory.h"

#include "payload_data.h"

namespace iommusim {

FixedMemory::FixedMemory(sc_core::sc_module_name name, SparseMemory& store,
                         sc_core::sc_time latency)
    : sc_module(name), target("target"), store_(store), latency_(latency) {
    target.register_b_transport(this, &FixedMemory::b_transport);
    target.register_transport_dbg(this, &FixedMemory::transport_dbg);
}

bool FixedMemory::access(tlm::tlm_generic_payload& p) {
    const size_t n = p.get_data_length();
    const unsigned width = p.get_streaming_width();  // 0: debug initiators may leave it unset
    if (p.get_byte_enable_ptr() || (width && width < n)) {
        p.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
        return false;
    }
    return move_payload_data(store_, p);
}

void FixedMemory::b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    ++(p.is_write() ? writes_ : reads_);
    access(p);
    delay += latency_;
}

unsigned int FixedMemory::transport_dbg(tlm::tlm_generic_payload& p) {
    return access(p) ? p.get_data_length() : 0;
}

}  // namespace iommusim
