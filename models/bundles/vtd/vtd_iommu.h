// A VT-d remapping hardware unit: the arch-neutral IommuUnit driven by a VT-d walker, with
// the VT-d register file on `mmio`. Queued and register-based invalidations reach the unit's
// caches, faults are written to the fault recording registers, SRTP/TE take effect on the
// walker and the translation switch. ATS and PRI: translation and translated requests are
// allowed when the context entry says so (legacy TT = 01b, scalable-mode DTE), page requests
// are checked against the context entry (PRE) and written to the page request queue, with the
// automatic responses of a full queue sent back; device-TLB invalidation descriptors and page
// group responses reach the functions the platform attached to the unit.
#pragma once
#include <tlm_utils/simple_target_socket.h>
#include <functional>
#include <memory>
#include <optional>
#include <systemc>
#include <tlm>

#include "arch/vtd/vtd_regfile.h"
#include "arch/vtd/vtd_walker.h"
#include "core/sparse_memory.h"
#include "core/unit_access.h"
#include "iommu/iommu_unit.h"

namespace iommusim {

class VtdIommu : public sc_core::sc_module, public RegisterAccess, private vtd::RegFileHooks {
public:
    tlm_utils::simple_target_socket_optional<VtdIommu> mmio;  // unbound: registers set directly

    // `hw` gives the capabilities the walker obeys; RTADDR and the mode come from SRTP.
    VtdIommu(sc_core::sc_module_name name, const vtd::RegFileConfig& regs,
             const vtd::WalkerConfig& hw, const UnitParams& p, StatGroup& stats,
             const vtd::RegFileParams& rp = {});
    ~VtdIommu() override;

    IommuUnit& unit() { return *unit_; }
    const vtd::RegisterFile& regs() const { return *regs_; }
    // Register access for software models that program the unit directly (same effects as
    // through `mmio`): returns when the write's work is done.
    uint64_t mmio_read(uint32_t offset, unsigned size) override {
        return regs_->read(offset, size);
    }
    Tick mmio_write(uint32_t offset, unsigned size, uint64_t value, Tick at) override;
    // Software models (a host driver's interrupt handler): every interrupt message the unit
    // sends, at the time it leaves.
    using InterruptHook = std::function<void(vtd::Interrupt, Tick)>;
    void on_interrupt(InterruptHook hook) { interrupt_hook_ = std::move(hook); }
    // Every page request the unit took from a function, with what the register file did with
    // it (the host's page request service follows each one until it is answered).
    using PageRequestHook =
        std::function<void(const vtd::PageRequest&, const vtd::PageRequestResult&)>;
    void on_page_request(PageRequestHook hook) { page_request_hook_ = std::move(hook); }

private:
    Tick invalidate(const InvalidationScope& s, Tick at) override;
    Tick device_tlb(const InvalidationScope& s, Tick at) override;
    Tick page_response(const vtd::PageGroupResponse& r, Tick at) override;
    void interrupt(vtd::Interrupt i, Tick at) override;
    void mmio_b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    // The requester's context entry as memory holds it now (a functional read standing in
    // for the context cache): the ATS and PRI bits. nullopt: not present or unreadable.
    struct AtsBits {
        bool ats = false, pri = false, pasid = false;
    };
    std::optional<AtsBits> ats_bits(uint16_t rid);
    bool ats_check(const Requester& r, Addr a, Access acc, PcieAttr::At at, Tick t);
    void page_request(const ats::PageRequest& pr, Tick at);
    void auto_response(const ats::PageRequest& pr, ats::ResponseCode code, Tick at);
    void sync_state();

    vtd::WalkerConfig hw_;
    vtd::VtdWalker walker_;
    std::unique_ptr<IommuUnit> unit_;
    std::unique_ptr<vtd::RegisterFile> regs_;
    InterruptHook interrupt_hook_;
    PageRequestHook page_request_hook_;
    Counter *device_tlb_invs_, *page_responses_, *interrupts_, *mmio_errors_;
    Counter *pr_refused_, *pr_auto_responses_;
};

namespace vtd {
// What Linux's intel-iommu does when it enables ATS (and PRI) on a function: legacy mode sets
// the context entry's TT to 01b (device-TLB), scalable mode sets DTE (and PRE), in the tables
// at hw.rtaddr. Before the unit caches the context (or followed by a context-cache
// invalidation). No present context entry: nothing changes.
void enable_device_tlb(SparseMemory& store, const WalkerConfig& hw, uint16_t rid, bool pri);
}  // namespace vtd

}  // namespace iommusim
