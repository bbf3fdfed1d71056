#include "invalidation.h"

#include <fmt/format.h>

namespace iommusim {

const char* to_string(InvalidationScope::Kind k) {
    using K = InvalidationScope::Kind;
    switch (k) {
        case K::Global: return "global";
        case K::Domain: return "domain";
        case K::Page: return "page";
        case K::Pasid: return "pasid";
        case K::PasidPage: return "pasid-page";
        case K::ContextGlobal: return "context-global";
        case K::ContextDomain: return "context-domain";
        case K::ContextDevice: return "context-device";
        case K::PasidCache: return "pasid-cache";
        case K::DeviceTlb: return "device-tlb";
        case K::Wait: return "wait";
    }
    return "?";
}

std::string to_string(const InvalidationScope& s) {
    using K = InvalidationScope::Kind;
    std::string out = to_string(s.kind);
    auto num = [](uint32_t v, uint32_t all) {
        return v == all ? std::string("*") : fmt::format("{}", v);
    };
    switch (s.kind) {
        case K::Global:
        case K::ContextGlobal:
        case K::Wait: return out;
        case K::ContextDevice:
            out += fmt::format(" rid {:#06x}", s.rid);
            if (s.rid_ignore) out += fmt::format("/~{:#x}", s.rid_ignore);
            [[fallthrough]];
        case K::Domain:
        case K::ContextDomain: return out + " dom " + num(s.domain, InvalidationScope::kAllDomains);
        case K::Pasid:
        case K::PasidCache:
            return out + " dom " + num(s.domain, InvalidationScope::kAllDomains) + " pasid " +
                   num(s.pasid, InvalidationScope::kAllPasids);
        case K::Page:
        case K::PasidPage:
        case K::DeviceTlb: break;
    }
    if (s.kind == K::DeviceTlb)
        out += fmt::format(" rid {:#06x}", s.rid);
    else
        out += " dom " + num(s.domain, InvalidationScope::kAllDomains);
    if (s.pasid != Requester::kNoPasid)
        out += " pasid " + num(s.pasid, InvalidationScope::kAllPasids);
    if (s.order >= InvalidationScope::kWholeSpace)
        out += " all";
    else
        out += fmt::format(" {:#x}+{:#x}", s.addr, s.bytes());
    if (s.leaf_only) out += " ih";
    if (s.global) out += " g";
    return out;
}

}  // namespace iommusim
