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

// A hit on a cached translation that disagrees with the driver's intent (checking mode).
struct StaleHit {
    Tick when;
    Requester req;
    Addr iova;
    Addr used;             // what the cached entry gave
    Expectation expected;  // what the driver means now
};

// One line per stale hit: "time_ns requester iova used expected", with a header line;
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
    void forget_before(Tick now);

    // Checking mode: compare every IOTLB hit with the driver's intent; keep the first
    // `keep` stale hits for reporting (all are counted).
    void set_oracle(Oracle oracle, size_t keep = 100);
    const std::vector<StaleHit>& stale_hits() const { return stale_list_; }

    const UnitParams& params() const { return p_; }
    size_t iotlb_size() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    UnitParams p_;
    std::vector<StaleHit> stale_list_;
};

}  // namespace iommusim
