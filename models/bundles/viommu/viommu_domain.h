// A device assigned to a guest that has an IOMMU of its own (docs/viommu.md): its domain on
// the host unit wrapped so that the guest's driver maps (boot-time rings and buffers, and
// the per-I/O DMA API) go through the vIOMMU model of the configured path.
#pragma once
#include <memory>
#include <string>

#include "bundles/bundle.h"
#include "host/viommu.h"

namespace iommusim {

// `host` wrapped by a vIOMMU with parameters `p` and statistics in `stats`
// (system.<device>.viommu); null and `why` when the host's architecture or configuration
// cannot take that guest.
std::unique_ptr<DeviceDomain> attach_viommu(std::unique_ptr<DeviceDomain> host,
                                            const ViommuParams& p, StatGroup& stats,
                                            std::string* why);

}  // namespace iommusim
