// Seeded property test: random map/unmap/attach sequences through the VT-d driver model,
// each followed by random translations compared with the driver's intent. Covers legacy
// 3/4/5-level, scalable first-level, second-level, nested and pass-through, with PASIDs and
// restricted IOVA windows.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <vector>

#include "arch/vtd/vtd_walker.h"
#include "host/vtd_driver.h"
#include "support/property.h"

using namespace iommusim;
using namespace iommusim::vtd;
using test::Rng;

namespace {

struct Live {
    uint16_t did;
    Addr iova, size;
};

struct Scenario {
    const char* name;
    bool scalable;
    unsigned sl_levels;
    Stage stage;   // paging stage of the DMA domains
    bool nested;   // add a nested stage-1 domain over a second-level parent
    bool windows;  // restrict one domain to POWER-like 32-bit + high windows
    uint64_t seed;
};

constexpr Addr kDataBase = Addr(4) << 30;  // host data pages live above 4 GiB
constexpr Addr kGuestRam = Addr(1) << 30;  // nested: guest-physical data range [0, 1 GiB)

Addr random_size(Rng& r) {
    switch (r.below(4)) {
        case 0: return 4096 * r.range(1, 4);
        case 1: return 4096 * r.range(1, 64);
        case 2: return Addr(2 << 20) * r.range(1, 2);  // large pages where aligned
        default: return 4096 * r.range(1, 1024);
    }
}

class Harness {
public:
    Harness(const Scenario& s) : s_(s), rng_(s.seed) {
        DriverConfig cfg;
        cfg.hw.scalable = s.scalable;
        cfg.hw.sagaw = 0b1110;  // 3-, 4- and 5-level second level
        cfg.hw.fl_5level = true;
        cfg.hw.mgaw = 57;
        cfg.hw.haw = 52;
        cfg.sl_levels = s.sl_levels;
        drv_ = std::make_unique<Driver>(mem_, cfg);
        walker_ = std::make_unique<VtdWalker>(drv_->hw());

        DomainOptions opt;
        opt.stage = s.stage;
        for (int i = 0; i < 3; ++i) dids_.push_back(*drv_->create_domain(opt));
        if (s.windows) {
            DomainOptions w = opt;
            w.windows = {{0, Addr(1) << 30, "dma32"}, {Addr(1) << 36, Addr(1) << 32, "dma64"}};
            dids_.push_back(*drv_->create_domain(w));
        }
        DomainOptions ident;
        ident.identity = true;
        identity_ = *drv_->create_domain(ident);
        if (s.nested) {
            DomainOptions sl;
            sl.stage = Stage::SecondLevel;
            parent_ = *drv_->create_domain(sl);
            // Guest RAM: 2 MiB chunks of guest-physical space at scattered host addresses.
            for (Addr gpa = 0; gpa < kGuestRam; gpa += 2 << 20)
                REQUIRE(drv_->map(parent_, gpa, kDataBase + (rng_.below(4096) << 21), 2 << 20,
                                  kPermRW));
            dids_.push_back(*drv_->create_nested_domain(parent_, {}));
        }
        // Devices on two buses, functions above and below devfn 128.
        for (unsigned i = 0; i < 6; ++i)
            rids_.push_back(Requester::bdf(i % 2, 3 + 15 * i, i % 8).rid);
        for (size_t i = 0; i < rids_.size(); ++i) attach_random(rids_[i]);
    }

    void attach_random(uint16_t rid) {
        std::string why;
        uint16_t did = rng_.chance(10) ? identity_ : dids_[rng_.below(dids_.size())];
        REQUIRE(drv_->attach(rid, did, &why));
        users_[did].push_back(Requester{rid});
        if (s_.scalable) {
            uint32_t pasid = uint32_t(rng_.range(1, (1u << 20) - 1));
            bool sup = rng_.chance(30);
            uint16_t pdid = dids_[rng_.below(dids_.size())];
            REQUIRE(drv_->attach_pasid(rid, pasid, pdid, sup, &why));
            pasids_.push_back({rid, pasid, sup});
            users_[pdid].push_back(Requester{rid}.with_pasid(pasid, sup && rng_.chance(50)));
        }
    }

    Requester random_requester() {
        if (s_.scalable && !pasids_.empty() && rng_.chance(40)) {
            const auto& p = pasids_[rng_.below(pasids_.size())];
            Requester r{p.rid};
            return r.with_pasid(p.pasid, p.supervisor && rng_.chance(50));
        }
        if (rng_.chance(3)) return Requester::bdf(7, 7, 7);  // never attached
        return Requester{rids_[rng_.below(rids_.size())]};
    }

    void op() {
        uint64_t k = rng_.below(100);
        if (k < 50 || live_.empty()) return map_one();
        if (k < 90) return unmap_one();
        if (k < 95 && s_.nested) return remap_guest_ram();
        attach_random(rids_[rng_.below(rids_.size())]);
    }

    void map_one() {
        uint16_t did = dids_[rng_.below(dids_.size())];
        Addr size = random_size(rng_);
        bool nested = s_.nested && did == dids_.back();
        Addr pa = nested ? (rng_.below(kGuestRam >> 21) << 21) + (rng_.below(512) << 12)
                         : kDataBase + (rng_.below(1 << 20) << 12);
        if (size >= (2 << 20) && rng_.chance(70)) pa &= ~Addr((2 << 20) - 1);
        if (nested && pa + size > kGuestRam) pa = kGuestRam - size;
        Perm perm = rng_.chance(30) ? kPermR : kPermRW;
        std::string why;
        if (rng_.chance(60)) {
            auto iova =
                drv_->map_alloc(did, pa, size, perm, rng_.chance(30) ? 0xFFFFFFFF : ~Addr(0), &why);
            if (iova) live_.push_back({did, *iova, size});
            return;
        }
        // An explicit IOVA anywhere: the driver must refuse what windows or overlaps forbid.
        Addr iova = (rng_.below(Addr(1) << 36) & ~Addr(0xFFF));
        if (size >= (2 << 20) && rng_.chance(50)) iova &= ~Addr((2 << 20) - 1);
        const AddressSpace* as = drv_->space(did);
        bool allowed = as->iova().check(iova, size).empty() && !as->intent().overlaps(iova, size);
        bool ok = drv_->map(did, iova, pa, size, perm, &why);
        CHECK(ok == allowed);
        if (!ok) CHECK_FALSE(why.empty());
        if (ok) live_.push_back({did, iova, size});
    }

    void unmap_one() {
        size_t i = rng_.below(live_.size());
        Live l = live_[i];
        live_[i] = live_.back();
        live_.pop_back();
        Addr off = 0, len = l.size;
        if (rng_.chance(30) && l.size > 4096) {  // partial: splits large pages
            off = rng_.below(l.size / 4096) * 4096;
            len = 4096 * rng_.range(1, (l.size - off) / 4096);
            if (off) live_.push_back({l.did, l.iova, off});
            if (off + len < l.size)
                live_.push_back({l.did, l.iova + off + len, l.size - off - len});
        }
        drv_->unmap(l.did, l.iova + off, len);
    }

    void remap_guest_ram() {
        Addr gpa = rng_.below(kGuestRam >> 21) << 21;
        drv_->unmap(parent_, gpa, 2 << 20);
        if (rng_.chance(80))
            REQUIRE(drv_->map(parent_, gpa, kDataBase + (rng_.below(4096) << 21), 2 << 20,
                              rng_.chance(20) ? kPermR : kPermRW));
    }

    // An address worth checking and a requester to check it with: mostly a live mapping's
    // edges or inside, asked by a requester attached (now or earlier) to its domain.
    std::pair<Requester, Addr> interesting() {
        if (!live_.empty() && rng_.chance(80)) {
            const Live& l = live_[rng_.below(live_.size())];
            const auto& users = users_[l.did];
            Requester req = users.empty() || rng_.chance(10) ? random_requester()
                                                             : users[rng_.below(users.size())];
            return {req, pick_in(l)};
        }
        return {random_requester(), rng_.below(Addr(1) << 40)};
    }

    Addr pick_in(const Live& l) {
        {
            switch (rng_.below(4)) {
                case 0: return l.iova;
                case 1: return l.iova + l.size - 1;
                case 2: return l.iova + l.size;  // just past the end
                default: return l.iova + rng_.below(l.size);
            }
        }
    }

    void check_some(unsigned n) {
        for (unsigned i = 0; i < n; ++i) {
            auto [req, iova] = interesting();
            Access acc = Access(rng_.below(3));
            const WalkResult& r = walk_functional(*walker_, mem_, req, iova, acc);
            Expectation e = drv_->expect(req, iova);
            std::string bad = check_translation(r, e, acc, false);
            ++checked_;
            if (r.ok()) ++translated_;
            if (r.ok() && r.tr.page_shift > 12) ++large_;
            if (!bad.empty()) {
                ++mismatches_;
                if (mismatches_ <= 5)
                    UNSCOPED_INFO(fmt::format("{}: {} {:#x} {}: {}", s_.name, to_string(req), iova,
                                              to_string(acc), bad));
            }
        }
    }

    uint64_t checked_ = 0, mismatches_ = 0, translated_ = 0, large_ = 0;

private:
    struct PasidAttach {
        uint16_t rid;
        uint32_t pasid;
        bool supervisor;
    };
    Scenario s_;
    Rng rng_;
    SparseMemory mem_;
    std::unique_ptr<Driver> drv_;
    std::unique_ptr<VtdWalker> walker_;
    std::vector<uint16_t> dids_, rids_;
    std::vector<PasidAttach> pasids_;
    std::map<uint16_t, std::vector<Requester>> users_;  // domain -> requesters attached
    uint16_t identity_ = 0, parent_ = 0;
    std::vector<Live> live_;
};

void run(const Scenario& s, uint64_t ops) {
    Harness h(s);
    for (uint64_t i = 0; i < ops; ++i) {
        h.op();
        h.check_some(4);
    }
    INFO(s.name << ": " << h.checked_ << " checked, " << h.translated_ << " translated, "
                << h.large_ << " through large pages");
    CHECK(h.checked_ >= ops * 4);
    CHECK(h.translated_ * 5 > h.checked_);  // a good share of checks land on live mappings
    CHECK(h.large_ > 0);
    REQUIRE(h.mismatches_ == 0);
}

}  // namespace

TEST_CASE("VT-d translations always equal the driver's intent", "[vtd][property]") {
    const uint64_t ops = test::scaled(15000);  // 7 scenarios: > 10^5 map/unmap operations
    SECTION("legacy 4-level") {
        run({"legacy-4", false, 4, Stage::SecondLevel, false, true, 11}, ops);
    }
    SECTION("legacy 3-level") {
        run({"legacy-3", false, 3, Stage::SecondLevel, false, false, 12}, ops);
    }
    SECTION("legacy 5-level") {
        run({"legacy-5", false, 5, Stage::SecondLevel, false, false, 13}, ops);
    }
    SECTION("scalable second-level") {
        run({"sm-sl", true, 4, Stage::SecondLevel, false, true, 14}, ops);
    }
    SECTION("scalable first-level") {
        run({"sm-fl", true, 4, Stage::FirstLevel, false, true, 15}, ops);
    }
    SECTION("scalable nested") {
        run({"sm-nested", true, 4, Stage::SecondLevel, true, false, 16}, ops);
    }
    SECTION("scalable nested over 5-level") {
        run({"sm-nested-5", true, 5, Stage::FirstLevel, true, false, 17}, ops);
    }
}
