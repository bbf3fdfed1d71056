// The VT-d driver model: windows and reserved regions, page-size choice, invalidations
// (strict and deferred) and the descriptors it would write to the invalidation queue.
#include <catch2/catch.hpp>

#include <variant>

#include "arch/vtd/vtd_invdesc.h"
#include "arch/vtd/vtd_walker.h"
#include "host/vtd_driver.h"

using namespace iommusim;
using namespace iommusim::vtd;
using K = InvalidationScope::Kind;

namespace {
const Requester kDev = Requester::bdf(0, 2, 0);

struct Rig {
    SparseMemory mem;
    Driver drv;
    VtdWalker walker;
    uint16_t did;
    Rig(bool scalable, bool strict = true, Stage stage = Stage::SecondLevel,
        std::vector<IovaRegion> windows = {})
        : drv(mem,
              [&] {
                  DriverConfig c;
                  c.hw.scalable = scalable;
                  c.strict = strict;
                  c.lazy.entries = 4;
                  c.lazy.timeout_ns = 1000;
                  return c;
              }()),
          walker(drv.hw()) {
        DomainOptions o;
        o.stage = stage;
        o.windows = std::move(windows);
        did = *drv.create_domain(o);
        REQUIRE(drv.attach(kDev.rid, did));
    }
    WalkResult walk(Addr iova, Access a = Access::Read) {
        return walk_functional(walker, mem, kDev, iova, a);
    }
};
}  // namespace

TEST_CASE("driver picks the largest page sizes alignment allows", "[vtd][driver]") {
    Rig r(false);
    // 2 MiB + 4 KiB at a 2 MiB-aligned IOVA and PA: one 2 MiB page, then one 4 KiB page.
    REQUIRE(r.drv.map(r.did, 0x4020'0000, 0x1'8020'0000, (2 << 20) + 4096, kPermRW));
    CHECK(r.walk(0x4020'0000 + 0x1234).tr.page_shift == 21);
    CHECK(r.walk(0x4040'0000 + 0x10).tr.page_shift == 12);
    CHECK(r.walk(0x4040'0000 + 0x10).tr.out == 0x1'8040'0010);
    // 1 GiB-aligned 1 GiB: one 1 GiB page.
    REQUIRE(r.drv.map(r.did, Addr(8) << 30, Addr(16) << 30, Addr(1) << 30, kPermR));
    CHECK(r.walk((Addr(8) << 30) + 0x1234'5678).tr.page_shift == 30);
    // Misaligned PA: 4 KiB pages only.
    REQUIRE(r.drv.map(r.did, 0x8000'0000, 0x2'0000'1000, 2 << 20, kPermRW));
    CHECK(r.walk(0x8000'0000).tr.page_shift == 12);
}

TEST_CASE("driver refuses maps outside permitted windows and over reserved regions",
          "[vtd][driver]") {
    Rig r(false, true, Stage::SecondLevel,
          {{0, Addr(1) << 30, "dma32"}, {Addr(1) << 59, Addr(1) << 40, "ddw"}});
    std::string why;
    CHECK_FALSE(r.drv.map(r.did, Addr(1) << 30, 0x1000, 4096, kPermRW, &why));
    CHECK(why.find("window") != std::string::npos);
    CHECK_FALSE(r.drv.map(r.did, (Addr(1) << 30) - 4096, 0x1000, 8192, kPermRW, &why));
    CHECK(r.drv.map(r.did, 0x1000, 0x1000, 4096, kPermRW, &why));
    CHECK_FALSE(r.drv.map(r.did, 0x1000, 0x2000, 4096, kPermRW, &why));  // overlap
    CHECK(why.find("overlap") != std::string::npos);

    Rig x(false);
    CHECK_FALSE(x.drv.map(x.did, 0xFEE0'0000, 0x1000, 4096, kPermRW, &why));
    CHECK(why.find("msi") != std::string::npos);
    // The allocator honours the 32-bit limit and skips the MSI hole, top-down.
    auto a = x.drv.map_alloc(x.did, 0x5000, 4096, kPermRW, 0xFFFF'FFFF);
    REQUIRE(a);
    CHECK(*a == 0xFFFF'F000);
    auto b = x.drv.map_alloc(x.did, 0x6000, 4096, kPermRW, 0xFFFF'FFFF);
    REQUIRE(b);
    CHECK(*b == 0xFFFF'E000);
    CHECK(x.walk(*b + 8).tr.out == 0x6008);
}

TEST_CASE("strict unmap invalidates exactly the range, with descriptors that decode back",
          "[vtd][driver]") {
    for (bool scalable : {false, true}) {
        for (Stage stage : {Stage::SecondLevel, Stage::FirstLevel}) {
            if (!scalable && stage == Stage::FirstLevel) continue;
            Rig r(scalable, true, stage);
            REQUIRE(r.drv.map(r.did, 0x10'0000, 0x9'0000'0000, 0x5000, kPermRW));
            size_t before = r.drv.invalidations().size();
            REQUIRE(r.drv.unmap(r.did, 0x10'1000, 0x3000) == 0x3000);
            const auto& inv = r.drv.invalidations();
            REQUIRE(inv.size() == before + 2);
            const InvalidationScope& s = inv[before];
            CHECK(s.kind == (stage == Stage::FirstLevel ? K::PasidPage : K::Page));
            CHECK(s.domain == r.did);
            // 0x101000-0x103fff needs the aligned 16 KiB block at 0x100000 (AM = 2).
            CHECK(s.addr == 0x10'0000);
            CHECK(s.order == 2);
            CHECK(inv[before + 1].kind == K::Wait);
            CHECK_FALSE(r.walk(0x10'2000).ok());
            CHECK(r.walk(0x10'4000).ok());

            // Every descriptor written decodes without error to the scope it was made from.
            REQUIRE(r.drv.descriptors().size() == inv.size());
            for (size_t i = 0; i < inv.size(); ++i) {
                const InvDesc& d = r.drv.descriptors()[i];
                auto dec = decode(d.qw, scalable);
                REQUIRE_FALSE(std::holds_alternative<DescError>(dec));
                auto back = scope_of(dec);
                REQUIRE(back);
                CHECK(back->kind == inv[i].kind);
                if (inv[i].kind == K::Page || inv[i].kind == K::PasidPage) {
                    CHECK(back->addr == inv[i].addr);
                    CHECK(back->order == inv[i].order);
                    CHECK(back->domain == inv[i].domain);
                }
            }
        }
    }
}

TEST_CASE("lazy unmap defers the flush and the IOVA's reuse", "[vtd][driver]") {
    Rig r(false, false);
    auto first = r.drv.map_alloc(r.did, 0x7000, 4096, kPermRW);
    REQUIRE(first);
    size_t before = r.drv.invalidations().size();
    r.drv.unmap_free(r.did, *first, 4096, /*now_ns=*/10);
    CHECK(r.drv.invalidations().size() == before);  // nothing flushed yet
    CHECK(r.drv.pending_deferred() == 1);
    CHECK_FALSE(r.walk(*first).ok());  // the tables are already cleared
    // Until the flush, the IOVA is not handed out again (a stale IOTLB entry may still use it).
    auto second = r.drv.map_alloc(r.did, 0x8000, 4096, kPermRW);
    REQUIRE(second);
    CHECK(*second != *first);
    r.drv.tick(500);  // before the timeout
    CHECK(r.drv.pending_deferred() == 1);
    r.drv.tick(1010);  // timed out: one domain-wide flush
    CHECK(r.drv.pending_deferred() == 0);
    const auto& inv = r.drv.invalidations();
    REQUIRE(inv.size() == before + 2);
    CHECK(inv[before].kind == K::Domain);
    CHECK(inv[before + 1].kind == K::Wait);
    auto third = r.drv.map_alloc(r.did, 0x9000, 4096, kPermRW);
    REQUIRE(third);
    CHECK(*third == *first);  // freed by the flush, top of the window again

    // A full queue flushes at once.
    for (int i = 0; i < 4; ++i) {
        auto a = r.drv.map_alloc(r.did, 0x1'0000 + i * 0x1000, 4096, kPermRW);
        REQUIRE(a);
        r.drv.unmap_free(r.did, *a, 4096, 2000);
    }
    CHECK(r.drv.pending_deferred() == 0);
}

TEST_CASE("attach, PASIDs and detach change what the unit translates", "[vtd][driver]") {
    Rig r(true, true, Stage::FirstLevel);
    DomainOptions sl;
    uint16_t other = *r.drv.create_domain(sl);
    REQUIRE(r.drv.map(r.did, 0x1000, 0x11000, 4096, kPermRW));
    REQUIRE(r.drv.map(other, 0x1000, 0x22000, 4096, kPermRW));
    REQUIRE(r.drv.attach_pasid(kDev.rid, 0x99, other));
    CHECK(r.walk(0x1000).tr.out == 0x11000);
    CHECK(walk_functional(r.walker, r.mem, kDev.with_pasid(0x99), 0x1000, Access::Read).tr.out ==
          0x22000);
    CHECK_FALSE(walk_functional(r.walker, r.mem, kDev.with_pasid(0x98), 0x1000, Access::Read).ok());
    std::string why;
    CHECK_FALSE(r.drv.attach_pasid(kDev.rid, 1u << 20, other, false, &why));
    CHECK_FALSE(why.empty());
    r.drv.detach_pasid(kDev.rid, 0x99);
    CHECK_FALSE(walk_functional(r.walker, r.mem, kDev.with_pasid(0x99), 0x1000, Access::Read).ok());
    r.drv.detach(kDev.rid);
    CHECK_FALSE(r.walk(0x1000).ok());
    CHECK_FALSE(r.drv.expect(kDev, 0x1000).mapped);

    Rig legacy(false);
    CHECK_FALSE(legacy.drv.attach_pasid(kDev.rid, 5, legacy.did, false, &why));
    DomainOptions fl;
    fl.stage = Stage::FirstLevel;
    CHECK_FALSE(legacy.drv.create_domain(fl, &why));
}

// expect() remembers the last requester's domain (checking mode asks for every request): an
// attach or detach between two questions must change the answer at once.
TEST_CASE("expect follows attach and detach of the requester asked last", "[vtd][driver]") {
    Rig r(true);
    DomainOptions o;
    const uint16_t other = *r.drv.create_domain(o);
    REQUIRE(r.drv.map(r.did, 0x1000, 0x11000, 4096, kPermRW));
    REQUIRE(r.drv.map(other, 0x1000, 0x22000, 4096, kPermR));
    CHECK(r.drv.expect(kDev, 0x1008).pa == 0x11008);
    REQUIRE(r.drv.attach(kDev.rid, other));
    CHECK(r.drv.expect(kDev, 0x1008).pa == 0x22008);
    CHECK(r.drv.expect(kDev, 0x1008).perm == kPermR);
    const Requester pasid = kDev.with_pasid(0x42);
    CHECK_FALSE(r.drv.expect(pasid, 0x1008).mapped);
    REQUIRE(r.drv.attach_pasid(kDev.rid, 0x42, r.did));
    CHECK(r.drv.expect(pasid, 0x1008).pa == 0x11008);
    r.drv.detach_pasid(kDev.rid, 0x42);
    CHECK_FALSE(r.drv.expect(pasid, 0x1008).mapped);
    CHECK(r.drv.expect(kDev, 0x1008).pa == 0x22008);
    r.drv.detach(kDev.rid);
    CHECK_FALSE(r.drv.expect(kDev, 0x1008).mapped);
}

// The same requester asked again is answered inline from its domain's intent map: a map or
// an unmap between two questions changes the answer at once, and an identity domain is never
// answered from a map.
TEST_CASE("expect follows map and unmap, and identity domains, for the same requester",
          "[vtd][driver]") {
    Rig r(true);
    REQUIRE(r.drv.map(r.did, 0x1000, 0x11000, 4096, kPermRW));
    CHECK(r.drv.expect(kDev, 0x1008).pa == 0x11008);
    CHECK(r.drv.expect(kDev, 0x1010).pa == 0x11010);
    CHECK_FALSE(r.drv.expect(kDev, 0x2000).mapped);
    REQUIRE(r.drv.map(r.did, 0x2000, 0x33000, 4096, kPermR));
    CHECK(r.drv.expect(kDev, 0x2008).pa == 0x33008);
    CHECK(r.drv.expect(kDev, 0x2008).perm == kPermR);
    CHECK(r.drv.unmap(r.did, 0x1000, 4096) == 4096);
    CHECK_FALSE(r.drv.expect(kDev, 0x1008).mapped);
    CHECK(r.drv.expect(kDev, 0x2010).pa == 0x33010);
    DomainOptions id;
    id.identity = true;
    const uint16_t ident = *r.drv.create_domain(id);
    REQUIRE(r.drv.attach(kDev.rid, ident));
    for (int i = 0; i < 2; ++i) {
        const Expectation e = r.drv.expect(kDev, 0x5'0008);
        CHECK(e.mapped);
        CHECK(e.pa == 0x5'0008);
        CHECK(e.perm == (kPermR | kPermW | kPermX));
    }
}
