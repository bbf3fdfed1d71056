// A guest's IOMMU on a host VT-d unit (a vIOMMU), as the VMM emulates it, in four ways:
//   shadow          the guest's VT-d in caching mode: it invalidates on map and unmap, each
//                   invalidation-queue write traps, the VMM walks the guest's tables and
//                   maps or unmaps the result in the host unit (QEMU intel-iommu over VFIO);
//   nested          the guest owns first-level tables in a scalable-mode PASID entry with
//                   PGTT = nested, the host the static second level (GPA -> HPA); guest maps
//                   cost nothing on the host, its invalidations trap and are passed down;
//   nested-direct   nested, with the guest writing invalidations to a hardware queue of its
//                   own without a VM exit (NVIDIA CMDQV, iommufd HW_QUEUE);
//   paravirt-spapr  a POWER sPAPR guest whose H_PUT_TCE, H_PUT_TCE_INDIRECT and
//                   H_STUFF_TCE hypercalls become host maps and unmaps of the same IOVAs.
// The guest's DMA addresses are guest-physical; they lie in host memory at a fixed offset
// (hpa = gpa + hpa_offset), the static second level. Costs are parameters; the host unit's
// invalidation (queue write, execution, wait) is timed by the unit itself through `submit`.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/dma_mapper.h"
#include "core/expectation.h"
#include "core/stats.h"
#include "core/time.h"
#include "iova_space.h"
#include "vtd_driver.h"

namespace iommusim {

enum class ViommuMode : uint8_t { None, Shadow, Nested, NestedDirect, ParavirtSpapr };

template <>
struct EnumParam<ViommuMode> {
    static std::optional<ViommuMode> parse(std::string_view s);
    static std::string name(ViommuMode m);
    static std::vector<ViommuMode> values() {
        return {ViommuMode::None, ViommuMode::Shadow, ViommuMode::Nested, ViommuMode::NestedDirect,
                ViommuMode::ParavirtSpapr};
    }
};

// system.<device>.viommu.*: which path and what each step costs (docs/viommu.md cites the
// sources of the defaults).
struct ViommuParams {
    ViommuMode mode = ViommuMode::None;
    Addr hpa_offset = Addr(4) << 30;  // host physical = guest physical + this
    // Sources and derivations of every default: docs/viommu.md, "Parameters and sources".
    bool guest_strict = true;               // the guest's iommu.strict (shadow and nested)
    uint32_t guest_fq_entries = 256;        // Linux dma-iommu IOVA_FQ_SIZE
    uint64_t guest_fq_timeout_us = 10'000;  // Linux dma-iommu IOVA_FQ_TIMEOUT (10 ms)
    uint64_t host_page_size = 4096;         // the host IOMMU's IO page (must divide the guest's)
    // A guest MMIO write trapped to QEMU and back: 8 796 cycles (kvm-unit-tests vmexit,
    // mmio-no-eventfd, in QEMU's pci-testdev commit) = 2.93 us at 3 GHz.
    double vm_exit_ns = 2932;
    double guest_map_ns = 150;    // = the host's driver.map_ns: the same Linux code in the guest
    double guest_unmap_ns = 150;  // = the host's driver.unmap_ns
    double guest_inv_submit_ns = 100;  // two descriptor stores and the tail write (estimate)
    double vmm_read_ns = 60;  // QEMU dma_memory_read of one guest PTE: cached line (estimate)
    // VFIO_IOMMU_MAP_DMA of one 4 KiB page: ioctl entry and exit 0.384 us (LKML 2020-12) +
    // pin and iommu_map 63.9 ns (16 GiB populated in 0.268 s: Linux f6c84a52cc41) + 0.1 us
    // per-call work the bulk figure amortizes (estimate) - the PTE (host_pte_ns).
    double host_map_ns = 538;
    // VFIO_IOMMU_UNMAP_DMA likewise: 0.384 + 0.0732 (16 GiB in 0.307 s: d14de5b92578) + 0.1
    // - 0.01 us; the IOTLB flush is the host unit's queue, simulated.
    double host_unmap_ns = 547;
    double host_pte_ns = 10;        // one 8-byte store to a cached line (coherent unit: no clflush)
    double passdown_ns = 500;       // IOMMU_HWPT_INVALIDATE: ioctl 0.38 us + request copy/convert
    double direct_submit_ns = 100;  // one posted MMIO doorbell write to the guest's VCMDQ page
    double hcall_ns = 2932;         // guest -> QEMU hcall dispatch -> guest, as vm_exit_ns
    double hcall_tce_ns = 70;       // QEMU reads one TCE from the list page (vmm_read_ns) + store
    uint64_t dma32_size = Addr(1) << 30;  // sPAPR default window at bus address 0
    uint32_t dma32_page_shift = 12;
    uint64_t ddw_size = 0;  // sPAPR DDW (0: none); the guest maps through it
    uint32_t ddw_page_shift = 16;
    Addr ddw_base = Addr(1) << 59;  // where the guest asks for its DDW
    bool ddw_relocate = true;       // offer the DDW at a base the host permits

    template <typename V>
    void visit(V&& v) {
        v("mode", mode, "",
          "guest IOMMU emulation: none, shadow, nested, nested-direct or paravirt-spapr", 0, 4);
        v("hpa_offset", hpa_offset, "bytes",
          "host physical = guest physical + this (the VM's RAM, 1 GiB aligned)", Addr(0),
          Addr(1) << 52);
        v("guest_strict", guest_strict, "",
          "the guest's iommu.strict (shadow and nested paths; sPAPR guests are strict)", 0, 1);
        v("guest_fq_entries", guest_fq_entries, "entries", "lazy guest: flush-queue size", 1,
          1 << 20);
        v("guest_fq_timeout_us", guest_fq_timeout_us, "us", "lazy guest: flush-queue timeout", 1,
          uint64_t(1) << 32);
        v("host_page_size", host_page_size, "bytes",
          "the host IOMMU's IO page size (must divide the guest's page)", 4096, uint64_t(1) << 30);
        v("vm_exit_ns", vm_exit_ns, "ns", "VM exit and entry round trip to the VMM", 0.0, 1e9);
        v("guest_map_ns", guest_map_ns, "ns", "guest dma_map software cost", 0.0, 1e9);
        v("guest_unmap_ns", guest_unmap_ns, "ns", "guest dma_unmap software cost", 0.0, 1e9);
        v("guest_inv_submit_ns", guest_inv_submit_ns, "ns",
          "guest writes its invalidation descriptors and the queue tail", 0.0, 1e9);
        v("vmm_read_ns", vmm_read_ns, "ns", "shadow: VMM reads one guest table entry", 0.0, 1e9);
        v("host_map_ns", host_map_ns, "ns", "one host map call (VFIO/iommufd)", 0.0, 1e9);
        v("host_unmap_ns", host_unmap_ns, "ns", "one host unmap call, without invalidation", 0.0,
          1e9);
        v("host_pte_ns", host_pte_ns, "ns", "one host page-table entry written", 0.0, 1e9);
        v("passdown_ns", passdown_ns, "ns", "nested: VMM passes one guest invalidation to the host",
          0.0, 1e9);
        v("direct_submit_ns", direct_submit_ns, "ns",
          "nested-direct: guest writes its hardware invalidation queue", 0.0, 1e9);
        v("hcall_ns", hcall_ns, "ns", "sPAPR: one hypercall entry and exit", 0.0, 1e9);
        v("hcall_tce_ns", hcall_tce_ns, "ns", "sPAPR: per TCE handled by a hypercall", 0.0, 1e9);
        v("dma32_size", dma32_size, "bytes", "sPAPR: default 32-bit window size at bus 0",
          uint64_t(1) << 16, uint64_t(1) << 32);
        v("dma32_page_shift", dma32_page_shift, "", "sPAPR: default window TCE page shift", 12, 30);
        v("ddw_size", ddw_size, "bytes", "sPAPR: dynamic DMA window size (0: none)", 0,
          uint64_t(1) << 62);
        v("ddw_page_shift", ddw_page_shift, "", "sPAPR: DDW TCE page shift", 12, 30);
        v("ddw_base", ddw_base, "bytes", "sPAPR: bus address the guest asks for its DDW at",
          Addr(0), ~Addr(0));
        v("ddw_relocate", ddw_relocate, "",
          "sPAPR: offer a DDW the host cannot take at a base it permits (else fail)", 0, 1);
    }
};

// The host side a vIOMMU works on: the host unit's driver model, the device's host domain
// (second level, attached to its requester) and how the driver's queued invalidations reach
// the unit (returns when the unit has executed them; the platform's queue feeder).
struct ViommuHost {
    vtd::Driver* drv = nullptr;
    uint16_t did = 0;
    uint16_t rid = 0;
    std::function<Tick(Tick)> submit;
};

// The host's permitted IOVA ranges, for the sPAPR window check.
struct HostIovaLimits {
    unsigned width = 48;               // input addresses below 2^width
    std::vector<IovaRegion> reserved;  // x86 MSI range and the like
    uint64_t page_size = 4096;         // host IO page
};
HostIovaLimits host_iova_limits(const vtd::Driver& drv, uint64_t host_page_size);

// Where a guest window of `size` bytes asked for at `base` with 2^page_shift TCE pages goes
// on the host: `base` when it fits, else (if `relocate`) the lowest size-aligned base at or
// above 4 GiB that fits; nullopt and `why` when none does or the pages are incompatible.
std::optional<Addr> place_guest_window(const char* what, Addr base, Addr size, unsigned page_shift,
                                       const HostIovaLimits& host, bool relocate, std::string* why);

class Viommu {
public:
    virtual ~Viommu() = default;
    // nullopt-like null and `why` when the host cannot take this guest.
    static std::unique_ptr<Viommu> create(const ViommuParams& p, const ViommuHost& host,
                                          StatGroup& stats, std::string* why);

    // Guest boot: a long-lived mapping (rings, pools) of host memory [hpa, + len): its IOVA.
    virtual std::optional<Addr> map_long(Addr hpa, uint64_t len, std::string* why) = 0;
    // Guest boot: a mapping at a fixed IOVA (benchmark buffers).
    virtual bool map_at(Addr iova, Addr hpa, uint64_t len, std::string* why) = 0;
    // The guest's dma_map / dma_unmap at `at` (host addresses in, as the platform gives them).
    virtual std::optional<DmaMapper::Mapped> map(Addr hpa, uint64_t len, bool write, Tick at) = 0;
    virtual Tick unmap(Addr iova, uint64_t len, Tick at) = 0;
    // The guest driver's intent for `iova`, in host physical terms (the oracle of tests).
    virtual Expectation guest_intent(Addr iova) const = 0;
    // Where the guest's default window's and DDW's IOVAs lie on the host (sPAPR; else empty).
    virtual std::vector<IovaRegion> windows() const { return {}; }

    // A DmaMapper over this vIOMMU (the device's DMA API inside the guest).
    std::unique_ptr<DmaMapper> dma_api();

protected:
    Viommu(const ViommuParams& p, const ViommuHost& host, StatGroup& g);
    Tick ns(double v) const { return ticks_from_ns(v); }
    // The guest's dma_map answer: a failure or a map counted, its cost (`at` to `done`) recorded.
    std::optional<DmaMapper::Mapped> counted_map(std::optional<Addr> iova, Tick at, Tick done);
    // Host address -> guest physical (nullopt below the VM's RAM).
    std::optional<Addr> gpa_of(Addr hpa, std::string* why) const;
    // The same for [hpa, + len), which must not touch the x86 MSI hole (not RAM).
    std::optional<Addr> gpa_of(Addr hpa, uint64_t len, std::string* why) const;

    ViommuParams p_;
    ViommuHost host_;
    struct Stats {
        Counter &exits_inv, &exits_hcall, &guest_maps, &guest_unmaps, &map_failures;
        Counter &shadow_maps, &shadow_unmaps, &vmm_reads, &passed_down, &direct_inv;
        Counter &guest_inv, &hcalls_put, &hcalls_indirect, &hcalls_stuff, &tces;
        Histogram &inv_latency, &map_cost, &unmap_cost;
        explicit Stats(StatGroup& g);
    } st_;
};

}  // namespace iommusim
