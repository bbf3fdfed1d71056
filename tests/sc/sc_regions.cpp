// SystemC bench: DMA address spaces made of several regions and two translation units. A
// POWER-like device has a 1 GiB 32-bit TCE window at 0 and a 64-bit DDW at 2^59, both
// translated by a PHB (sPAPR unit); an x86-like device has a translated window below 4 GiB
// (VT-d unit) with the MSI hole reserved, and a large direct-mapped bypass window. DMAs land
// where the driver mapped them; holes and gaps get error completions.
#include <systemc>

#include "arch/spapr/spapr_walker.h"
#include "arch/vtd/vtd_walker.h"
#include "host/spapr_driver.h"
#include "host/vtd_driver.h"
#include "iommu/iommu_unit.h"
#include "iommu/region_router.h"
#include "memory/fixed_memory.h"
#include "memory/mux.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;
using K = DmaRegion::Kind;

namespace {
const Requester kPower = Requester::bdf(1, 0, 0), kX86 = Requester::bdf(2, 0, 0);

struct Bench : sc_module {
    SparseMemory store;
    spapr::Driver phb_drv{store, {}};
    vtd::Driver vtd_drv{store, {}};
    spapr::SpaprWalker phb_walker{phb_drv.phb()};
    vtd::VtdWalker vtd_walker{vtd_drv.hw()};
    StatGroup stats{"system"};
    test::Initiator dev{"dev"};
    RegionRouter router{"router", stats.child("router")};
    IommuUnit phb{"phb", UnitParams{}, phb_walker, stats.child("phb0")};
    IommuUnit vtd{"vtd", UnitParams{}, vtd_walker, stats.child("iommu0")};
    Mux data_mux{"data_mux"}, walk_mux{"walk_mux"};
    FixedMemory data{"data", store, sc_time(50, SC_NS)};
    FixedMemory tables{"tables", store, sc_time(80, SC_NS)};
    test::Checker check{test::Checker::Where::Thread};

    SC_HAS_PROCESS(Bench);
    explicit Bench(sc_module_name n) : sc_module(n) {
        dev.socket.bind(router.upstream);
        router.units.bind(phb.upstream);  // unit 0
        router.units.bind(vtd.upstream);  // unit 1
        router.bypass.bind(data_mux.inputs);
        phb.downstream.bind(data_mux.inputs);
        vtd.downstream.bind(data_mux.inputs);
        data_mux.output.bind(data.target);
        phb.walk.bind(walk_mux.inputs);
        vtd.walk.bind(walk_mux.inputs);
        walk_mux.output.bind(tables.target);

        uint16_t pe = *phb_drv.create_pe();
        phb_drv.assign(kPower.rid, pe);
        phb_drv.create_ddw(pe, Addr(64) << 30, 16, 2);
        phb_drv.map(pe, 0x10'0000, 0x1'0000'0000, 0x1000, kPermRW);
        phb_drv.map(pe, spapr::kDdwBusOffset + 0x20'0000, 0x2'0000'0000, 0x1'0000, kPermRW);
        uint16_t did = *vtd_drv.create_domain({});
        vtd_drv.attach(kX86.rid, did);
        vtd_drv.map(did, 0x30'0000, 0x3'0000'0000, 0x1000, kPermRW);

        check(router
                  .set_regions(kPower.rid,
                               {{"dma32", 0, Addr(1) << 30, K::Translate, 0, 0},
                                {"ddw", spapr::kDdwBusOffset, Addr(64) << 30, K::Translate, 0, 0}})
                  .empty(),
              "POWER regions accepted");
        check(
            router
                .set_regions(kX86.rid, {{"low", 0, 0xFEE0'0000, K::Translate, 1, 0},
                                        {"msi", 0xFEE0'0000, 0x10'0000, K::Reserved, 0, 0},
                                        {"low-hi", 0xFEF0'0000, 0x110'0000, K::Translate, 1, 0},
                                        {"direct", Addr(1) << 40, Addr(1) << 40, K::Bypass, 0, 0}})
                .empty(),
            "x86 regions accepted");
        check(!router
                   .set_regions(kX86.rid, {{"a", 0, 0x2000, K::Bypass, 0, 0},
                                           {"b", 0x1000, 0x1000, K::Bypass, 0, 0}})
                   .empty(),
              "overlapping regions rejected");
        SC_THREAD(run);
    }

    bool write_lands(const Requester& r, Addr bus, Addr phys, uint8_t v) {
        uint8_t b[8] = {v, v, v, v, v, v, v, v}, got[8] = {};
        if (dev.dma(r, bus, b, 8, true) != tlm::TLM_OK_RESPONSE) return false;
        store.read(phys, got, 8);
        return std::equal(b, b + 8, got);
    }

    void run() {
        tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_time(1, SC_US));
        dev.qk.reset();
        uint8_t b[8] = {};
        check(write_lands(kPower, 0x10'0040, 0x1'0000'0040, 1),
              "POWER 32-bit window translated by the PHB");
        check(write_lands(kPower, spapr::kDdwBusOffset + 0x20'1230, 0x2'0000'1230, 2),
              "POWER 64-bit window translated by the PHB");
        check(dev.dma(kPower, Addr(2) << 30, b, 8, false) == tlm::TLM_ADDRESS_ERROR_RESPONSE,
              "POWER: between the windows is an error");
        check(write_lands(kX86, 0x30'0100, 0x3'0000'0100, 3), "x86 low window translated by VT-d");
        check(write_lands(kX86, (Addr(1) << 40) + 0x5'0000'0000, 0x5'0000'0000, 4),
              "x86 bypass window direct-mapped");
        check(dev.dma(kX86, 0xFEE0'0000, b, 4, true) == tlm::TLM_ADDRESS_ERROR_RESPONSE,
              "x86 MSI hole is reserved");
        check(dev.dma(kX86, 0x1'0000'0000, b, 8, false) == tlm::TLM_ADDRESS_ERROR_RESPONSE,
              "x86 outside every region");
        check(dev.dma(kX86, 0xFEDF'FFFC, b, 8, false) == tlm::TLM_ADDRESS_ERROR_RESPONSE,
              "a DMA straddling two regions is an error");
        check(stats.child("phb0").counter("translations", "").value() == 2,
              "the PHB translated the POWER DMAs");
        check(stats.child("iommu0").counter("translations", "").value() == 1,
              "VT-d translated the x86 DMA");
        StatGroup& r = stats.child("router");
        check(r.counter("bypassed", "").value() == 1 && r.counter("reserved", "").value() == 1 &&
                  r.counter("outside", "").value() == 3,
              "router counted bypass, reserved and outside DMAs");
        // The router remembers the last region it found: new regions must still apply at once.
        check(write_lands(kX86, 0x30'0200, 0x3'0000'0200, 5), "x86 low window, twice in a row");
        check(write_lands(kX86, 0x30'0300, 0x3'0000'0300, 6), "x86 low window, twice in a row");
        check(router.set_regions(kX86.rid, {{"hole", 0, 0x100'0000, K::Reserved, 0, 0}}).empty(),
              "x86 regions replaced");
        check(dev.dma(kX86, 0x30'0300, b, 8, false) == tlm::TLM_ADDRESS_ERROR_RESPONSE,
              "the replaced window is a reserved hole now");
        // The router calls a unit bound straight to it directly (the attributes read once);
        // any other target, direct socket or not, through its interface.
        check(IommuUnit::behind(&phb.upstream.get_base_interface()) == &phb &&
                  IommuUnit::behind(&vtd.upstream.get_base_interface()) == &vtd,
              "a unit's upstream interface leads to the unit");
        check(!IommuUnit::behind(&data_mux.inputs.get_base_interface()) &&
                  !IommuUnit::behind(&data.target.get_base_interface()),
              "a multiplexer's or a memory's interface leads to no unit");
        dev.qk.sync();
        check.reached_end();
    }
};
}  // namespace

int sc_main(int, char*[]) {
    Bench b("bench");
    sc_start();
    return b.check.finish();
}
