// Guest IOMMUs on a host VT-d unit (host/viommu.h): for each path a seeded property test
// (every translation the host unit's walker gives equals the guest driver's intent, through
// the shadow or the nested walk; strict shadowing leaves no stale host translation), the
// cost of a single map, unmap and invalidation to the picosecond, and the sPAPR window check.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <vector>

#include "arch/vtd/vtd_walker.h"
#include "host/viommu.h"
#include "support/property.h"

using namespace iommusim;
using test::Rng;

namespace {

const Requester kDev = Requester::bdf(0, 3, 0);
constexpr Tick kInvPs = 700'000;  // the fake host queue: 700 ns for any non-empty batch

struct Host {
    SparseMemory mem;
    vtd::Driver drv;
    vtd::VtdWalker walker;
    uint16_t did = 0;
    uint64_t batches = 0;
    std::vector<InvalidationScope::Kind> issued;  // what reached the host queue, in order
    StatGroup stats{"viommu"};

    explicit Host(bool scalable = true, bool strict = true)
        : drv(mem,
              [&] {
                  vtd::DriverConfig c;
                  c.hw.scalable = scalable;
                  c.strict = strict;
                  return c;
              }()),
          walker(drv.hw()) {
        did = *drv.create_domain({});
        REQUIRE(drv.attach(kDev.rid, did));
        drv.forget_issued();
    }
    ViommuHost host() {
        return {&drv, did, kDev.rid, [this](Tick t) {
                    const bool any = !drv.descriptors().empty();
                    for (const InvalidationScope& s : drv.invalidations()) issued.push_back(s.kind);
                    drv.forget_issued();
                    batches += any;
                    return any ? t + kInvPs : t;
                }};
    }
    std::unique_ptr<Viommu> make(const ViommuParams& p) {
        std::string why;
        auto v = Viommu::create(p, host(), stats, &why);
        INFO(why);
        REQUIRE(v);
        drv.forget_issued();
        return v;
    }
    // The host unit's own walk of `iova` against what the guest driver intends.
    std::string check(const Viommu& v, Addr iova) {
        const WalkResult& r = walk_functional(walker, mem, kDev, iova, Access::Read);
        return check_translation(r, v.guest_intent(iova), Access::Read, false);
    }
    uint64_t counter(const std::string& name) {
        for (const auto& e : stats.entries())
            if (e.name == name) return e.counter->value();
        return ~uint64_t(0);
    }
    const Histogram& histogram(const std::string& name) {
        for (const auto& e : stats.entries())
            if (e.name == name && e.histogram) return *e.histogram;
        FAIL("no histogram " << name);
        throw 0;
    }
};

struct Live {
    Addr iova, len;
};

// Random maps and unmaps of host memory in the VM's RAM; after each, the touched addresses
// and a random live one are walked on the host and compared with the guest's intent.
void property(ViommuMode mode, bool strict, uint64_t seed, Addr max_len) {
    Host h(true, true);
    ViommuParams p;
    p.mode = mode;
    p.guest_strict = strict;
    p.guest_fq_entries = 32;
    p.hpa_offset = Addr(5) << 30;
    if (mode == ViommuMode::ParavirtSpapr) p.dma32_size = Addr(1) << 32 >> 1;  // 2 GiB
    auto v = h.make(p);
    Rng rng(seed);
    std::vector<Live> live;
    const uint64_t ops = test::scaled(100'000);
    uint64_t checks = 0;
    Tick now = 0;
    auto expect_ok = [&](Addr iova) {
        const std::string bad = h.check(*v, iova);
        ++checks;
        if (!bad.empty()) FAIL(fmt::format("seed {} iova {:#x}: {}", seed, iova, bad));
    };
    for (uint64_t op = 0; op < ops; ++op) {
        if (live.size() < 8 || (live.size() < 96 && rng.chance(52))) {
            const Addr len = rng.chance(3) ? rng.range(1, max_len) : rng.range(1, 16384);
            Addr gpa = rng.below(Addr(60) << 30);
            while (gpa < Addr(4) << 30 && gpa + len + (Addr(3) << 20) > 0xFEE0'0000)
                gpa += Addr(1) << 30;  // RAM only
            const Addr hpa = p.hpa_offset + gpa;
            auto m = v->map(hpa, len, rng.chance(50), now);
            REQUIRE(m);
            REQUIRE(m->done >= now);
            now = m->done;
            live.push_back({m->iova, len});
            expect_ok(m->iova);
            expect_ok(m->iova + len - 1);
            REQUIRE(v->guest_intent(m->iova).pa == hpa);
        } else {
            const size_t i = rng.below(live.size());
            const Live l = live[i];
            live[i] = live.back();
            live.pop_back();
            now = v->unmap(l.iova, l.len, now);
            if (strict) {  // nothing of it may still translate on the host
                expect_ok(l.iova);
                expect_ok(l.iova + l.len - 1);
                REQUIRE_FALSE(v->guest_intent(l.iova).mapped);
            }
        }
        const Live& any = live[rng.below(live.size())];
        expect_ok(any.iova + rng.below(any.len));
        now += 100'000;
    }
    CHECK(checks >= (strict ? 3 : 2) * ops);
}

}  // namespace

TEST_CASE("viommu property: shadowing, strict guest", "[viommu][property]") {
    property(ViommuMode::Shadow, true, 1501, 1 << 20);
}

TEST_CASE("viommu property: shadowing, lazy guest", "[viommu][property]") {
    property(ViommuMode::Shadow, false, 1502, 1 << 20);
}

TEST_CASE("viommu property: nested", "[viommu][property]") {
    property(ViommuMode::Nested, true, 1503, 1 << 20);
}

TEST_CASE("viommu property: nested with direct invalidation", "[viommu][property]") {
    property(ViommuMode::NestedDirect, true, 1504, 1 << 20);
}

TEST_CASE("viommu property: nested, lazy guest", "[viommu][property]") {
    property(ViommuMode::Nested, false, 1506, 1 << 20);
}

TEST_CASE("viommu property: nested with direct invalidation, lazy guest", "[viommu][property]") {
    property(ViommuMode::NestedDirect, false, 1507, 1 << 20);
}

TEST_CASE("viommu property: sPAPR guest on a VT-d host", "[viommu][property]") {
    property(ViommuMode::ParavirtSpapr, true, 1505, 3 << 20);  // beyond one indirect batch
}

// ---- Directed costs, to the picosecond. Every cost is set to a distinct value, so a sum
// names the steps it counts: exit 2000, guest map 150 / unmap 160, submit 110, VMM read 60,
// host map 540 / unmap 550, PTE 10, passdown 500, doorbell 120, hcall 1900 + 70 per TCE; the
// fake host queue takes 700 ns. ----

static ViommuParams costed(ViommuMode mode) {
    ViommuParams p;
    p.mode = mode;
    p.vm_exit_ns = 2000;
    p.guest_map_ns = 150;
    p.guest_unmap_ns = 160;
    p.guest_inv_submit_ns = 110;
    p.vmm_read_ns = 60;
    p.host_map_ns = 540;
    p.host_unmap_ns = 550;
    p.host_pte_ns = 10;
    p.passdown_ns = 500;
    p.direct_submit_ns = 120;
    p.hcall_ns = 1900;
    p.hcall_tce_ns = 70;
    return p;
}

TEST_CASE("viommu defaults are the ones docs/viommu.md derives", "[viommu][cost]") {
    const ViommuParams d;
    CHECK(d.vm_exit_ns == 2932);  // 8 796 cycles at 3 GHz
    CHECK(d.hcall_ns == d.vm_exit_ns);
    CHECK(d.host_map_ns == 538);    // 384 + 63.9 + 100 - 10
    CHECK(d.host_unmap_ns == 547);  // 384 + 73.2 + 100 - 10
    CHECK(d.hcall_tce_ns == d.vmm_read_ns + d.host_pte_ns);
    CHECK(d.passdown_ns == 500);
    CHECK(d.guest_inv_submit_ns == 100);
    CHECK(d.direct_submit_ns == 100);
}

TEST_CASE("viommu shadow: one map, one unmap, their invalidations", "[viommu][cost]") {
    Host h;
    const ViommuParams p = costed(ViommuMode::Shadow);
    auto v = h.make(p);
    const Tick t0 = 1'000'000;
    auto m = v->map(p.hpa_offset + 0x12'3000, 4096, true, t0);
    REQUIRE(m);
    // 150 guest map + 110 submit + 2000 exit + 4 levels x 60 VMM reads + 540 map + 10 PTE
    CHECK(m->done - t0 == Tick(3050'000));
    CHECK(h.batches == 0);  // a host map needs no invalidation
    CHECK(h.check(*v, m->iova).empty());
    const Tick t1 = 10'000'000;
    // 160 guest unmap + 110 + 2000 + 240 reads + 550 unmap + 10 PTE + 700 host queue
    CHECK(v->unmap(m->iova, 4096, t1) - t1 == Tick(3770'000));
    CHECK_FALSE(walk_functional(h.walker, h.mem, kDev, m->iova, Access::Read).ok());
    CHECK(h.stats.child("vm_exits").entries().at(0).counter->value() == 2);
    CHECK(h.counter("shadow_maps") == 1);
    CHECK(h.counter("shadow_unmaps") == 1);
    CHECK(h.counter("vmm_table_reads") == 8);
    const Histogram& inv = h.histogram("inv_latency_ns");
    CHECK(inv.count() == 2);
    CHECK(inv.min() == 2900);  // map: submit to VM entry
    CHECK(inv.max() == 3610);  // unmap: with the host's invalidation wait
    CHECK(h.histogram("map_ns").max() == 3050);
    CHECK(h.histogram("unmap_ns").max() == 3770);
}

TEST_CASE("viommu shadow, lazy guest: the flush walks the whole guest table", "[viommu][cost]") {
    Host h;
    ViommuParams p = costed(ViommuMode::Shadow);
    p.guest_strict = false;
    p.guest_fq_entries = 2;
    auto v = h.make(p);
    auto a = v->map(p.hpa_offset + 0x4000, 4096, true, 0);
    auto b = v->map(p.hpa_offset + 0x9000, 4096, true, 0);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(h.counter("vmm_table_reads") == 8);
    // The first unmap only clears the guest's PTE and queues: the shadow keeps translating,
    // as the lazy guest allows, until the flush.
    CHECK(v->unmap(a->iova, 4096, 0) == Tick(160'000));
    CHECK(walk_functional(h.walker, h.mem, kDev, a->iova, Access::Read).ok());
    CHECK(h.batches == 0);
    // The second fills the queue: one domain-selective invalidation, for which the VMM reads
    // all 512 entries of each of the 4 tables on the way to both (cleared) leaves, then
    // unmaps both pieces: 160 + 110 + 2000 + 2048 x 60 + 2 x (550 + 10) + 700.
    CHECK(v->unmap(b->iova, 4096, 0) == Tick(160 + 110 + 2000 + 2048 * 60 + 2 * 560 + 700) * 1000);
    CHECK(h.counter("vmm_table_reads") == 8 + 2048);
    CHECK(h.counter("shadow_unmaps") == 2);
    CHECK(h.counter("guest_invalidations") == 3);  // two maps (caching mode), one flush
    CHECK(h.batches == 1);
    CHECK_FALSE(walk_functional(h.walker, h.mem, kDev, a->iova, Access::Read).ok());
    CHECK_FALSE(walk_functional(h.walker, h.mem, kDev, b->iova, Access::Read).ok());
}

TEST_CASE("viommu nested: maps cost the guest only, invalidations trap", "[viommu][cost]") {
    for (bool direct : {false, true}) {
        Host h;
        const ViommuParams p = costed(direct ? ViommuMode::NestedDirect : ViommuMode::Nested);
        auto v = h.make(p);
        auto m = v->map(p.hpa_offset + 0x4000, 100, false, 0);
        REQUIRE(m);
        CHECK(m->done == Tick(150'000));
        CHECK(h.batches == 0);  // nothing reached the host queue
        CHECK(h.check(*v, m->iova).empty());
        const Tick done = v->unmap(m->iova, 100, 0);
        // trapped: 160 + 110 submit + 2000 exit + 500 passdown + 700 queue; direct: 160 + 110
        // + 120 doorbell + 700
        CHECK(done == Tick(direct ? 1090'000 : 3470'000));
        CHECK(h.histogram("inv_latency_ns").max() == (direct ? 930u : 3310u));
        CHECK(h.counter("passed_down") == (direct ? 0u : 1u));
        CHECK(h.counter("direct_invalidations") == (direct ? 1u : 0u));
        CHECK(h.check(*v, m->iova).empty());
    }
}

TEST_CASE("viommu nested, lazy guest: queued unmaps, one PASID-selective flush", "[viommu][cost]") {
    using K = InvalidationScope::Kind;
    for (bool direct : {false, true}) {
        Host h;  // the host driver is strict: the guest's own policy must decide
        ViommuParams p = costed(direct ? ViommuMode::NestedDirect : ViommuMode::Nested);
        p.guest_strict = false;
        p.guest_fq_entries = 2;
        auto v = h.make(p);
        h.issued.clear();
        auto a = v->map(p.hpa_offset + 0x4000, 4096, true, 0);
        auto b = v->map(p.hpa_offset + 0x9000, 4096, true, 0);
        REQUIRE(a);
        REQUIRE(b);
        // The first unmap only queues: 160 ns of guest work, nothing reaches the host.
        CHECK(v->unmap(a->iova, 4096, 0) == Tick(160'000));
        CHECK(h.batches == 0);
        CHECK_FALSE(v->guest_intent(a->iova).mapped);
        // The second fills the queue: 160 + 110 submit + (2000 exit + 500 passdown, or 120
        // doorbell) + 700 queue, one PASID-selective invalidation for both.
        CHECK(v->unmap(b->iova, 4096, 0) == Tick(direct ? 1090'000 : 3470'000));
        CHECK(h.batches == 1);
        CHECK(h.issued == std::vector<K>{K::Pasid, K::Wait});
        CHECK(h.counter("guest_invalidations") == 1);
        CHECK(h.counter("passed_down") == (direct ? 0u : 1u));
        CHECK(h.histogram("inv_latency_ns").max() == (direct ? 930u : 3310u));
        CHECK(h.check(*v, a->iova).empty());
        CHECK(h.check(*v, b->iova).empty());
    }
    {  // Timeout: the next call after 10 ms pays the flush; strict issues a page-selective one.
        Host h;
        ViommuParams p = costed(ViommuMode::Nested);
        p.guest_strict = false;
        auto v = h.make(p);
        h.issued.clear();
        auto a = v->map(p.hpa_offset + 0x4000, 4096, true, 0);
        REQUIRE(a);
        CHECK(v->unmap(a->iova, 4096, 0) == Tick(160'000));
        const Tick later = Tick(20'000'000) * 1000;  // 20 ms
        auto c = v->map(p.hpa_offset + 0x8000, 4096, true, later);
        REQUIRE(c);
        CHECK(c->done - later == Tick(3310 + 150) * 1000);
        CHECK(h.issued == std::vector<K>{K::Pasid, K::Wait});
        p.guest_strict = true;
        Host s;
        auto w = s.make(p);
        s.issued.clear();
        auto m = w->map(p.hpa_offset + 0x4000, 4096, true, 0);
        REQUIRE(m);
        CHECK(w->unmap(m->iova, 4096, 0) == Tick(3470'000));
        CHECK(s.issued == std::vector<K>{K::PasidPage, K::Wait});
    }
}

TEST_CASE("viommu sPAPR: H_PUT_TCE, H_PUT_TCE_INDIRECT and H_STUFF_TCE", "[viommu][cost]") {
    Host h;
    const ViommuParams p = costed(ViommuMode::ParavirtSpapr);
    auto v = h.make(p);
    auto one = v->map(p.hpa_offset + 0x1000, 8, true, 0);
    REQUIRE(one);
    CHECK(one->done == Tick(150 + 1900 + 70 + 540 + 10) * 1000);
    CHECK(h.stats.child("hcalls").entries().at(0).counter->value() == 1);    // put_tce
    CHECK(h.stats.child("vm_exits").entries().at(1).counter->value() == 1);  // hcall
    // 600 TCEs: two indirect calls (512 + 88), each TCE a host map.
    auto many = v->map(p.hpa_offset + (Addr(1) << 30), 600 * 4096, true, 0);
    REQUIRE(many);
    CHECK(many->done == Tick(150 + 2 * 1900 + 600 * 70 + 600 * 550) * 1000);
    CHECK(h.stats.child("hcalls").entries().at(1).counter->value() == 2);  // indirect
    CHECK(h.check(*v, many->iova + 599 * 4096).empty());
    // H_STUFF_TCE of one TCE: 160 + 1900 + 70 + 550 + 10 + 700 queue.
    CHECK(v->unmap(one->iova, 8, 0) == Tick(3390'000));
    CHECK(h.histogram("inv_latency_ns").max() == 700);  // the host's invalidation and wait
    CHECK(h.check(*v, one->iova).empty());
    CHECK_FALSE(v->guest_intent(one->iova).mapped);
}

TEST_CASE("viommu sPAPR window check against the host's permitted IOVA ranges",
          "[viommu][window]") {
    HostIovaLimits h48;
    h48.reserved.push_back(x86_msi_region());
    HostIovaLimits h57 = h48;
    h57.width = 57;
    std::string why;
    const Addr TiB = Addr(1) << 40;
    // The default 32-bit window fits as it is.
    CHECK(place_guest_window("default window", 0, Addr(1) << 30, 12, h48, false, &why) == 0);
    // A DDW at 2^59 fits neither a 48- nor a 57-bit host: refused, or offered lower.
    CHECK_FALSE(place_guest_window("DDW", Addr(1) << 59, TiB, 16, h48, false, &why));
    CHECK(why.find("passes the host's 48-bit IOVA width") != std::string::npos);
    CHECK_FALSE(place_guest_window("DDW", Addr(1) << 59, TiB, 16, h57, false, &why));
    CHECK(why.find("57-bit") != std::string::npos);
    CHECK(place_guest_window("DDW", Addr(1) << 59, TiB, 16, h48, true, &why) == TiB);
    CHECK(place_guest_window("DDW", Addr(1) << 59, TiB, 16, h57, true, &why) == TiB);
    // Nothing holds a window as large as the host's whole space.
    CHECK_FALSE(place_guest_window("DDW", Addr(1) << 59, Addr(1) << 48, 16, h48, true, &why));
    CHECK(why.find("no base the host permits") != std::string::npos);
    // A 4 GiB window at 0 would cover the MSI range.
    CHECK_FALSE(place_guest_window("default window", 0, Addr(4) << 30, 12, h48, false, &why));
    CHECK(why.find("reserved msi range") != std::string::npos);
    // A host IO page larger than the TCE page is refused.
    HostIovaLimits big = h48;
    big.page_size = 64 << 10;
    CHECK_FALSE(place_guest_window("default window", 0, Addr(1) << 30, 12, big, false, &why));
    CHECK(why ==
          "default window: the host's IO page size 64 KiB is larger than the guest's TCE "
          "page size 4 KiB: one TCE could not be mapped on its own (expected a host page "
          "of at most 4 KiB)");
    CHECK(place_guest_window("DDW", TiB, TiB, 16, big, false, &why) == TiB);

    // Through create(): the limits come from the host driver (4 levels: 48 bits).
    Host h;
    ViommuParams p;
    p.mode = ViommuMode::ParavirtSpapr;
    p.ddw_size = TiB;
    auto v = h.make(p);
    REQUIRE(v->windows().size() == 2);
    CHECK(v->windows()[1].base == TiB);
    p.ddw_relocate = false;
    CHECK_FALSE(Viommu::create(p, h.host(), h.stats, &why));
    CHECK(why.find("DDW of 1024 GiB at 0x800000000000000") == 0);
}

TEST_CASE("viommu refuses what the host cannot take", "[viommu][errors]") {
    std::string why;
    {
        Host h;
        ViommuParams p;
        p.mode = ViommuMode::Shadow;
        p.host_page_size = 8192;
        CHECK_FALSE(Viommu::create(p, h.host(), h.stats, &why));
        CHECK(why.find("larger than the guest VT-d's 4 KiB page") != std::string::npos);
    }
    {
        Host legacy(false);
        ViommuParams p;
        p.mode = ViommuMode::Nested;
        CHECK_FALSE(Viommu::create(p, legacy.host(), legacy.stats, &why));
        CHECK(why.find("scalable") != std::string::npos);
    }
    {
        Host h;
        ViommuParams p;
        p.mode = ViommuMode::Nested;
        p.hpa_offset = Addr(3) << 20;
        CHECK_FALSE(Viommu::create(p, h.host(), h.stats, &why));
        CHECK(why.find("not 1 GiB aligned") != std::string::npos);
    }
    {
        Host h;
        ViommuParams p;
        p.mode = ViommuMode::Shadow;
        auto v = h.make(p);
        CHECK_FALSE(v->map(0x1000, 4096, true, 0));  // below the VM's RAM
        CHECK(h.counter("map_failures") == 1);
        CHECK_FALSE(v->map_long(0x1000, 4096, &why));
        CHECK(why.find("below the VM's RAM") != std::string::npos);
    }
}
