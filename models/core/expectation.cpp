#include "expectation.h"

#include <fmt/format.h>

namespace iommusim {

std::string check_translation(const WalkResult& r, const Expectation& e, Access access, bool exec) {
    const bool allowed = e.mapped && permits(e.perm, perm_needed(access, exec));
    if (allowed && !r.ok())
        return fmt::format("expected {:#x} ({}), got fault {} reason {:#x}", e.pa,
                           perm_string(e.perm), to_string(r.fault.kind), r.fault.reason);
    if (!allowed && r.ok())
        return fmt::format("expected a fault ({}), got {:#x} ({})",
                           e.mapped ? "access not permitted" : "unmapped", r.tr.out,
                           perm_string(r.tr.perm));
    if (allowed && r.tr.out != e.pa)
        return fmt::format("expected {:#x}, got {:#x}", e.pa, r.tr.out);
    return {};
}

}  // namespace iommusim
