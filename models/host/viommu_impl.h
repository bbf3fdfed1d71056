// Internals the vIOMMU's sources share (viommu.cpp, viommu_spapr.cpp); not an interface.
#pragma once
#include <memory>
#include <string>

#include "viommu.h"

namespace iommusim::viommu_detail {

constexpr Addr kGiB = Addr(1) << 30;

// "1 GiB", "64 KiB", else hexadecimal bytes: sizes in error messages.
std::string size_text(Addr v);

inline Addr page_round(Addr v, Addr page) {
    return (v + page - 1) & ~(page - 1);
}

// Whole nanoseconds (rounded) from a to b: the unit of the cost histograms.
inline Tick ns_between(Tick a, Tick b) {
    return (b - a + kTicksPerNs / 2) / kTicksPerNs;
}

// Path 2 (viommu_spapr.cpp): places the guest's windows on the host (or fails with `why`)
// and builds the model.
std::unique_ptr<Viommu> make_spapr(const ViommuParams& p, const ViommuHost& host, StatGroup& stats,
                                   std::string* why);

}  // namespace iommusim::viommu_detail
