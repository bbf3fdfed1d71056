#include "types.h"

#include <fmt/format.h>

#include "translation.h"

namespace iommusim {

std::string to_string(const Requester& r) {
    std::string s = fmt::format("{:02x}:{:02x}.{:x}", r.bus(), r.dev(), r.fn());
    if (r.has_pasid()) s += fmt::format("/pasid {:#x}{}", r.pasid, r.priv ? " priv" : "");
    return s;
}

const char* to_string(Access a) {
    switch (a) {
        case Access::Read: return "read";
        case Access::Write: return "write";
        case Access::ReadWrite: return "atomic";
    }
    return "?";
}

std::string perm_string(Perm p) {
    return {p & kPermR ? 'r' : '-', p & kPermW ? 'w' : '-', p & kPermX ? 'x' : '-'};
}

const char* to_string(FaultKind k) {
    switch (k) {
        case FaultKind::None: return "none";
        case FaultKind::TableAccess: return "table-access";
        case FaultKind::NotPresent: return "not-present";
        case FaultKind::ReservedBit: return "reserved-bit";
        case FaultKind::InvalidEntry: return "invalid-entry";
        case FaultKind::AddressRange: return "address-range";
        case FaultKind::Permission: return "permission";
        case FaultKind::Blocked: return "blocked";
    }
    return "?";
}

}  // namespace iommusim
