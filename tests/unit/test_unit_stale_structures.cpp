// Checking mode sees stale structure-cache contents: the context, PASID and paging-structure
// caches hold what the hardware holds, so a driver that changes an entry without the
// invalidation the VT-d specification requires gets translations from the old entry, and the
// unit reports them (what was stale included). With the invalidation, nothing is reported.
#include <catch2/catch.hpp>

#include "arch/vtd/vtd_walker.h"
#include "host/vtd_driver.h"
#include "iommu/translation_unit.h"

using namespace iommusim;
using K = InvalidationScope::Kind;

namespace {

const Requester kDev = Requester::bdf(0, 3, 0);
constexpr Addr k2M = Addr(2) << 20;

struct Rig {
    SparseMemory mem;
    vtd::Driver drv;
    vtd::VtdWalker walker;
    FixedLatencyMemory port;
    StatGroup stats{"iommu"};
    TranslationUnit unit;
    size_t applied = 0;
    Tick now = 0;

    explicit Rig(bool scalable, const UnitParams& up = {})
        : drv(mem,
              [&] {
                  vtd::DriverConfig c;
                  c.hw.scalable = scalable;
                  return c;
              }()),
          walker(drv.hw()),
          port(mem, 100'000),
          unit(up, walker, port, stats) {
        unit.set_oracle([this](const Requester& r, Addr a) { return drv.expect(r, a); });
    }
    // Execute what the driver queued so far (or only forget it: a driver bug).
    void flush(bool execute = true) {
        const auto& inv = drv.invalidations();
        for (; applied < inv.size(); ++applied)
            if (execute) unit.invalidate(inv[applied], now);
    }
    TranslateOutcome go(const Requester& r, Addr iova, Access a = Access::Read) {
        now += 1'000'000;
        return unit.translate(r, iova, a, now);
    }
    uint64_t stale() { return stats.counter("stale_hits", "").value(); }
};

}  // namespace

TEST_CASE("stale: a device moved to another domain without a context-cache invalidation",
          "[iommu][stale]") {
    for (bool invalidate : {false, true}) {
        INFO((invalidate ? "with" : "without") << " the context-cache invalidation");
        Rig r(false);
        const uint16_t a = *r.drv.create_domain({}), b = *r.drv.create_domain({});
        REQUIRE(r.drv.map(a, 0x10'0000, 0x1'0000'0000, 0x2000, kPermRW));
        REQUIRE(r.drv.map(b, 0x10'0000, 0x2'0000'0000, 0x2000, kPermRW));
        REQUIRE(r.drv.attach(kDev.rid, a));
        r.flush();
        REQUIRE(r.go(kDev, 0x10'0010).result.tr.out == 0x1'0000'0010);
        REQUIRE(r.drv.attach(kDev.rid, b));  // rewrites the context entry: DID and table
        if (invalidate) {
            r.flush();  // the device's context-cache invalidation ...
            r.unit.invalidate({K::Domain, a}, r.now);  // ... and the old domain's IOTLB
        } else {
            r.flush(false);
        }
        // A page the IOTLB never held: the walk starts from the cached context.
        auto o = r.go(kDev, 0x10'1020);
        REQUIRE(o.result.ok());
        CHECK(o.stale == !invalidate);
        CHECK(o.result.tr.out == (invalidate ? 0x2'0000'1020 : 0x1'0000'1020));
        CHECK(r.stale() == (invalidate ? 0 : 1));
        if (!invalidate) {
            REQUIRE(r.unit.stale_hits().size() == 1);
            const StaleHit& h = r.unit.stale_hits()[0];
            CHECK(h.what == kStaleContext);
            CHECK(h.used == 0x1'0000'1020);
            CHECK(h.expected.pa == 0x2'0000'1020);
            CHECK(format_stale_hits(r.unit.stale_hits()) ==
                  "# time_ns requester iova used expected stale\n"
                  "2112 00:03.0 0x101020 0x100001020 0x200001020/rw- context\n");
            // The first page comes from the IOTLB under the old context: both were stale.
            auto h2 = r.go(kDev, 0x10'0010);
            CHECK(h2.iotlb_hit);
            CHECK(h2.stale);
            CHECK(r.unit.stale_hits().back().what == (kStaleIotlb | kStaleContext));
        }
    }
}

TEST_CASE("stale: a PASID entry moved to another domain without a PASID-cache invalidation",
          "[iommu][stale]") {
    for (bool invalidate : {false, true}) {
        INFO((invalidate ? "with" : "without") << " the PASID-cache invalidation");
        Rig r(true);
        vtd::DomainOptions fl;
        fl.stage = vtd::Stage::FirstLevel;
        const uint16_t dflt = *r.drv.create_domain({});
        const uint16_t a = *r.drv.create_domain(fl), b = *r.drv.create_domain(fl);
        REQUIRE(r.drv.attach(kDev.rid, dflt));
        REQUIRE(r.drv.map(a, 0x40'0000, 0x3'0000'0000, 0x2000, kPermRW));
        REQUIRE(r.drv.map(b, 0x40'0000, 0x4'0000'0000, 0x2000, kPermRW));
        const Requester p = kDev.with_pasid(5);
        REQUIRE(r.drv.attach_pasid(kDev.rid, 5, a));
        r.flush();
        REQUIRE(r.go(p, 0x40'0000).result.tr.out == 0x3'0000'0000);
        REQUIRE(r.drv.attach_pasid(kDev.rid, 5, b));  // rewrites the PASID entry
        r.flush(false);
        if (invalidate) {  // as the specification wants it: tagged with the old DID
            r.unit.invalidate({K::PasidCache, a, 5}, r.now);
            r.unit.invalidate({K::Pasid, a, 5}, r.now);
        }
        auto o = r.go(p, 0x40'1008);
        REQUIRE(o.result.ok());
        CHECK(o.stale == !invalidate);
        CHECK(o.result.tr.out == (invalidate ? 0x4'0000'1008 : 0x3'0000'1008));
        if (!invalidate) {
            REQUIRE(r.unit.stale_hits().size() == 1);
            CHECK(r.unit.stale_hits()[0].what == kStalePasid);  // the context entry is intact
        } else {
            CHECK(r.unit.stale_hits().empty());
        }
    }
}

TEST_CASE("stale: a page table replaced by a large page, walk caches kept by a leaf-only flush",
          "[iommu][stale]") {
    for (bool leaf_only : {true, false}) {
        INFO((leaf_only ? "IH=1: paging-structure caches kept" : "IH=0"));
        Rig r(false);
        const uint16_t d = *r.drv.create_domain({});
        REQUIRE(r.drv.attach(kDev.rid, d));
        REQUIRE(r.drv.map(d, 0x20'0000, 0x5'0000'0000, 0x2000, kPermRW));  // two 4 KiB pages
        r.flush();
        REQUIRE(r.go(kDev, 0x20'0000).result.ok());
        r.drv.unmap(d, 0x20'0000, 0x2000);
        r.flush();
        // Unmapped now; the walk caches the PDE (-> the empty page table) again.
        REQUIRE_FALSE(r.go(kDev, 0x20'0000).result.ok());
        // A 2 MiB page where the (now empty) page table was: the PDE becomes a leaf.
        REQUIRE(r.drv.map(d, 0x20'0000, 0x6'0000'0000, k2M, kPermRW));
        auto inv = r.drv.invalidations();
        REQUIRE(inv.size() > r.applied);  // the driver asks for the range's invalidation
        for (; r.applied < inv.size(); ++r.applied) {
            InvalidationScope s = inv[r.applied];
            if (s.kind == K::Page) s.leaf_only = leaf_only;  // a driver that says IH=1: a bug
            r.unit.invalidate(s, r.now);
        }
        auto o = r.go(kDev, 0x20'1010, Access::Write);
        CHECK(o.stale == leaf_only);
        if (leaf_only) {
            // The cached PDE still leads to the old page table, whose entries are gone.
            CHECK_FALSE(o.result.ok());
            REQUIRE(r.unit.stale_hits().size() == 1);
            const StaleHit& h = r.unit.stale_hits()[0];
            CHECK(h.fault);
            CHECK(h.what == kStaleWalkL2);
            CHECK(stale_sources(h.what) == "walk-l2");
        } else {
            REQUIRE(o.result.ok());
            CHECK(o.result.tr.out == 0x6'0000'1010);
            CHECK(r.unit.stale_hits().empty());
        }
    }
}

TEST_CASE("stale: a leaf-only invalidation drops large pages cached in the walk caches",
          "[iommu][stale]") {
    Rig r(false);
    const uint16_t d = *r.drv.create_domain({});
    REQUIRE(r.drv.attach(kDev.rid, d));
    REQUIRE(r.drv.map(d, 0x4000'0000, 0x7'0000'0000, k2M, kPermRW));
    r.flush();
    REQUIRE(r.go(kDev, 0x4000'0000).result.tr.page_shift == 21);
    r.drv.unmap(d, 0x4000'0000, k2M);
    REQUIRE(r.drv.map(d, 0x4000'0000, 0x8'0000'0000, k2M, kPermRW));
    // Only the leaf changed: an IH=1 page invalidation is enough, and it must also drop the
    // 2 MiB leaf the level-2 walk cache holds.
    r.flush(false);
    InvalidationScope s = InvalidationScope::covering(K::Page, d, 0x4000'0000, k2M);
    s.leaf_only = true;
    r.unit.invalidate(s, r.now);
    auto o = r.go(kDev, 0x4000'1234);
    REQUIRE(o.result.ok());
    CHECK(o.result.tr.out == 0x8'0000'1234);
    CHECK_FALSE(o.stale);
    CHECK(r.stale() == 0);
}

TEST_CASE("walk_cache.psi: which paging-structure entries a page-selective invalidation drops",
          "[iommu][invalidation]") {
    // Pages in three leaf tables: A (PD entry 1 of the first 1 GiB), B (PD entry 2 of it) and
    // C (the second 1 GiB). After a walk of each, A's page is invalidated; then untouched pages
    // next to B and C are walked: their memory reads say which walk-cache entries survived.
    struct Want {
        PsiWalkScope scope;
        bool ih;
        uint32_t b_reads, c_reads;
    };
    const Want wants[] = {
        {PsiWalkScope::Domain, false, 4, 3},     // every entry of the domain
        {PsiWalkScope::Range, false, 3, 1},      // PML4E, first PDPTE and A's PDE overlap A
        {PsiWalkScope::LeafTable, false, 3, 1},  // as range
        {PsiWalkScope::Domain, true, 1, 1},      // IH: paging-structure entries kept
        {PsiWalkScope::Range, true, 1, 1},
        {PsiWalkScope::LeafTable, true, 2, 2},  // IH: the domain's PDEs go all the same
    };
    for (const Want& w : wants) {
        INFO("psi " << EnumParam<PsiWalkScope>::name(w.scope) << ", IH " << w.ih);
        UnitParams up;
        up.walk_cache_psi = w.scope;
        Rig r(false, up);
        const uint16_t d = *r.drv.create_domain({});
        REQUIRE(r.drv.attach(kDev.rid, d));
        for (Addr a : {Addr(0x20'0000), Addr(0x40'0000), Addr(0x4000'0000)})
            REQUIRE(r.drv.map(d, a, 0x5'0000'0000 + a, 0x2000, kPermRW));
        r.flush();
        for (Addr a : {Addr(0x20'0000), Addr(0x40'0000), Addr(0x4000'0000)})
            REQUIRE(r.go(kDev, a).result.ok());
        InvalidationScope s = InvalidationScope::covering(K::Page, d, 0x20'0000, 0x1000);
        s.leaf_only = w.ih;
        r.unit.invalidate(s, r.now);
        auto& reads = r.stats.child("walker").counter("memory_reads", "");
        const uint64_t before = reads.value();
        REQUIRE(r.go(kDev, 0x40'1000).result.ok());
        CHECK(reads.value() - before == w.b_reads);
        REQUIRE(r.go(kDev, 0x4000'1000).result.ok());
        CHECK(reads.value() - before - w.b_reads == w.c_reads);
    }
}

TEST_CASE(
    "the VT-d driver sets IH on the invalidation of an unmap, not of a map that replaced a "
    "table",
    "[iommu][invalidation]") {
    Rig r(false);
    const uint16_t d = *r.drv.create_domain({});
    REQUIRE(r.drv.map(d, 0x20'0000, 0x5'0000'0000, 0x1000, kPermRW));
    REQUIRE(r.drv.invalidations().empty());  // a new mapping in an empty table: nothing to do
    r.drv.unmap(d, 0x20'0000, 0x1000);
    // Linux's intel_iommu_tlb_sync: IH = 1 unless page-table pages were freed (none are).
    REQUIRE(r.drv.invalidations().size() == 2);
    CHECK(r.drv.invalidations()[0].kind == K::Page);
    CHECK(r.drv.invalidations()[0].leaf_only);
    // A 2 MiB page over the now empty table changes a PDE: IH = 0.
    REQUIRE(r.drv.map(d, 0x20'0000, 0x6'0000'0000, k2M, kPermRW));
    REQUIRE(r.drv.invalidations().size() == 4);
    CHECK(r.drv.invalidations()[2].kind == K::Page);
    CHECK_FALSE(r.drv.invalidations()[2].leaf_only);
}
