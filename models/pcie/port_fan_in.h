// What a PCIe switch and a root complex share: several Downstream Ports (switch Downstream
// Ports, Root Ports) whose device-initiated requests all go out through one port toward the
// host, each traversal adding a fixed latency (a non-posted request pays it again for its
// completion). Per-port statistics, and optionally ACS Source Validation: a request whose
// Requester ID bus number is outside the port's Secondary..Subordinate bus range is an ACS
// Violation and gets a Completer Abort (TLM_GENERIC_ERROR_RESPONSE) without going further.
//
// Peer-to-peer requests are not routed between ports: every request goes toward the host, as
// with ACS P2P Request Redirect, which is how systems with an IOMMU configure switches so
// that peer traffic is translated too.
#pragma once
#include <tlm_utils/simple_initiator_socket.h>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/direct_target_socket.h"
#include "core/stats.h"
#include "core/time.h"
#include "tlp.h"

namespace iommusim {

class PortFanIn : public sc_core::sc_module {
    // Declared before `Ports`, which names them.
    void b_transport(int port, tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    unsigned int transport_dbg(int port, tlm::tlm_generic_payload& p);

public:
    // The binding index is the port number.
    using Ports =
        DirectMultiTargetSocket<PortFanIn, &PortFanIn::b_transport, &PortFanIn::transport_dbg>;
    using Upstream = tlm_utils::simple_initiator_socket<PortFanIn>;

    // Port `port` (its binding index) leads to buses secondary..subordinate; with
    // `source_validation`, requests from other buses are ACS Violations.
    void set_bus_range(unsigned port, uint8_t secondary, uint8_t subordinate,
                       bool source_validation = true);
    unsigned port_count() { return ports_.size(); }

    // b_transport on port `port` with the PCIe attributes already read (null: none). A link
    // bound straight to a port calls it, so that a TLP's attributes are looked up once.
    void transport(int port, tlm::tlm_generic_payload& p, sc_core::sc_time& delay,
                   const PcieAttr* a);
    // The fan-in one of whose ports provides `fw`, and that port's number in `port`; or null
    // (another target).
    static PortFanIn* behind(tlm::tlm_fw_transport_if<>* fw, int& port);

protected:
    PortFanIn(sc_core::sc_module_name name, const char* ports_name, const char* upstream_name,
              uint32_t latency_ns, StatGroup& stats);

    Ports ports_;
    Upstream upstream_;

private:
    struct Port {
        uint8_t secondary = 0, subordinate = 0xff;
        bool validate = false;
        Counter *requests = nullptr, *payload_bytes = nullptr, *violations = nullptr;
    };
    void end_of_elaboration() override;

    const sc_core::sc_time latency_;
    StatGroup& stats_;
    std::vector<Port> port_;
};

// Inline (here rather than in the .cpp) so that each port's interface inlines it: every
// device-initiated TLP passes one.
inline void PortFanIn::transport(int port, tlm::tlm_generic_payload& p, sc_core::sc_time& delay,
                                 const PcieAttr* a) {
    Port& pt = port_[unsigned(port)];
    ++*pt.requests;
    *pt.payload_bytes += p.get_data_length();
    if (pt.validate) {
        const unsigned bus = a ? a->req.bus() : 0u;
        if (!a || bus < pt.secondary || bus > pt.subordinate) {
            ++*pt.violations;
            p.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
            return;
        }
    }
    const bool posted = is_posted(a ? a->tlp : tlp_kind(p));
    delay += latency_;
    upstream_->b_transport(p, delay);
    if (!posted) delay += latency_;  // the completion crosses back
}

inline void PortFanIn::b_transport(int port, tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    transport(port, p, delay, p.get_extension<PcieAttr>());  // a library call: read once
}

}  // namespace iommusim
