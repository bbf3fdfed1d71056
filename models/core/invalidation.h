// Arch-neutral scope of one invalidation: what a driver asks a translation unit to forget.
// VT-d descriptors, TCE kills and (later) SMMU commands all map onto it.
#pragma once
#include <cstdint>

#include "types.h"

namespace iommusim {

struct InvalidationScope {
    enum class Kind : uint8_t {
        Global,         // every cached translation
        Domain,         // all translations of `domain`
        Page,           // `domain`, 2^order pages of 4 KiB at `addr`
        Pasid,          // all translations of (`domain`, `pasid`)
        PasidPage,      // (`domain`, `pasid`), 2^order pages at `addr`
        ContextGlobal,  // every cached device context
        ContextDomain,  // device contexts of `domain`
        ContextDevice,  // the device context of `rid`
        PasidCache,     // cached PASID entries of (`domain`, `pasid`)
        DeviceTlb,      // the ATC of `rid`: 2^order pages at `addr`
        Wait,           // completion barrier: everything before it is done
    };
    Kind kind = Kind::Global;
    uint32_t domain = 0;
    uint32_t pasid = Requester::kNoPasid;
    uint16_t rid = 0;
    Addr addr = 0;
    uint8_t order = 0;       // address mask: 2^order 4 KiB pages
    bool leaf_only = false;  // VT-d IH: paging-structure caches may be kept

    Addr bytes() const { return Addr(4096) << order; }
    bool covers(Addr a) const { return a >= addr && a - addr < bytes(); }
};

const char* to_string(InvalidationScope::Kind k);

}  // namespace iommusim
