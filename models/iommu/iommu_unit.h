// The SystemC shell of one IOMMU translation unit: untranslated DMA arrives on `upstream`
// (with a PcieAttr extension), is translated by the TranslationUnit, and leaves on
// `downstream` with the translation latency added to the delay; translation-structure reads
// go out on `walk`. A faulting DMA returns an error response (the PCIe completer's UR/CA) and
// the simulation carries on.
#pragma once
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <functional>
#include <memory>
#include <string>
#include <systemc>
#include <tlm>

#include "core/pcie_ext.h"
#include "translation_unit.h"

namespace iommusim {

class IommuUnit : public sc_core::sc_module {
public:
    tlm_utils::simple_target_socket<IommuUnit> upstream;
    tlm_utils::simple_initiator_socket<IommuUnit> downstream;
    tlm_utils::simple_initiator_socket<IommuUnit> walk;

    // Called for every fault (the architecture's fault recording hangs here).
    using FaultHook = std::function<void(const Fault&, const Requester&, Addr iova, Access, Tick)>;
    // Called for every translation of a DMA (faults included), with its arrival time: how a
    // checker (trace replay) sees what the unit answered, without touching the payload.
    using TranslateHook =
        std::function<void(const Requester&, Addr iova, Tick arrival, const TranslateOutcome&)>;

    IommuUnit(sc_core::sc_module_name name, const UnitParams& p, Walker& walker, StatGroup& stats);
    ~IommuUnit() override;

    TranslationUnit& engine() { return *engine_; }
    void on_fault(FaultHook hook) { fault_hook_ = std::move(hook); }
    void on_translate(TranslateHook hook) { translate_hook_ = std::move(hook); }
    // With translation disabled (e.g. VT-d GSTS.TES clear) DMA passes through untranslated.
    void set_translation_enabled(bool on) { enabled_ = on; }
    bool translation_enabled() const { return enabled_; }
    // Untimed memory access through the walk socket (for register-file queues and tests).
    MemoryPort& walk_port();
    // Checking mode: at the end of the simulation write the stale hits (format_stale_hits) to
    // `path`. Errors writing it are reported as SystemC errors naming the file.
    void set_stale_report(std::string path) { stale_report_ = std::move(path); }

private:
    class WalkPort;
    void end_of_simulation() override;
    void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    unsigned int transport_dbg(tlm::tlm_generic_payload& p);

    Walker& walker_;
    std::unique_ptr<WalkPort> port_;
    std::unique_ptr<TranslationUnit> engine_;
    FaultHook fault_hook_;
    TranslateHook translate_hook_;
    bool enabled_ = true;
    std::string stale_report_;
    Counter* passthrough_;
    Counter* split_;
    Counter* untranslated_missing_;
};

}  // namespace iommusim
