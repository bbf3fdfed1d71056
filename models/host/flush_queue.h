// Deferred (lazy) invalidation as Linux does with iommu.strict=0: unmapped ranges wait in a
// queue and their IOVAs are not reused until one invalidation covers the whole queue, which
// happens when the queue fills or its oldest entry times out.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>

#include "core/types.h"

namespace iommusim {

struct FlushQueueConfig {
    size_t entries = 256;              // Linux IOVA_FQ_SIZE
    uint64_t timeout_ns = 10'000'000;  // Linux IOVA_FQ_TIMEOUT (10 ms)
};

struct DeferredUnmap {
    uint32_t space = 0;  // which address space (driver-defined id)
    Addr iova = 0;
    Addr size = 0;
    uint64_t when_ns = 0;
    bool release_iova = false;  // free the IOVA (allocated by the driver) once flushed
};

class FlushQueue {
public:
    explicit FlushQueue(const FlushQueueConfig& cfg) : cfg_(cfg) {}

    // Queue one unmapped range. Returns true when the queue is now full and must be flushed.
    bool push(const DeferredUnmap& u);
    // True when the oldest pending entry has waited at least the timeout.
    bool due(uint64_t now_ns) const;
    // Everything pending, oldest first; the queue is empty afterwards.
    std::vector<DeferredUnmap> drain();
    size_t pending() const { return q_.size(); }
    // Whether `iova` of address space `space` lies in a range still waiting for its flush.
    bool deferred(uint32_t space, Addr iova) const {
        for (const auto& u : q_)
            if (u.space == space && iova >= u.iova && iova - u.iova < u.size) return true;
        return false;
    }
    const FlushQueueConfig& config() const { return cfg_; }

private:
    FlushQueueConfig cfg_;
    std::deque<DeferredUnmap> q_;
};

}  // namespace iommusim
