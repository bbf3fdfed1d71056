// TCE tables built by the driver model's generic RadixPageTable through TcePteFormat,
// walked by the PHB walker: the encoder and the walker agree on the memory image.
#include <catch2/catch.hpp>

#include "arch/spapr/spapr_walker.h"
#include "arch/spapr/tce_format.h"
#include "core/sparse_memory.h"
#include "host/phys_alloc.h"
#include "host/radix_page_table.h"

using namespace iommusim;
using namespace iommusim::spapr;

namespace {
constexpr Addr kGiB = Addr(1) << 30;
constexpr uint16_t kPe = 9;
const Requester kDev = Requester::bdf(4, 2, 0);
}  // namespace

TEST_CASE("tables built by the driver's RadixPageTable walk as intended", "[spapr][walker]") {
    SparseMemory mem;
    PhysAllocator alloc(0x1000'0000, 0x1000'0000);
    const TcePteFormat fmt(16, 2, 10, 4);  // 64 KiB pages, 1 KiB root table: 1 GiB reach
    RadixPageTable table(mem, alloc, fmt);
    TceWindow w;
    w.mode = TceWindow::Mode::Translate;
    w.bus_offset = kDdwBusOffset;
    w.size = kGiB;
    w.table = table.root();
    w.levels = 2;
    w.page_shift = 16;
    w.level_bits = 10;
    w.top_bits = 4;
    PhbConfig phb;
    phb.set_pe(kDev.rid, kPe);
    REQUIRE(check_window(phb.caps(), w) == nullptr);
    phb.set_window(kPe, 1, w);

    const Addr offs[] = {0, 0x1'0000, 0x3FFF'0000, 0x2345'0000};
    for (unsigned i = 0; i < 4; ++i)
        REQUIRE(table.map_page(offs[i], Addr(0x8'0000'0000) + i * Addr(0x10'0000), 16, kPermRW));
    SpaprWalker walker(phb);
    for (unsigned i = 0; i < 4; ++i) {
        const WalkResult& r =
            walk_functional(walker, mem, kDev, kDdwBusOffset + offs[i] + 0xBEE, Access::Write);
        REQUIRE(r.ok());
        CHECK(r.tr.out == Addr(0x8'0000'0000) + i * Addr(0x10'0000) + 0xBEE);
        CHECK(r.tr.page_shift == 16);
        CHECK(r.reads == 2);
    }
    table.unmap(0x1'0000, 0x1'0000);
    CHECK(walk_functional(walker, mem, kDev, kDdwBusOffset + 0x1'0000, Access::Read).fault.reason ==
          kTceNotValid);
}
