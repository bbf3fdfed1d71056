// Functional walk speed: every walk starts cold (root, context and every level read from
// the sparse memory; the functional model has no translation caches).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "arch/vtd/vtd_walker.h"
#include "host/vtd_driver.h"

using namespace iommusim;
using namespace iommusim::vtd;

namespace {

struct VtdSetup {
    SparseMemory mem;
    std::unique_ptr<Driver> drv;
    std::vector<Addr> iovas;
    Requester req = Requester::bdf(0, 2, 0);

    // 4096 scattered 4 KiB mappings in one domain (a 16 MiB footprint over 1 TiB of IOVA).
    VtdSetup(bool scalable, Stage stage, bool nested) {
        DriverConfig cfg;
        cfg.hw.scalable = scalable;
        drv = std::make_unique<Driver>(mem, cfg);
        DomainOptions opt;
        opt.stage = stage;
        uint16_t did = *drv->create_domain(opt);
        if (nested) {
            drv->map(did, 0, Addr(4) << 30, Addr(3) << 30, kPermRW);
            did = *drv->create_nested_domain(did, {});
        }
        drv->attach(req.rid, did);
        std::mt19937_64 rng(1);
        while (iovas.size() < 4096) {
            Addr iova = (rng() % (Addr(1) << 40)) & ~Addr(0xFFF);
            Addr pa = nested ? (rng() % (Addr(3) << 30)) & ~Addr(0xFFF)
                             : (rng() % (Addr(1) << 36)) & ~Addr(0xFFF);
            if (drv->map(did, iova, pa, 4096, kPermRW)) iovas.push_back(iova + 0x10);
        }
    }
};

void run(benchmark::State& state, VtdSetup& s, const char* counter) {
    VtdWalker w(s.drv->hw());
    size_t i = 0;
    uint64_t sum = 0, reads = 0;
    for (auto _ : state) {
        const WalkResult& r = walk_functional(w, s.mem, s.req, s.iovas[i++ & 4095], Access::Read);
        sum += r.tr.out;
        reads += r.reads;
    }
    if (sum == 0) state.SkipWithError("walks failed");
    benchmark::DoNotOptimize(sum);
    state.counters[counter] =
        benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["reads/walk"] = double(reads) / double(state.iterations());
}

void BM_VtdLegacy4Cold(benchmark::State& state) {
    static VtdSetup s(false, Stage::SecondLevel, false);
    run(state, s, "walks/s");
}
void BM_VtdScalableFl4Cold(benchmark::State& state) {
    static VtdSetup s(true, Stage::FirstLevel, false);
    run(state, s, "walks/s");
}
void BM_VtdNestedCold(benchmark::State& state) {
    static VtdSetup s(true, Stage::SecondLevel, true);
    run(state, s, "walks/s");
}

}  // namespace

BENCHMARK(BM_VtdLegacy4Cold)->Name("core.walk.vtd4_cold");
BENCHMARK(BM_VtdScalableFl4Cold)->Name("core.walk.vtd_fl4_cold");
BENCHMARK(BM_VtdNestedCold)->Name("core.walk.vtd_nested_cold");

#include "arch/spapr/spapr_walker.h"
#include "host/spapr_driver.h"

namespace {
// sPAPR: a 64 GiB DDW of 64 KiB TCEs in a two-level table, 4096 scattered mappings.
void BM_SpaprDdwCold(benchmark::State& state) {
    static SparseMemory mem;
    static spapr::Driver drv(mem, {});
    static std::vector<Addr> iovas;
    static const Requester req = Requester::bdf(1, 0, 0);
    if (iovas.empty()) {
        uint16_t pe = *drv.create_pe();
        drv.assign(req.rid, pe);
        drv.create_ddw(pe, Addr(64) << 30, 16, 2);
        std::mt19937_64 rng(2);
        while (iovas.size() < 4096) {
            Addr iova = spapr::kDdwBusOffset + ((rng() % (Addr(64) << 30)) & ~Addr(0xFFFF));
            if (drv.map(pe, iova, (rng() % (Addr(1) << 36)) & ~Addr(0xFFFF), 0x10000, kPermRW))
                iovas.push_back(iova + 0x10);
        }
    }
    spapr::SpaprWalker w(drv.phb());
    size_t i = 0;
    uint64_t sum = 0;
    for (auto _ : state)
        sum += walk_functional(w, mem, req, iovas[i++ & 4095], Access::Read).tr.out;
    if (sum == 0) state.SkipWithError("walks failed");
    benchmark::DoNotOptimize(sum);
    state.counters["walks/s"] =
        benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
}  // namespace
BENCHMARK(BM_SpaprDdwCold)->Name("core.walk.spapr_cold");
