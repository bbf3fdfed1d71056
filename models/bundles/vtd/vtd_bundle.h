// The Intel VT-d architecture: its bundle registers itself (vtd_bundle.cpp); `lookup`.
#pragma once
#include "bundles/lookup.h"

namespace iommusim::vtd_lookup {
const std::vector<LookupOption>& options();
int run(const LookupRequest& r);
int demo();
}  // namespace iommusim::vtd_lookup
