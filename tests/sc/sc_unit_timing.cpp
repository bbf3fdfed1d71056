// SystemC bench: a device initiator -> IOMMU unit -> memory, VT-d legacy tables built by the
// driver model. End-to-end DMA latency equals the translation cycles plus the data access;
// faults come back as error responses and the simulation goes on; data lands at the
// translated address; DMAs crossing pages are split; debug access goes through translation.
#include <systemc>

#include "arch/vtd/vtd_walker.h"
#include "host/vtd_driver.h"
#include "iommu/iommu_unit.h"
#include "memory/fixed_memory.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;

namespace {
constexpr uint64_t kMemNs = 80;   // walk-memory latency
constexpr uint64_t kDataNs = 60;  // data-memory latency
const Requester kDev = Requester::bdf(0, 5, 0);

struct Bench : sc_module {
    SparseMemory store;
    vtd::Driver drv{store, {}};
    vtd::VtdWalker walker{drv.hw()};
    StatGroup stats{"iommu0"};
    test::Initiator dev{"dev"};
    IommuUnit unit;
    FixedMemory data{"data", store, sc_time(kDataNs, SC_NS)};
    FixedMemory tables{"tables", store, sc_time(kMemNs, SC_NS)};
    test::Checker check{test::Checker::Where::Thread};
    int faults_seen = 0;
    uint16_t did = 0;

    SC_HAS_PROCESS(Bench);
    explicit Bench(sc_module_name n) : sc_module(n), unit("unit", UnitParams{}, walker, stats) {
        dev.socket.bind(unit.upstream);
        unit.downstream.bind(data.target);
        unit.walk.bind(tables.target);
        unit.on_fault(
            [this](const Fault&, const Requester&, Addr, Access, Tick) { ++faults_seen; });
        did = *drv.create_domain({});
        drv.attach(kDev.rid, did);
        drv.map(did, 0x10'0000, 0x3'0000'0000, 0x3000, kPermRW);
        drv.map(did, 0x20'0000, 0x3'1000'0000, 0x1000, kPermR);
        SC_THREAD(run);
    }

    void run() {
        tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_time(1, SC_US));
        dev.qk.reset();
        const UnitParams p;
        const uint64_t read = p.walk_step_cycles + kMemNs;  // cycles = ns at 1 GHz
        uint8_t buf[256] = {};
        sc_time lat;

        auto st = dev.dma(kDev, 0x10'0040, buf, 64, false, &lat);
        check(st == tlm::TLM_OK_RESPONSE, "cold read succeeds");
        const uint64_t cold = p.context_cache.latency + 2 * read + p.iotlb.latency + 4 * read;
        check(lat == sc_time(double(cold + kDataNs), SC_NS),
              fmt::format("cold miss latency {} == {} ns", lat.to_string(), cold + kDataNs));

        st = dev.dma(kDev, 0x10'0080, buf, 64, false, &lat);
        const uint64_t hit = p.context_cache.latency + p.iotlb.latency;
        check(lat == sc_time(double(hit + kDataNs), SC_NS),
              fmt::format("hit latency {}", lat.to_string()));

        for (int i = 0; i < 64; ++i) buf[i] = uint8_t(i ^ 0x5a);
        st = dev.dma(kDev, 0x10'1ff0, buf, 64, true, &lat);  // crosses into the next page
        check(st == tlm::TLM_OK_RESPONSE, "page-crossing write succeeds");
        uint8_t got[64];
        store.read(0x3'0000'1ff0, got, 16);
        store.read(0x3'0000'2000, got + 16, 48);
        check(std::equal(got, got + 64, buf), "write data lands at the translated addresses");
        check(stats.counter("page_splits", "").value() == 1, "the crossing DMA was split");

        st = dev.dma(kDev, 0x20'0000, buf, 8, true, &lat);  // read-only page
        check(st == tlm::TLM_ADDRESS_ERROR_RESPONSE, "write to a read-only page faults");
        st = dev.dma(kDev, 0x90'0000, buf, 8, false, &lat);  // unmapped
        check(st == tlm::TLM_ADDRESS_ERROR_RESPONSE, "unmapped IOVA faults");
        st = dev.dma(Requester::bdf(3, 0, 0), 0x10'0000, buf, 8, false, &lat);  // no context
        check(st == tlm::TLM_ADDRESS_ERROR_RESPONSE, "unattached device faults");
        check(faults_seen == 3, "every fault reached the fault hook");
        uint8_t small[8];
        st = dev.dma(kDev, 0x10'0000, small, 8, false, &lat);
        check(st == tlm::TLM_OK_RESPONSE, "translation continues after faults");

        uint8_t dbg[32] = {};
        check(dev.dbg(kDev, 0x10'1ff0, dbg, 32) == 32, "debug read through translation");
        check(std::equal(dbg, dbg + 32, buf), "debug read returns the written bytes");
        check(dev.dbg(kDev, 0x90'0000, dbg, 8) == 0,
              "debug read of an unmapped IOVA reads nothing");
        check(stats.counter("faults", "").value() == 3, "faults counted");
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
