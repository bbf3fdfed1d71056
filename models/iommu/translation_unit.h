// The translation path of one IOMMU unit, timed, as plain C++ (the SystemC module in
// iommu_unit.h is a thin shell around it). A request meets the context/PASID caches, then
// the IOTLB; a miss takes a walker from the pool, merges onto an in-flight walk of the same
// page or drives the architecture's walker, whose reads hit the walk caches or go to memory
// through a MemoryPort and pay its latency. Every latency is computed, not waited for.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/cache.h"
#include "core/expectation.h"
#include "core/invalidation.h"
#include "core/memory_port.h"
#include "core/resource.h"
#include "core/stats.h"
#include "core/walker.h"
#include "unit_params.h"

namespace iommusim {

// What a stale translation used (StaleHit::what, bits): the IOTLB entry, the context from the
// context cache, the PASID entry from the PASID cache, paging-structure entries of levels 2-5
// from the walk caches, each no longer what memory holds.
enum : uint8_t {
    kStaleIotlb = 1,
    kStaleContext = 2,
    kStalePasid = 4,
    kStaleWalkL2 = 8,  // level L: kStaleWalkL2 << (L - 2)
};
// "iotlb,context,walk-l3"; "-" for none.
std::string stale_sources(uint8_t what);

// A translation from cached contents that disagrees with the driver's intent (checking mode).
struct StaleHit {
    Tick when;
    Requester req;
    Addr iova;
    Addr used;             // what the translation gave (unless it faulted)
    Expectation expected;  // what the driver means now
    uint8_t what = 0;      // which cached contents were stale (kStale* bits)
    bool fault = false;    // the stale contents led to a fault
};

// One line per stale use: "time_ns requester iova used expected stale", with a header line;
// what checking mode writes to the stale-translation report.
std::string format_stale_hits(const std::vector<StaleHit>& hits);

class TranslationUnit {
public:
    using Oracle = std::function<Expectation(const Requester&, Addr)>;

    TranslationUnit(const UnitParams& p, Walker& walker, MemoryPort& mem, StatGroup& stats);
    ~TranslationUnit();

    TranslateOutcome translate(const Requester& req, Addr iova, Access access, Tick arrival);
    // Remove what `scope` names from every cache; returns when the unit has done so.
    Tick invalidate(const InvalidationScope& scope, Tick at);
    // No request will arrive before `now` any more (the SystemC time: every initiator's local
    // time is at or after it): walks that ended by then leave the in-flight table.
    // Inline: the shell calls it on every DMA, and the time moves once a quantum.
    void forget_before(Tick now) {
        if (now > floor_) set_floor(now);
    }

    // Checking mode: compare every translation made from cached contents (IOTLB hit, context
    // or PASID cache, walk caches) with the driver's intent; a disagreement whose cached
    // contents differ from memory is a stale use. The first `keep` are kept for reporting
    // (all are counted).
    void set_oracle(Oracle oracle, size_t keep = 100);
    const std::vector<StaleHit>& stale_hits() const { return stale_list_; }

    const UnitParams& params() const { return p_; }
    size_t iotlb_size() const;

private:
    void set_floor(Tick now);

    struct Impl;
    std::unique_ptr<Impl> impl_;
    Tick floor_ = 0;  // the latest forget_before(): earlier times change nothing
    UnitParams p_;
    std::vector<StaleHit> stale_list_;
};

}  // namespace iommusim
