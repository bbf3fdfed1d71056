// Seeded property test of invalidation through the timed unit: DMA-API style map/unmap by
// the driver model, every invalidation it issues executed by the unit, and >= 10^5 DMAs
// compared with the driver's intent. Strict mode: no wrong translation, no stale hit. Lazy
// mode: stale hits happen, and only for IOVAs whose invalidation is still deferred.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "arch/vtd/vtd_walker.h"
#include "host/vtd_driver.h"
#include "iommu/translation_unit.h"
#include "support/property.h"

using namespace iommusim;
using test::Rng;

namespace {

struct Buf {
    uint16_t did;
    Addr iova, size;
};

struct Result {
    uint64_t dmas = 0, wrong = 0, stale = 0, stale_outside_window = 0, hits = 0;
};

Result run(bool strict, bool scalable, uint64_t seed, uint64_t ops) {
    Rng rng(seed);
    SparseMemory mem;
    vtd::DriverConfig cfg;
    cfg.hw.scalable = scalable;
    cfg.strict = strict;
    cfg.lazy.entries = 64;
    cfg.lazy.timeout_ns = 200'000;
    vtd::Driver drv(mem, cfg);
    vtd::VtdWalker walker(drv.hw());
    FixedLatencyMemory port(mem, 80'000);
    StatGroup stats("iommu");
    UnitParams p;
    p.iotlb = {32, 4, Replacement::LRU, 2};  // small: evictions and refills too
    TranslationUnit unit(p, walker, port, stats);
    unit.set_oracle([&](const Requester& r, Addr a) { return drv.expect(r, a); });

    std::vector<uint16_t> dids;
    std::vector<Requester> devs;
    for (int i = 0; i < 3; ++i) {
        vtd::DomainOptions o;
        o.stage = scalable && i == 2 ? vtd::Stage::FirstLevel : vtd::Stage::SecondLevel;
        dids.push_back(*drv.create_domain(o));
        devs.push_back(Requester::bdf(1, uint8_t(i), 0));
        REQUIRE(drv.attach(devs.back().rid, dids.back()));
    }
    std::vector<Buf> live, dead;
    size_t applied = 0;
    Tick now = 0;
    Result res;
    for (uint64_t step = 0; step < ops; ++step) {
        now += 1000 * rng.range(100, 3000);  // 0.1-3 us between driver operations
        const size_t d = rng.below(dids.size());
        if (live.size() < 8 || rng.chance(50)) {
            Addr size = 4096 * rng.range(1, rng.chance(10) ? 600 : 8);
            if (auto iova = drv.map_alloc(dids[d], Addr(rng.below(1 << 22)) << 12, size, kPermRW))
                live.push_back({dids[d], *iova, size});
        } else {
            size_t i = rng.below(live.size());
            drv.unmap_free(live[i].did, live[i].iova, live[i].size, now / 1000);
            dead.push_back(live[i]);
            if (dead.size() > 64) dead.erase(dead.begin());
            live[i] = live.back();
            live.pop_back();
        }
        drv.tick(now / 1000);
        // The unit executes what the driver queued, in order.
        const auto& inv = drv.invalidations();
        for (; applied < inv.size(); ++applied) unit.invalidate(inv[applied], now);
        for (int k = 0; k < 3; ++k) {
            const bool use_dead = !dead.empty() && rng.chance(30);
            const Buf& b = use_dead ? dead[rng.below(dead.size())] : live[rng.below(live.size())];
            size_t dev = 0;
            while (dids[dev] != b.did) ++dev;
            const Requester req = devs[dev];
            // Mostly the first pages of a buffer (headers, descriptors), sometimes anywhere.
            const Addr iova =
                b.iova + rng.below(rng.chance(70) ? std::min<Addr>(b.size, 8192) : b.size);
            const Access acc = rng.chance(50) ? Access::Read : Access::Write;
            TranslateOutcome o = unit.translate(req, iova, acc, now + 1000 * k);
            ++res.dmas;
            res.hits += o.iotlb_hit;
            if (o.stale) {
                ++res.stale;
                if (!drv.in_flush_window(b.did, iova & ~Addr(0xFFF))) ++res.stale_outside_window;
            } else if (!check_translation(o.result, drv.expect(req, iova), acc, false).empty()) {
                ++res.wrong;
            }
        }
    }
    return res;
}

}  // namespace

TEST_CASE("unit: strict invalidation never leaves a stale translation", "[iommu][property]") {
    const uint64_t ops = test::scaled(40000);
    for (bool scalable : {false, true}) {
        Result r = run(true, scalable, 31 + scalable, ops);
        INFO((scalable ? "scalable" : "legacy")
             << ": " << r.dmas << " DMAs, " << r.hits << " hits");
        CHECK(r.dmas >= 3 * ops);
        CHECK(r.hits > r.dmas / 20);  // the stale check needs hits to look at
        CHECK(r.wrong == 0);
        CHECK(r.stale == 0);
    }
}

TEST_CASE("unit: lazy invalidation is stale only within the flush window", "[iommu][property]") {
    const uint64_t ops = test::scaled(40000);
    Result r = run(false, false, 41, ops);
    INFO(r.dmas << " DMAs, " << r.stale << " stale hits");
    CHECK(r.wrong == 0);
    CHECK(r.stale > 0);  // deferred flushes do leave stale entries
    CHECK(r.stale_outside_window == 0);
}

TEST_CASE("unit: a stale hit is reported with time, requester and IOVA", "[iommu]") {
    SparseMemory mem;
    vtd::Driver drv(mem, {});
    vtd::VtdWalker walker(drv.hw());
    FixedLatencyMemory port(mem, 50'000);
    StatGroup stats("iommu");
    TranslationUnit unit(UnitParams{}, walker, port, stats);
    unit.set_oracle([&](const Requester& r, Addr a) { return drv.expect(r, a); }, 1);
    const Requester dev = Requester::bdf(2, 1, 0);
    uint16_t did = *drv.create_domain({});
    REQUIRE(drv.attach(dev.rid, did));
    REQUIRE(drv.map(did, 0x5000, 0x9000, 0x1000, kPermRW));
    REQUIRE(unit.translate(dev, 0x5010, Access::Read, 0).result.ok());
    drv.unmap(did, 0x5000, 0x1000);  // the driver's invalidation is not executed: a bug
    auto o = unit.translate(dev, 0x5010, Access::Read, 2'000'000);
    CHECK(o.stale);
    CHECK(o.result.tr.out == 0x9010);  // the hardware uses the cached entry, as real hardware would
    unit.translate(dev, 0x5020, Access::Read, 3'000'000);
    CHECK(stats.counter("stale_hits", "").value() == 2);
    REQUIRE(unit.stale_hits().size() == 1);  // kept: 1, counted: all
    CHECK(format_stale_hits(unit.stale_hits()) ==
          "# time_ns requester iova used expected stale\n"
          "2004 02:01.0 0x5010 0x9010 unmapped iotlb\n");
}
