// N initiators onto one target (several IOMMU units and a bypass path sharing one memory
// port): a pass-through that adds nothing; contention belongs to the memory model.
#pragma once
#include <tlm_utils/multi_passthrough_target_socket.h>
#include <tlm_utils/simple_initiator_socket.h>
#include <systemc>
#include <tlm>

namespace iommusim {

class Mux : public sc_core::sc_module {
public:
    tlm_utils::multi_passthrough_target_socket<Mux> inputs;
    tlm_utils::simple_initiator_socket<Mux> output;

    explicit Mux(sc_core::sc_module_name name)
        : sc_module(name), inputs("inputs"), output("output") {
        inputs.register_b_transport(this, &Mux::b_transport);
        inputs.register_transport_dbg(this, &Mux::transport_dbg);
    }

private:
    void b_transport(int, tlm::tlm_generic_payload& p, sc_core::sc_time& d) {
        output->b_transport(p, d);
    }
    unsigned int transport_dbg(int, tlm::tlm_generic_payload& p) {
        return output->transport_dbg(p);
    }
};

}  // namespace iommusim
