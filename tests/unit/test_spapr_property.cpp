// Seeded property test for sPAPR: PEs with a 32-bit default window and a 64-bit DDW (64 KiB
// or 2 MiB IO pages, multi-level tables) or a bypass window; random maps and unmaps in both
// windows, each followed by random DMA translations compared with the driver's intent.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <vector>

#include "arch/spapr/spapr_walker.h"
#include "host/spapr_driver.h"
#include "support/property.h"

using namespace iommusim;
using namespace iommusim::spapr;
using test::Rng;

namespace {

struct Live {
    uint16_t pe;
    Addr iova, size;
};

TEST_CASE("sPAPR translations always equal the driver's intent", "[spapr][property]") {
    const uint64_t ops = test::scaled(30000);
    Rng rng(21);
    SparseMemory mem;
    DriverConfig cfg;
    cfg.dma32_levels = 2;  // 1 GiB of 4 KiB TCEs in a two-level table
    Driver drv(mem, cfg);
    SpaprWalker walker(drv.phb());

    // PE 0: DDW of 64 KiB pages; PE 1: DDW of 2 MiB pages, 3 levels; PE 2: bypass; PE 3: none.
    std::vector<uint16_t> pes;
    for (int i = 0; i < 4; ++i) pes.push_back(*drv.create_pe());
    std::string why;
    REQUIRE(drv.create_ddw(pes[0], Addr(64) << 30, 16, 2, &why));
    REQUIRE(drv.create_ddw(pes[1], Addr(1) << 40, 21, 3, &why));
    REQUIRE(drv.create_bypass(pes[2], Addr(64) << 30, Addr(2) << 30, &why));
    std::vector<Requester> devs;
    for (unsigned i = 0; i < 8; ++i) {
        devs.push_back(Requester::bdf(1 + i / 4, i % 4, 0));
        drv.assign(devs.back().rid, pes[i % 4]);
    }
    const uint16_t unassigned = Requester::bdf(9, 9, 1).rid;

    std::vector<Live> live;
    uint64_t checked = 0, translated = 0, mismatches = 0, in_ddw = 0;
    for (uint64_t step = 0; step < ops; ++step) {
        uint16_t pe = pes[rng.below(4)];
        if (live.empty() || rng.chance(55)) {
            unsigned num = rng.chance(50) ? 1 : 0;
            AddressSpace* as = drv.space(pe, num);
            if (as) {
                unsigned shift = as->min_page_shift();
                Addr size = (Addr(1) << shift) * rng.range(1, shift > 16 ? 2 : 16);
                Addr pa = (Addr(8) << 30) + (rng.below(1 << 20) << shift);
                Perm perm = rng.chance(30) ? kPermR : kPermRW;
                if (auto iova = drv.map_alloc(pe, num, pa, size, perm, ~Addr(0), &why))
                    live.push_back({pe, *iova, size});
            }
        } else {
            size_t i = rng.below(live.size());
            drv.unmap(live[i].pe, live[i].iova, live[i].size);
            live[i] = live.back();
            live.pop_back();
        }
        for (int k = 0; k < 4; ++k) {
            Requester req{unassigned};
            Addr iova = rng.below(Addr(1) << 32);
            if (!live.empty() && rng.chance(85)) {
                const Live& l = live[rng.below(live.size())];
                iova = rng.chance(25) ? l.iova + l.size : l.iova + rng.below(l.size);
                std::vector<Requester> users;
                for (size_t d = 0; d < devs.size(); ++d)
                    if (pes[d % 4] == l.pe) users.push_back(devs[d]);
                if (!rng.chance(5)) req = users[rng.below(users.size())];
            } else if (rng.chance(30)) {
                req = devs[2 + 4 * rng.below(2)];  // bypass window
                iova = kDdwBusOffset + rng.below(Addr(80) << 30);
            } else {
                req = devs[rng.below(devs.size())];
            }
            if (rng.chance(2)) req = req.with_pasid(5);
            Access acc = Access(rng.below(3));
            const WalkResult& r = walk_functional(walker, mem, req, iova, acc);
            std::string bad = check_translation(r, drv.expect(req, iova), acc, false);
            ++checked;
            translated += r.ok();
            in_ddw += r.ok() && iova >= kDdwBusOffset;
            if (!bad.empty() && ++mismatches <= 5)
                UNSCOPED_INFO(
                    fmt::format("{} {:#x} {}: {}", to_string(req), iova, to_string(acc), bad));
        }
    }
    INFO(checked << " checked, " << translated << " translated, " << in_ddw << " above 2^59");
    CHECK(translated * 4 > checked);
    CHECK(in_ddw > 0);
    REQUIRE(mismatches == 0);
    CHECK_FALSE(drv.invalidations().empty());
}

}  // namespace
