// A memory target with a fixed access latency over the sparse store: the reference memory
// for timing benches (DRAM timing with channels and bandwidth builds on the same store).
#pragma once
#include <tlm_utils/simple_target_socket.h>
#include <systemc>
#include <tlm>

#include "core/pcie_ext.h"
#include "core/sparse_memory.h"

namespace iommusim {

class FixedMemory : public sc_core::sc_module {
public:
    tlm_utils::simple_target_socket<FixedMemory> target;

    FixedMemory(sc_core::sc_module_name name, SparseMemory& store, sc_core::sc_time latency);

    uint64_t reads() const { return reads_; }
    uint64_t writes() const { return writes_; }

private:
    void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    unsigned int transport_dbg(tlm::tlm_generic_payload& p);
    bool access(tlm::tlm_generic_payload& p);

    SparseMemory& store_;
    sc_core::sc_time latency_;
    uint64_t reads_ = 0, writes_ = 0;
};

}  // namespace iommusim
