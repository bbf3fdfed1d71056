// A PCIe switch: Downstream Ports (bind `downstream_port` once per port; the binding index is
// the port number) fanning into the Upstream Port. Each traversal adds the switch latency;
// links on either side model the bandwidth. Routing, ACS and statistics: port_fan_in.h.
#pragma once
#include "port_fan_in.h"

namespace iommusim {

struct PcieSwitchParams {
    uint32_t latency_ns = 110;  // cut-through switches are quoted at about 100-150 ns

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("latency_ns", latency_ns, "ns",
          "one traversal, Downstream Port to Upstream Port or back (cut-through)", 0, 1000000);
    }
};

class PcieSwitch : public PortFanIn {
public:
    Ports& downstream_port = ports_;
    Upstream& upstream_port = upstream_;

    PcieSwitch(sc_core::sc_module_name name, const PcieSwitchParams& p, StatGroup& stats);
};

}  // namespace iommusim
