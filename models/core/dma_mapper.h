// The host's DMA API as a device model sees it (Linux dma_map_single / dma_unmap_single):
// the platform implements it with the driver model (IOVA allocation, page tables, strict or
// deferred invalidation through the IOMMU's queue) and its software costs; devices that map
// per I/O (a NIC's packet buffers, NVMe's PRP pages) call it on their I/O path.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "invalidation.h"
#include "stats.h"
#include "time.h"
#include "types.h"

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
    // The CPU the following calls run on (a multi-queue NIC's driver context): Linux's IOVA
    // allocator keeps per-CPU caches of freed ranges. Mappers without per-CPU state ignore it.
    virtual void set_cpu(unsigned /*cpu*/) {}
};

// The host driver of one device's domain as a trace replay drives it: maps and unmaps at the
// addresses a recording gives (the guest's IOVAs, not an allocator's), and the recording's own
// invalidations. Each call returns when the caller may go on (in strict mode, once the unit
// has executed the invalidation it queued).
class RecordedDomain {
public:
    virtual ~RecordedDomain() = default;
    // The unit takes PASID-tagged requests (else a replay strips the PASID).
    virtual bool takes_pasids() const = 0;
    // Attach `pasid` of the device to this domain; false (and `why`) when refused.
    virtual bool attach_pasid(uint32_t pasid, Tick at, Tick* done, std::string* why) = 0;
    // Part of [iova, iova + len) is mapped.
    virtual bool mapped(Addr iova, uint64_t len) const = 0;
    // Map [iova, iova + len) to `pa`; false (and `why`) when the driver refuses. `*done`: when
    // the caller may go on.
    virtual bool map(Addr iova, Addr pa, uint64_t len, Perm perm, Tick at, Tick* done,
                     std::string* why) = 0;
    virtual Tick unmap(Addr iova, uint64_t len, Tick at) = 0;
    // A recorded invalidation of this domain (its domain field is replaced by this domain's).
    virtual Tick invalidate(InvalidationScope scope, Tick at) = 0;
    // A recorded invalidation that names no domain, executed by the unit (once per unit: units
    // are told apart by `unit_id`).
    virtual Tick invalidate_unit(const InvalidationScope& scope, Tick at) = 0;
    virtual const void* unit_id() const = 0;
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
