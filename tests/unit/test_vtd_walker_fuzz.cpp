// Randomized tests of the VT-d walker: tables filled with random quadwords and pointers into
// a small pool of pages, and valid tables with random bits flipped. Whatever the guest
// wrote, every walk must finish within a bounded number of steps with a translation or a
// fault the specification defines.
#include <catch2/catch.hpp>

#include <array>
#include <initializer_list>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "vtd_walker_test_util.h"

using namespace iommusim;
using namespace iommusim::vtd;

namespace {
using namespace iommusim::test;

const Requester kDev = Requester::bdf(0, 3, 0);

// A pool of pages by role. Each quadword is usually shaped like the field it lands in (a
// pointer at the next structure with plausible low bits, a small field, or zero), and one
// in eight is zero, random or a pointer anywhere, so walks get deep and still meet garbage.
class RandomTables {
public:
    static constexpr Addr kBase = 0x100000;
    enum Role : unsigned { kRoot, kContext, kDir, kPasidTable, kPaging, kRoles };

    explicit RandomTables(std::mt19937_64& rng) : rng_(rng) {}
    Addr root() const { return first(kRoot); }

    void fill(SparseMemory& mem, bool scalable) {
        for (unsigned p = 0; p < kPages; ++p) {
            const Addr page = kBase + Addr(p) * 0x1000;
            for (unsigned q = 0; q < 512; ++q)
                mem.write64(page + q * 8, value(role(p), q, scalable));
        }
    }

private:
    static constexpr std::array<unsigned, kRoles + 1> kFirst{0, 1, 4, 6, 10, 18};
    static constexpr unsigned kPages = kFirst[kRoles];

    static Role role(unsigned page) {
        unsigned r = 0;
        while (page >= kFirst[r + 1]) ++r;
        return Role(r);
    }
    static Addr first(Role r) { return kBase + Addr(kFirst[r]) * 0x1000; }
    Addr pointer(Role r) { return first(r) + rng_() % (kFirst[r + 1] - kFirst[r]) * 0x1000; }
    uint64_t pick(std::initializer_list<uint64_t> low) {
        return *(low.begin() + rng_() % low.size());
    }
    uint64_t shaped(Role r, unsigned q, bool sm) {
        switch (r) {
            case kRoot: return sm || q % 2 == 0 ? pointer(kContext) | 1 : 0;
            case kContext:
                if (!sm)
                    return q % 2 == 0 ? pointer(kPaging) | pick({1, 3, 5, 9})
                                      : (rng_() & 0xFF00) | (1 + rng_() % 3);
                switch (q % 4) {
                    case 0: return pointer(kDir) | pick({0x9, 0xB, 0x209, 0xE09, 0x1});
                    case 1: return (rng_() & 0x3F) | (rng_() % 4 ? 0 : 1ULL << 20);  // RID_*
                    default: return 0;
                }
            case kDir: return pointer(kPasidTable) | pick({1, 3});
            case kPasidTable:
                switch (q % 8) {
                    case 0:  // P, AW 48, PGTT 1-4, sometimes SLEE or SLADE
                        return pointer(kPaging) | pick({0x49, 0x89, 0xC9, 0x109, 0x289, 0xA9});
                    case 1: return rng_() & 0xFFFF;
                    case 2: return pointer(kPaging) | pick({0, 1, 4, 5, 0x11});
                    default: return 0;
                }
            default:  // first- or second-level entries: tables, leaves, large pages, XD
                return pointer(kPaging) |
                       pick({0x1, 0x3, 0x7, 0x23, 0x27, 0x67, 0x83, 0xA7, 0xE7, 0x103, 0x303}) |
                       (rng_() % 8 == 0 ? 1ULL << 63 : 0);
        }
    }
    uint64_t value(Role r, unsigned q, bool sm) {
        switch (rng_() % 32) {
            case 0:
            case 1: return 0;
            case 2: return rng_();
            case 3: return first(Role(rng_() % kRoles)) | (rng_() & 0xFFF);
            default: return shaped(r, q, sm);
        }
    }

    std::mt19937_64& rng_;
};

Requester random_requester(std::mt19937_64& rng, bool scalable) {
    Requester req{uint16_t(rng())};
    switch (rng() % (scalable ? 4 : 16)) {
        case 0: req.pasid = uint32_t(rng() & 0xFFFFF); break;
        case 1: req.pasid = uint32_t(rng() & 0x3FF); break;
        default: break;
    }
    req.priv = rng() % 4 == 0;
    req.exec = rng() % 8 == 0;
    return req;
}

Addr random_iova(std::mt19937_64& rng) {
    switch (rng() % 4) {
        case 0: return rng();
        case 1: return rng() & 0xFFFF'FFFF;
        case 2: return Addr(int64_t(rng() << 16) >> 16);  // canonical for 4-level
        default: return rng() & 0xFFFF'FFFF'FFFF;
    }
}

WalkerConfig random_config(std::mt19937_64& rng, bool scalable, Addr rtaddr) {
    WalkerConfig cfg;
    cfg.scalable = scalable;
    cfg.rtaddr = rtaddr;
    cfg.haw = std::array<unsigned, 4>{39, 46, 48, 52}[rng() % 4];
    cfg.mgaw = std::array<unsigned, 3>{39, 48, 57}[rng() % 3];
    cfg.sagaw = uint8_t(rng() % 16);
    cfg.sl_2m = rng() % 2;
    cfg.sl_1g = rng() % 2;
    cfg.fl_1g = rng() % 2;
    cfg.fl_5level = rng() % 2;
    cfg.pass_through = rng() % 2;
    cfg.snoop_control = rng() % 2;
    cfg.device_tlb = rng() % 2;
    cfg.nested = rng() % 2;
    return cfg;
}

}  // namespace

TEST_CASE("walks over random tables finish with a translation or a VT-d fault", "[vtd]") {
    const bool scalable = GENERATE(false, true);
    std::mt19937_64 rng(scalable ? 0x5CA1AB1E : 0x7D1E6ACE);
    SparseMemory mem;
    RandomTables tables(rng);
    unsigned ok = 0, walks = 0;
    std::set<uint16_t> reasons;
    for (unsigned batch = 0; batch < 48; ++batch) {
        tables.fill(mem, scalable);
        VtdWalker w(random_config(rng, scalable, tables.root()));
        for (unsigned i = 0; i < 250; ++i, ++walks) {
            const Requester req = random_requester(rng, scalable);
            const std::string err =
                checked_walk(w, mem, req, random_iova(rng), Access(rng() % 3), rng);
            if (!err.empty()) FAIL_CHECK(err << " (walk " << walks << ")");
            if (w.result().ok())
                ++ok;
            else
                reasons.insert(w.result().fault.reason);
        }
    }
    CHECK(walks == 12000);
    // The generator must drive walks through the page tables, not stop at the root.
    CHECK(ok >= 50);
    CHECK(reasons.size() >= (scalable ? 25u : 12u));
}

TEST_CASE("walks over valid tables with random bits flipped stay within the contract", "[vtd]") {
    Scalable t;
    const Addr fl = t.page(), fl_noad = t.page(), sl = t.page();
    t.attach(kDev, 1, pasid_fields(Pgtt::FirstLevel, 1, 0, fl));
    t.attach(kDev, 3, pasid_fields(Pgtt::FirstLevel, 3, 0, fl_noad));
    PasidEntryFields slf = pasid_fields(Pgtt::SecondLevel, 4, sl);
    slf.slade = true;
    t.attach(kDev, 0, slf);
    t.attach(Requester::bdf(0, 0x1f, 7), 0, pasid_fields(Pgtt::PassThrough, 5, 0));
    t.map(kFl4, fl, 0x1000, 0x5000, 1, kPermRW);
    t.map(kFl4, fl, 0x4000'0000, 0x8000'0000, 2, kPermR);
    t.map(kFl4NoAd, fl_noad, 0x1000, 0x6000, 1, kPermRW);
    t.map(kSl4, sl, 0x1000, 0x7000, 1, kPermRW);
    t.map(kSl4, sl, 0x8000'0000, 0x1'0000'0000, 3, kPermRW);
    Nested n(t);
    const Addr nfl = n.guest_page();
    t.attach(kDev, 2, pasid_fields(Pgtt::Nested, 2, n.sl_root, nfl));
    n.map(kFl4, nfl, 0x1000, 0x9000'0000, 1, kPermRW);
    t.map(kSl4, n.sl_root, 0x9000'0000, 0x5000'0000, 1, kPermRW);

    struct Scenario {
        Requester req;
        Addr iova;
        std::vector<std::pair<Addr, unsigned>> reads;  // entries a clean walk reads
    };
    std::vector<Scenario> scenarios{{kDev.with_pasid(1), 0x1234, {}},
                                    {kDev.with_pasid(1), 0x4012'3456, {}},
                                    {kDev.with_pasid(3), 0x1FF8, {}},
                                    {kDev, 0x1010, {}},
                                    {kDev, 0x8765'4321, {}},
                                    {kDev.with_pasid(2), 0x1ABC, {}},
                                    {Requester::bdf(0, 0x1f, 7), 0xABC'DEF0, {}}};
    for (Scenario& s : scenarios) {
        VtdWalker w(t.cfg);
        std::vector<WalkStep> steps;
        w.start(s.req, s.iova, Access::Read);
        REQUIRE(drive(w, t.mem, 0, &steps).ok());
        for (const WalkStep& st : steps)
            if (st.kind == WalkStep::Kind::Read) s.reads.push_back({st.addr, st.size});
    }

    std::mt19937_64 rng(0xD1CE5EED);
    VtdWalker w(t.cfg);
    unsigned faults = 0;
    for (unsigned i = 0; i < 8000; ++i) {
        const Scenario& s = scenarios[rng() % scenarios.size()];
        std::vector<std::pair<Addr, uint64_t>> undo;
        for (unsigned m = 0, count = 1 + rng() % 3; m < count; ++m) {
            const auto& [addr, size] = s.reads[rng() % s.reads.size()];
            const Addr q = addr + rng() % (size / 8) * 8;
            undo.push_back({q, t.mem.read64(q)});
            t.mem.write64(q, rng() % 8 ? t.mem.read64(q) ^ 1ULL << (rng() % 64) : rng());
        }
        Requester req = s.req;
        req.priv = rng() % 4 == 0;
        req.exec = rng() % 8 == 0;
        const Addr iova = s.iova ^ (rng() % 4 ? 0 : 1ULL << (rng() % 64));
        const std::string err = checked_walk(w, t.mem, req, iova, Access(rng() % 3), rng, &undo);
        if (!err.empty()) FAIL_CHECK(err << " (mutation " << i << ")");
        if (!w.result().ok()) ++faults;
        for (auto it = undo.rbegin(); it != undo.rend(); ++it) t.mem.write64(it->first, it->second);
    }
    CHECK(faults > 0);
    // Every clean translation is back once the mutations are undone.
    for (const Scenario& s : scenarios) CHECK(t.walk(s.req, s.iova).ok());
}
