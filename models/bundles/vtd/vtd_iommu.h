// A VT-d remapping hardware unit: the arch-neutral IommuUnit driven by a VT-d walker, with
// the VT-d register file on `mmio`. Queued and register-based invalidations reach the unit's
// caches, faults are written to the fault recording registers, SRTP/TE take effect on the
// walker and the translation switch.
#pragma once
#include <tlm_utils/simple_target_socket.h>
#include <memory>
#include <systemc>
#include <tlm>

#include "arch/vtd/vtd_regfile.h"
#include "arch/vtd/vtd_walker.h"
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

private:
    Tick invalidate(const InvalidationScope& s, Tick at) override;
    Tick device_tlb(const InvalidationScope& s, Tick at) override;
    Tick page_response(const vtd::PageGroupResponse& r, Tick at) override;
    void interrupt(vtd::Interrupt i, Tick at) override;
    void mmio_b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    void sync_state();

    vtd::WalkerConfig hw_;
    vtd::VtdWalker walker_;
    std::unique_ptr<IommuUnit> unit_;
    std::unique_ptr<vtd::RegisterFile> regs_;
    Counter *device_tlb_invs_, *page_responses_, *interrupts_, *mmio_errors_;
};

}  // namespace iommusim
