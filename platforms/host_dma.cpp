#include "host_dma.h"

namespace iommusim {

namespace {
Tick ns(double v) {
    return Tick(v * double(kTicksPerNs) + 0.5);
}
}  // namespace

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

std::optional<DmaMapper::Mapped> VtdDmaApi::map(Addr pa, uint64_t len, bool write, Tick at) {
    auto iova = drv_.map_alloc(did_, pa, len, write ? kPermRW : kPermR);
    if (!iova) return std::nullopt;
    return Mapped{*iova, at + ns(p_.map_ns)};
}

Tick VtdDmaApi::unmap(Addr iova, uint64_t len, Tick at) {
    const Tick t = at + ns(p_.unmap_ns);
    drv_.unmap_free(did_, iova, len, t / kTicksPerNs);
    drv_.tick(t / kTicksPerNs);
    const Tick done = feeder_.submit(t);
    return p_.strict ? done : t;  // lazy: the flush is not waited for
}

std::optional<DmaMapper::Mapped> SpaprDmaApi::map(Addr pa, uint64_t len, bool write, Tick at) {
    auto iova = drv_.map_alloc(pe_, 1, pa, len, write ? kPermRW : kPermR);
    if (!iova) return std::nullopt;
    return Mapped{*iova, at + ns(p_.map_ns)};
}

Tick SpaprDmaApi::unmap(Addr iova, uint64_t len, Tick at) {
    Tick t = at + ns(p_.unmap_ns);
    drv_.unmap(pe_, iova, len);
    if (AddressSpace* as = drv_.space(pe_, 1))
        as->iova().free(iova & ~Addr((Addr(1) << as->min_page_shift()) - 1));
    const auto& kills = drv_.invalidations();
    for (; killed_ < kills.size(); ++killed_) t = phb_.engine().invalidate(kills[killed_], t);
    drv_.forget_issued();
    killed_ = 0;
    return t;
}

}  // namespace iommusim
