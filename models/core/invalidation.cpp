#include "invalidation.h"

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

}  // namespace iommusim
