// The clock fit of the QEMU importer (traces/import_align_fit.h) on synthetic anchors.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <random>

#include "support/test_files.h"
#include "traces/import_align_fit.h"
#include "traces/import_ftrace.h"

using namespace iommusim::trace::align;

namespace {

// Anchors of guest = a*host + b with host times jittered by up to `jitter` ns.
std::vector<std::pair<uint64_t, uint64_t>> anchors(double a, double b, size_t n, double jitter,
                                                   uint32_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> j(-jitter, jitter);
    std::vector<std::pair<uint64_t, uint64_t>> v;
    uint64_t host = 1796544099000000000ull;  // epoch ns, as QEMU's log prints
    for (size_t i = 0; i < n; ++i) {
        host += 1000 + rng() % 5000000;
        const double guest = a * (double(host) + j(rng)) + b;
        v.push_back({host, uint64_t(std::llround(guest))});
    }
    return v;
}

}  // namespace

TEST_CASE("clock fit: a known rate and offset are recovered within the reported bound",
          "[import][align]") {
    struct Case {
        double a, b, jitter;
    };
    // ns guest clock slightly fast, and a 2.4 GHz TSC (counts per ns) with a boot offset.
    for (const Case& c : {Case{1.0003, -1796544000e9 * 1.0003 + 15e9, 3000},
                          Case{2.4, -1796544000e9 * 2.4 + 7e12, 5000}}) {
        const auto v = anchors(c.a, c.b, 400, c.jitter, 12);
        const ClockFit f = fit(v);
        REQUIRE(f.fitted);
        CHECK(f.anchors == 400);
        CHECK(std::fabs(f.a - c.a) / c.a < 1e-5);  // 10 ppm over ~1 s of anchors
        // Every anchor maps back within the bound, and the bound is about the jitter.
        for (const auto& [h, g] : v)
            CHECK(std::fabs(double(int64_t(f.host(g) - h))) <= f.bound_ns + 1);
        CHECK(f.bound_ns <= 2 * c.jitter);
        CHECK(f.bound_ns >= c.jitter / 4);
        // A guest time between anchors lands where the true map puts it, within the bound.
        const uint64_t host = v[200].first + 777;
        const double guest = c.a * double(host) + c.b;
        CHECK(std::fabs(double(int64_t(f.host(uint64_t(std::llround(guest))) - host))) <=
              f.bound_ns + 1);
    }
}

TEST_CASE("clock fit: without anchors nothing is fitted and the fallback is reported",
          "[import][align]") {
    const ClockFit none = fit({});
    CHECK(!none.fitted);
    CHECK(none.host(12345) == 12345);
    CHECK(none.describe(false).find("clock: no fit (0 qi_submit/vtd_inv_desc anchors") !=
          std::string::npos);
    CHECK(none.describe(true).find("no known rate") != std::string::npos);
    CHECK(!fit({{5, 7}}).fitted);
    CHECK(!fit({{5, 7}, {5, 9}}).fitted);  // one host time: no rate
}

TEST_CASE("clock anchors: descriptors pair by their words in order, PASID types skipped",
          "[import][align]") {
    // QEMU logs waits the guest's qi_submit does not show, and no PASID descriptors.
    const std::vector<HostDesc> host = {{100, 0x12, 0x1000, 0, 1},
                                        {101, 0x25, 0x1bdd0c04, 1, 1},
                                        {200, 0x12, 0x2000, 3, 4},
                                        {300, 0x12, 0x1000, 6, 7}};
    const std::vector<GuestDesc> guest = {{10, 0x12, 0x1000},
                                          {15, 0x16, 0x1000},
                                          {20, 0x12, 0x2000},
                                          {25, 0x17, 0},
                                          {30, 0x12, 0x1000}};
    const auto p = match(guest, host);
    REQUIRE(p.size() == 3);
    CHECK(p[0] == std::pair<size_t, size_t>{0, 0});
    CHECK(p[1] == std::pair<size_t, size_t>{2, 2});
    CHECK(p[2] == std::pair<size_t, size_t>{4, 3});
    // An event between the second and third anchor lies between their timeline slots; one at
    // the same time as an anchor is not ordered against it.
    const auto w = causal_windows({5, 20, 22, 40}, guest, host, p, 9);
    CHECK(w[0] == std::pair<size_t, size_t>{0, 0});
    CHECK(w[1] == std::pair<size_t, size_t>{1, 6});
    CHECK(w[2] == std::pair<size_t, size_t>{4, 6});
    CHECK(w[3] == std::pair<size_t, size_t>{7, 9});
}

TEST_CASE("guest ftrace: raw-count clocks, qi_submit anchors, unknown events skipped",
          "[import][align]") {
    using iommusim::test::TempPath;
    using iommusim::trace::ImportReport;
    using iommusim::trace::read_ftrace;
    // trace_clock=x86-tsc: no event has SECONDS.FRACTION, so the counts are read as such.
    TempPath p(".log");
    std::ofstream(p.path)
        << "# tracer: nop\n"
           "  kworker/u2:1-25 [000] ..... 47111222333: map: IOMMU: iova=0x1000 - 0x2000 "
           "paddr=0x9000 size=4096\n"
           "  kworker/u2:1-25 [000] d..1. 47111222400: qi_submit: iotlb_inv dmar0: 0x10012 "
           "0x1000 0x0 0x0\n"
           "  kworker/u2:1-25 [000] ..... 47111222500: block_rq_issue: 259,0 R 4096 () 8 + "
           "8 [dd]\n"
           "  kworker/u2:1-25 [000] ..... 47111222550: sched_switch: prev=a next=b\n"
           "  kworker/u2:1-25 [000] ..... 47111222600: qi_submit: iotlb_inv dmar0: 0x12\n"
           "  kworker/u2:1-25 [000] ..... -5: unmap: IOMMU: iova=0x1000 - 0x2000 "
           "size=4096 unmapped_size=4096\n";
    ImportReport rep;
    const auto t = read_ftrace({p.path}, rep);
    CHECK(t.raw_clock);
    REQUIRE(t.ops.size() == 1);
    CHECK(t.ops[0].guest_ns == 47111222333ull);
    REQUIRE(t.qi.size() == 1);
    CHECK(t.qi[0].guest_ns == 47111222400ull);
    CHECK(t.qi[0].qw0 == 0x10012);
    CHECK(t.qi[0].qw1 == 0x1000);
    REQUIRE(t.block.size() == 1);
    CHECK(t.block[0].dev == (259u << 20));
    CHECK(t.block[0].sector == 8);
    CHECK(t.block[0].sectors == 8);
    CHECK(!t.block[0].write);
    CHECK(rep.skipped == 2);  // the header and sched_switch: unknown, skipped, counted
    // A qi_submit without its four words, and a time that is not a count, are errors.
    REQUIRE(rep.errors.size() == 2);
    CHECK(rep.errors[0].line == 6);
    CHECK(rep.errors[0].what.find("qi_submit: expected") == 0);
    CHECK(rep.errors[1].line == 7);
    CHECK(rep.errors[1].what.find("expected a raw clock count") == 0);

    // With seconds, a bare number stays an error and the file is not raw.
    TempPath q(".log");
    std::ofstream(q.path) << " k-1 [000] ..... 12: map: IOMMU: iova=0x1000 - 0x2000 paddr=0x9000 "
                             "size=4096\n"
                             " k-1 [000] ..... 1.5: map: IOMMU: iova=0x3000 - 0x4000 "
                             "paddr=0x9000 size=4096\n";
    ImportReport rq;
    const auto u = read_ftrace({q.path}, rq);
    CHECK(!u.raw_clock);
    CHECK(u.ops.size() == 1);
    CHECK(rq.errors.size() == 1);
}

TEST_CASE("clock check: block requests against the fitted window", "[import][align]") {
    // guest = host + 1000 (ns), fitted from two exact anchors: bound 0.
    const ClockFit f = fit({{1000000, 1001000}, {2000000, 2001000}});
    REQUIRE(f.fitted);
    CHECK(f.bound_ns == 0);
    // Two requests on the same sectors (two disks, same workload): each takes the command
    // nearest its window; the second's command lies 5 us after its completion.
    const std::vector<GuestBlock> guest = {{1101000, 1201000, 128, 8, false},
                                           {1501000, 1601000, 128, 8, false},
                                           {1701000, 0, 64, 8, true}};  // never completed
    const std::vector<HostBlock> host = {
        {1150000, 128, 8, false}, {1605000, 128, 8, false}, {1150000, 128, 8, true}};
    const BlockCheck c = check_block(f, guest, host);
    CHECK(c.requests == 2);
    CHECK(c.matched == 2);
    CHECK(c.outside == 1);
    CHECK(c.slack_ns == 5000);
    CHECK(c.describe(f).find("error bound raised from 0.0 to 5.0 us") != std::string::npos);
}
