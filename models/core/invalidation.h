// Arch-neutral scope of one invalidation: what a driver asks a translation unit to forget.
// VT-d descriptors, TCE kills and (later) SMMU commands all map onto it.
#pragma once
#include <cstdint>
#include <string>

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
    // Wildcards for scopes that name every domain or every PASID (VT-d global PASID-cache
    // invalidation, domain-selective PASID-cache invalidation).
    static constexpr uint32_t kAllDomains = 0xFFFFFFFFu;
    static constexpr uint32_t kAllPasids = 0xFFFFFFFEu;  // distinct from Requester::kNoPasid
    static constexpr uint8_t kWholeSpace = 52;           // order covering all 64-bit addresses

    Kind kind = Kind::Global;
    uint32_t domain = 0;
    uint32_t pasid = Requester::kNoPasid;
    uint16_t rid = 0;
    Addr addr = 0;
    uint8_t order = 0;        // address mask: 2^order 4 KiB pages
    bool leaf_only = false;   // VT-d IH: paging-structure caches may be kept
    uint16_t rid_ignore = 0;  // RID bits not compared (VT-d context-cache function mask)
    bool global = false;      // device TLB: every PASID's global entries too (VT-d G)

    // 0 when the range is the whole 64-bit space.
    // A `kind` scope for `domain` whose 2^order pages at `addr` are the smallest naturally
    // aligned block covering [iova, iova + size) (VT-d's address mask, a TCE kill range).
    static InvalidationScope covering(Kind kind, uint32_t domain, Addr iova, Addr size) {
        InvalidationScope s;
        s.kind = kind;
        s.domain = domain;
        const Addr first = iova >> 12, last = (iova + (size ? size - 1 : 0)) >> 12;
        while (s.order < kWholeSpace && (first >> s.order) != (last >> s.order)) ++s.order;
        s.addr = s.order >= kWholeSpace ? 0 : (first >> s.order) << (12 + s.order);
        return s;
    }

    Addr bytes() const { return order >= kWholeSpace ? 0 : Addr(4096) << order; }
    bool covers(Addr a) const { return order >= kWholeSpace || (a >= addr && a - addr < bytes()); }
    // True if the range overlaps the 2^page_shift-byte page containing `a`.
    bool overlaps(Addr a, unsigned page_shift) const {
        if (order >= kWholeSpace || page_shift >= 64) return true;
        const Addr mask = (Addr(1) << page_shift) - 1, page = a & ~mask;
        return addr <= page + mask && page <= addr + (bytes() - 1);
    }
    bool matches_rid(uint16_t r) const { return ((r ^ rid) & ~rid_ignore & 0xFFFF) == 0; }
    bool matches_domain(uint32_t d) const { return domain == kAllDomains || domain == d; }
    bool matches_pasid(uint32_t p) const { return pasid == kAllPasids || pasid == p; }
};

const char* to_string(InvalidationScope::Kind k);
std::string to_string(const InvalidationScope& s);  // "page dom 4 0xfffdf000+0x1000 ih"

}  // namespace iommusim
