// The SystemC shell of one IOMMU translation unit: untranslated DMA arrives on `upstream`
// (with a PcieAttr extension), is translated by the TranslationUnit, and leaves on
// `downstream` with the translation latency added to the delay; translation-structure reads
// go out on `walk`. A faulting DMA returns an error response (the PCIe completer's UR/CA) and
// the simulation carries on.
//
// ATS (core/ats.h): a Translation Request (AT = 01b) is translated as usual and answered with
// a translation completion in its 8 data bytes, without a memory access; a Translated request
// (AT = 10b) skips the walk and goes to memory as it is, if the architecture's check lets the
// function use ATS. Functions the platform attaches receive ATC invalidation requests and PRG
// responses over their ats::Path; their page requests go to the architecture's hook.
#pragma once
#include <tlm_utils/simple_initiator_socket.h>
#include <functional>
#include <memory>
#include <string>
#include <systemc>
#include <tlm>
#include <unordered_map>

#include "core/ats.h"
#include "core/direct_target_socket.h"
#include "core/pcie_ext.h"
#include "translation_unit.h"

namespace iommusim {

class IommuUnit : public sc_core::sc_module, private ats::Host {
    void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    unsigned int transport_dbg(tlm::tlm_generic_payload& p);

public:
    // Every DMA passes here: the socket calls b_transport directly (direct_target_socket.h).
    DirectTargetSocket<IommuUnit, &IommuUnit::b_transport, &IommuUnit::transport_dbg> upstream;
    tlm_utils::simple_initiator_socket<IommuUnit> downstream;
    tlm_utils::simple_initiator_socket<IommuUnit> walk;

    // Called for every fault (the architecture's fault recording hangs here).
    using FaultHook = std::function<void(const Fault&, const Requester&, Addr iova, Access, Tick)>;
    // Called for every translation of a DMA (faults included), with its arrival time: how a
    // checker (trace replay) sees what the unit answered, without touching the payload.
    using TranslateHook =
        std::function<void(const Requester&, Addr iova, Tick arrival, const TranslateOutcome&)>;

    // The architecture's side of ATS: may `req` send a Translation Request or a Translated
    // request (its AT field `at`)? When not, the hook records the architecture's fault itself
    // and the request gets UR.
    using AtsCheck = std::function<bool(const Requester&, Addr, Access, PcieAttr::At, Tick)>;
    // A Page Request message that arrived at the unit at `at`.
    using PageRequestHook = std::function<void(const ats::PageRequest&, Tick at)>;
    // The host enables ATS (and PRI) for a function the platform attaches (its driver sets
    // the architecture's table bits).
    using AttachHook = std::function<void(const Requester&, bool pri)>;

    IommuUnit(sc_core::sc_module_name name, const UnitParams& p, Walker& walker, StatGroup& stats);
    ~IommuUnit() override;

    // b_transport with the PCIe attributes already read (null: none). A region router bound
    // straight to the unit calls it, so that a DMA's attributes are looked up once.
    void transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay, const PcieAttr* attr);
    // The unit whose `upstream` provides `fw`, or null (another target, or one in between).
    static IommuUnit* behind(tlm::tlm_fw_transport_if<>* fw);

    TranslationUnit& engine() { return *engine_; }
    void on_fault(FaultHook hook) { fault_hook_ = std::move(hook); }
    // During a fault hook call: the AT field of the faulting request (a Translation Request's
    // fault is recorded as such).
    PcieAttr::At fault_at() const { return fault_at_; }
    void on_translate(TranslateHook hook) { translate_hook_ = std::move(hook); }
    void on_ats_check(AtsCheck hook) { ats_check_ = std::move(hook); }
    // The architecture answers ATS (it set an ATS check).
    bool ats_supported() const { return bool(ats_check_); }
    void on_page_request(PageRequestHook hook) { page_request_hook_ = std::move(hook); }
    void on_attach_function(AttachHook hook) { attach_hook_ = std::move(hook); }

    // ---- ATS/PRI functions below this unit ----
    // Attach function `f` (one per RID), reached over `path`; `pri`: its PRI is enabled too.
    void attach_function(ats::Function& f, ats::Path path, bool pri);
    // Send an ATC invalidation (scope.kind == DeviceTlb) to the function of scope.rid; returns
    // when its completion reaches the unit, kNever when the function never answers. No
    // function attached at that RID: done at once (counted).
    Tick invalidate_atc(const InvalidationScope& scope, Tick at);
    // Send a PRG response (to r.req.rid) leaving the unit at `at`.
    void send_page_response(const ats::PrgResponse& r, Tick at);
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
    void end_of_elaboration() override;
    void end_of_simulation() override;
    void translation_request(tlm::tlm_generic_payload& p, const PcieAttr& attr,
                             sc_core::sc_time& delay);
    void translated(tlm::tlm_generic_payload& p, const PcieAttr& attr, sc_core::sc_time& delay);
    void page_request(const ats::PageRequest& pr, Tick sent) override;

    Walker& walker_;
    // downstream's blocking interface, once bound: every DMA goes on through it, and the
    // port would reach it through two dependent loads (the interface, its virtual base).
    tlm::tlm_blocking_transport_if<>* down_ = nullptr;
    std::unique_ptr<WalkPort> port_;
    std::unique_ptr<TranslationUnit> engine_;
    FaultHook fault_hook_;
    TranslateHook translate_hook_;
    AtsCheck ats_check_;
    PageRequestHook page_request_hook_;
    AttachHook attach_hook_;
    struct Attached {
        ats::Function* f;
        ats::Path path;
    };
    std::unordered_map<uint16_t, Attached> functions_;
    uint8_t itag_ = 0;
    PcieAttr::At fault_at_ = PcieAttr::At::Untranslated;
    bool enabled_ = true;
    std::string stale_report_;
    Counter* passthrough_;
    Counter* split_;
    Counter* untranslated_missing_;
    Counter *tr_requests_, *tr_faults_, *tr_no_access_, *translated_, *translated_rejected_,
        *inv_sent_, *inv_completed_, *inv_unanswered_, *inv_no_function_, *page_requests_,
        *page_requests_unknown_, *prg_responses_, *prg_responses_dropped_;
};

}  // namespace iommusim
