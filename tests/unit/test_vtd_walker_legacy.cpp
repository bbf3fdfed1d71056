// Directed tests of the VT-d walker in legacy mode (RTADDR.TTM = 00): root and context entries,
// 3-, 4- and 5-level second-level tables, every legacy fault reason, FPD, the exact step
// sequence, context reuse, driver-built tables and the walk explainer.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "host/vtd_driver.h"
#include "vtd_walker_test_util.h"

using namespace iommusim;
using namespace iommusim::vtd;

namespace {
using namespace iommusim::test;
const Requester kDev = Requester::bdf(0, 3, 0);
}  // namespace

TEST_CASE("legacy 4-level walk: 4 KiB, 2 MiB and 1 GiB leaves", "[vtd]") {
    Legacy t;
    Addr root = t.attach(kDev, kAw48, 42);
    t.map(root, 4, 0x1234'5000, 0xABCD'E000, 1, kPermRW);
    t.map(root, 4, 0x8020'0000, 0x1'2340'0000, 2, kPermRW);
    t.map(root, 4, 0x1'4000'0000, 0x2'C000'0000, 3, kPermR);

    const WalkResult r4k = t.walk(kDev, 0x1234'5678);
    REQUIRE(r4k.ok());
    CHECK(r4k.tr.out == 0xABCD'E678);
    CHECK(r4k.tr.page_shift == 12);
    CHECK(r4k.tr.perm == (kPermRW | kPermX));  // without SLEE, execute follows read
    CHECK(r4k.tr.tag == 42);
    CHECK(r4k.reads == 6);  // root + context + 4 levels
    CHECK(r4k.writes == 0);

    const WalkResult r2m = t.walk(kDev, 0x803A'BCDE, Access::Write);
    REQUIRE(r2m.ok());
    CHECK(r2m.tr.out == 0x1'235A'BCDE);
    CHECK(r2m.tr.page_shift == 21);
    CHECK(r2m.reads == 5);

    const WalkResult r1g = t.walk(kDev, 0x1'7456'789A);
    REQUIRE(r1g.ok());
    CHECK(r1g.tr.out == 0x2'F456'789A);
    CHECK(r1g.tr.page_shift == 30);
    CHECK(r1g.tr.perm == (kPermR | kPermX));
    CHECK(r1g.reads == 4);

    // Holes: a missing leaf in an existing table, and a missing level-3 entry.
    const WalkResult hole = t.walk(kDev, 0x1234'6000);
    CHECK_FAULT(hole, NotPresent, kFrRead);
    CHECK(hole.fault.level == 1);
    CHECK(hole.fault.addr == 0x1234'6000);
    const WalkResult gap = t.walk(kDev, 0x2'0000'0000, Access::Write);
    CHECK_FAULT(gap, NotPresent, kFrWrite);
    CHECK(gap.fault.level == 3);
    CHECK(gap.reads == 4);
}

TEST_CASE("legacy 3- and 5-level tables and the address-width limits", "[vtd]") {
    Legacy t;
    SECTION("3-level (AW 39)") {
        Addr root = t.attach(kDev, kAw39, 3);
        t.map(root, 3, 0x7F'FFFF'F000, 0x5000, 1, kPermRW);
        t.map(root, 3, 0x4000'0000, 0x8000'0000, 3, kPermRW);
        const WalkResult top = t.walk(kDev, 0x7F'FFFF'F123);
        REQUIRE(top.ok());
        CHECK(top.tr.out == 0x5123);
        CHECK(top.reads == 5);
        const WalkResult big = t.walk(kDev, 0x7654'3210);
        REQUIRE(big.ok());
        CHECK(big.tr.out == 0xB654'3210);
        CHECK(big.tr.page_shift == 30);
        CHECK(big.reads == 3);
        const WalkResult beyond = t.walk(kDev, Addr(1) << 39);
        CHECK_FAULT(beyond, AddressRange, kFrAddressBeyondMgaw);
        CHECK(beyond.reads == 2);
    }
    SECTION("5-level (AW 57)") {
        t.cfg.sagaw = 0b1110;
        t.cfg.mgaw = 57;
        Addr root = t.attach(kDev, kAw57, 5);
        const Addr high = 0x01F0'0000'1234'5000;  // bits 56:48 in use
        t.map(root, 5, high, 0xFEDC'B000, 1, kPermRW);
        t.map(root, 5, 0x01F0'0000'4000'0000, 0x3'0000'0000, 2, kPermRW);
        t.map(root, 5, 0x01F0'0000'8000'0000, 0x4'0000'0000, 3, kPermRW);
        const WalkResult r = t.walk(kDev, high + 0x678);
        REQUIRE(r.ok());
        CHECK(r.tr.out == 0xFEDC'B678);
        CHECK(r.reads == 7);
        const WalkResult r2m = t.walk(kDev, 0x01F0'0000'4001'2345);
        REQUIRE(r2m.ok());
        CHECK(r2m.tr.out == 0x3'0001'2345);
        CHECK(r2m.tr.page_shift == 21);
        CHECK(r2m.reads == 6);
        const WalkResult r1g = t.walk(kDev, 0x01F0'0000'8765'4321);
        REQUIRE(r1g.ok());
        CHECK(r1g.tr.out == 0x4'0765'4321);
        CHECK(r1g.tr.page_shift == 30);
        CHECK(r1g.reads == 5);
        CHECK_FAULT(t.walk(kDev, Addr(1) << 57), AddressRange, kFrAddressBeyondMgaw);
    }
    SECTION("AW not in SAGAW, reserved AW encodings") {
        t.attach(kDev, kAw57, 5);  // default SAGAW offers 39 and 48 bits only
        CHECK_FAULT(t.walk(kDev, 0), InvalidEntry, kFrContextInvalid);
        t.attach(kDev, 0, 5);
        CHECK_FAULT(t.walk(kDev, 0), InvalidEntry, kFrContextInvalid);
        t.attach(kDev, 4, 5);
        CHECK_FAULT(t.walk(kDev, 0), InvalidEntry, kFrContextInvalid);
    }
    SECTION("MGAW narrower than the context's AW") {
        t.cfg.mgaw = 39;
        Addr root = t.attach(kDev, kAw48, 6);
        t.map(root, 4, Addr(1) << 40, 0x9000, 1, kPermRW);
        CHECK_FAULT(t.walk(kDev, Addr(1) << 40), AddressRange, kFrAddressBeyondMgaw);
    }
}

TEST_CASE("legacy translation types: pass-through, device-TLB, reserved", "[vtd]") {
    Legacy t;
    auto set_tt = [&](TranslationType tt) {
        store_entry(t.mem, t.context_slot(kDev), make_context_entry(0, kAw48, 9, tt));
    };
    set_tt(TranslationType::PassThrough);
    const WalkResult pt = t.walk(kDev, 0xDEAD'BEEF'123, Access::Write);
    REQUIRE(pt.ok());
    CHECK(pt.tr.out == 0xDEAD'BEEF'123);
    CHECK(pt.tr.perm == (kPermRW | kPermX));
    CHECK(pt.tr.page_shift == 12);
    CHECK(pt.tr.tag == 9);
    CHECK(pt.reads == 2);
    CHECK_FAULT(t.walk(kDev, Addr(1) << 48), AddressRange, kFrAddressBeyondMgaw);

    t.cfg.pass_through = false;  // ECAP.PT = 0 makes TT 10b reserved
    CHECK_FAULT(t.walk(kDev, 0x1000), InvalidEntry, kFrContextInvalid);

    set_tt(TranslationType::Reserved);
    CHECK_FAULT(t.walk(kDev, 0x1000), InvalidEntry, kFrContextInvalid);

    // TT 01b translates untranslated requests like 00b, unless ECAP.DT = 0 reserves it.
    Addr root = t.page();
    store_entry(t.mem, t.context_slot(kDev),
                make_context_entry(root, kAw48, 9, TranslationType::DeviceTlb));
    t.map(root, 4, 0x3000, 0x7000, 1, kPermR);
    const WalkResult dt = t.walk(kDev, 0x3010);
    REQUIRE(dt.ok());
    CHECK(dt.tr.out == 0x7010);
    t.cfg.device_tlb = false;
    CHECK_FAULT(t.walk(kDev, 0x3010), InvalidEntry, kFrContextInvalid);
}

TEST_CASE("legacy not-present and table-access faults", "[vtd]") {
    Legacy t;
    Addr root = t.attach(kDev, kAw48, 1);
    t.map(root, 4, 0x5000, 0x6000, 1, kPermRW);

    const WalkResult no_root = t.walk(Requester::bdf(5, 0, 0), 0x5000);
    CHECK_FAULT(no_root, NotPresent, kFrRootNotPresent);
    CHECK(no_root.reads == 1);
    const WalkResult no_ctx = t.walk(Requester::bdf(0, 3, 1), 0x5000);
    CHECK_FAULT(no_ctx, NotPresent, kFrContextNotPresent);
    CHECK(no_ctx.reads == 2);

    VtdWalker w(t.cfg);
    w.start(kDev, 0x5000, Access::Read);
    CHECK_FAULT(drive(w, t.mem, 1), TableAccess, kFrRootTableAccess);
    w.start(kDev, 0x5000, Access::Read);
    CHECK_FAULT(drive(w, t.mem, 2), TableAccess, kFrContextTableAccess);
    for (unsigned read = 3; read <= 6; ++read) {
        w.start(kDev, 0x5000, Access::Read);
        const WalkResult r = drive(w, t.mem, read);
        CHECK_FAULT(r, TableAccess, kFrPagingEntryAccess);
        CHECK(r.fault.level == 7 - read);  // reads 3..6 are levels 4..1
    }

    t.cfg.rtaddr = Addr(1) << 50;  // RTADDR beyond HAW (48)
    const WalkResult bad_rta = t.walk(kDev, 0x5000);
    CHECK_FAULT(bad_rta, TableAccess, kFrRootTableAccess);
    CHECK(bad_rta.reads == 0);
}

TEST_CASE("legacy reserved-bit faults in root, context and paging entries", "[vtd]") {
    Legacy t;
    Addr root = t.attach(kDev, kAw48, 1);
    Entries e4k = t.map(root, 4, 0x5000, 0x6000, 1, kPermRW);
    Entries e2m = t.map(root, 4, 0x4000'0000, 0x8000'0000, 2, kPermRW);
    Entries e1g = t.map(root, 4, 0x80'0000'0000, 0x1'0000'0000, 3, kPermRW);
    REQUIRE(t.walk(kDev, 0x5000).ok());
    REQUIRE(t.walk(kDev, 0x4000'0000).ok());
    REQUIRE(t.walk(kDev, 0x80'0000'0000).ok());

    auto with = [&](Addr at, uint64_t set, auto&& body) {
        uint64_t old = t.mem.read64(at);
        t.mem.write64(at, old | set);
        body();
        t.mem.write64(at, old);
    };
    const Addr root_lo = kRootTable, root_hi = kRootTable + 8;
    const Addr ctx_lo = t.context_slot(kDev), ctx_hi = ctx_lo + 8;
    auto expect = [&](Addr iova, FaultKind kind, uint16_t code, uint8_t level) {
        const WalkResult r = t.walk(kDev, iova);
        CHECK_FALSE(r.ok());
        CHECK(r.fault.kind == kind);
        CHECK(r.fault.reason == code);
        CHECK(r.fault.level == level);
    };
    const auto R = FaultKind::ReservedBit;
    with(root_lo, 1ULL << 1, [&] { expect(0x5000, R, kFrRootReserved, 0); });
    with(root_lo, 1ULL << 50, [&] { expect(0x5000, R, kFrRootReserved, 0); });
    with(root_hi, 1, [&] { expect(0x5000, R, kFrRootReserved, 0); });
    with(ctx_lo, 1ULL << 4, [&] { expect(0x5000, R, kFrContextReserved, 0); });
    with(ctx_lo, 1ULL << 49, [&] { expect(0x5000, R, kFrContextReserved, 0); });
    with(ctx_hi, 1ULL << 7, [&] { expect(0x5000, R, kFrContextReserved, 0); });
    with(ctx_hi, 1ULL << 40, [&] { expect(0x5000, R, kFrContextReserved, 0); });

    with(e4k[1], 1ULL << 49, [&] { expect(0x5000, R, kFrPagingEntryReserved, 1); });
    with(e4k[4], 1ULL << 7, [&] { expect(0x5000, R, kFrPagingEntryReserved, 4); });
    with(e4k[3], 1ULL << 62, [&] { expect(0x5000, R, kFrPagingEntryReserved, 3); });
    with(e2m[2], 1ULL << 12, [&] { expect(0x4000'0000, R, kFrPagingEntryReserved, 2); });
    with(e2m[2], 1ULL << 20, [&] { expect(0x4000'0000, R, kFrPagingEntryReserved, 2); });
    with(e1g[3], 1ULL << 29, [&] { expect(0x80'0000'0000, R, kFrPagingEntryReserved, 3); });
    with(e4k[1], 1ULL << 11, [&] { expect(0x5000, R, kFrPagingEntryReserved, 1); });

    // With ECAP.SC the leaf's SNP bit is defined; bit 11 of a table entry stays reserved.
    t.cfg.snoop_control = true;
    with(e4k[1], 1ULL << 11, [&] { CHECK(t.walk(kDev, 0x5000).ok()); });
    with(e4k[2], 1ULL << 11, [&] { expect(0x5000, R, kFrPagingEntryReserved, 2); });

    // Large pages the unit does not support make PS reserved.
    t.cfg.sl_1g = false;
    expect(0x80'0000'0000, R, kFrPagingEntryReserved, 3);
    t.cfg.sl_2m = false;
    expect(0x4000'0000, R, kFrPagingEntryReserved, 2);
    CHECK(t.walk(kDev, 0x5000).ok());
}

TEST_CASE("legacy permissions: read-only, write-only, atomics, every level counts", "[vtd]") {
    Legacy t;
    Addr root = t.attach(kDev, kAw48, 1);
    t.map(root, 4, 0x1000, 0x11000, 1, kPermR);
    t.map(root, 4, 0x2000, 0x12000, 1, kPermW);

    CHECK_FAULT(t.walk(kDev, 0x1000, Access::Write), Permission, kFrWrite);
    CHECK(t.res.fault.level == 1);
    CHECK_FAULT(t.walk(kDev, 0x1000, Access::ReadWrite), Permission, kFrWrite);
    CHECK_FAULT(t.walk(kDev, 0x2000, Access::Read), Permission, kFrRead);
    CHECK_FAULT(t.walk(kDev, 0x2000, Access::ReadWrite), Permission, kFrRead);
    const WalkResult wo = t.walk(kDev, 0x2004, Access::Write);
    REQUIRE(wo.ok());
    CHECK(wo.tr.out == 0x12004);
    CHECK(wo.tr.perm == kPermW);
    CHECK_FAULT(t.walk(kDev, 0x3000, Access::ReadWrite), NotPresent, kFrRead);

    // A level-3 entry without W takes write permission from everything below it.
    Entries e = t.map(root, 4, 0x4000'0000, 0x2'0000'0000, 1, kPermRW);
    t.mem.write64(e[3], t.mem.read64(e[3]) & ~(1ULL << sl::W));
    CHECK_FAULT(t.walk(kDev, 0x4000'0000, Access::Write), Permission, kFrWrite);
    const WalkResult rd = t.walk(kDev, 0x4000'0000);
    REQUIRE(rd.ok());
    CHECK(rd.tr.perm == (kPermR | kPermX));
}

TEST_CASE("legacy mode blocks requests with PASID", "[vtd]") {
    Legacy t;
    Addr root = t.attach(kDev, kAw48, 1);
    t.map(root, 4, 0x1000, 0x11000, 1, kPermRW);
    const WalkResult r = t.walk(kDev.with_pasid(5), 0x1000);
    CHECK_FAULT(r, Blocked, kSmTtm0RequestWithPasid);
    CHECK(r.reads == 0);
}

TEST_CASE("legacy FPD suppresses faults under its context entry only", "[vtd]") {
    Legacy t;
    Requester quiet = Requester::bdf(0, 4, 0);
    t.attach(kDev, kAw48, 1);
    t.attach(quiet, kAw48, 2, true);

    VtdWalker w(t.cfg);
    const WalkResult loud = walk_functional(w, t.mem, kDev, 0x1000, Access::Read);
    CHECK_FAULT(loud, NotPresent, kFrRead);
    CHECK_FALSE(loud.fault.suppressed);
    const WalkResult hushed = walk_functional(w, t.mem, quiet, 0x1000, Access::Read);
    CHECK_FAULT(hushed, NotPresent, kFrRead);
    CHECK(hushed.fault.suppressed);
    // The previous walk's FPD must not leak into a fault found before any context entry.
    const WalkResult no_root = walk_functional(w, t.mem, Requester::bdf(7, 0, 0), 0, Access::Read);
    CHECK_FAULT(no_root, NotPresent, kFrRootNotPresent);
    CHECK_FALSE(no_root.fault.suppressed);
    // FPD is evaluated even in a context entry whose P bit is clear (fresh walker: no history).
    Requester absent = Requester::bdf(0, 5, 0);
    t.mem.write64(t.context_slot(absent), 1ULL << 1);
    VtdWalker fresh(t.cfg);
    const WalkResult r = walk_functional(fresh, t.mem, absent, 0, Access::Read);
    CHECK_FAULT(r, NotPresent, kFrContextNotPresent);
    CHECK(r.fault.suppressed);
}

TEST_CASE("legacy walk step sequence: addresses, sizes, stages, levels", "[vtd]") {
    Legacy t;
    const Requester dev = Requester::bdf(2, 4, 1);  // bus 2, devfn 0x21
    Addr root = t.attach(dev, kAw48, 77);
    Entries e = t.map(root, 4, 0x7F'C0DE'F000, 0xC0DE'0000, 1, kPermRW);

    VtdWalker w(t.cfg);
    std::vector<WalkStep> steps;
    w.start(dev, 0x7F'C0DE'F042, Access::Read);
    const WalkResult r = drive(w, t.mem, 0, &steps);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0xC0DE'0042);
    REQUIRE(steps.size() == 7);
    CHECK(steps[0].stage == WalkStage::Root);
    CHECK(steps[0].addr == kRootTable + 2 * 16);
    CHECK(steps[0].size == 16);
    CHECK(steps[1].stage == WalkStage::Context);
    CHECK(steps[1].addr == t.ctx_tables.at(2) + 0x21 * 16);
    CHECK(steps[1].size == 16);
    for (unsigned i = 2; i < 6; ++i) {
        const unsigned level = 6 - i;
        CHECK(steps[i].kind == WalkStep::Kind::Read);
        CHECK(steps[i].stage == WalkStage::SecondLevel);
        CHECK(steps[i].level == level);
        CHECK(steps[i].addr == e[level]);
        CHECK(steps[i].size == 8);
        CHECK_FALSE(steps[i].nested);
    }
    CHECK(e[4] == root);                // 0x7F'C0DE'F000: PML4 index 0
    CHECK(e[3] % 0x1000 == 0x1FF * 8);  // PDPT index 0x1FF
    CHECK(steps[6].kind == WalkStep::Kind::Done);
    CHECK(w.next().kind == WalkStep::Kind::Done);
}

TEST_CASE("legacy start_with_context reuses a captured context", "[vtd]") {
    Legacy t;
    Addr root = t.attach(kDev, kAw48, 31);
    t.map(root, 4, 0x10'0000, 0x55'0000, 1, kPermRW);
    t.map(root, 4, 0x20'0000, 0x66'0000, 1, kPermR);

    VtdWalker w(t.cfg);
    const WalkResult cold = walk_functional(w, t.mem, kDev, 0x10'0123, Access::Read);
    REQUIRE(cold.ok());
    CHECK(cold.reads == 6);
    REQUIRE(w.context_ready());
    const VtdContext ctx = w.vtd_context();
    CHECK(ctx.mode == VtdContext::Mode::SecondLevel);
    CHECK(ctx.did == 31);
    CHECK(ctx.sl_root == root);
    CHECK(ctx.sl_levels == 4);

    w.start_with_context(ctx, kDev, 0x10'0123, Access::Read);
    const WalkResult warm = drive(w, t.mem);
    REQUIRE(warm.ok());
    CHECK(warm.tr.out == 0x55'0123);
    CHECK(warm.tr.tag == 31);
    CHECK(warm.reads == 4);
    w.start_with_context(ctx, kDev, 0x20'0FFF, Access::Write);
    CHECK_FAULT(drive(w, t.mem), Permission, kFrWrite);
}

TEST_CASE("legacy walks over driver-built tables match the mapping asked for", "[vtd]") {
    SparseMemory mem;
    DriverConfig cfg;
    Driver drv(mem, cfg);
    auto did = drv.create_domain({});
    REQUIRE(did);
    const Requester dev = Requester::bdf(3, 0, 0);
    REQUIRE(drv.attach(dev.rid, *did));
    REQUIRE(drv.map(*did, 0x1000'0000, 0x8765'4000, 0x1000, kPermRW));
    REQUIRE(drv.map(*did, 0x2000'0000, 0x1'4000'0000, 0x20'0000, kPermR));
    REQUIRE(drv.map(*did, 0x4000'0000, 0x2'0000'0000, 0x4000'0000, kPermRW));

    VtdWalker w(drv.hw());
    struct Case {
        Addr iova, out;
        unsigned shift, reads;
    };
    for (const Case& c :
         {Case{0x1000'0ABC, 0x8765'4ABC, 12, 6}, Case{0x201F'FFFF, 0x1'401F'FFFF, 21, 5},
          Case{0x7FFF'FFF8, 0x2'3FFF'FFF8, 30, 4}}) {
        const WalkResult r = walk_functional(w, mem, dev, c.iova, Access::Read);
        REQUIRE(r.ok());
        CHECK(r.tr.out == c.out);
        CHECK(r.tr.page_shift == c.shift);
        CHECK(r.reads == c.reads);
        CHECK(r.tr.tag == *did);
    }
    CHECK_FAULT(walk_functional(w, mem, dev, 0x2000'0000, Access::Write), Permission, kFrWrite);
    CHECK_FAULT(walk_functional(w, mem, dev, 0x1000'1000, Access::Read), NotPresent, kFrRead);
}

TEST_CASE("legacy explain_walk decodes every entry", "[vtd]") {
    Legacy t;
    Addr root = t.attach(kDev, kAw48, 42);
    t.map(root, 4, 0x1234'5000, 0xABCD'E000, 1, kPermRW);
    VtdWalker w(t.cfg);
    const std::string text = explain_walk(w, t.mem, kDev, 0x1234'5678, Access::Read);
    for (const char* field :
         {"root[bus 0x00]", "CTP=", "context[devfn 0x18]", "TT=0", "SLPTPTR=", "AW=2", "DID=42",
          "sl-pte", "ADDR=0xabcde000", "=> 0xabcde678", "6 reads"})
        CHECK_THAT(text, Catch::Contains(field));
}
