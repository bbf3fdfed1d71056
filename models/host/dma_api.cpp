#include "dma_api.h"

#include <algorithm>

#include "arch/vtd/vtd_regs.h"

namespace iommusim {

Tick VtdQueueFeeder::submit(Tick at) {
    const auto& all = drv_.descriptors();
    if (submitted_ == all.size()) return at;
    std::vector<vtd::InvDesc> batch(all.begin() + long(submitted_), all.end());
    // The unit executes the queue when IQT is written, so a batch fits unless it is larger
    // than the queue itself: then it goes in queue-sized pieces.
    Tick done = at;
    size_t pos = 0;
    while (pos < batch.size()) {
        const size_t n = std::min(batch.size() - pos, size_t(queue_.entries() - 1));
        std::vector<vtd::InvDesc> part(batch.begin() + long(pos), batch.begin() + long(pos + n));
        auto iqt = queue_.append(part, iommu_.mmio_read(vtd::reg::IQH, 8));
        if (!iqt) break;  // the unit stopped (queue error): nothing more can be queued
        done = iommu_.mmio_write(vtd::reg::IQT, 8, *iqt, done);
        pos += n;
    }
    drv_.forget_issued();  // executed by the unit: long runs keep flat memory
    submitted_ = 0;
    return done;
}

VtdDmaApi::VtdDmaApi(vtd::Driver& drv, VtdQueueFeeder& feeder, uint16_t did,
                     const HostDriverParams& p)
    : drv_(drv), feeder_(feeder), did_(did), p_(p) {
    AddressSpace* as = drv_.space(did_);
    if (p_.iova_rcache && as && !as->iova().rcache_enabled()) {
        IovaRcacheConfig c;
        c.granule = Addr(1) << as->min_page_shift();
        as->iova().enable_rcache(c);
    }
}

void VtdDmaApi::set_cpu(unsigned cpu) {
    if (AddressSpace* as = drv_.space(did_)) as->iova().set_cpu(cpu);
}

std::optional<DmaMapper::Mapped> VtdDmaApi::map(Addr pa, uint64_t len, bool write, Tick at) {
    auto iova = drv_.map_alloc(did_, pa, len, write ? kPermRW : kPermR);
    if (!iova) return std::nullopt;
    // A large page that replaced a lower table comes with an invalidation, waited for.
    const Tick t = at + ticks_from_ns(p_.map_ns);
    return Mapped{*iova, std::max(t, feeder_.submit(t))};
}

Tick vtd_unmap(vtd::Driver& drv, VtdQueueFeeder& feeder, uint16_t did, Addr iova, uint64_t len,
               const HostDriverParams& p, Tick at, bool free_iova) {
    const Tick t = at + ticks_from_ns(p.unmap_ns);
    if (free_iova)
        drv.unmap_free(did, iova, len, t / kTicksPerNs);
    else
        drv.unmap(did, iova, len, t / kTicksPerNs);
    drv.tick(t / kTicksPerNs);
    const Tick done = feeder.submit(t);
    return p.strict ? done : t;  // lazy: the flush is not waited for
}

Tick VtdDmaApi::unmap(Addr iova, uint64_t len, Tick at) {
    return vtd_unmap(drv_, feeder_, did_, iova, len, p_, at, true);
}

std::optional<DmaMapper::Mapped> SpaprDmaApi::map(Addr pa, uint64_t len, bool write, Tick at) {
    auto iova = drv_.map_alloc(pe_, 1, pa, len, write ? kPermRW : kPermR);
    if (!iova) return std::nullopt;
    return Mapped{*iova, at + ticks_from_ns(p_.map_ns)};
}

Tick SpaprDmaApi::unmap(Addr iova, uint64_t len, Tick at) {
    Tick t = at + ticks_from_ns(p_.unmap_ns);
    drv_.unmap(pe_, iova, len);
    if (AddressSpace* as = drv_.space(pe_, 1))
        as->iova().free(iova & ~Addr((Addr(1) << as->min_page_shift()) - 1));
    const auto& kills = drv_.invalidations();
    for (; killed_ < kills.size(); ++killed_) t = phb_.invalidate(kills[killed_], t);
    drv_.forget_issued();
    killed_ = 0;
    return t;
}

}  // namespace iommusim
