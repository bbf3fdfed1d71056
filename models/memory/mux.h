// N initiators onto one target (several IOMMU units and a bypass path sharing one memory
// port): a pass-through that adds nothing; contention belongs to the memory model.
#pragma once
#include <tlm_utils/simple_initiator_socket.h>
#include <systemc>
#include <tlm>

#include "core/direct_target_socket.h"

namespace iommusim {

class Mux : public sc_core::sc_module {
    // Declared before `inputs`, whose type names them.
    void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& d) {
        // Every request passes here: the target's blocking interface is looked up once, since
        // reaching it through the port is a chain of dependent loads (the port's interface,
        // then the virtual base's offset) that each TLP would wait on.
        tlm::tlm_blocking_transport_if<>* t = target_;
        if (__builtin_expect(t == nullptr, 0)) t = target_ = output.operator->();
        t->b_transport(p, d);
    }
    unsigned int transport_dbg(tlm::tlm_generic_payload& p) { return output->transport_dbg(p); }

public:
    // Any number of initiators; which one called does not matter to a pass-through.
    DirectTargetSocket<Mux, &Mux::b_transport, &Mux::transport_dbg, 0> inputs;
    tlm_utils::simple_initiator_socket<Mux> output;

    explicit Mux(sc_core::sc_module_name name)
        : sc_module(name), inputs("inputs", this), output("output") {}

private:
    tlm::tlm_blocking_transport_if<>* target_ = nullptr;  // output's, once bound
};

}  // namespace iommusim
