// A root complex: Root Ports (bind `root_port` once per port; the binding index is the port
// number) fanning into `host`, toward the IOMMU and memory. Each traversal adds the root-port
// latency. A system may hold several root complexes, each with its own statistics group.
// Routing, ACS Source Validation and statistics: port_fan_in.h.
#pragma once
#include "port_fan_in.h"

namespace iommusim {

struct RootComplexParams {
    uint32_t latency_ns = 50;  // Root Port to the host fabric

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("latency_ns", latency_ns, "ns", "one traversal, Root Port to the host side or back", 0,
          1000000);
    }
};

class RootComplex : public PortFanIn {
public:
    Ports& root_port = ports_;
    Upstream& host = upstream_;

    RootComplex(sc_core::sc_module_name name, const RootComplexParams& p, StatGroup& stats);
};

}  // namespace iommusim
