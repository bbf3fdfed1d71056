// Shared rig of the ATS/PRI benches: a VT-d unit in scalable mode brought up as Linux does,
// its driver model and invalidation queue, a DMA engine whose requests go through a
// function's ATS agent, a raw initiator beside it (both into the unit through a mux), data
// and table memory of fixed latency, and message paths of fixed latency between the unit and
// the function (so that every time is a sum the bench can predict).
#pragma once
#include <functional>
#include <systemc>
#include <vector>

#include "arch/vtd/vtd_invdesc.h"
#include "arch/vtd/vtd_regs.h"
#include "bundles/vtd/vtd_iommu.h"
#include "devices/ats_agent.h"
#include "devices/dma_engine.h"
#include "host/vtd_driver.h"
#include "host/vtd_inv_queue.h"
#include "memory/fixed_memory.h"
#include "memory/mux.h"
#include "sc_harness.h"
#include "sc_vtd_scalable.h"

namespace iommusim::test {

namespace reg = vtd::reg;

constexpr Tick kDown = 200 * kTicksPerNs;  // unit -> function message
constexpr Tick kUp = 150 * kTicksPerNs;    // function -> unit message
constexpr Tick kDataNs = 50, kTablesNs = 90;

struct AtsRig : sc_core::sc_module, ScalableVtd {
    StatGroup stats{"iommu0"};
    StatGroup dev_stats{"dev"};
    VtdIommu iommu;
    Mux mux{"mux"};
    DmaEngine engine;
    AtsAgent agent;
    Initiator raw{"raw"};
    FixedMemory data{"data", store, sc_core::sc_time(double(kDataNs), sc_core::SC_NS)};
    FixedMemory tables{"tables", store, sc_core::sc_time(double(kTablesNs), sc_core::SC_NS)};
    Checker check{Checker::Where::Thread};
    size_t submitted = 0;
    uint32_t seq = 0;
    sc_core::sc_event dma_done;
    DmaResult last;
    uint64_t ids = 0;

    AtsRig(sc_core::sc_module_name n, const Requester& function, const AtsParams& ap)
        : sc_module(n),
          iommu("iommu", vtd::RegFileConfig::scalable_unit(), drv.hw(), UnitParams{}, stats),
          engine("engine", DmaEngineParams{}, dev_stats.child("engine")),
          agent("ats", ap, function, dev_stats.child("ats")) {
        engine.dma.bind(mux.inputs);
        raw.socket.bind(mux.inputs);
        mux.output.bind(iommu.unit().upstream);
        wire(iommu, data, tables);
        engine.set_ats(&agent);
        engine.on_complete([this](const DmaTransfer&, const DmaResult& r) {
            last = r;
            dma_done.notify(sc_core::SC_ZERO_TIME);
        });
    }

    static ats::Path fixed_path() {
        return {[](Tick t, unsigned) { return t + kDown; },
                [](Tick t, unsigned) { return t + kUp; }};
    }
    void wait_until(Tick t) {
        const Tick now = sim_now();
        if (t != kNever && t > now) sc_core::wait(to_sc_time(t - now));
    }

    // intel-iommu's bring-up: root table (scalable mode), queued invalidation, translation.
    void bring_up() { wait_until(enable(iommu, sim_now())); }

    // The driver's descriptors since the last call, then `extra`, then a wait descriptor with
    // a status write; returns whether its status arrived (qi_submit_sync).
    bool submit(const std::vector<vtd::InvDesc>& extra = {}) {
        const auto& all = drv.descriptors();
        std::vector<vtd::InvDesc> batch(all.begin() + long(submitted), all.end());
        submitted = all.size();
        batch.insert(batch.end(), extra.begin(), extra.end());
        batch.push_back(vtd::inv_wait(kStatus, ++seq));
        const auto iqt = queue.append(batch, iommu.mmio_read(reg::IQH, 8));
        check(bool(iqt), "descriptors fit in the queue");
        if (!iqt) return false;
        const Tick done = iommu.mmio_write(reg::IQT, 8, *iqt, sim_now());
        if (done != kNever && done < sim_now() + Tick(1) * 1'000'000'000) wait_until(done);
        uint32_t status = 0;
        for (int spins = 0; spins < 20; ++spins) {
            store.read(kStatus, &status, 4);
            if (status == seq) return true;
            sc_core::wait(sc_core::sc_time(100, sc_core::SC_NS));
        }
        return false;
    }

    // One DMA through the engine (and so the agent); returns when it has completed.
    DmaResult dma(const Requester& req, Addr iova, bool write, uint8_t* buf, uint64_t len) {
        DmaTransfer t;
        t.req = req;
        t.iova = iova;
        t.length = len;
        t.write = write;
        t.data = buf;
        t.id = ++ids;
        engine.submit(t);
        sc_core::wait(dma_done);
        wait_until(last.done);
        return last;
    }

    uint64_t counter(StatGroup& g, const char* path) {
        // "a.b.c": groups then the counter.
        std::string p(path);
        StatGroup* cur = &g;
        for (size_t dot; (dot = p.find('.')) != std::string::npos; p = p.substr(dot + 1))
            cur = &cur->child(p.substr(0, dot));
        return cur->counter(p, "").value();
    }
};

}  // namespace iommusim::test
