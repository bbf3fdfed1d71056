// The VT-d driver model refuses outputs its entries cannot hold, rather than cutting them.
#include <catch2/catch.hpp>

#include "host/vtd_driver.h"

using namespace iommusim;
using namespace iommusim::vtd;

namespace {
struct Rig {
    SparseMemory mem;
    Driver drv;
    uint16_t did;
    explicit Rig(unsigned haw)
        : drv(mem, [&] {
              DriverConfig c;
              c.hw.haw = haw;
              return c;
          }()) {
        did = *drv.create_domain({});
    }
};
}  // namespace

TEST_CASE("a map beyond the host address width is an error", "[vtd][driver][errors]") {
    Rig r(52);
    std::string why;
    CHECK_FALSE(r.drv.map(r.did, 0x10000, 0x1000000000000000, 0x1000, kPermRW, &why));
    CHECK(why ==
          "pa 0x1000000000000000 size 0x1000 ends beyond the unit's 52-bit host address width "
          "(expected an end below 0x10000000000000)");
    // The last page below the width maps; one byte more does not.
    CHECK(r.drv.map(r.did, 0x10000, (Addr(1) << 52) - 0x1000, 0x1000, kPermRW, &why));
    CHECK_FALSE(r.drv.map(r.did, 0x20000, (Addr(1) << 52) - 0x1000, 0x2000, kPermRW, &why));
    CHECK(r.drv.expect(Requester::bdf(0, 2, 0), 0x20000).mapped == false);
    CHECK_FALSE(r.drv.map_alloc(r.did, Addr(1) << 52, 0x1000, kPermRW, ~Addr(0), &why));
    CHECK(why.find("52-bit host address width") != std::string::npos);
}

TEST_CASE("a map wrapping past 2^64 is an error", "[vtd][driver][errors]") {
    Rig r(64);
    std::string why;
    CHECK_FALSE(r.drv.map(r.did, 0x10000, 0xfffffffffffff000, 0x2000, kPermRW, &why));
    CHECK(why == "pa 0xfffffffffffff000 size 0x2000 passes 2^64");
    // A 64-bit width passes the driver's check; the entry's address field (bits 51:12) does
    // not hold the address, and the table builder says so instead of cutting it.
    CHECK_FALSE(r.drv.map(r.did, 0x10000, 0x1000000000000000, 0x1000, kPermRW, &why));
    CHECK(why.find("does not fit the address field") != std::string::npos);
}
