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
//
// DirectMultiTargetSocket is the same for a target that several initiators bind and that must
// know which one called (a root complex's Root Ports): each binding gets its own forward
// interface carrying its index, where tlm_utils' multi_passthrough socket goes through a
// binder object, a function pointer and a member-function pointer.
#pragma once
#include <memory>
#include <systemc>
#include <tlm>
#include <vector>

namespace iommusim {

namespace detail {
// What both sockets' forward interfaces answer besides b_transport and transport_dbg.
struct LooselyTimedFw : tlm::tlm_fw_transport_if<> {
    explicit LooselyTimedFw(sc_core::sc_object* socket) : socket(socket) {}
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
    sc_core::sc_object* socket;
};
}  // namespace detail

// The direct socket (either kind below) whose forward interface `fw` is, or null (another
// kind of target): an initiator bound to one finds the module behind it this way, to call it
// directly.
inline sc_core::sc_object* direct_socket_of(tlm::tlm_fw_transport_if<>* fw) {
    const auto* direct = dynamic_cast<const detail::LooselyTimedFw*>(fw);
    return direct ? direct->socket : nullptr;
}

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
    struct Fw final : detail::LooselyTimedFw {
        Fw(Module* m, sc_core::sc_object* socket) : LooselyTimedFw(socket), m(m) {}
        void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& d) override {
            (m->*B)(p, d);
        }
        unsigned int transport_dbg(tlm::tlm_generic_payload& p) override { return (m->*D)(p); }
        Module* m;
    };
    Fw fw_;
};

template <typename Module, void (Module::*B)(int, tlm::tlm_generic_payload&, sc_core::sc_time&),
          unsigned int (Module::*D)(int, tlm::tlm_generic_payload&)>
class DirectMultiTargetSocket : public tlm::tlm_target_socket<32, tlm::tlm_base_protocol_types, 0> {
    using Base = tlm::tlm_target_socket<32, tlm::tlm_base_protocol_types, 0>;

public:
    DirectMultiTargetSocket(const char* name, Module* m) : Base(name), m_(m) {
        // The export needs an interface from the start; the first binding gets this one.
        fw_.push_back(std::make_unique<Fw>(m, this, 0));
        Base::export_type::bind(*fw_.back());
    }

    // Initiators bound so far: their indices are 0 .. size() - 1, in binding order.
    unsigned size() const { return bound_; }
    // The index of the binding whose forward interface is `fw`, or -1 (not one of this
    // socket's): lets an initiator bound here call the module directly.
    int index_of(const tlm::tlm_fw_transport_if<>* fw) const {
        for (unsigned i = 0; i < bound_; ++i)
            if (fw_[i].get() == fw) return int(i);
        return -1;
    }

    // Asked once per initiator binding (tlm_base_initiator_socket::bind, and this socket's
    // bind(initiator)): the interface of the next index.
    tlm::tlm_fw_transport_if<>& get_base_interface() override {
        if (bound_ == fw_.size()) fw_.push_back(std::make_unique<Fw>(m_, this, int(bound_)));
        return *fw_[bound_++];
    }
    const tlm::tlm_fw_transport_if<>& get_base_interface() const override { return *fw_[0]; }

private:
    struct Fw final : detail::LooselyTimedFw {
        Fw(Module* m, sc_core::sc_object* socket, int index)
            : LooselyTimedFw(socket), m(m), index(index) {}
        void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& d) override {
            (m->*B)(index, p, d);
        }
        unsigned int transport_dbg(tlm::tlm_generic_payload& p) override {
            return (m->*D)(index, p);
        }
        Module* m;
        int index;
    };
    Module* m_;
    std::vector<std::unique_ptr<Fw>> fw_;
    unsigned bound_ = 0;
};

}  // namespace iommusim
