#include "port_fan_in.h"

#include <fmt/format.h>

namespace iommusim {

PortFanIn::PortFanIn(sc_core::sc_module_name name, const char* ports_name,
                     const char* upstream_name, uint32_t latency_ns, StatGroup& stats)
    : sc_module(name),
      ports_(ports_name, this),
      upstream_(upstream_name),
      latency_(to_sc_time(Tick(latency_ns) * kTicksPerNs)),
      stats_(stats) {
    if (sc_core::sc_get_time_resolution() != sc_core::sc_time(1, sc_core::SC_PS))
        SC_REPORT_FATAL(basename(), "iommusim needs a time resolution of 1 ps");
}

void PortFanIn::set_bus_range(unsigned port, uint8_t secondary, uint8_t subordinate,
                              bool source_validation) {
    if (port >= port_.size()) port_.resize(port + 1);
    port_[port].secondary = secondary;
    port_[port].subordinate = subordinate;
    port_[port].validate = source_validation;
}

// The number of ports is known once binding is done; statistics are registered in port order
// so output order does not depend on traffic.
void PortFanIn::end_of_elaboration() {
    const unsigned n = ports_.size();
    if (port_.size() > n)
        SC_REPORT_ERROR(name(), fmt::format("a bus range was set for port {} but only {} ports "
                                            "are bound",
                                            port_.size() - 1, n)
                                    .c_str());
    port_.resize(n);
    for (unsigned i = 0; i < n; ++i) {
        StatGroup& g = stats_.child(fmt::format("port{}", i));
        port_[i].requests = &g.counter("requests", "requests received on the port");
        port_[i].payload_bytes = &g.counter("payload_bytes", "data bytes of those requests");
        port_[i].violations = &g.counter(
            "acs_violations", "requests from outside the port's bus range (Completer Abort)");
    }
}

PortFanIn* PortFanIn::behind(tlm::tlm_fw_transport_if<>* fw, int& port) {
    const sc_core::sc_object* socket = direct_socket_of(fw);
    auto* fan_in = socket ? dynamic_cast<PortFanIn*>(socket->get_parent_object()) : nullptr;
    if (!fan_in || socket != &fan_in->ports_) return nullptr;
    port = fan_in->ports_.index_of(fw);
    return port < 0 ? nullptr : fan_in;
}

unsigned int PortFanIn::transport_dbg(int, tlm::tlm_generic_payload& p) {
    return upstream_->transport_dbg(p);
}

}  // namespace iommusim
