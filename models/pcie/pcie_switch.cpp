#include "pcie_switch.h"

namespace iommusim {

PcieSwitch::PcieSwitch(sc_core::sc_module_name name, const PcieSwitchParams& p, StatGroup& stats)
    : PortFanIn(name, "downstream_port", "upstream_port", p.latency_ns, stats) {}

}  // namespace iommusim
