// The VT-d host's SVA software as a platform runs it: process address spaces (sva::Process,
// first-level domains, or nested ones for processes in a guest) bound to devices' PASIDs, and
// the page request service (sva::PrqService) driven in simulated time: the unit's page
// request interrupt wakes a thread that runs the service's steps at their own times. Every
// page request the unit takes is noted in the service's ledger; defects() lists the requests
// never answered (docs/sva.md).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <systemc>
#include <vector>

#include "core/sva_space.h"
#include "host/prq_service.h"
#include "host/sva_process.h"
#include "vtd_iommu.h"

namespace iommusim {

class VtdSvaHost : public sc_core::sc_module {
public:
    // `p.prq_base` and `p.status_addr` must be set. The service's statistics go to `stats`.
    VtdSvaHost(sc_core::sc_module_name name, vtd::Driver& drv, VtdIommu& iommu, SparseMemory& store,
               vtd::InvQueueWriter& iq, VtdQueueFeeder& feeder, const sva::PrqParams& p,
               StatGroup& stats);
    ~VtdSvaHost() override;

    // The process address spaces of the device `rid`; their frames (host-physical; a guest's
    // RAM for processes in a guest) come from `alloc`. Owned by this host.
    SvaSpaces* spaces(uint16_t rid, std::function<Addr(uint64_t)> alloc);
    // intel_iommu_enable_prq, once the unit's queued invalidation is on.
    Tick enable(Tick at) { return svc_.enable(at); }
    // One line per page request never answered, and the ledger's imbalance if any.
    std::vector<std::string> defects() const;
    sva::PrqService& service() { return svc_; }
    sva::ProcessTable& processes() { return procs_; }

private:
    class Spaces;
    void run();
    // Requests the handler has read since the last look: their wait in the PRQ.
    void note_reads();

    vtd::Driver& drv_;
    sva::ProcessTable procs_;
    sva::PrqService svc_;
    std::vector<std::unique_ptr<Spaces>> spaces_;
    std::vector<Tick> irqs_;  // page request interrupts not yet given to the service
    Histogram& read_wait_;
    uint64_t read_seq_ = 0;  // ledger order of the last request whose read was noted, + 1
    sc_core::sc_event kick_;
};

}  // namespace iommusim
