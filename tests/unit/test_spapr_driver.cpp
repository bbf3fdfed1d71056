// The sPAPR driver model: PE windows, DDW and bypass set-up, routing of maps to windows,
// bad window parameters rejected with a reason, TCE kills on unmap.
#include <catch2/catch.hpp>

#include "arch/spapr/spapr_walker.h"
#include "host/spapr_driver.h"

using namespace iommusim;
using namespace iommusim::spapr;

TEST_CASE("sPAPR driver routes maps to the window holding the bus address", "[spapr][driver]") {
    SparseMemory mem;
    Driver drv(mem, {});
    SpaprWalker walker(drv.phb());
    const Requester dev = Requester::bdf(1, 0, 0);
    std::string why;
    uint16_t pe = *drv.create_pe(&why);
    drv.assign(dev.rid, pe);
    REQUIRE(drv.create_ddw(pe, Addr(4) << 30, 16, 2, &why));

    // 32-bit window: 4 KiB TCEs.
    REQUIRE(drv.map(pe, 0x1000, 0x7'0000'0000, 0x2000, kPermR, &why));
    auto r = walk_functional(walker, mem, dev, 0x1ffc, Access::Read);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0x7'0000'0ffc);
    CHECK(r.tr.page_shift == 12);
    CHECK_FALSE(walk_functional(walker, mem, dev, 0x1ffc, Access::Write).ok());

    // DDW: 64 KiB TCEs at 2^59; the IO page size is the minimum granule.
    CHECK_FALSE(drv.map(pe, kDdwBusOffset + 0x1000, 0x8'0000'0000, 0x1000, kPermRW, &why));
    CHECK(why.find("align") != std::string::npos);
    REQUIRE(drv.map(pe, kDdwBusOffset + 0x30000, 0x8'0001'0000, 0x20000, kPermRW, &why));
    r = walk_functional(walker, mem, dev, kDdwBusOffset + 0x4ffff, Access::Write);
    REQUIRE(r.ok());
    CHECK(r.tr.out == 0x8'0002'ffff);
    CHECK(r.tr.page_shift == 16);
    CHECK(r.reads == 2);

    // Between the windows and beyond them: refused, and a DMA there faults.
    CHECK_FALSE(drv.map(pe, Addr(1) << 32, 0x1000, 0x1000, kPermRW, &why));
    CHECK(why.find("outside every DMA window") != std::string::npos);
    CHECK_FALSE(walk_functional(walker, mem, dev, Addr(1) << 32, Access::Read).ok());
    CHECK_FALSE(drv.expect(dev, Addr(1) << 32).mapped);

    // Unmap issues a TCE kill tagged with the window's LIOBN and covering the range.
    size_t kills = drv.invalidations().size();
    CHECK(drv.unmap(pe, kDdwBusOffset + 0x30000, 0x10000) == 0x10000);
    REQUIRE(drv.invalidations().size() == kills + 1);
    const auto& k = drv.invalidations().back();
    CHECK(k.domain == drv.phb().window(pe, 1).liobn);
    CHECK(k.covers(kDdwBusOffset + 0x30000));
    CHECK(k.covers(kDdwBusOffset + 0x3ffff));
    CHECK_FALSE(walk_functional(walker, mem, dev, kDdwBusOffset + 0x30000, Access::Read).ok());
    CHECK(walk_functional(walker, mem, dev, kDdwBusOffset + 0x40000, Access::Read).ok());
}

TEST_CASE("sPAPR windows are replaced and removed cleanly", "[spapr][driver]") {
    SparseMemory mem;
    Driver drv(mem, {});
    SpaprWalker walker(drv.phb());
    const Requester dev = Requester::bdf(2, 0, 0);
    std::string why;
    uint16_t pe = *drv.create_pe();
    drv.assign(dev.rid, pe);
    REQUIRE(drv.create_ddw(pe, Addr(1) << 30, 21, 1, &why));
    REQUIRE(drv.map(pe, kDdwBusOffset, 0x4000'0000, 2 << 20, kPermRW, &why));
    // Replacing the DDW by a bypass window: the old table's mappings are gone.
    REQUIRE(drv.create_bypass(pe, Addr(8) << 30, Addr(1) << 34, &why));
    auto r = walk_functional(walker, mem, dev, kDdwBusOffset + 0x1234, Access::Write);
    REQUIRE(r.ok());
    CHECK(r.tr.out == (Addr(1) << 34) + 0x1234);
    CHECK(r.reads == 0);
    CHECK_FALSE(drv.map(pe, kDdwBusOffset, 0x1000, 0x1000, kPermRW, &why));  // bypass: no tables
    // Unsupported page sizes and impossible shapes are refused with a reason.
    CHECK_FALSE(drv.create_ddw(pe, Addr(1) << 30, 25, 1, &why));
    CHECK_FALSE(why.empty());
    drv.remove_window(pe, 1);
    CHECK_FALSE(walk_functional(walker, mem, dev, kDdwBusOffset + 0x1234, Access::Read).ok());
    CHECK_FALSE(drv.expect(dev, kDdwBusOffset + 0x1234).mapped);
    // Requests with a PASID: IODA has none.
    REQUIRE(drv.map(pe, 0x2000, 0x3000, 0x1000, kPermRW, &why));
    CHECK(walk_functional(walker, mem, dev, 0x2000, Access::Read).ok());
    CHECK_FALSE(walk_functional(walker, mem, dev.with_pasid(1), 0x2000, Access::Read).ok());
    CHECK_FALSE(drv.expect(dev.with_pasid(1), 0x2000).mapped);
}

TEST_CASE("sPAPR PEs run out with a reason", "[spapr][driver]") {
    SparseMemory mem;
    DriverConfig cfg;
    cfg.caps.num_pes = 2;
    Driver drv(mem, cfg);
    std::string why;
    REQUIRE(drv.create_pe(&why));
    REQUIRE(drv.create_pe(&why));
    CHECK_FALSE(drv.create_pe(&why));
    CHECK(why.find("PEs") != std::string::npos);
}
