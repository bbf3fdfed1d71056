// PCIe flow-control credits (pcie/flow_control.h): directed cases, a seeded random comparison
// with a plain reference, the credit-return latency and the parameter checks.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "pcie/flow_control.h"
#include "pcie/link_model.h"

using namespace iommusim;

TEST_CASE("pcie fc: header credits bound what is in flight", "[pcie][fc]") {
    CreditPool h(2);
    CHECK(h.available(1) == 0);
    h.take(1, 100);
    CHECK(h.available(1) == 0);  // one of two left
    h.take(1, 150);
    CHECK(h.available(1) == 100);  // the first TLP's credit comes back at 100
    h.take(1, 120);                // drains in order: released with (after) the one before
    CHECK(h.available(1) == 150);
    h.take(1, 400);
    CHECK(h.available(1) == 150);  // the third TLP's release was raised to 150
}

TEST_CASE("pcie fc: data credits count 16-byte units", "[pcie][fc]") {
    CHECK(data_credits(0) == 0);
    CHECK(data_credits(1) == 1);
    CHECK(data_credits(16) == 1);
    CHECK(data_credits(64) == 4);
    CHECK(data_credits(256) == 16);
    CreditPool d(20);  // one 256-byte MWr (16) and one 64-byte (4) fit
    d.take(16, 10);
    CHECK(d.available(4) == 0);
    d.take(4, 20);
    CHECK(d.available(1) == 10);   // needs the first TLP's 16 back
    CHECK(d.available(16) == 10);  // 16 free once the first is back
    CHECK(d.available(20) == 20);  // all of them
    CreditPool inf;                // 0 = infinite
    inf.take(4000, 1000000);
    CHECK(inf.available(4095) == 0);
}

TEST_CASE("pcie fc: the pool agrees with a plain reference on random traffic", "[pcie][fc]") {
    std::mt19937_64 rng(20240611);
    for (int round = 0; round < 20; ++round) {
        const uint32_t limit = 1 + uint32_t(rng() % 64);
        CreditPool pool(limit);
        std::vector<std::pair<uint32_t, Tick>> held;  // every TLP: units, release (in order)
        Tick last = 0;
        for (int k = 0; k < 500; ++k) {
            const uint32_t units = 1 + uint32_t(rng() % limit);
            // Reference: the earliest t among 0 and the releases at which the credits still
            // held (release > t) leave room for `units`.
            auto held_after = [&](Tick t) {
                uint64_t n = 0;
                for (auto& [u, r] : held)
                    if (r > t) n += u;
                return n;
            };
            Tick want = 0;
            if (held_after(0) + units > limit) {
                want = ~Tick(0);
                for (auto& [u, r] : held)
                    if (r < want && held_after(r) + units <= limit) want = r;
            }
            REQUIRE(pool.available(units) == want);
            Tick release = want + Tick(rng() % 1000);
            pool.take(units, release);
            if (release < last) release = last;
            last = release;
            held.emplace_back(units, release);
        }
    }
}

TEST_CASE("pcie fc: credits return after half the UpdateFC guideline and the link", "[pcie][fc]") {
    PcieLinkParams p;  // Gen3 x8, MPS 256: guideline 203 symbol times of 8 / (8 x 128/130) ns
    p.latency_ns = 100;
    CHECK(symbol_ns(p) == Approx(130.0 / 128.0));
    CHECK(credit_return_ticks(p) == Tick(std::llround(0.5 * 203 * 130.0 / 128.0 * 1000)) + 100000);
    p.gen = 1;  // 4 ns per symbol at 2.5 GT/s 8b/10b
    CHECK(symbol_ns(p) == Approx(4.0));
}

TEST_CASE("pcie fc: credit parameters are checked", "[pcie][fc]") {
    std::string why;
    PcieLinkParams p;
    p.fc_pd = 8;  // 128 bytes: less than one MPS-256 MWr
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("fc.pd") != std::string::npos);
    p.fc_pd = 16;
    CHECK(p.valid());
    p.fc_ph = 256;
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("fc.ph") != std::string::npos);
    p.fc_ph = 0;
    p.fc_cpld = 2;  // 32 bytes: less than a 256-byte completion
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("fc.cpld") != std::string::npos);
    p.cpl_rcb_chunks = true;
    p.fc_cpld = 4;  // one RCB-64 completion fits
    CHECK(p.valid());
    p.fc_npd = 1;
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("fc.npd") != std::string::npos);
}
