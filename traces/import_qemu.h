// Importer of a QEMU run with an emulated Intel VT-d: QEMU's `log` trace backend output
// ("PID@SECONDS:event args") of the vtd_* events (and pci_nvme_*), joined with the guest's
// ftrace of iommu:map / iommu:unmap. Specification: docs/traces.md, "Importers".
#pragma once
#include <string>

#include "traces/import_report.h"

namespace iommusim::trace {

// Writes, on QEMU's timeline in ns from the log's first event:
//   dma   per vtd_dmar_translate (full IOVA from the preceding IOTLB event, pa = the GPA; size
//         and direction where pci_nvme_* events or the leaf entry tell them, else ? / ?);
//   inval per vtd_inv_desc that invalidates a translation cache (decoded descriptor);
//   fault per vtd_dmar_fault;
//   map / unmap per guest iommu:map / iommu:unmap, placed so that every translation falls
//         inside a mapping live at its time, with the requester and domain of the translations
//         through it (or of the invalidation that anchored it).
// `guest_ftrace` may be empty: then no map/unmap records are written.
ImportReport import_qemu_vtd(const std::string& qemu_log, const std::string& guest_ftrace,
                             Writer& out);
ImportReport import_qemu_vtd(const std::string& qemu_log, const std::string& guest_ftrace,
                             const RecordSink& sink);

}  // namespace iommusim::trace
