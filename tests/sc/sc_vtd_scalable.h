// What the ATS/PRI and SVA benches share: the host side of one VT-d unit in scalable mode (table
// memory, the driver model, the invalidation queue), how they wire the unit to memory, bring it
// up and give a function SVA, and how each bench's sc_main runs it.
#pragma once
#include <systemc>

#include "bundles/vtd/vtd_iommu.h"
#include "bundles/vtd/vtd_sva.h"
#include "host/vtd_bringup.h"
#include "host/vtd_driver.h"
#include "host/vtd_inv_queue.h"
#include "memory/fixed_memory.h"

namespace iommusim::test {

constexpr Addr kQueueBase = Addr(80) << 30, kStatus = Addr(81) << 30, kPrqBase = Addr(82) << 30;
constexpr Addr kFrames = Addr(4) << 30;  // SVA process tables, upward from here

struct ScalableVtd {
    SparseMemory store;
    vtd::Driver drv{store, [] {
                        vtd::DriverConfig c;
                        c.hw.scalable = true;
                        return c;
                    }()};
    vtd::InvQueueWriter queue{store, kQueueBase, 0, true};
    Addr next_frame = kFrames;

    // The unit's data and table memory; and, as the bundle does, attaching a function enables
    // ATS (and PRI) in its context entry.
    void wire(VtdIommu& iommu, FixedMemory& data, FixedMemory& tables) {
        iommu.unit().downstream.bind(data.target);
        iommu.unit().walk.bind(tables.target);
        iommu.unit().on_attach_function([this](const Requester& r, bool pri) {
            vtd::enable_device_tlb(store, drv.hw(), r.rid, pri);
        });
    }
    // The bundle's bring-up writes, all issued at `at`; returns when the last one completes.
    Tick enable(VtdIommu& iommu, Tick at) {
        return vtd::enable_unit(iommu, drv.hw().rtaddr, true, queue.iqa(), at,
                                vtd::WriteOrder::AtOnce);
    }
    // SVA for function `fn`: a domain for its requests without PASID, then its process
    // address spaces on `host`.
    SvaSpaces* sva_spaces(VtdSvaHost& host, const Requester& fn) {
        drv.attach(fn.rid, *drv.create_domain({}));
        return host.spaces(fn.rid, [this](uint64_t len) {
            const Addr a = next_frame;
            next_frame += len;
            return a;
        });
    }
};

// sc_main of a bench whose module B("bench") checks in its thread: run it, then its verdict.
template <typename B>
int run_bench() {
    B b("bench");
    sc_core::sc_start();
    return b.check.finish();
}

}  // namespace iommusim::test
