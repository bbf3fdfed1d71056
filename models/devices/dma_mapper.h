// The host's DMA API as a device model sees it (Linux dma_map_single / dma_unmap_single):
// the platform implements it with the driver model (IOVA allocation, page tables, strict or
// deferred invalidation through the IOMMU's queue) and its software costs; devices that map
// per I/O (a NIC's packet buffers, NVMe's PRP pages) call it on their I/O path.
#pragma once
#include <cstdint>
#include <optional>

#include "core/stats.h"
#include "core/time.h"
#include "core/types.h"

namespace iommusim {

class DmaMapper {
public:
    virtual ~DmaMapper() = default;

    struct Mapped {
        Addr iova;  // what the device puts in its DMA requests
        Tick done;  // when the mapping is usable (software cost of the map call)
    };
    // Map [pa, pa + len) for DMA in direction `write` (device writes host memory) at `at`.
    // nullopt: the mapping failed (IOVA space exhausted); the device reports and drops the I/O.
    virtual std::optional<Mapped> map(Addr pa, uint64_t len, bool write, Tick at) = 0;
    // Unmap what map() returned; returns when the call (and, in strict mode, its
    // invalidation) is complete.
    virtual Tick unmap(Addr iova, uint64_t len, Tick at) = 0;
};

// How a device's driver used the DMA API, counted alike by every device that maps per I/O
// (registered in the device's `driver` statistics group).
struct DriverStats {
    Counter &maps, &unmaps, &map_failures, &busy_ns;
    explicit DriverStats(StatGroup& drv)
        : maps(drv.counter("maps", "DmaMapper::map calls")),
          unmaps(drv.counter("unmaps", "DmaMapper::unmap calls")),
          map_failures(drv.counter("map_failures", "map calls that failed")),
          busy_ns(drv.counter("busy_ns", "time the driver CPU was busy")) {}
};

}  // namespace iommusim
