// Directed tests of the VT-d walker in scalable mode (RTADDR.TTM = 01): root halves, context
// and PASID structures, first-level, second-level, nested and pass-through PASID entries,
// every scalable-mode fault the walker raises, accessed/dirty updates, context reuse,
// driver-built domains and the walk explainer.
#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "host/vtd_driver.h"
#include "vtd_walker_test_util.h"

using namespace iommusim;
using namespace iommusim::vtd;

namespace {
using namespace iommusim::test;
const Requester kDev = Requester::bdf(0, 3, 0);
constexpr uint32_t kPasid = 0x12345;
}  // namespace

TEST_CASE("scalable second level through RID_PASID and both root-entry halves", "[vtd]") {
    Scalable t;
    ScalableContextFields f = context_fields();
    f.rid_pasid = 5;
    t.context(kDev, f);
    const Addr sl = t.page();
    t.attach(kDev, 5, pasid_fields(Pgtt::SecondLevel, 7, sl));
    t.map(kSl4, sl, 0x1234'5000, 0xABCD'E000, 1, kPermRW);

    const WalkResult r = t.walk(kDev, 0x1234'5678);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0xABCD'E678);
    CHECK(r.tr.perm == (kPermRW | kPermX));
    CHECK(r.tr.tag == 7);
    CHECK(r.reads == 8);  // root, context, PASID directory and entry, 4 levels
    CHECK_FAULT(t.walk(kDev.with_pasid(0), 0x1234'5678), NotPresent, kSmPasidEntryNotPresent);

    // devfn 0xFF lives in the upper half of the root entry, at index 0x7F of its table.
    const Requester upper = Requester::bdf(0, 0x1f, 7);
    const Addr sl2 = t.page();
    t.attach(upper, 0, pasid_fields(Pgtt::SecondLevel, 8, sl2));
    t.map(kSl4, sl2, 0x1234'5000, 0x7777'7000, 1, kPermR);
    VtdWalker w(t.cfg);
    std::vector<WalkStep> steps;
    w.start(upper, 0x1234'5004, Access::Read);
    const WalkResult ru = drive(w, t.mem, 0, &steps);
    REQUIRE(ru.ok());
    CHECK(ru.tr.out == 0x7777'7004);
    CHECK(ru.tr.tag == 8);
    REQUIRE(steps.size() >= 4);
    CHECK(steps[0].addr == kRootTable);
    CHECK(steps[0].size == 16);
    CHECK(steps[1].addr == t.ctx_tables.at(1) + 0x7F * 32);
    CHECK(steps[1].size == 32);
    CHECK(steps[2].addr == t.dirs.at(upper.rid));  // RID_PASID 0: directory entry 0
    CHECK(steps[2].size == 8);
    CHECK(steps[3].size == 64);
    CHECK(t.walk(kDev, 0x1234'5678).tr.out == 0xABCD'E678);  // lower half still in use

    // A bus with only one half present.
    const Requester up1 = Requester::bdf(1, 0x1f, 0), low1 = Requester::bdf(1, 1, 0);
    t.attach(up1, 0, pasid_fields(Pgtt::SecondLevel, 9, sl2));
    CHECK(t.walk(up1, 0x1234'5000).ok());
    const WalkResult miss = t.walk(low1, 0x1234'5000);
    CHECK_FAULT(miss, NotPresent, kSmRootNotPresent);
    CHECK(miss.reads == 1);
    const Requester low2 = Requester::bdf(2, 1, 0), up2 = Requester::bdf(2, 0x1f, 0);
    t.attach(low2, 0, pasid_fields(Pgtt::SecondLevel, 9, sl2));
    CHECK(t.walk(low2, 0x1234'5000).ok());
    CHECK_FAULT(t.walk(up2, 0x1234'5000), NotPresent, kSmRootNotPresent);
}

TEST_CASE("scalable PASID directory and table indexing and limits", "[vtd]") {
    Scalable t;
    const Addr fl = t.page();
    t.attach(kDev, kPasid, pasid_fields(Pgtt::FirstLevel, 11, 0, fl));
    t.map(kFl4, fl, 0x7000'1000, 0x3'0000'5000, 1, kPermRW);
    VtdWalker w(t.cfg);
    std::vector<WalkStep> steps;
    w.start(kDev.with_pasid(kPasid), 0x7000'1ABC, Access::Read);
    const WalkResult r = drive(w, t.mem, 0, &steps);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0x3'0000'5ABC);
    REQUIRE(steps.size() >= 4);
    CHECK(steps[2].stage == WalkStage::PasidDir);
    CHECK(steps[2].addr == t.dirs.at(kDev.rid) + 0x48D * 8);  // PASID[19:6]
    CHECK(steps[3].stage == WalkStage::PasidEntry);
    CHECK(steps[3].addr == t.pasid_slot(kDev, kPasid));
    CHECK(steps[3].addr % 0x1000 == 0x05 * 64);  // PASID[5:0]

    // PDTS 0: 128 directory entries cover PASIDs below 0x2000.
    const Requester small = Requester::bdf(0, 4, 0);
    t.context(small, context_fields(0));
    const WalkResult big = t.walk(small.with_pasid(0x2000), 0);
    CHECK_FAULT(big, AddressRange, kSmPasidTooLarge);
    CHECK(big.reads == 2);
    const WalkResult edge = t.walk(small.with_pasid(0x1FFF), 0);
    CHECK_FAULT(edge, NotPresent, kSmPasidDirNotPresent);
    CHECK(edge.reads == 3);

    // PASIDE clear: requests with PASID are blocked, those without still use RID_PASID.
    const Requester nopasid = Requester::bdf(0, 5, 0);
    ScalableContextFields f = context_fields();
    f.paside = false;
    t.context(nopasid, f);
    const Addr sl = t.page();
    t.attach(nopasid, 0, pasid_fields(Pgtt::SecondLevel, 12, sl));
    t.map(kSl4, sl, 0x8000, 0x9000, 1, kPermRW);
    const WalkResult blocked = t.walk(nopasid.with_pasid(1), 0x8000);
    CHECK_FAULT(blocked, Blocked, kSmContextPasidDisabled);
    CHECK(blocked.reads == 2);
    CHECK(t.walk(nopasid, 0x8010).tr.out == 0x9010);
}

TEST_CASE("scalable first level: 4 KiB, 2 MiB, 1 GiB, canonical halves", "[vtd]") {
    Scalable t;
    const Addr fl = t.page();
    t.attach(kDev, kPasid, pasid_fields(Pgtt::FirstLevel, 11, 0, fl));
    t.map(kFl4, fl, 0x7000'1000, 0x3'0000'5000, 1, kPermRW);
    t.map(kFl4, fl, 0x4020'0000, 0x1'2340'0000, 2, kPermR);
    t.map(kFl4, fl, 0x80'4000'0000, 0x2'C000'0000, 3, kPermRW | kPermX);
    t.map(kFl4, fl, 0xFFFF'8000'1234'5000, 0x9000, 1, kPermRW);
    const Requester req = kDev.with_pasid(kPasid);

    struct Case {
        Addr iova, out;
        unsigned shift, reads;
        Perm perm;
    };
    for (const Case& c : {Case{0x7000'1FFF, 0x3'0000'5FFF, 12, 8, kPermRW},
                          Case{0x403F'0001, 0x1'235F'0001, 21, 7, kPermR},
                          Case{0x80'7FFF'FFFF, 0x2'FFFF'FFFF, 30, 6, kPermRW | kPermX},
                          Case{0xFFFF'8000'1234'5ABC, 0x9ABC, 12, 8, kPermRW}}) {
        const WalkResult r = t.walk(req, c.iova);
        REQUIRE(r.ok());
        CHECK(r.tr.out == c.out);
        CHECK(r.tr.page_shift == c.shift);
        CHECK(r.reads == c.reads);
        CHECK(r.tr.perm == c.perm);
        CHECK(r.tr.tag == 11);
    }
    CHECK_FAULT(t.walk(req, 0x4020'0000, Access::Write), Permission, kSmNoWrite);
    const WalkResult nc = t.walk(req, 0x0000'8000'0000'0000);
    CHECK_FAULT(nc, AddressRange, kSmNonCanonical);
    CHECK(nc.reads == 4);
    CHECK_FAULT(t.walk(req, 0xFFFF'0000'0000'0000), AddressRange, kSmNonCanonical);
    const WalkResult np = t.walk(req, 0x7000'2000);
    CHECK_FAULT(np, NotPresent, kSmFlNotPresent);
    CHECK(np.fault.level == 1);
    CHECK(t.walk(req, 0x1'0000'0000).fault.level == 3);

    // The unit without 1 GiB first-level pages treats PS at level 3 as reserved.
    t.cfg.fl_1g = false;
    const WalkResult no1g = t.walk(req, 0x80'4000'0000);
    CHECK_FAULT(no1g, ReservedBit, kSmFlReserved);
    CHECK(no1g.fault.level == 3);
}

TEST_CASE("scalable first level with 5-level tables needs FL5LP", "[vtd]") {
    Scalable t;
    t.cfg.fl_5level = true;
    const Addr fl = t.page();
    PasidEntryFields f = pasid_fields(Pgtt::FirstLevel, 13, 0, fl);
    f.fl5 = true;
    t.attach(kDev, kPasid, f);
    t.map(kFl5, fl, 0x00AB'CDEF'1234'5000, 0x7'7777'7000, 1, kPermRW);
    t.map(kFl5, fl, 0x00FF'0000'4000'0000, 0x4'0000'0000, 3, kPermRW);
    const Requester req = kDev.with_pasid(kPasid);
    const WalkResult r = t.walk(req, 0x00AB'CDEF'1234'5321);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0x7'7777'7321);
    CHECK(r.reads == 9);
    const WalkResult r1g = t.walk(req, 0x00FF'0000'4ABC'DEF0);
    REQUIRE(r1g.ok());
    CHECK(r1g.tr.out == 0x4'0ABC'DEF0);
    CHECK(r1g.reads == 7);
    CHECK_FAULT(t.walk(req, 0x0100'0000'0000'0000), AddressRange, kSmNonCanonical);

    t.cfg.fl_5level = false;
    const WalkResult unsupported = t.walk(req, 0x00AB'CDEF'1234'5321);
    CHECK_FAULT(unsupported, InvalidEntry, kSmPasidEntryInvalid);
    CHECK(unsupported.reads == 4);
}

TEST_CASE("scalable first level: privilege, execute and write protection", "[vtd]") {
    Scalable t;
    const Addr fl = t.page();
    auto entry = [&](bool sre, bool wpe) {
        PasidEntryFields f = pasid_fields(Pgtt::FirstLevel, 14, 0, fl);
        f.sre = sre;
        f.wpe = wpe;
        return f;
    };
    t.attach(kDev, 1, entry(false, false));
    t.attach(kDev, 2, entry(true, false));
    t.attach(kDev, 3, entry(true, true));
    Entries sup = t.map(kFl4, fl, 0x1000, 0x21000, 1, kPermRW);
    t.mem.write64(sup[1], t.mem.read64(sup[1]) & ~(1ULL << fl::US));  // supervisor-only page
    t.map(kFl4, fl, 0x2000, 0x22000, 1, kPermR);
    t.map(kFl4, fl, 0x3000, 0x23000, 1, kPermR | kPermX);

    const WalkResult user = t.walk(kDev.with_pasid(1), 0x1000);
    CHECK_FAULT(user, Permission, kSmUserSupervisor);
    CHECK(user.fault.level == 1);
    const WalkResult no_sre = t.walk(kDev.with_pasid(1, true), 0x1000);
    CHECK_FAULT(no_sre, Blocked, kSmPasidSreClear);
    CHECK(no_sre.reads == 4);
    CHECK(t.walk(kDev.with_pasid(2, true), 0x1010).tr.out == 0x21010);

    Requester exec = kDev.with_pasid(1);
    exec.exec = true;
    CHECK_FAULT(t.walk(exec, 0x2000), Permission, kSmNoExecute);
    const WalkResult x = t.walk(exec, 0x3000);
    REQUIRE(x.ok());
    CHECK(x.tr.perm == (kPermR | kPermX));

    // Writes to a read-only page: users fault; supervisors only when WPE is set.
    CHECK_FAULT(t.walk(kDev.with_pasid(1), 0x2000, Access::Write), Permission, kSmNoWrite);
    const WalkResult sup_w = t.walk(kDev.with_pasid(2, true), 0x2008, Access::Write);
    REQUIRE(sup_w.ok());
    CHECK(sup_w.tr.out == 0x22008);
    CHECK(permits(sup_w.tr.perm, kPermW));
    CHECK_FAULT(t.walk(kDev.with_pasid(3, true), 0x2000, Access::Write), Permission, kSmNoWrite);

    // RID_PASID's privilege applies to requests without PASID.
    const Requester priv = Requester::bdf(0, 6, 0);
    ScalableContextFields cf = context_fields();
    cf.rid_pasid = 1;
    cf.rid_priv = true;
    t.context(priv, cf);
    t.attach(priv, 1, entry(false, false));
    CHECK_FAULT(t.walk(priv, 0x2000), Blocked, kSmPasidSreClear);
    // SRE governs first-level translation only.
    const Addr sl = t.page();
    t.attach(kDev, 4, pasid_fields(Pgtt::SecondLevel, 15, sl));
    t.map(kSl4, sl, 0x2000, 0x42000, 1, kPermR);
    CHECK(t.walk(kDev.with_pasid(4, true), 0x2000).tr.out == 0x42000);
}

TEST_CASE("scalable second level and pass-through: permissions, widths, pointers", "[vtd]") {
    Scalable t;
    const Addr sl = t.page();
    t.attach(kDev, 1, pasid_fields(Pgtt::SecondLevel, 21, sl));
    Entries ro = t.map(kSl4, sl, 0x1000, 0x31000, 1, kPermR);
    t.map(kSl4, sl, 0x2000, 0x32000, 1, kPermW);
    const Requester req = kDev.with_pasid(1);

    CHECK_FAULT(t.walk(req, 0x1000, Access::Write), Permission, kSmNoWrite);
    CHECK_FAULT(t.walk(req, 0x2000, Access::Read), Permission, kSmNoRead);
    CHECK_FAULT(t.walk(req, 0x2000, Access::ReadWrite), Permission, kSmNoRead);
    CHECK_FAULT(t.walk(req, 0x1000, Access::ReadWrite), Permission, kSmNoWrite);
    CHECK_FAULT(t.walk(req, 0x5000, Access::Read), NotPresent, kSmNoRead);
    CHECK_FAULT(t.walk(req, 0x5000, Access::Write), NotPresent, kSmNoWrite);
    const WalkResult wide = t.walk(req, Addr(1) << 48);
    CHECK_FAULT(wide, AddressRange, kSmAddressBeyondHwMax);
    CHECK(wide.reads == 4);

    t.mem.write64(ro[4], t.mem.read64(ro[4]) | 1ULL << sl::PS);
    const WalkResult rsvd = t.walk(req, 0x1000);
    CHECK_FAULT(rsvd, ReservedBit, kSmSlReserved);
    CHECK(rsvd.fault.level == 4);
    t.mem.write64(ro[4], t.mem.read64(ro[4]) & ~(1ULL << sl::PS));
    t.mem.write64(ro[1], t.mem.read64(ro[1]) | 1ULL << sl::SNP);
    CHECK_FAULT(t.walk(req, 0x1000), ReservedBit, kSmSlReserved);

    // A table pointer beyond HAW: reserved in the PASID entry; from a cached context, 0x7B.
    t.attach(kDev, 2, pasid_fields(Pgtt::SecondLevel, 22, Addr(1) << 50));
    CHECK_FAULT(t.walk(kDev.with_pasid(2), 0x1000), ReservedBit, kSmPasidEntryReserved);
    VtdContext ctx;
    ctx.scalable = true;
    ctx.sl_root = Addr(1) << 50;
    VtdWalker w(t.cfg);
    w.start_with_context(ctx, req, 0x1000, Access::Read);
    const WalkResult bad_ptr = drive(w, t.mem);
    CHECK_FAULT(bad_ptr, ReservedBit, kSmSlInvalidPointer);
    CHECK(bad_ptr.reads == 0);

    PasidEntryFields pt = pasid_fields(Pgtt::PassThrough, 23, 0);
    t.attach(kDev, 3, pt);
    const WalkResult r = t.walk(kDev.with_pasid(3), 0xFEDC'BA98'7654, Access::Write);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0xFEDC'BA98'7654);
    CHECK(r.tr.perm == (kPermRW | kPermX));
    CHECK(r.tr.tag == 23);
    CHECK(r.reads == 4);
    CHECK_FAULT(t.walk(kDev.with_pasid(3), Addr(1) << 48), AddressRange, kSmAddressBeyondHwMax);
    t.cfg.pass_through = false;
    CHECK_FAULT(t.walk(kDev.with_pasid(3), 0), InvalidEntry, kSmPasidEntryInvalid);
}

TEST_CASE("scalable structure faults: root, context, PASID directory and entry", "[vtd]") {
    Scalable t;
    const Addr fl = t.page(), sl = t.page();
    t.attach(kDev, 1, pasid_fields(Pgtt::FirstLevel, 1, 0, fl));
    t.attach(kDev, 2, pasid_fields(Pgtt::SecondLevel, 2, sl));
    t.map(kFl4, fl, 0x1000, 0x5000, 1, kPermRW);
    t.map(kSl4, sl, 0x1000, 0x6000, 1, kPermRW);
    const Requester fl_req = kDev.with_pasid(1), sl_req = kDev.with_pasid(2);
    REQUIRE(t.walk(fl_req, 0x1000).ok());
    REQUIRE(t.walk(sl_req, 0x1000).ok());

    VtdWalker w(t.cfg);
    const std::array<std::pair<unsigned, uint16_t>, 6> fl_errors{{{1, kSmRootAccess},
                                                                  {2, kSmContextAccess},
                                                                  {3, kSmPasidDirAccess},
                                                                  {4, kSmPasidEntryAccess},
                                                                  {5, kSmFlPml4Access},
                                                                  {6, kSmFlAccess}}};
    for (auto [read, code] : fl_errors) {
        w.start(fl_req, 0x1000, Access::Read);
        CHECK_FAULT(drive(w, t.mem, read), TableAccess, code);
    }
    w.start(sl_req, 0x1000, Access::Read);
    CHECK_FAULT(drive(w, t.mem, 7), TableAccess, kSmSlAccess);
    CHECK(w.result().fault.level == 2);

    auto with = [&](Addr at, uint64_t set, FaultKind kind, uint16_t code) {
        const uint64_t old = t.mem.read64(at);
        t.mem.write64(at, old | set);
        const WalkResult r = t.walk(fl_req, 0x1000);
        CHECK_FALSE(r.ok());
        CHECK(r.fault.kind == kind);
        CHECK(r.fault.reason == code);
        t.mem.write64(at, old);
    };
    const Addr ctx = t.context_slot(kDev), dir = t.dirs.at(kDev.rid), pe = t.pasid_slot(kDev, 1);
    const auto R = FaultKind::ReservedBit, I = FaultKind::InvalidEntry;
    with(kRootTable, 1ULL << 1, R, kSmRootReserved);
    with(kRootTable, 1ULL << 50, R, kSmRootReserved);
    with(ctx, 1ULL << 5, R, kSmContextReserved);
    with(ctx + 8, 1ULL << 21, R, kSmContextReserved);
    with(ctx + 16, 1, R, kSmContextReserved);
    with(dir, 1ULL << 2, R, kSmPasidDirReserved);
    with(dir, 1ULL << 50, R, kSmPasidDirReserved);
    with(pe, 1ULL << 10, R, kSmPasidEntryReserved);
    with(pe + 8, 1ULL << 16, R, kSmPasidEntryReserved);
    with(pe + 16, 1ULL << 8, R, kSmPasidEntryReserved);
    with(pe + 24, 1, R, kSmPasidEntryReserved);
    with(pe + 16, 2ULL << 2, I, kSmPasidEntryInvalid);  // FLPM 10b is reserved

    auto pgtt = [&](unsigned v) {
        const uint64_t old = t.mem.read64(pe);
        t.mem.write64(pe, (old & ~(7ULL << 6)) | uint64_t(v) << 6);
        const WalkResult r = t.walk(fl_req, 0x1000);
        t.mem.write64(pe, old);
        return r;
    };
    for (unsigned v : {0u, 5u, 6u, 7u}) CHECK_FAULT(pgtt(v), InvalidEntry, kSmPasidEntryInvalid);
    t.cfg.nested = false;
    CHECK_FAULT(pgtt(unsigned(Pgtt::Nested)), InvalidEntry, kSmPasidEntryInvalid);
    t.cfg.nested = true;
    for (unsigned aw : {0u, 3u, 4u}) {  // AW 3 (57-bit) is not in the default SAGAW
        PasidEntryFields f = pasid_fields(Pgtt::SecondLevel, 2, sl);
        f.aw = aw;
        t.attach(kDev, 2, f);
        CHECK_FAULT(t.walk(sl_req, 0x1000), InvalidEntry, kSmPasidEntryInvalid);
    }

    t.mem.write64(pe, t.mem.read64(pe) & ~1ULL);
    CHECK_FAULT(t.walk(fl_req, 0x1000), NotPresent, kSmPasidEntryNotPresent);
    t.mem.write64(dir, 0);
    CHECK_FAULT(t.walk(fl_req, 0x1000), NotPresent, kSmPasidDirNotPresent);
    t.mem.write64(ctx, 0);
    CHECK_FAULT(t.walk(fl_req, 0x1000), NotPresent, kSmContextNotPresent);
    t.mem.write64(kRootTable, 0);
    CHECK_FAULT(t.walk(fl_req, 0x1000), NotPresent, kSmRootNotPresent);
    t.cfg.rtaddr = Addr(1) << 50;
    const WalkResult rta = t.walk(fl_req, 0x1000);
    CHECK_FAULT(rta, TableAccess, kSmInvalidRootTableAddress);
    CHECK(rta.reads == 0);
}

TEST_CASE("scalable FPD in context, PASID directory and PASID entries", "[vtd]") {
    Scalable t;
    ScalableContextFields f = context_fields();
    f.fpd = true;
    const Requester quiet = Requester::bdf(0, 8, 0);
    t.context(quiet, f);
    t.attach(kDev, 1, pasid_fields(Pgtt::FirstLevel, 1, 0, t.page()));
    VtdWalker w(t.cfg);
    const WalkResult loud = walk_functional(w, t.mem, kDev.with_pasid(1), 0, Access::Read);
    CHECK_FAULT(loud, NotPresent, kSmFlNotPresent);
    CHECK_FALSE(loud.fault.suppressed);
    CHECK(walk_functional(w, t.mem, quiet.with_pasid(1), 0, Access::Read).fault.suppressed);
    CHECK_FALSE(
        walk_functional(w, t.mem, Requester::bdf(9, 0, 0), 0, Access::Read).fault.suppressed);

    // A directory entry with FPD silences every PASID below it.
    const Addr dir = t.dirs.at(kDev.rid);
    store_entry(t.mem, dir + 8, make_pasid_dir_entry(t.page(), true));
    const WalkResult under_dir = walk_functional(w, t.mem, kDev.with_pasid(64), 0, Access::Read);
    CHECK_FAULT(under_dir, NotPresent, kSmPasidEntryNotPresent);
    CHECK(under_dir.fault.suppressed);
    // FPD counts even in a PASID entry whose P bit is clear.
    t.mem.write64(t.pasid_slot(kDev, 2), 1ULL << 1);
    const WalkResult absent = walk_functional(w, t.mem, kDev.with_pasid(2), 0, Access::Read);
    CHECK_FAULT(absent, NotPresent, kSmPasidEntryNotPresent);
    CHECK(absent.fault.suppressed);
}

TEST_CASE("nested 4-level over 4-level: 28 reads in 2D order", "[vtd]") {
    Scalable t;
    Nested n(t);
    const Addr fl = n.guest_page();
    t.attach(kDev, kPasid, pasid_fields(Pgtt::Nested, 31, n.sl_root, fl));
    Entries e = n.map(kFl4, fl, 0x7F'1234'5000, 0x9000'0000, 1, kPermRW);
    t.map(kSl4, n.sl_root, 0x9000'0000, 0x9'8765'4000, 1, kPermRW);
    const Requester req = kDev.with_pasid(kPasid);

    VtdWalker w(t.cfg);
    std::vector<WalkStep> steps;
    w.start(req, 0x7F'1234'5ABC, Access::Read);
    const WalkResult r = drive(w, t.mem, 0, &steps);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0x9'8765'4ABC);
    CHECK(r.tr.page_shift == 12);
    CHECK(r.tr.perm == kPermRW);
    CHECK(r.tr.tag == 31);
    // root + context + PASID dir + PASID entry + 4 x (4 SL + 1 FL) + 4 SL for the output.
    CHECK(r.reads == 28);
    REQUIRE(steps.size() == 29);
    for (unsigned k = 0; k < 4; ++k) {
        for (unsigned s = 0; s < 4; ++s) {
            const WalkStep& sl = steps[4 + 5 * k + s];
            CHECK(sl.stage == WalkStage::SecondLevel);
            CHECK(sl.level == 4 - s);
            CHECK(sl.nested);
        }
        const WalkStep& flr = steps[4 + 5 * k + 4];
        CHECK(flr.stage == WalkStage::FirstLevel);
        CHECK(flr.level == 4 - k);
        CHECK(flr.addr == e[4 - k]);  // the host copy of each guest table
    }
    for (unsigned s = 0; s < 4; ++s) {
        CHECK(steps[24 + s].stage == WalkStage::SecondLevel);
        CHECK(steps[24 + s].nested);
    }

    // The cached context skips the four structure reads.
    REQUIRE(w.context_ready());
    const VtdContext ctx = w.vtd_context();
    CHECK(ctx.mode == VtdContext::Mode::Nested);
    w.start_with_context(ctx, req, 0x7F'1234'5ABC, Access::Write);
    const WalkResult warm = drive(w, t.mem);
    REQUIRE(warm.ok());
    CHECK(warm.tr.out == 0x9'8765'4ABC);
    CHECK(warm.reads == 24);

    // A 2 MiB first-level page over a 1 GiB second-level page is reported as 2 MiB.
    n.map(kFl4, fl, 0x4000'0000, 0xC000'0000, 2, kPermRW);
    t.map(kSl4, n.sl_root, 0xC000'0000, 0x3'0000'0000, 3, kPermRW);
    const WalkResult mixed = t.walk(req, 0x4001'2345);
    REQUIRE(mixed.ok());
    CHECK(mixed.tr.out == 0x3'0001'2345);
    CHECK(mixed.tr.page_shift == 21);
    CHECK(mixed.reads == 4 + 3 * 5 + 2);
}

TEST_CASE("nested faults: stage 2 guards first-level tables and outputs", "[vtd]") {
    Scalable t;
    Nested n(t);
    const Addr fl = n.guest_page();
    t.attach(kDev, 1, pasid_fields(Pgtt::Nested, 41, n.sl_root, fl));
    Entries e = n.map(kFl4, fl, 0x1000, 0x9000'0000, 1, kPermRW);
    n.map(kFl4, fl, 0x2000, 0x9000'1000, 1, kPermR);
    n.map(kFl4, fl, 0x3000, 0x9100'0000, 1, kPermRW);  // output GPA left unmapped
    n.map(kFl4, fl, 0x4000, 0x9000'2000, 1, kPermRW);
    t.map(kSl4, n.sl_root, 0x9000'0000, 0x5000'0000, 1, kPermRW);
    t.map(kSl4, n.sl_root, 0x9000'1000, 0x5000'1000, 1, kPermRW);
    t.map(kSl4, n.sl_root, 0x9000'2000, 0x5000'2000, 1, kPermR);
    const Requester req = kDev.with_pasid(1);
    REQUIRE(t.walk(req, 0x1000).ok());

    // A stage-1 write denial reads as without nesting; stage 2 refusing the output is 0x79.
    CHECK_FAULT(t.walk(req, 0x2000, Access::Write), Permission, kSmNoWrite);
    CHECK_FAULT(t.walk(req, 0x3000), NotPresent, kSmSlPermission);
    CHECK_FAULT(t.walk(req, 0x4000, Access::Write), Permission, kSmSlPermission);

    // First-level root at an unmapped guest page, then a lower table unmapped or write-only.
    t.attach(kDev, 2, pasid_fields(Pgtt::Nested, 42, n.sl_root, 0x7000'0000));
    const WalkResult pml4 = t.walk(kDev.with_pasid(2), 0x1000);
    CHECK_FAULT(pml4, NotPresent, kSmFlPml4ReadNested);
    const uint64_t l4 = t.mem.read64(e[4]);
    t.mem.write64(e[4], kFl4.make_table(0x7000'0000, 4));
    CHECK_FAULT(t.walk(req, 0x1000), NotPresent, kSmFlReadNested);
    t.map(kSl4, n.sl_root, 0x7100'0000, t.page(), 1, kPermW);
    t.mem.write64(e[4], kFl4.make_table(0x7100'0000, 4));
    CHECK_FAULT(t.walk(req, 0x1000), Permission, kSmFlReadNested);
    t.mem.write64(e[4], l4);

    // A/D updates to first-level entries need write access to their table pages.
    Scalable t2;
    Nested ro(t2, kPermR);
    const Addr fl2 = ro.guest_page();
    t2.attach(kDev, 1, pasid_fields(Pgtt::Nested, 43, ro.sl_root, fl2));
    ro.map(kFl4NoAd, fl2, 0x1000, 0x9000'0000, 1, kPermRW);
    t2.map(kSl4, ro.sl_root, 0x9000'0000, 0x5000'0000, 1, kPermRW);
    const WalkResult ad = t2.walk(req, 0x1000);
    CHECK_FAULT(ad, Permission, kSmFlWriteNested);
    CHECK(ad.fault.level == 4);
    CHECK(ad.reads == 9);

    // First-level table pointers beyond the second level's input width.
    Scalable t3;
    t3.cfg.haw = 52;
    PasidEntryFields f = pasid_fields(Pgtt::Nested, 44, t3.page(), Addr(1) << 40);
    f.aw = kAw39;
    t3.attach(kDev, 1, f);
    const WalkResult wide = t3.walk(req, 0x1000);
    CHECK_FAULT(wide, AddressRange, kSmFlAddressBeyondMgawNested);
    CHECK(wide.reads == 4);
}

TEST_CASE("accessed and dirty flags: first level and SLADE second level", "[vtd]") {
    Scalable t;
    const Addr fl = t.page();
    t.attach(kDev, 1, pasid_fields(Pgtt::FirstLevel, 51, 0, fl));
    Entries a = t.map(kFl4NoAd, fl, 0x1000, 0x5000, 1, kPermRW);
    Entries b = t.map(kFl4NoAd, fl, 0x80'0000'0000, 0x6000, 1, kPermRW);
    const Requester req = kDev.with_pasid(1);
    const uint64_t A = 1ULL << fl::A, D = 1ULL << fl::D;

    VtdWalker w(t.cfg);
    std::vector<WalkStep> steps;
    w.start(req, 0x1000, Access::Write);
    const WalkResult wr = drive(w, t.mem, 0, &steps);
    REQUIRE(wr.ok());
    CHECK(wr.writes == 4);
    CHECK(wr.reads == 8);
    for (unsigned l = 4; l >= 2; --l) CHECK((t.mem.read64(a[l]) & (A | D)) == A);
    CHECK((t.mem.read64(a[1]) & (A | D)) == (A | D));
    unsigned write_steps = 0;
    for (const WalkStep& s : steps)
        if (s.kind == WalkStep::Kind::Write) {
            ++write_steps;
            CHECK(s.stage == WalkStage::FirstLevel);
            CHECK(s.size == 8);
        }
    CHECK(write_steps == 4);
    CHECK(t.walk(req, 0x1000, Access::Write).writes == 0);

    const WalkResult rd = t.walk(req, 0x80'0000'0000);
    REQUIRE(rd.ok());
    CHECK(rd.writes == 4);
    for (unsigned l = 4; l >= 1; --l) CHECK((t.mem.read64(b[l]) & (A | D)) == A);

    // SLADE: A on every second-level entry walked, D on the leaf of a write.
    const Addr sl = t.page(), sl_off = t.page();
    PasidEntryFields f = pasid_fields(Pgtt::SecondLevel, 52, sl);
    f.slade = true;
    t.attach(kDev, 2, f);
    t.attach(kDev, 3, pasid_fields(Pgtt::SecondLevel, 53, sl_off));
    Entries s = t.map(kSl4, sl, 0x1000, 0x7000, 1, kPermRW);
    Entries off = t.map(kSl4, sl_off, 0x1000, 0x7000, 1, kPermRW);
    const uint64_t SA = 1ULL << sl::A, SD = 1ULL << sl::D;
    CHECK(t.walk(kDev.with_pasid(2), 0x1000).writes == 4);
    for (unsigned l = 4; l >= 1; --l) CHECK((t.mem.read64(s[l]) & (SA | SD)) == SA);
    const WalkResult dirty = t.walk(kDev.with_pasid(2), 0x1000, Access::Write);
    REQUIRE(dirty.ok());
    CHECK(dirty.writes == 1);
    CHECK((t.mem.read64(s[1]) & (SA | SD)) == (SA | SD));
    CHECK(t.walk(kDev.with_pasid(3), 0x1000, Access::Write).writes == 0);
    CHECK((t.mem.read64(off[1]) & (SA | SD)) == 0);

    // Nested: the first-level A/D writes land in the host copies of the guest tables.
    Nested n(t);
    const Addr nfl = n.guest_page();
    t.attach(kDev, 4, pasid_fields(Pgtt::Nested, 54, n.sl_root, nfl));
    Entries g = n.map(kFl4NoAd, nfl, 0x1000, 0x9000'0000, 1, kPermRW);
    t.map(kSl4, n.sl_root, 0x9000'0000, 0x5000'0000, 1, kPermRW);
    const WalkResult nw = t.walk(kDev.with_pasid(4), 0x1008, Access::Write);
    REQUIRE(nw.ok());
    CHECK(nw.tr.out == 0x5000'0008);
    CHECK(nw.writes == 4);
    for (unsigned l = 4; l >= 2; --l) CHECK((t.mem.read64(g[l]) & (A | D)) == A);
    CHECK((t.mem.read64(g[1]) & (A | D)) == (A | D));
}

TEST_CASE("scalable walks over driver-built first-level and nested domains", "[vtd]") {
    SparseMemory mem;
    DriverConfig cfg;
    cfg.hw.scalable = true;
    cfg.large_pages = false;  // 4 KiB second-level pages: the 28-read nested walk
    Driver drv(mem, cfg);
    const Requester dev = Requester::bdf(4, 2, 0);

    DomainOptions flo;
    flo.stage = Stage::FirstLevel;
    auto fld = drv.create_domain(flo);
    REQUIRE(fld);
    REQUIRE(drv.attach_pasid(dev.rid, 0x77, *fld));
    REQUIRE(drv.map(*fld, 0x7000'0000, 0x1'2345'6000, 0x1000, kPermRW));
    VtdWalker w(drv.hw());
    const WalkResult r = walk_functional(w, mem, dev.with_pasid(0x77), 0x7000'0ABC, Access::Write);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0x1'2345'6ABC);
    CHECK(r.tr.tag == *fld);
    CHECK(r.reads == 8);

    auto parent = drv.create_domain({});
    REQUIRE(parent);
    auto nested = drv.create_nested_domain(*parent, {});
    REQUIRE(nested);
    REQUIRE(drv.attach_pasid(dev.rid, 0x99, *nested));
    REQUIRE(drv.map(*nested, 0x10'0000, 0x2000'0000, 0x1000, kPermRW));
    REQUIRE(drv.map(*parent, 0x2000'0000, 0x3'0000'0000, 0x1000, kPermRW));
    const WalkResult n = walk_functional(w, mem, dev.with_pasid(0x99), 0x10'0123, Access::Read);
    REQUIRE(n.ok());
    CHECK(n.tr.out == 0x3'0000'0123);
    CHECK(n.tr.tag == *nested);
    CHECK(n.reads == 28);
    CHECK(check_translation(n, drv.expect(dev.with_pasid(0x99), 0x10'0123), Access::Read, false)
              .empty());
}

TEST_CASE("scalable explain_walk decodes context and PASID fields", "[vtd]") {
    Scalable t;
    Nested n(t);
    const Addr fl = n.guest_page();
    t.attach(kDev, 1, pasid_fields(Pgtt::Nested, 61, n.sl_root, fl));
    n.map(kFl4, fl, 0x1000, 0x9000'0000, 1, kPermRW);
    t.map(kSl4, n.sl_root, 0x9000'0000, 0x5000'0000, 1, kPermRW);
    VtdWalker w(t.cfg);
    const std::string text = explain_walk(w, t.mem, kDev.with_pasid(1), 0x1234, Access::Read);
    for (const char* field : {"sm-root[bus 0x00]", "LCTP=", "sm-context[devfn 0x18]",
                              "PASIDE=", "PASIDDIRPTR=", "RID_PASID=", "pasid-dir",
                              "SMPTBLPTR=", "pasid-entry", "PGTT=3", "SLPTPTR=", "FLPTR=", "DID=61",
                              "fl-pte", "sl-pte", "(nested)", "=> 0x50000234", "28 reads"})
        CHECK_THAT(text, Catch::Contains(field));
}
