// The VT-d translation walk as a step machine (core/walker.h): root -> context [-> PASID
// directory -> PASID entry] -> first- and/or second-level page tables. Nested walks
// translate every first-level table access and the final output through the second level,
// so each of their memory reads is a step of its own. Faults carry the specification's
// reason codes (vtd_fault.h); guest data never aborts the walk.
#pragma once
#include <cstdint>

#include "core/walker.h"
#include "vtd_tables.h"

namespace iommusim::vtd {

// What the walker needs of the remapping unit: RTADDR and the CAP/ECAP fields it obeys.
struct WalkerConfig {
    Addr rtaddr = 0;
    bool scalable = false;       // RTADDR.TTM = 01b
    unsigned haw = 48;           // host address width: pointer bits 51:haw are reserved
    unsigned mgaw = 48;          // CAP.MGAW + 1
    uint8_t sagaw = 0b0110;      // CAP.SAGAW: bit n set when AW encoding n is supported
    bool sl_2m = true;           // CAP.SLLPS bit 0
    bool sl_1g = true;           // CAP.SLLPS bit 1
    bool fl_1g = true;           // CAP.FL1GP
    bool fl_5level = false;      // CAP.FL5LP
    bool pass_through = true;    // ECAP.PT
    bool snoop_control = false;  // ECAP.SC (otherwise SNP is reserved)
    bool device_tlb = true;      // ECAP.DT (otherwise TM is reserved)
    bool nested = true;          // ECAP.NEST
};

// The decoded device/PASID context a page walk starts from: what a context or PASID cache
// would hold.
struct VtdContext {
    enum class Mode : uint8_t { SecondLevel, FirstLevel, Nested, PassThrough };
    Mode mode = Mode::SecondLevel;
    bool scalable = false;
    uint16_t did = 0;
    uint32_t pasid = Requester::kNoPasid;  // effective PASID (RID_PASID without a prefix)
    bool priv = false;                     // effective privilege
    Addr sl_root = 0;
    unsigned sl_levels = 4;
    Addr fl_root = 0;
    unsigned fl_levels = 4;
    bool sre = false, wpe = false, slade = false, slee = false, fpd = false;
    // Scalable mode: the context entry's fields the PASID stage starts from. With `complete`
    // clear the context holds only these (what the context cache keeps).
    bool complete = true;
    bool paside = false, rid_priv = false;
    uint32_t rid_pasid = 0;
    uint64_t pasid_dir_entries = 0;
    Addr pasid_dir = 0;

    bool operator==(const VtdContext& o) const;
};

class VtdWalker final : public Walker {
public:
    explicit VtdWalker(const WalkerConfig& cfg) : cfg_(cfg) {}

    void start(const Requester& req, Addr iova, Access access) override;
    // Skip the context fetch: the timed model's context/PASID cache hit.
    void start_with_context(const VtdContext& ctx, const Requester& req, Addr iova, Access access);
    WalkStep next() override;
    void feed(const uint8_t* data) override;
    void feed_error() override;
    const WalkResult& result() const override { return res_; }
    std::string describe(const WalkStep& step, const uint8_t* data) const override;

    // Valid once the walk has reached the page tables (or finished without fault).
    const VtdContext& vtd_context() const { return ctx_; }
    bool context_ready() const override { return ctx_valid_; }
    WalkContext context() const override;
    // Scalable mode: the context entry, once the walk goes on to the PASID stage.
    bool device_context_ready() const override { return sm() ? dev_valid_ : ctx_valid_; }
    WalkContext device_context() const override;
    void resume(const WalkContext& ctx, const Requester& req, Addr iova, Access access) override;
    bool same_context(const WalkContext& a, const WalkContext& b) const override;
    bool paging_entry(PagingEntry* out) const override;
    void feed_cached(const PagingEntry& e) override;
    WalkerConfig& config() { return cfg_; }

private:
    enum class Phase : uint8_t { Root, Context, PasidDir, PasidEntry, Paging, Done };
    // Why a second-level walk runs: the request itself, a first-level table access of a
    // nested walk, or the nested walk's final output.
    enum class SlPurpose : uint8_t { Primary, FlTable, Output };

    void reset(const Requester& req, Addr iova, Access access);
    void feed_root(const uint8_t* d);
    void feed_context(const uint8_t* d);
    void enter_pasid_stage();
    void keep_entry(uint64_t e, Perm above, uint8_t above_flags, bool leaf);
    void feed_pasid_dir(const uint8_t* d);
    void feed_pasid_entry(const uint8_t* d);
    void begin_paging();
    void start_sl(SlPurpose purpose, Addr input);
    void feed_sl(uint64_t e);
    void feed_fl(uint64_t e);
    void sl_done(Addr out, unsigned shift);
    void finish(Addr out, unsigned shift, Perm perm);
    void fail(FaultKind kind, uint16_t reason, uint8_t level = 0);
    uint16_t sl_denied_reason() const;
    bool sm() const { return cfg_.scalable; }

    WalkerConfig cfg_;
    Requester req_;
    Addr iova_ = 0;
    Access access_ = Access::Read;
    Phase phase_ = Phase::Done;
    Addr read_addr_ = 0;
    uint8_t read_size_ = 0;
    bool write_pending_ = false;
    WalkStage write_stage_ = WalkStage::FirstLevel;
    Addr write_addr_ = 0;
    uint64_t write_val_ = 0;

    VtdContext ctx_;
    bool ctx_valid_ = false;
    VtdContext dev_;  // scalable mode: the context entry alone (complete == false)
    bool dev_valid_ = false;
    PagingEntry entry_;  // the last paging entry fed, as a walk cache keeps it
    bool entry_ok_ = false;
    Addr pasid_table_ = 0;

    struct {
        SlPurpose purpose = SlPurpose::Primary;
        bool active = false;
        Addr input = 0;
        Addr table = 0;
        unsigned level = 0;
        Perm perm = kPermNone;
    } sl_;
    struct {
        unsigned level = 0;
        Addr table = 0;      // GPA when nested, otherwise HPA
        Addr entry_hpa = 0;  // host address of the entry to read next
        bool entry_ready = false;
        Perm table_perm = kPermNone;  // second-level rights on the table page (nested)
        bool w = true, u = true, x = true;
        Addr out = 0;
        unsigned shift = 12;
    } fl_;
    WalkResult res_;
};

}  // namespace iommusim::vtd
