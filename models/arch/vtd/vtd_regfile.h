// The register file of one VT-d remapping unit (specification chapter 11) as plain C++: MMIO
// reads and writes by offset with the architecture's side effects, the queued-invalidation
// engine (6.5.2), primary fault logging (7.2, 7.3) and the page request queue (7.4, 7.5).
// Register state changes at once; every operation returns the Tick at which the hardware
// would have finished it, computed from the memory port's latencies and the unit's clock.
// Guest-controlled input (register values, descriptors, queue pointers) never aborts: it
// ends in the status the specification defines (IQE with IQEI, CAIG/IAIG = 0, PFO, PRO).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/command_ring.h"
#include "core/invalidation.h"
#include "core/log.h"
#include "core/memory_port.h"
#include "core/time.h"
#include "core/translation.h"
#include "vtd_invdesc.h"
#include "vtd_regs.h"
#include "vtd_walker.h"

namespace iommusim::vtd {

// What the unit reports about itself: VER, CAP and ECAP.
struct RegFileConfig {
    uint32_t ver = make_ver(1, 0);
    Cap cap;
    Ecap ecap;

    // A scalable-mode capable unit with queued invalidation, device-TLBs, PASID and page
    // requests: 8 fault recording registers at 0x400, IVA/IOTLB at 0x500.
    static RegFileConfig scalable_unit();
    // Why CAP.FRO/NFR or ECAP.IRO place registers over each other, or "" if they do not.
    std::string layout_error() const;
};

// Timing of the register file's own work, in cycles of the unit's clock.
struct RegFileParams {
    uint64_t clock_mhz = 1000;
    uint32_t desc_cycles = 4;               // decode and dispatch of a descriptor after its fetch
    uint32_t command_cycles = 10;           // a GCMD command until GSTS reflects it
    uint32_t reg_inv_cycles = 4;            // decode of a CCMD/IOTLB_REG invalidation request
    uint32_t fault_record_cycles = 2;       // writing a fault recording register
    uint32_t page_request_cycles = 2;       // accepting a page request before its descriptor write
    uint64_t devtlb_timeout_us = 60000000;  // no ATS invalidation completion by then: ITE
    bool collapse_faults = false;           // 7.2.1: drop faults of a SID with a pending record

    Clock clock() const { return Clock::from_mhz(clock_mhz ? clock_mhz : 1); }

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("clock_mhz", clock_mhz, "MHz", "register file / invalidation engine clock", 1, 10000);
        v("desc_cycles", desc_cycles, "cycles", "decode and dispatch of one fetched descriptor", 0,
          100000);
        v("command_cycles", command_cycles, "cycles", "global command until GSTS reflects it", 0,
          100000);
        v("reg_inv_cycles", reg_inv_cycles, "cycles", "register-based invalidation decode", 0,
          100000);
        v("fault_record_cycles", fault_record_cycles, "cycles", "fault recording register update",
          0, 100000);
        v("page_request_cycles", page_request_cycles, "cycles",
          "page request accepted until its descriptor write starts", 0, 100000);
        v("devtlb_timeout_us", devtlb_timeout_us, "us",
          "no ATS invalidation completion after this long: ITE", 1, uint64_t(1) << 40);
        v("collapse_faults", collapse_faults, "", "record one pending fault per source-id", 0, 1);
    }
};

enum class Interrupt : uint8_t { Fault, InvalidationCompletion, PageRequest };
const char* to_string(Interrupt i);

// What the register file asks of the rest of the unit. Each call returns when its work is done.
class RegFileHooks {
public:
    virtual ~RegFileHooks() = default;
    // Context/PASID caches, IOTLB and paging-structure caches forget `scope`.
    virtual Tick invalidate(const InvalidationScope& scope, Tick at) = 0;
    // Send an ATS invalidation (scope.kind == DeviceTlb); the Tick its completion arrives, or
    // kNever when the device never answers (the unit then reports ITE).
    virtual Tick device_tlb(const InvalidationScope& scope, Tick at) = 0;
    // Forward a Page Group Response (from software's descriptor) to the device.
    virtual Tick page_response(const PageGroupResponse& resp, Tick at) = 0;
    virtual Tick interrupt_entry_cache(const IecInv&, Tick at) { return at; }
    // An interrupt message leaves the unit (FECTL/IECTL/PECTL with IM clear).
    virtual void interrupt(Interrupt, Tick) {}
};

enum class FaultLog : uint8_t {
    Recorded,    // in FRCD[index], F set
    Suppressed,  // fault processing disabled (FPD): not recorded
    Collapsed,   // a record of the same SID is pending (collapse_faults)
    Overflow,    // PFO already set, or the next record still held: PFO set, dropped
};
const char* to_string(FaultLog l);
struct FaultReport {
    FaultLog log = FaultLog::Recorded;
    unsigned index = 0;  // the fault recording register, when Recorded
    Tick done = 0;
};

struct PageRequestResult {
    enum class Outcome : uint8_t {
        Written,      // page_req_dsc at the old PQT, PQT advanced
        Full,         // the queue was full: PRO set now
        Overflow,     // PRO was already set: discarded without event
        WriteError,   // the descriptor write failed
        Unsupported,  // ECAP.PRS = 0
    };
    Outcome outcome = Outcome::Written;
    // The hardware itself must answer the device with a Page Group Response (Table 31).
    bool respond = false;
    PageResponseCode code = PageResponseCode::Success;
    Tick done = 0;
};
const char* to_string(PageRequestResult::Outcome o);

class RegisterFile {
public:
    using Params = RegFileParams;
    using Hooks = RegFileHooks;

    // cfg.layout_error() should be empty; overlapping registers shadow each other.
    RegisterFile(const RegFileConfig& cfg, MemoryPort& mem, Hooks& hooks, const Params& p = {});

    // ---- MMIO: 4- or 8-byte accesses, naturally aligned; anything else reads 0 and is
    // ignored. An 8-byte access acts as its low then its high doubleword. ----
    uint64_t read(uint32_t offset, unsigned size);
    // Returns when the side effects of the write (commands, queue processing) complete.
    Tick write(uint32_t offset, unsigned size, uint64_t value, Tick at);
    // The register window: a 4 KiB multiple covering every register.
    uint32_t mmio_bytes() const;

    // ---- Events from the translation path ----
    // A non-recoverable fault of a request to `iova` (7.2.1); f.suppressed means FPD.
    FaultReport record_fault(const Fault& f, const Requester& req, Addr iova, Access a, Tick at,
                             AddrType at_field = AddrType::Untranslated);
    FaultReport record(FaultRecord rec, Tick at);  // any prepared record (F is set here)
    // A page request message (7.4.1): written to the PRQ or refused as the spec says. The
    // caller has already walked the context (remapping-table faults, PRE) and done the
    // implicit invalidation of 6.5.3.1.
    PageRequestResult page_request(const PageRequest& pr, Tick at);

    // ---- State the rest of the unit reads ----
    const RegFileConfig& config() const { return cfg_; }
    const Params& params() const { return p_; }
    uint32_t gsts() const { return gsts_; }
    uint32_t fsts() const;
    bool translation_enabled() const { return gsts_ & gsts::TES; }
    Rtaddr root_table() const { return root_; }  // as latched by the last SRTP
    // `base` with the root table and the CAP/ECAP fields the walker obeys filled in.
    WalkerConfig walker_config(WalkerConfig base = {}) const;
    FaultRecord fault_record(unsigned index) const;
    // The descriptor behind the last IQE, for diagnostics.
    const DescError& last_queue_error() const { return last_error_; }

    struct Counters {
        std::array<uint64_t, 16> descriptors{};  // by descriptor type
        uint64_t waits = 0, status_writes = 0, queue_errors = 0, devtlb_timeouts = 0;
        uint64_t faults_recorded = 0, faults_dropped = 0, faults_suppressed = 0;
        uint64_t faults_collapsed = 0;
        uint64_t page_requests = 0, page_requests_overflowed = 0, page_responses_auto = 0;
        uint64_t page_request_errors = 0;
        uint64_t fault_interrupts = 0, invalidation_interrupts = 0, page_request_interrupts = 0;
        uint64_t register_invalidations = 0, register_invalidation_errors = 0;
        uint64_t bad_accesses = 0, unknown_accesses = 0;

        uint64_t descriptors_total() const;
    };
    const Counters& counters() const { return n_; }
    // The log channel (core/log.h) of this register file, e.g. system.iommu0.regs.
    void set_log_name(const std::string& name) { log_ = log::Channel(name); }

private:
    enum class Slot : uint8_t { None, Reg, Frcd };
    struct Loc {
        Slot slot = Slot::None;
        uint32_t reg = 0;    // register offset, or record index for Frcd
        unsigned dword = 0;  // doubleword within the register
    };
    Loc locate(uint32_t off) const;
    bool present(uint32_t reg) const;
    uint32_t read32(uint32_t off, bool& known);
    void write32(uint32_t off, uint32_t v, Tick at, Tick& done, bool& known);
    uint64_t reg_value(uint32_t reg) const;
    void write_reg(uint32_t reg, bool hi, uint64_t v, Tick at, Tick& done);

    Tick global_command(uint32_t cmd, Tick at);
    Tick context_command(Tick at);
    Tick iotlb_command(Tick at);
    void clear_status(uint32_t rw1c, Tick at, Tick& done);
    void fault_event(uint32_t pre, Tick at);
    void signal(Interrupt which, uint32_t& ctl, Tick at);

    // Queued invalidation (vtd_regfile_queue.cpp).
    Tick process_queue(Tick at);
    std::optional<DescError> check(const DecodedInvDesc& d, const uint64_t* qw) const;
    Tick execute(const DecodedInvDesc& d, Tick start, Tick& end);
    Tick run_wait(const InvWait& w, Tick start, Tick& end);
    void queue_error(const DescError& e, Tick at);
    void completion_event(Tick at);

    RegFileConfig cfg_;
    MemoryPort& mem_;
    Hooks& hooks_;
    Params p_;
    Clock clk_;

    uint32_t gsts_ = 0;
    uint64_t rtaddr_ = 0;
    Rtaddr root_;
    uint64_t ccmd_ = 0, iva_ = 0, iotlb_ = 0;
    uint32_t fsts_ = 0;  // PFO, IQE, ICE, ITE and FRI; PPF is computed from the records
    uint32_t fectl_ = ectl::IM, iectl_ = ectl::IM, pectl_ = ectl::IM;
    std::vector<std::array<uint64_t, 2>> frcd_;
    unsigned next_fault_ = 0;  // 7.2.1's internal index
    uint64_t iqh_ = 0, iqt_ = 0, iqa_ = 0, iqercd_ = 0;
    uint32_t ics_ = 0;
    uint64_t pqh_ = 0, pqt_ = 0, pqa_ = 0;
    uint32_t prs_ = 0, pmen_ = 0;
    std::map<uint32_t, uint64_t> plain_;  // registers without side effects (event data, PMRs)
    DescError last_error_;

    // When each class of descriptor ahead in the queue completes (6.5.2.12 ordering), when
    // the fetch engine is free, and when the last page request descriptor became visible.
    Tick done_cc_ = 0, done_pc_ = 0, done_iotlb_ = 0, done_iec_ = 0, done_all_ = 0;
    Tick prq_done_ = 0;
    CommandRing ring_;  // the invalidation queue's fetch engine

    Counters n_;
    log::Channel log_;  // descriptors, register invalidations, commands, faults
};

}  // namespace iommusim::vtd
