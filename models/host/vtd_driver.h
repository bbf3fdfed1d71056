// The host's VT-d driver model: allocates root/context/PASID structures and page tables in
// simulated memory with the arch encoders, manages domains and device (and PASID)
// attachments, maps and unmaps with strict or deferred invalidation, and keeps the intent.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "address_space.h"
#include "arch/vtd/vtd_format.h"
#include "arch/vtd/vtd_invdesc.h"
#include "arch/vtd/vtd_walker.h"
#include "core/expectation.h"
#include "core/invalidation.h"
#include "core/log.h"
#include "flush_queue.h"

namespace iommusim::vtd {

struct DriverConfig {
    WalkerConfig hw;                   // the unit's capabilities; hw.scalable selects the mode
    unsigned sl_levels = 4;            // 3, 4 or 5 (39/48/57-bit)
    unsigned fl_levels = 4;            // 4 or 5
    bool large_pages = true;           // use 2 MiB / 1 GiB pages where the unit supports them
    bool fl_preset_ad = true;          // first-level leaves written with A/D set, like Linux
    bool strict = true;                // iommu.strict=1: invalidate on every unmap
    FlushQueueConfig lazy;             // iommu.strict=0 flush queue
    unsigned pasid_bits = 20;          // PASID space the PASID directories cover
    Addr table_base = Addr(64) << 30;  // physical region the driver allocates structures from
    Addr table_size = 0x1000'0000;
};

enum class Stage : uint8_t { SecondLevel, FirstLevel };

struct DomainOptions {
    Stage stage = Stage::SecondLevel;  // legacy mode supports SecondLevel only
    bool identity = false;             // pass-through: no tables, IOVA == PA
    std::vector<IovaRegion> windows;   // permitted IOVA ranges; empty = the whole width
    std::vector<IovaRegion> reserved;  // in addition to the x86 MSI range
};

class Driver {
public:
    Driver(SparseMemory& mem, const DriverConfig& cfg);
    ~Driver();

    // The unit as programmed (RTADDR points at the driver's root table).
    const WalkerConfig& hw() const { return hw_; }
    const DriverConfig& config() const { return cfg_; }

    // Domains get DIDs from 1. Nested: a first-level (stage-1, IOVA -> GPA) domain whose
    // tables and outputs are translated by second-level domain `parent` (GPA -> HPA). Its
    // tables live at guest-physical addresses the parent maps one-to-one.
    std::optional<uint16_t> create_domain(const DomainOptions& opt, std::string* why = nullptr);
    std::optional<uint16_t> create_nested_domain(uint16_t parent, const DomainOptions& opt,
                                                 std::string* why = nullptr);

    // Requests without PASID from `rid` use domain `did` (scalable mode: via RID_PASID 0).
    bool attach(uint16_t rid, uint16_t did, std::string* why = nullptr);
    // Scalable mode: requests from `rid` carrying `pasid` use domain `did`.
    bool attach_pasid(uint16_t rid, uint32_t pasid, uint16_t did, bool supervisor = false,
                      std::string* why = nullptr);
    // The device `rid` has ATS enabled: range invalidations of its domains (and of each
    // PASID bound on it) are followed by a device-TLB invalidation of its ATC.
    void set_ats(uint16_t rid, bool enabled);
    void detach(uint16_t rid);
    void detach_pasid(uint16_t rid, uint32_t pasid);

    bool map(uint16_t did, Addr iova, Addr pa, Addr size, Perm perm, std::string* why = nullptr);
    // Unmap and invalidate (strict) or defer (lazy). Returns the bytes that were mapped.
    Addr unmap(uint16_t did, Addr iova, Addr size, uint64_t now_ns = 0);
    // The DMA API's map: allocate an IOVA below `limit` and map it. nullopt if none fits.
    std::optional<Addr> map_alloc(uint16_t did, Addr pa, Addr size, Perm perm,
                                  Addr limit = ~Addr(0), std::string* why = nullptr);
    // Unmap an IOVA from map_alloc and release it (at once if strict, after the flush if lazy).
    Addr unmap_free(uint16_t did, Addr iova, Addr size, uint64_t now_ns = 0);
    // Invalidate [iova, + size) of domain `did` now, whatever `strict` says (a guest's own
    // policy on its nested first level): page-selective, or PASID/domain-selective beyond
    // CAP.MAMV; then a wait descriptor.
    void invalidate(uint16_t did, Addr iova, Addr size);
    // Lazy mode: flush when the oldest deferred unmap has timed out.
    void tick(uint64_t now_ns);
    void flush_all();

    // The intent for one request: where it should go and with which rights. Inline for
    // checking mode's common case (asked for every request): the last requester again, its
    // domain one plain address space.
    Expectation expect(const Requester& req, Addr iova) const {
        if (expect_key(req) == expect_memo_.key && expect_memo_.intent) {
            const std::optional<IntentHit> hit = expect_memo_.intent->translate(iova);
            return hit ? Expectation{true, hit->pa, hit->perm} : Expectation{};
        }
        return expect_slow(req, iova);
    }

    AddressSpace* space(uint16_t did);
    // Invalidations issued so far, in order (what the driver wrote to the invalidation queue).
    const std::vector<InvalidationScope>& invalidations() const { return inv_; }
    // The same, as the descriptors written to the invalidation queue (256-bit in scalable
    // mode, 128-bit in legacy mode: qw[2..3] zero). Wait descriptors write a sequence number
    // to wait_status().
    const std::vector<InvDesc>& descriptors() const { return queue_; }
    Addr wait_status() const { return wait_status_; }
    // Drop the invalidations and descriptors issued so far (the consumer has executed them),
    // so that long runs keep flat memory; indexes into them restart at 0.
    void forget_issued() {
        inv_.clear();
        queue_.clear();
    }
    // The status data of the last wait descriptor issued.
    uint32_t wait_sequence() const { return uint32_t(wait_seq_); }
    size_t pending_deferred() const { return fq_.pending(); }
    // Lazy mode: `iova` of domain `did` was unmapped but its invalidation is still deferred.
    bool in_flush_window(uint16_t did, Addr iova) const { return fq_.deferred(did, iova); }
    // The log channel (core/log.h) of this driver, e.g. system.iommu0.driver.
    void set_log_name(const std::string& name) { log_ = log::Channel(name); }

private:
    struct Domain;
    Domain* domain(uint16_t did);
    const Domain* domain(uint16_t did) const;
    Addr alloc_zeroed(Addr bytes);
    Addr context_entry_addr(uint16_t rid);
    Addr pasid_entry_addr(uint16_t rid, uint32_t pasid);
    void write_pasid_entry(uint16_t rid, uint32_t pasid, const Domain& d, bool supervisor);
    // leaf_only is the descriptor's IH: set when no paging-structure entry changed.
    void invalidate_range(const Domain& d, Addr iova, Addr size, bool leaf_only = false);
    void drain(uint64_t now_ns);
    void emit(const InvalidationScope& s);

    SparseMemory& mem_;
    DriverConfig cfg_;
    WalkerConfig hw_;
    PhysAllocator alloc_;
    SecondLevelFormat sl_fmt_;
    FirstLevelFormat fl_fmt_;
    Addr root_ = 0;
    std::map<unsigned, Addr> context_tables_;  // bus (x2 + upper half in scalable mode) -> table
    std::map<uint16_t, Addr> pasid_dirs_;      // rid -> PASID directory (scalable mode)
    std::map<uint16_t, std::unique_ptr<Domain>> domains_;
    uint16_t next_did_ = 1;
    std::map<uint16_t, uint16_t> rid_domain_;  // requests without PASID
    std::map<std::pair<uint16_t, uint32_t>, uint16_t> pasid_domain_;
    std::set<uint16_t> ats_;  // RIDs with ATS enabled
    std::vector<InvalidationScope> inv_;
    std::vector<InvDesc> queue_;
    Addr wait_status_ = 0;
    uint64_t wait_seq_ = 0;
    FlushQueue fq_;
    log::Channel log_;  // attaches, maps, unmaps, invalidations submitted
    // expect()'s last requester (RID << 32 | PASID) and its domain, null when none: checking
    // mode asks for every request, and devices send runs of them. Domains never go away;
    // attach and detach forget the memo.
    struct ExpectMemo {
        uint64_t key = ~uint64_t(0);
        const Domain* domain = nullptr;
        const IntentMap* intent = nullptr;  // the domain's, unless identity or nested
    };
    mutable ExpectMemo expect_memo_;
    static uint64_t expect_key(const Requester& req) {
        return (uint64_t(req.rid) << 32) | req.pasid;
    }
    Expectation expect_slow(const Requester& req, Addr iova) const;
};

}  // namespace iommusim::vtd
