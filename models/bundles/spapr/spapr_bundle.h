// The POWER sPAPR architecture: its bundle registers itself (spapr_bundle.cpp); `lookup`.
#pragma once
#include "bundles/lookup.h"

namespace iommusim::spapr_lookup {
const std::vector<LookupOption>& options();
int run(const LookupRequest& r);
int demo();
}  // namespace iommusim::spapr_lookup
