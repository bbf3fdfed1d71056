// Parameters of a function's ATS/PRI agent (ats_agent.h), plain C++ so that device parameter
// structs can hold them.
#pragma once
#include <cstdint>
#include <string>

namespace iommusim {

struct AtsParams {
    bool enable = false;             // ATS Control: Enable
    uint32_t atc_entries = 64;       // ATC capacity
    uint32_t atc_ways = 0;           // 0: fully associative
    bool pri = false;                // Page Request Control: Enable (requests with a PASID)
    uint32_t outstanding = 32;       // Outstanding Page Request Allocation
    uint32_t pri_attempts = 1;       // page requests for one access before it fails
    uint64_t invalidation_ns = 100;  // Invalidation Request in -> Completion out (idle ATC)

    // v(name, field, unit, doc, min, max), names as keys under the device (`ats`, `ats.*`).
    template <typename V>
    void visit(V&& v) {
        v("ats", enable, "", "ATS enabled: DMAs use the function's ATC and translated requests", 0,
          1);
        v("ats.atc_entries", atc_entries, "entries", "ATC entries", 1, 1 << 20);
        v("ats.atc_ways", atc_ways, "ways", "ATC associativity; 0 = fully associative", 0, 1 << 20);
        v("ats.pri", pri, "",
          "PRI enabled: a translation without the rights for a request with a PASID sends a page "
          "request and retries",
          0, 1);
        v("ats.outstanding", outstanding, "requests",
          "PRI Outstanding Page Request Allocation (page requests in flight)", 1, 1 << 20);
        v("ats.pri_attempts", pri_attempts, "requests",
          "page requests for one access before it fails (each Success response is followed by "
          "a retried translation)",
          1, 1000);
        v("ats.invalidation_ns", invalidation_ns, "ns",
          "ATC invalidation request arrival until its completion leaves (ATC search and "
          "completion message, in-flight uses aside)",
          0, uint64_t(1) << 40);
    }
    // Empty when usable; otherwise what is wrong.
    std::string check() const;
};

inline std::string AtsParams::check() const {
    if (atc_entries == 0) return "ats.atc_entries must be at least 1";
    if (atc_ways && atc_entries % atc_ways)
        return "ats.atc_entries (" + std::to_string(atc_entries) +
               ") is not a multiple of ats.atc_ways (" + std::to_string(atc_ways) + ")";
    if (outstanding == 0) return "ats.outstanding must be at least 1";
    return "";
}

}  // namespace iommusim
