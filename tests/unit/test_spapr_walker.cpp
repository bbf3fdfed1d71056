// sPAPR / IODA TCE walker: both windows, 1..3 levels, 4K..16M pages, bypass, every fault
// code, and random tables. Expected outputs are the addresses the test meant to map.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>

#include "arch/spapr/spapr_walker.h"
#include "arch/spapr/tce_format.h"
#include "core/sparse_memory.h"

using namespace iommusim;
using namespace iommusim::spapr;

namespace {

constexpr Addr kGiB = Addr(1) << 30;
constexpr Addr kTiB = Addr(1) << 40;
constexpr uint16_t kPe = 3;
const Requester kDev = Requester::bdf(1, 0, 0);

// Builds TCE tables by hand with the PteFormat's encoders; lower tables come from a pool.
struct TceBuilder {
    SparseMemory& mem;
    TcePteFormat fmt;
    Addr root;
    Addr pool;

    TceBuilder(SparseMemory& m, const TceWindow& w, Addr pool_base)
        : mem(m), fmt(w), root(w.table), pool(pool_base) {}

    Addr alloc(unsigned level) {
        const Addr bytes = fmt.table_bytes(level);
        const Addr align = std::max<Addr>(bytes, 4096);
        pool = (pool + align - 1) & ~(align - 1);
        const Addr t = pool;
        pool += bytes;
        return t;
    }
    // Map window offset `off` to `pa`; returns the entry address used at each level.
    std::array<Addr, kMaxLevels + 1> map(Addr off, Addr pa, Perm perm) {
        std::array<Addr, kMaxLevels + 1> ea{};
        Addr table = root;
        for (unsigned l = fmt.levels(); l >= 1; --l) {
            const Addr idx = (off >> fmt.level_shift(l)) & ((Addr(1) << fmt.index_bits(l)) - 1);
            ea[l] = table + idx * kTceEntrySize;
            if (l == 1) break;
            uint64_t e = mem.read64(ea[l]);
            if (!fmt.is_present(e, l)) {
                e = fmt.make_table(alloc(l - 1), l);
                mem.write64(ea[l], e);
            }
            table = fmt.address(e, l);
        }
        mem.write64(ea[1], fmt.make_leaf(pa, perm, 1));
        return ea;
    }
};

void put_tce(SparseMemory& mem, Addr ea, uint64_t tce) {
    mem.write64(ea, tce_to_mem(tce));
}

PhbConfig make_phb(const PhbCaps& caps = PhbCaps{}) {
    PhbConfig phb(caps);
    phb.set_pe(kDev.rid, kPe);
    return phb;
}

}  // namespace

TEST_CASE("default 32-bit window: 4 KiB TCEs in one level", "[spapr][walker]") {
    SparseMemory mem;
    PhbConfig phb = make_phb();
    const TceWindow w0 = TceWindow::translated(0, kGiB, 0x1000'0000, 12, 1);
    REQUIRE(check_window(phb.caps(), w0) == nullptr);
    phb.set_window(kPe, 0, w0);
    TceBuilder b(mem, w0, 0x2000'0000);
    b.map(0x0, 0x8000'0000, kPermRW);
    b.map(0x1234'5000, 0x0000'0012'3456'7000, kPermR);
    b.map(0x3FFF'F000, 0x2000, kPermW);

    SpaprWalker walker(phb);
    const WalkResult& r = walk_functional(walker, mem, kDev, 0x1234'5678, Access::Read);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0x0000'0012'3456'7678);
    CHECK(r.tr.page_shift == 12);
    CHECK(r.tr.perm == kPermR);
    CHECK(r.tr.tag == (kPe << 1));  // TVE index PE#*2 + 0
    CHECK(r.reads == 1);
    CHECK(walker.pe() == kPe);
    CHECK(walker.window_num() == 0);

    const WalkResult& w = walk_functional(walker, mem, kDev, 0x3FFF'FFF8, Access::Write);
    REQUIRE(w.ok());
    CHECK(w.tr.out == 0x2FF8);
    CHECK(w.tr.perm == kPermW);

    const WalkResult& a = walk_functional(walker, mem, kDev, 0x10, Access::ReadWrite);
    REQUIRE(a.ok());
    CHECK(a.tr.out == 0x8000'0010);

    // One step: the TCE at TTA + index * 8.
    walker.start(kDev, 0x1234'5678, Access::Read);
    WalkStep s = walker.next();
    CHECK(s.kind == WalkStep::Kind::Read);
    CHECK(s.stage == WalkStage::Tce);
    CHECK(s.level == 1);
    CHECK(s.size == 8);
    CHECK(s.addr == 0x1000'0000 + 0x12345 * 8);
}

TEST_CASE("dynamic DMA window at 2^59: large pages, 1..3 levels", "[spapr][walker]") {
    struct Geometry {
        unsigned page_shift, levels;
    };
    const Geometry g = GENERATE(Geometry{12, 3}, Geometry{16, 1}, Geometry{16, 2}, Geometry{16, 3},
                                Geometry{21, 1}, Geometry{21, 2}, Geometry{24, 1}, Geometry{24, 3});
    CAPTURE(g.page_shift, g.levels);
    SparseMemory mem;
    PhbConfig phb = make_phb();
    const TceWindow w0 = TceWindow::translated(0, kGiB, 0x1000'0000, 12, 1);
    TceWindow w1 =
        TceWindow::translated(kDdwBusOffset, kTiB, Addr(1) << 36, g.page_shift, g.levels);
    w1.liobn = 0x8000'0001;  // QEMU SPAPR_PCI_LIOBN(0, 1)
    REQUIRE(check_window(phb.caps(), w1) == nullptr);
    phb.set_window(kPe, 0, w0);
    phb.set_window(kPe, 1, w1);
    TceBuilder b0(mem, w0, 0x2000'0000);
    TceBuilder b1(mem, w1, Addr(1) << 38);
    b0.map(0x4000, 0x7700'0000, kPermRW);

    const Addr page = Addr(1) << g.page_shift;
    const Addr offs[] = {0, page, 0x12'3456'7890 & ~(page - 1), kTiB - page};
    for (unsigned i = 0; i < 4; ++i)
        b1.map(offs[i], Addr(0x100 + i) << 24, i & 1 ? kPermR : kPermRW);

    SpaprWalker walker(phb);
    for (unsigned i = 0; i < 4; ++i) {
        const Addr in_page = (0x9876'5432 + i * 0x111) & (page - 1);
        const Addr iova = kDdwBusOffset + offs[i] + in_page;
        const WalkResult& r = walk_functional(walker, mem, kDev, iova, Access::Read);
        CAPTURE(i, iova);
        REQUIRE(r.ok());
        CHECK(r.tr.out == (Addr(0x100 + i) << 24) + in_page);
        CHECK(r.tr.page_shift == g.page_shift);
        CHECK(r.tr.perm == (i & 1 ? kPermR : kPermRW));
        CHECK(r.tr.tag == 0x8000'0001);
        CHECK(r.reads == g.levels);
        CHECK(walker.window_num() == 1);
    }
    // The 32-bit window keeps working next to the DDW.
    const WalkResult& r0 = walk_functional(walker, mem, kDev, 0x4abc, Access::Write);
    REQUIRE(r0.ok());
    CHECK(r0.tr.out == 0x7700'0abc);
    // An unmapped page of the DDW: the leaf reads as zero.
    const WalkResult& miss =
        walk_functional(walker, mem, kDev, kDdwBusOffset + 3 * page, Access::Read);
    CHECK(miss.fault.reason == kTceNotValid);
}

TEST_CASE("walk steps read each level's TCE, top level first", "[spapr][walker]") {
    SparseMemory mem;
    PhbConfig phb = make_phb();
    TceWindow w = TceWindow::translated(kDdwBusOffset, Addr(1) << 41, Addr(1) << 36, 16, 3, 10);
    w.top_bits = 5;  // a smaller top table, as RadixPageTable may build
    REQUIRE(w.reach_bits() == 41);
    REQUIRE(check_window(phb.caps(), w) == nullptr);
    phb.set_window(kPe, 1, w);
    TceBuilder b(mem, w, Addr(1) << 37);
    const Addr off = 0x1AB'CDEF'0000;
    REQUIRE(off < (Addr(1) << 41));
    const auto ea = b.map(off, 0x55'0000'0000, kPermRW);
    // Independent index arithmetic: 16 offset bits, then 10, 10 and 5 index bits.
    CHECK(ea[3] == (Addr(1) << 36) + ((off >> 36) & 0x1F) * 8);

    SpaprWalker walker(phb);
    walker.start(kDev, kDdwBusOffset + off + 0x42, Access::Write);
    uint8_t buf[8];
    for (unsigned level = 3; level >= 1; --level) {
        WalkStep s = walker.next();
        REQUIRE(s.kind == WalkStep::Kind::Read);
        CHECK(s.stage == WalkStage::Tce);
        CHECK(s.level == level);
        CHECK(s.size == 8);
        CHECK(s.addr == ea[level]);
        REQUIRE(mem.read(s.addr, buf, 8));
        walker.feed(buf);
    }
    CHECK(walker.next().kind == WalkStep::Kind::Done);
    REQUIRE(walker.result().ok());
    CHECK(walker.result().tr.out == 0x55'0000'0042);
    CHECK(walker.result().tr.tag == ((kPe << 1) | 1));
    // Feeding after the end changes nothing.
    walker.feed(buf);
    walker.feed_error();
    CHECK(walker.result().ok());
    CHECK(walker.result().reads == 3);
}

TEST_CASE("bypass windows map directly without reading memory", "[spapr][walker]") {
    SparseMemory mem;
    PhbConfig phb = make_phb();
    phb.set_window(kPe, 0, TceWindow::bypass(0, 2 * kGiB, 0x40'0000'0000));
    phb.set_window(kPe, 1, TceWindow::bypass(kDdwBusOffset, kGiB + 0x1000));
    SpaprWalker walker(phb);

    const WalkResult& r = walk_functional(walker, mem, kDev, 0x1234'5678, Access::ReadWrite);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0x40'1234'5678);
    CHECK(r.tr.perm == kPermRW);
    CHECK(r.tr.page_shift == 30);
    CHECK(r.reads == 0);

    const WalkResult& h = walk_functional(walker, mem, kDev, kDdwBusOffset + 0x10, Access::Write);
    REQUIRE(h.ok());
    CHECK(h.tr.out == 0x10);
    CHECK(h.tr.page_shift == 30);
    CHECK(h.tr.tag == ((kPe << 1) | 1));
    // The 4 KiB tail beyond the last whole GiB is reported as a 4 KiB page.
    const WalkResult& t =
        walk_functional(walker, mem, kDev, kDdwBusOffset + kGiB + 0x18, Access::Read);
    REQUIRE(t.ok());
    CHECK(t.tr.out == kGiB + 0x18);
    CHECK(t.tr.page_shift == 12);
    const WalkResult& o =
        walk_functional(walker, mem, kDev, kDdwBusOffset + kGiB + 0x1000, Access::Read);
    CHECK(o.fault.reason == kTceOutsideWindow);
    CHECK(mem.pages_touched() == 0);
}

TEST_CASE("every TCE fault code", "[spapr][walker][fault]") {
    SparseMemory mem;
    PhbCaps caps;
    caps.real_addr_bits = 56;  // wider than SparseMemory, so fetches beyond 2^52 fail
    PhbConfig phb = make_phb(caps);
    const TceWindow w0 = TceWindow::translated(0, kGiB, 0x1000'0000, 12, 2);
    phb.set_window(kPe, 0, w0);
    TceBuilder b(mem, w0, 0x2000'0000);
    const auto ro = b.map(0x1000, 0x10'0000, kPermR);
    b.map(0x2000, 0x20'0000, kPermW);
    SpaprWalker walker(phb);

    auto check = [&](const Requester& req, Addr iova, Access acc, FaultKind kind, uint16_t reason,
                     uint8_t level, uint32_t reads) {
        CAPTURE(iova, tce_fault_text(reason));
        const WalkResult& r = walk_functional(walker, mem, req, iova, acc);
        CHECK_FALSE(r.ok());
        CHECK(r.fault.kind == kind);
        CHECK(r.fault.reason == reason);
        CHECK(r.fault.level == level);
        CHECK(r.fault.addr == iova);
        CHECK(r.reads == reads);
    };

    SECTION("no PE") {
        check(Requester::bdf(2, 0, 0), 0x1000, Access::Read, FaultKind::Blocked, kTceNoPe, 0, 0);
        phb.set_pe(Requester::bdf(2, 0, 0).rid, 300);  // beyond the PHB's 256 PEs
        check(Requester::bdf(2, 0, 0), 0x1000, Access::Read, FaultKind::Blocked, kTceNoPe, 0, 0);
    }
    SECTION("PASID prefix") {
        check(kDev.with_pasid(5), 0x1000, Access::Read, FaultKind::Blocked, kTcePasidUnsupported, 0,
              0);
    }
    SECTION("outside every window") {
        for (Addr iova : {kGiB, kDdwBusOffset, kDdwBusOffset + 0x1000, ~Addr(0), Addr(1) << 60})
            check(kDev, iova, Access::Read, FaultKind::AddressRange, kTceOutsideWindow, 0, 0);
    }
    SECTION("invalid TVE") {
        TceWindow bad = w0;
        bad.levels = 7;
        phb.set_window(kPe, 0, bad);
        check(kDev, 0x1000, Access::Read, FaultKind::InvalidEntry, kTceInvalidTve, 0, 0);
        bad = w0;
        bad.page_shift = 13;
        phb.set_window(kPe, 0, bad);
        check(kDev, 0x1000, Access::Read, FaultKind::InvalidEntry, kTceInvalidTve, 0, 0);
        bad = w0;
        bad.table += 0x800;
        phb.set_window(kPe, 0, bad);
        check(kDev, 0x1000, Access::Read, FaultKind::InvalidEntry, kTceInvalidTve, 0, 0);
    }
    SECTION("table access error") {
        put_tce(mem, ro[2], tce_make_indirect(Addr(1) << 53));
        check(kDev, 0x1000, Access::Read, FaultKind::TableAccess, kTceTableAccess, 1, 2);
        phb.set_window(kPe, 1, TceWindow::translated(kDdwBusOffset, kGiB, Addr(1) << 54, 16, 1));
        check(kDev, kDdwBusOffset, Access::Read, FaultKind::TableAccess, kTceTableAccess, 1, 1);
    }
    SECTION("invalid indirect TCE") {
        put_tce(mem, ro[2], tce_indirect_addr(tce_from_mem(mem.read64(ro[2]))));  // R and W cleared
        check(kDev, 0x1000, Access::Read, FaultKind::NotPresent, kTceInvalidIndirect, 2, 1);
    }
    SECTION("TCE not valid") {
        check(kDev, 0x3000, Access::Read, FaultKind::NotPresent, kTceNotValid, 1, 2);
        put_tce(mem, ro[1], 0x10'0000);  // address but neither R nor W
        check(kDev, 0x1000, Access::Write, FaultKind::NotPresent, kTceNotValid, 1, 2);
    }
    SECTION("write not permitted") {
        check(kDev, 0x1008, Access::Write, FaultKind::Permission, kTceWriteNotPermitted, 1, 2);
        check(kDev, 0x1008, Access::ReadWrite, FaultKind::Permission, kTceWriteNotPermitted, 1, 2);
        CHECK(walk_functional(walker, mem, kDev, 0x1008, Access::Read).tr.out == 0x10'0008);
    }
    SECTION("read not permitted") {
        check(kDev, 0x2008, Access::Read, FaultKind::Permission, kTceReadNotPermitted, 1, 2);
        check(kDev, 0x2008, Access::ReadWrite, FaultKind::Permission, kTceReadNotPermitted, 1, 2);
        CHECK(walk_functional(walker, mem, kDev, 0x2008, Access::Write).tr.out == 0x20'0008);
    }
    SECTION("address beyond the real address size") {
        put_tce(mem, ro[1], tce_make(Addr(1) << 56, kPermRW));
        check(kDev, 0x1000, Access::Read, FaultKind::ReservedBit, kTceReservedBits, 1, 2);
        put_tce(mem, ro[2], tce_make_indirect((Addr(1) << 60) | 0x2000'0000));
        check(kDev, 0x1000, Access::Read, FaultKind::ReservedBit, kTceReservedBits, 2, 1);
    }
}

TEST_CASE("low TCE bits: ignored by the PHB, reserved in strict mode", "[spapr][walker][fault]") {
    for (bool strict : {false, true}) {
        CAPTURE(strict);
        SparseMemory mem;
        PhbCaps caps;
        caps.strict_reserved = strict;
        PhbConfig phb = make_phb(caps);
        const TceWindow w = TceWindow::translated(kDdwBusOffset, kGiB, 0x100'0000, 16, 2);
        phb.set_window(kPe, 1, w);
        TceBuilder b(mem, w, 0x200'0000);
        const auto ea = b.map(0x30000, 0x7'0000, kPermRW);
        put_tce(mem, ea[1], 0x7'0000 | 0x8000 | kTcePciRead | kTcePciWrite);  // bit 15 below 64K
        SpaprWalker walker(phb);
        const WalkResult& r =
            walk_functional(walker, mem, kDev, kDdwBusOffset + 0x3'0123, Access::Read);
        if (strict) {
            CHECK(r.fault.reason == kTceReservedBits);
        } else {
            REQUIRE(r.ok());
            CHECK(r.tr.out == 0x7'0123);
        }
        put_tce(mem, ea[1], tce_make(0x7'0000, kPermRW));
        put_tce(mem, ea[2], tce_from_mem(mem.read64(ea[2])) | 0x40);  // indirect bit 6
        const WalkResult& i =
            walk_functional(walker, mem, kDev, kDdwBusOffset + 0x3'0123, Access::Read);
        CHECK(i.ok() == !strict);
        if (strict) CHECK(i.fault.level == 2);
    }
}

TEST_CASE("explain_walk shows every TCE of the walk", "[spapr][walker]") {
    SparseMemory mem;
    PhbConfig phb = make_phb();
    const TceWindow w = TceWindow::translated(0, kGiB, 0x1000'0000, 12, 2);
    phb.set_window(kPe, 0, w);
    TceBuilder b(mem, w, 0x2000'0000);
    const auto ea = b.map(0x5000, 0xABC'D000, kPermR);
    SpaprWalker walker(phb);
    const std::string text = explain_walk(walker, mem, kDev, 0x5123, Access::Read);
    CAPTURE(text);
    const Addr l1_table = ea[1] & ~Addr(0xFFF);
    CHECK(text.find("tce") != std::string::npos);
    CHECK(text.find("L2") != std::string::npos);
    CHECK(text.find("L1") != std::string::npos);
    CHECK(text.find(fmt::format("indirect TCE {:#018x}", l1_table | 3)) != std::string::npos);
    CHECK(text.find(fmt::format("next table {:#x}", l1_table)) != std::string::npos);
    CHECK(text.find(fmt::format("TCE {:#018x}: page 0xabcd000 (4 KiB) r--", 0xABCD001)) !=
          std::string::npos);
    CHECK(text.find(fmt::format("{:#014x}", ea[1])) != std::string::npos);
    CHECK(text.find("=> 0xabcd123") != std::string::npos);

    const std::string miss = explain_walk(walker, mem, kDev, 0x7000, Access::Read);
    CHECK(miss.find("not valid") != std::string::npos);
    CHECK(miss.find("not-present") != std::string::npos);
}
