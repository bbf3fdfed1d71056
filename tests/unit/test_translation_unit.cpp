// The timed translation path, without SystemC: exact cycle counts against a fixed-latency
// memory, walker queueing against the analytic value, merging, walk-cache skips, and
// invalidation scopes.
#include <catch2/catch.hpp>

#include "arch/vtd/vtd_walker.h"
#include "host/vtd_driver.h"
#include "iommu/translation_unit.h"

using namespace iommusim;

namespace {
constexpr Tick kCycle = 1000;         // 1 GHz
constexpr uint64_t kMemCycles = 100;  // memory latency L
const Requester kDev = Requester::bdf(0, 3, 0);

struct Rig {
    SparseMemory mem;
    vtd::Driver drv;
    vtd::VtdWalker walker;
    FixedLatencyMemory port;
    StatGroup stats{"iommu"};
    UnitParams params;
    std::unique_ptr<TranslationUnit> unit;
    uint16_t did;

    explicit Rig(bool scalable = false, unsigned walkers = 4, bool walk_caches = true)
        : drv(mem,
              [&] {
                  vtd::DriverConfig c;
                  c.hw.scalable = scalable;
                  return c;
              }()),
          walker(drv.hw()),
          port(mem, kMemCycles * kCycle) {
        params.walkers = walkers;
        if (!walk_caches)
            for (auto& e : params.walk_cache_entries) e = 0;
        unit = std::make_unique<TranslationUnit>(params, walker, port, stats);
        did = *drv.create_domain({});
        REQUIRE(drv.attach(kDev.rid, did));
    }
    TranslateOutcome go(Addr iova, Tick at = 0, Access a = Access::Read) {
        return unit->translate(kDev, iova, a, at);
    }
    uint64_t counter(const std::string& group, const std::string& name) {
        StatGroup& g = group.empty() ? stats : stats.child(group);
        return g.counter(name, "").value();
    }
};

// Cycles of one structure read: walker step work, then the memory latency.
constexpr uint64_t kRead = 2 + kMemCycles;
}  // namespace

TEST_CASE("unit: a cold miss costs exactly the predicted cycles", "[iommu][timing]") {
    Rig r;
    REQUIRE(r.drv.map(r.did, 0x10'0000, 0x5'0000'0000, 0x1000, kPermRW));
    auto o = r.go(0x10'0123);
    REQUIRE(o.result.ok());
    CHECK(o.result.tr.out == 0x5'0000'0123);
    // context-cache lookup, root + context reads, IOTLB lookup, four page-table reads.
    CHECK(o.done == (2 + 2 * kRead + 2 + 4 * kRead) * kCycle);
    CHECK(r.port.reads() == 6);
    CHECK_FALSE(o.iotlb_hit);

    // The same page again: context-cache and IOTLB lookups only.
    auto h = r.go(0x10'0fff, 10'000'000);
    REQUIRE(h.iotlb_hit);
    CHECK(h.done == 10'000'000 + 4 * kCycle);
    CHECK(h.result.tr.out == 0x5'0000'0fff);
    CHECK(r.port.reads() == 6);
}

TEST_CASE("unit: walk-cache hits skip the levels they cover", "[iommu][timing]") {
    Rig r;
    REQUIRE(r.drv.map(r.did, 0x20'0000, 0x6'0000'0000, 0x4000, kPermRW));
    REQUIRE(r.go(0x20'0000).result.ok());
    // Another 4 KiB page under the same PDE: PML4E, PDPTE and PDE come from the walk caches
    // (a 2-cycle lookup each, no walker step), only the PTE is read; the context is cached.
    auto o = r.go(0x20'1000, 1'000'000);
    REQUIRE(o.result.ok());
    CHECK(o.done == 1'000'000 + (2 + 2 + 3 * 2 + kRead) * kCycle);
    CHECK(r.counter("walk_cache", "l2_hits") == 1);
    CHECK(r.counter("walk_cache", "l4_hits") == 1);

    Rig n(false, 4, false);  // no walk caches: every level is read again
    REQUIRE(n.drv.map(n.did, 0x20'0000, 0x6'0000'0000, 0x4000, kPermRW));
    REQUIRE(n.go(0x20'0000).result.ok());
    CHECK(n.go(0x20'1000, 1'000'000).done == 1'000'000 + (2 + 2 + 4 * kRead) * kCycle);
}

TEST_CASE("unit: N walkers queue M simultaneous misses as the analytic model says",
          "[iommu][timing]") {
    const unsigned N = 2, M = 5;
    Rig r(false, N, false);
    REQUIRE(r.drv.map(r.did, 0, 0x7'0000'0000, 0x10'0000, kPermRW));
    REQUIRE(r.go(0x8'0000).result.ok());  // warm the context cache
    const Tick t0 = 10'000'000;
    const Tick walk = 4 * kRead * kCycle;  // one page walk, context cached
    for (unsigned i = 0; i < M; ++i) {
        auto o = r.go(Addr(i) * 0x1000, t0);
        REQUIRE(o.result.ok());
        // Walker k serves requests k, k+N, ...: request i waits i/N whole walks.
        CHECK(o.done == t0 + 4 * kCycle + (i / N) * walk + walk);
    }
    StatGroup& w = r.stats.child("walker");
    CHECK(w.histogram("queueing", "ns", "").max() == ((M - 1) / N) * walk / kTicksPerNs);
}

TEST_CASE("unit: two misses to one page cause one walk", "[iommu][timing]") {
    Rig r;
    REQUIRE(r.drv.map(r.did, 0x30'0000, 0x8'0000'0000, 0x1000, kPermRW));
    auto a = r.go(0x30'0010, 0);
    auto b = r.go(0x30'0020, 0);
    REQUIRE(a.result.ok());
    REQUIRE(b.result.ok());
    CHECK(b.result.tr.out == 0x8'0000'0020);
    CHECK(b.merged);
    CHECK(b.done == a.done);
    CHECK(r.counter("walker", "walks") == 1);
    CHECK(r.port.reads() == 6);
}

TEST_CASE("unit: invalidation removes exactly its scope", "[iommu][invalidation]") {
    using K = InvalidationScope::Kind;
    Rig r;
    vtd::DomainOptions o;
    uint16_t other = *r.drv.create_domain(o);
    const Requester dev2 = Requester::bdf(0, 4, 0);
    REQUIRE(r.drv.attach(dev2.rid, other));
    for (Addr i = 0; i < 8; ++i) {
        REQUIRE(
            r.drv.map(r.did, 0x40'0000 + i * 0x1000, 0x9'0000'0000 + i * 0x1000, 0x1000, kPermRW));
        REQUIRE(
            r.drv.map(other, 0x40'0000 + i * 0x1000, 0xA'0000'0000 + i * 0x1000, 0x1000, kPermRW));
        REQUIRE(r.go(0x40'0000 + i * 0x1000).result.ok());
        REQUIRE(r.unit->translate(dev2, 0x40'0000 + i * 0x1000, Access::Read, 0).result.ok());
    }
    REQUIRE(r.unit->iotlb_size() == 16);
    // Page-selective, 2^1 pages at 0x402000 in domain r.did: two entries go.
    r.unit->invalidate(InvalidationScope::covering(K::Page, r.did, 0x40'2000, 0x2000), 0);
    CHECK(r.unit->iotlb_size() == 14);
    CHECK_FALSE(r.go(0x40'2000, 1'000'000).iotlb_hit);
    CHECK(r.go(0x40'4000, 2'000'000).iotlb_hit);
    CHECK(r.unit->translate(dev2, 0x40'2000, Access::Read, 2'000'000).iotlb_hit);
    // Domain-selective: every entry of `other`.
    r.unit->invalidate({K::Domain, other}, 0);
    CHECK_FALSE(r.unit->translate(dev2, 0x40'5000, Access::Read, 3'000'000).iotlb_hit);
    CHECK(r.go(0x40'5000, 3'000'000).iotlb_hit);
    // Device context: the next request reads root and context entries again.
    uint64_t reads = r.port.reads();
    r.unit->invalidate({K::ContextDevice, r.did, Requester::kNoPasid, kDev.rid}, 0);
    CHECK(r.go(0x40'5000, 4'000'000).iotlb_hit);
    CHECK(r.port.reads() == reads + 2);
    // Global: everything.
    r.unit->invalidate({K::Global}, 0);
    CHECK(r.unit->iotlb_size() == 0);
}

TEST_CASE("unit: scalable mode caches context and PASID entries separately", "[iommu][timing]") {
    Rig r(true);
    vtd::DomainOptions fl;
    fl.stage = vtd::Stage::FirstLevel;
    uint16_t d = *r.drv.create_domain(fl);
    REQUIRE(r.drv.attach_pasid(kDev.rid, 0x55, d));
    REQUIRE(r.drv.map(d, 0x1000, 0xB'0000'0000, 0x2000, kPermRW));
    const Requester p = kDev.with_pasid(0x55);
    auto a = r.unit->translate(p, 0x1000, Access::Read, 0);
    REQUIRE(a.result.ok());
    // ctx lookup, root, context, PASID dir, PASID entry, IOTLB lookup, 4 first-level reads.
    CHECK(a.done == (2 + 4 * kRead + 2 + 4 * kRead) * kCycle);
    // Another PASID of the same device: the context entry is cached (root and context reads
    // skipped), the PASID cache misses (directory and entry read), and first-level walk-cache
    // entries are tagged by PASID, so all four levels are read again.
    REQUIRE(r.drv.attach_pasid(kDev.rid, 0x56, d));
    auto b = r.unit->translate(kDev.with_pasid(0x56), 0x1000, Access::Read, 1'000'000);
    REQUIRE(b.result.ok());
    CHECK(b.done == 1'000'000 + (2 + 2 + 2 * kRead + 2 + 4 * kRead) * kCycle);
    // The first PASID again, new page: context and PASID caches hit, walk caches cover L4-L2.
    auto c = r.unit->translate(p, 0x2000, Access::Read, 2'000'000);
    REQUIRE(c.result.ok());
    CHECK(c.done == 2'000'000 + (2 + 2 + 2 + 3 * 2 + kRead) * kCycle);
}

#include "arch/spapr/spapr_walker.h"
#include "host/spapr_driver.h"

TEST_CASE("unit: the same unit translates sPAPR TCE windows", "[iommu][timing][spapr]") {
    SparseMemory mem;
    spapr::Driver drv(mem, {});
    spapr::SpaprWalker walker(drv.phb());
    FixedLatencyMemory port(mem, kMemCycles * kCycle);
    StatGroup stats("phb0");
    UnitParams p;
    TranslationUnit unit(p, walker, port, stats);
    const Requester dev = Requester::bdf(1, 0, 0);
    uint16_t pe = *drv.create_pe();
    drv.assign(dev.rid, pe);
    REQUIRE(drv.create_ddw(pe, Addr(64) << 30, 16, 2));
    const Addr bus = spapr::kDdwBusOffset + 0x12'0000;
    REQUIRE(drv.map(pe, bus, 0x40'0000'0000, 0x2'0000, kPermRW));
    // The PE and window are registers: no context reads. Two TCE levels are read.
    auto a = unit.translate(dev, bus + 0x123, Access::Read, 0);
    REQUIRE(a.result.ok());
    CHECK(a.result.tr.out == 0x40'0000'0123);
    CHECK(a.result.tr.page_shift == 16);
    CHECK(a.done == (2 + 2 + 2 * kRead) * kCycle);
    // The neighbouring 64 KiB page: the indirect level comes from the level-2 walk cache.
    auto b = unit.translate(dev, bus + 0x1'0000, Access::Write, 1'000'000);
    REQUIRE(b.result.ok());
    CHECK(b.done == 1'000'000 + (2 + 2 + 2 + kRead) * kCycle);
    CHECK(unit.translate(dev, bus + 0xfff0, Access::Read, 2'000'000).iotlb_hit);
    // A TCE kill for the range (what the driver issues on unmap) removes the entry.
    drv.unmap(pe, bus, 0x1'0000);
    unit.invalidate(drv.invalidations().back(), 3'000'000);
    auto c = unit.translate(dev, bus + 0x10, Access::Read, 4'000'000);
    CHECK_FALSE(c.iotlb_hit);
    CHECK_FALSE(c.result.ok());
    CHECK(unit.translate(dev, bus + 0x1'0010, Access::Read, 5'000'000).iotlb_hit);
}

TEST_CASE("unit: split IOTLB keeps page-size classes apart", "[iommu][timing]") {
    Rig r;
    r.params.iotlb = {4, 0, Replacement::LRU, 2};  // 4 entries for 4 KiB pages
    r.params.iotlb_split = true;
    r.params.iotlb_entries_2m = 2;
    r.unit = std::make_unique<TranslationUnit>(r.params, r.walker, r.port, r.stats);
    REQUIRE(r.drv.map(r.did, 0x4000'0000, 0x8'0000'0000, 2 << 20, kPermRW));  // one 2 MiB page
    REQUIRE(r.drv.map(r.did, 0x10'0000, 0x9'0000'0000, 0x8000, kPermRW));     // 8 x 4 KiB
    REQUIRE(r.go(0x4000'0000).result.tr.page_shift == 21);
    // Eight 4 KiB translations overflow the 4 KiB class several times over ...
    for (Addr i = 0; i < 8; ++i)
        REQUIRE(r.go(0x10'0000 + i * 0x1000, 1'000'000 * (i + 1)).result.ok());
    // ... but the 2 MiB entry lives in its own class and still hits anywhere inside the page.
    auto o = r.go(0x4000'0000 + 0x1f'f000, 20'000'000);
    CHECK(o.iotlb_hit);
    CHECK(o.result.tr.out == 0x8'001f'f000);
    CHECK(r.unit->iotlb_size() == 5);

    Rig u;  // unified, 4 entries: the 2 MiB entry is evicted by the 4 KiB ones
    u.params.iotlb = {4, 0, Replacement::LRU, 2};
    u.unit = std::make_unique<TranslationUnit>(u.params, u.walker, u.port, u.stats);
    REQUIRE(u.drv.map(u.did, 0x4000'0000, 0x8'0000'0000, 2 << 20, kPermRW));
    REQUIRE(u.drv.map(u.did, 0x10'0000, 0x9'0000'0000, 0x8000, kPermRW));
    REQUIRE(u.go(0x4000'0000).result.ok());
    for (Addr i = 0; i < 8; ++i)
        REQUIRE(u.go(0x10'0000 + i * 0x1000, 1'000'000 * (i + 1)).result.ok());
    CHECK_FALSE(u.go(0x4000'0000 + 0x1f'f000, 20'000'000).iotlb_hit);
}

TEST_CASE("unit: next-page prefetch turns the following miss into a hit", "[iommu][timing]") {
    Rig r;
    r.params.prefetch_next_page = true;
    r.unit = std::make_unique<TranslationUnit>(r.params, r.walker, r.port, r.stats);
    REQUIRE(r.drv.map(r.did, 0x30'0000, 0xA'0000'0000, 0x4000, kPermRW));
    auto a = r.go(0x30'0000, 0);
    REQUIRE(a.result.ok());
    // The requester does not wait for the prefetch ...
    CHECK(a.done == (2 + 2 * kRead + 2 + 4 * kRead) * kCycle);
    // ... which walked the next page on the same walker (walk caches cover L4-L2).
    auto b = r.go(0x30'1000, 10'000'000);
    CHECK(b.iotlb_hit);
    CHECK(b.result.tr.out == 0xA'0000'1000);
    CHECK(r.counter("walker", "prefetches") == 1);
    // A request arriving before the prefetch finished waits for its fill.
    Rig q;
    q.params.prefetch_next_page = true;
    q.unit = std::make_unique<TranslationUnit>(q.params, q.walker, q.port, q.stats);
    REQUIRE(q.drv.map(q.did, 0x30'0000, 0xA'0000'0000, 0x4000, kPermRW));
    auto c = q.go(0x30'0000, 0);
    auto d = q.go(0x30'1000, c.done);
    CHECK(d.iotlb_hit);
    CHECK(d.merged);
    CHECK(d.done == c.done + (3 * 2 + kRead) * kCycle);
}

// Found by the malicious-device bench (sc_malicious_*): a write rode a read's in-flight walk of
// a read-only page and reached memory.
TEST_CASE("unit: a write does not merge onto a read's walk of a read-only page",
          "[iommu][timing]") {
    Rig r;
    REQUIRE(r.drv.map(r.did, 0x30'0000, 0x8'0000'0000, 0x1000, kPermR));
    auto rd = r.go(0x30'0010, 0, Access::Read);
    auto wr = r.go(0x30'0020, 0, Access::Write);
    REQUIRE(rd.result.ok());
    CHECK_FALSE(wr.merged);
    CHECK_FALSE(wr.result.ok());
    // A second read still merges onto the walk that grants it.
    auto rd2 = r.go(0x30'0030, 0, Access::Read);
    CHECK(rd2.merged);
    CHECK(rd2.result.ok());
}

// Found by the same bench: with the device's context cached, a request with a PASID skipped
// the walker, which is what blocks it in legacy mode.
TEST_CASE("unit: legacy mode blocks a request with a PASID even with the context cached",
          "[iommu][timing]") {
    Rig r;
    REQUIRE(r.drv.map(r.did, 0x30'0000, 0x8'0000'0000, 0x1000, kPermRW));
    REQUIRE(r.go(0x30'0010, 0).result.ok());  // caches the context
    auto p = r.unit->translate(kDev.with_pasid(5), 0x30'0010, Access::Read, 10'000'000);
    CHECK_FALSE(p.result.ok());
    CHECK(r.go(0x30'0010, 20'000'000).result.ok());
}
