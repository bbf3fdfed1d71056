// The host's DMA API for devices that map per I/O (core/dma_mapper.h), over the driver
// models: VT-d (IOVA allocation, page tables, invalidations written to the unit's queue and
// waited for in strict mode, deferred with Linux's flush queue in lazy mode) and sPAPR (TCE
// windows, a TCE kill per unmap). Software costs of the calls are parameters.
#pragma once
#include <cstdint>
#include <optional>

#include "core/dma_mapper.h"
#include "core/unit_access.h"
#include "spapr_driver.h"
#include "vtd_driver.h"
#include "vtd_inv_queue.h"

namespace iommusim {

// The driver's software costs (system.<unit>.driver.*). Strict/lazy is the VT-d driver's
// DriverConfig (iommu.strict), set from `strict` and the flush-queue parameters.
struct HostDriverParams {
    bool strict = true;
    uint32_t fq_entries = 256;
    uint64_t fq_timeout_us = 10'000;
    double map_ns = 150;       // dma_map_single: IOVA allocation and PTE writes
    double unmap_ns = 150;     // dma_unmap_single, before any invalidation wait
    bool iova_rcache = false;  // Linux's per-CPU IOVA range caches (off: the tree only)

    template <typename V>
    void visit(V&& v) {
        v("strict", strict, "",
          "iommu.strict: invalidate and wait at every unmap (else a flush queue)", 0, 1);
        v("fq_entries", fq_entries, "entries", "lazy: flush-queue size (Linux IOVA_FQ_SIZE)", 1,
          1 << 20);
        v("fq_timeout_us", fq_timeout_us, "us", "lazy: flush-queue timeout (Linux IOVA_FQ_TIMEOUT)",
          1, uint64_t(1) << 32);
        v("map_ns", map_ns, "ns", "software cost of one dma_map call", 0.0, 1e9);
        v("unmap_ns", unmap_ns, "ns",
          "software cost of one dma_unmap call (without the invalidation wait)", 0.0, 1e9);
        v("iova_rcache", iova_rcache, "",
          "Linux's per-CPU IOVA range caches (alloc_iova_fast): freed IOVAs reused LIFO by the "
          "CPU that freed them; off: every map allocates top-down from the tree",
          0, 1);
    }
};

// The invalidation queue of one VT-d unit as the host driver feeds it: what the driver
// model issued since the last submission is written to the queue and IQT bumped.
class VtdQueueFeeder {
public:
    VtdQueueFeeder(vtd::Driver& drv, RegisterAccess& iommu, vtd::InvQueueWriter& queue)
        : drv_(drv), iommu_(iommu), queue_(queue) {}
    // Returns when the unit has executed everything up to the last wait descriptor.
    Tick submit(Tick at);

private:
    vtd::Driver& drv_;
    RegisterAccess& iommu_;
    vtd::InvQueueWriter& queue_;
    size_t submitted_ = 0;
};

// dma_unmap of [iova, iova + len) in domain `did` at `at`: the software cost, the driver's
// unmap (and the IOVA freed when `free_iova`), its invalidations written to the queue.
// Returns when the caller may go on: strict, when the unit has executed the wait descriptor.
Tick vtd_unmap(vtd::Driver& drv, VtdQueueFeeder& feeder, uint16_t did, Addr iova, uint64_t len,
               const HostDriverParams& p, Tick at, bool free_iova);

class VtdDmaApi final : public DmaMapper {
public:
    // With p.iova_rcache, turns on the domain's per-CPU IOVA range caches.
    VtdDmaApi(vtd::Driver& drv, VtdQueueFeeder& feeder, uint16_t did, const HostDriverParams& p);
    std::optional<Mapped> map(Addr pa, uint64_t len, bool write, Tick at) override;
    Tick unmap(Addr iova, uint64_t len, Tick at) override;
    void set_cpu(unsigned cpu) override;

private:
    vtd::Driver& drv_;
    VtdQueueFeeder& feeder_;
    uint16_t did_;
    HostDriverParams p_;
};

class SpaprDmaApi final : public DmaMapper {
public:
    // `killed` counts the driver's TCE kills already sent to the PHB (shared by its PEs).
    SpaprDmaApi(spapr::Driver& drv, InvalidationPort& phb, uint16_t pe, const HostDriverParams& p,
                size_t& killed)
        : drv_(drv), phb_(phb), pe_(pe), p_(p), killed_(killed) {}
    std::optional<Mapped> map(Addr pa, uint64_t len, bool write, Tick at) override;
    Tick unmap(Addr iova, uint64_t len, Tick at) override;

private:
    spapr::Driver& drv_;
    InvalidationPort& phb_;
    uint16_t pe_;
    HostDriverParams p_;
    size_t& killed_;
};

// No IOMMU in the path: the bus address is the physical address and mapping costs nothing.
class DirectDmaApi final : public DmaMapper {
public:
    std::optional<Mapped> map(Addr pa, uint64_t, bool, Tick at) override { return Mapped{pa, at}; }
    Tick unmap(Addr, uint64_t, Tick at) override { return at; }
};

}  // namespace iommusim
