// A TLM-2.0 target socket whose forward interface calls the owning module's b_transport and
// transport_dbg directly. tlm_utils' simple_target_socket reaches the module through an
// adapter object and a run-time member-function pointer, and a multi_passthrough socket
// through a functor: one more call per hop, and every TLP makes several hops. Here the
// callbacks are template arguments, so the initiator's one virtual call lands in the module.
//
// Loosely timed only (as every model here): nb_transport_fw reports an error, and there is
// no DMI. N and POL as for tlm::tlm_target_socket: N = 0 lets any number of initiators bind
// (a pass-through such as a multiplexer, which does not need to know which one called);
// SC_ZERO_OR_MORE_BOUND lets the socket stay unbound.
#pragma once
#include <systemc>
#include <tlm>

namespace iommusim {

template <typename Module, void (Module::*B)(tlm::tlm_generic_payload&, sc_core::sc_time&),
          unsigned int (Module::*D)(tlm::tlm_generic_payload&), int N = 1,
          sc_core::sc_port_policy POL = sc_core::SC_ONE_OR_MORE_BOUND>
class DirectTargetSocket : public tlm::tlm_target_socket<32, tlm::tlm_base_protocol_types, N, POL> {
public:
    DirectTargetSocket(const char* name, Module* m)
        : tlm::tlm_target_socket<32, tlm::tlm_base_protocol_types, N, POL>(name), fw_(m, this) {
        this->bind(fw_);
    }

private:
    struct Fw final : tlm::tlm_fw_transport_if<> {
        Fw(Module* m, sc_core::sc_object* socket) : m(m), socket(socket) {}
        void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& d) override {
            (m->*B)(p, d);
        }
        unsigned int transport_dbg(tlm::tlm_generic_payload& p) override { return (m->*D)(p); }
        tlm::tlm_sync_enum nb_transport_fw(tlm::tlm_generic_payload& p, tlm::tlm_phase&,
                                           sc_core::sc_time&) override {
            SC_REPORT_ERROR(socket->name(),
                            "nb_transport_fw: this target is loosely timed; use b_transport");
            p.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);
            return tlm::TLM_COMPLETED;
        }
        // No DMI, for the whole address range (what simple_target_socket answers).
        bool get_direct_mem_ptr(tlm::tlm_generic_payload&, tlm::tlm_dmi& dmi) override {
            dmi.allow_read_write();
            dmi.set_start_address(0);
            dmi.set_end_address(~sc_dt::uint64(0));
            return false;
        }
        Module* m;
        sc_core::sc_object* socket;
    };
    Fw fw_;
};

}  // namespace iommusim
