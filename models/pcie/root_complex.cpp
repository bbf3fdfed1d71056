#include "root_complex.h"

namespace iommusim {

RootComplex::RootComplex(sc_core::sc_module_name name, const RootComplexParams& p, StatGroup& stats)
    : PortFanIn(name, "root_port", "host", p.latency_ns, stats) {}

}  // namespace iommusim
