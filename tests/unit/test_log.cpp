// The logger (core/log.h): level names, rules by hierarchical prefix (the longest wins, a
// sibling with a longer name is not a child), disabled calls evaluate nothing, the line
// format with simulated time, the requester filter and the messages about bad rules.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/log.h"

using namespace iommusim;
namespace L = iommusim::log;

namespace {
// Captures what the logger writes while it lives; restores the defaults after.
struct Capture {
    char* buf = nullptr;
    size_t len = 0;
    std::FILE* f = nullptr;
    Capture() {
        L::reset();
        f = open_memstream(&buf, &len);
        L::set_output(f);
    }
    ~Capture() {
        L::reset();
        std::fclose(f);
        std::free(buf);
    }
    std::string text() {
        std::fflush(f);
        return std::string(buf, len);
    }
};

L::Rule rule(const std::string& text) {
    L::Rule r;
    const std::string e = L::parse_rule(text, &r);
    INFO(e);
    REQUIRE(e.empty());
    r.origin = "--log";
    return r;
}

Tick g_clock = 0;
Tick test_clock() {
    return g_clock;
}
}  // namespace

TEST_CASE("log: level names parse in any case, anything else is refused", "[log]") {
    CHECK(L::parse_level("trace") == L::Level::Trace);
    CHECK(L::parse_level("DEBUG") == L::Level::Debug);
    CHECK(L::parse_level("Warn") == L::Level::Warn);
    CHECK(L::parse_level("off") == L::Level::Off);
    CHECK_FALSE(L::parse_level("verbose"));
    CHECK_FALSE(L::parse_level(""));
    CHECK(std::string(L::to_string(L::Level::Info)) == "info");
}

TEST_CASE("log: rules are MODULE or MODULE=LEVEL; bad ones say what was expected", "[log]") {
    L::Rule r;
    CHECK(L::parse_rule("system.iommu0", &r).empty());
    CHECK(r.module == "system.iommu0");
    CHECK(r.level == L::Level::Debug);  // a bare module means debug
    CHECK(L::parse_rule("system.bench0.engine=trace", &r).empty());
    CHECK(r.module == "system.bench0.engine");
    CHECK(r.level == L::Level::Trace);
    CHECK(L::parse_rule("system.iommu0=loud", &r) ==
          "system.iommu0: 'loud' is not a level (expected error, warn, info, debug, trace or off)");
    CHECK(L::parse_rule("system..iommu0=debug", &r).find("is not MODULE or MODULE=LEVEL") !=
          std::string::npos);
    CHECK_FALSE(L::parse_rule("=debug", &r).empty());
    CHECK_FALSE(L::parse_rule("system iommu0", &r).empty());
}

TEST_CASE("log: a rule covers its module and the modules below it, the longest wins", "[log]") {
    Capture cap;
    L::Channel unit("system.iommu0"), regs("system.iommu0.regs"), other("system.iommu01"),
        engine("system.bench0.engine");
    CHECK_FALSE(unit.on(L::Level::Error));  // off by default
    L::set_rules({rule("system.iommu0=debug"), rule("system.iommu0.regs=trace")});
    CHECK(unit.on(L::Level::Debug));
    CHECK_FALSE(unit.on(L::Level::Trace));
    CHECK(regs.on(L::Level::Trace));
    CHECK_FALSE(other.on(L::Level::Error));  // a longer sibling name is not below it
    CHECK_FALSE(engine.on(L::Level::Error));
    // A channel made after the rules gets its level at once; one name shares one level.
    L::Channel late("system.iommu0.driver"), again("system.iommu0");
    CHECK(late.on(L::Level::Debug));
    CHECK(again.on(L::Level::Debug));
    // A later rule for the same module wins (the command line after the INI); off silences.
    L::set_rules({rule("system.iommu0=trace"), rule("system.iommu0=off")});
    CHECK_FALSE(unit.on(L::Level::Error));
    L::set_rules({rule("system=info")});
    CHECK(engine.on(L::Level::Info));
    CHECK_FALSE(engine.on(L::Level::Debug));
}

TEST_CASE("log: a disabled call evaluates none of its arguments", "[log]") {
    Capture cap;
    L::Channel ch("system.test_args");
    int evaluated = 0;
    auto count = [&] { return ++evaluated; };
    IOMMUSIM_LOG(ch, Debug, count(), "{} {}", count(), count());
    IOMMUSIM_LOG_IF(ch, Trace, count() > 0, count(), "{}", count());
    CHECK(evaluated == 0);
    CHECK(cap.text().empty());
    L::set_rules({rule("system.test_args=debug")});
    IOMMUSIM_LOG(ch, Trace, count(), "{}", count());  // above the level: still nothing
    CHECK(evaluated == 0);
    IOMMUSIM_LOG(ch, Debug, 7, "{}", count());
    CHECK(evaluated == 1);
    IOMMUSIM_LOG(ch, Debug, count(), "time");
    CHECK(evaluated == 2);
    IOMMUSIM_LOG_IF(ch, Debug, false, count(), "{}", count());  // condition false: no line
    CHECK(evaluated == 2);
    CHECK(cap.text() ==
          "[    0.000007 us] system.test_args debug: 1\n"
          "[    0.000002 us] system.test_args debug: time\n");
}

TEST_CASE("log: lines carry the simulated time to the picosecond", "[log]") {
    Capture cap;
    L::Channel ch("system.iommu0");
    L::set_rules({rule("system.iommu0=trace")});
    IOMMUSIM_LOG(ch, Debug, 12'345'678, "IOTLB miss {:#x}", 0x1000);
    IOMMUSIM_LOG(ch, Trace, 1'234'567'890'123ull, "walk");
    IOMMUSIM_LOG(ch, Warn, 0, "w");
    // Without a clock, log::now() has no time to give: "-".
    IOMMUSIM_LOG(ch, Info, L::now(), "no clock");
    g_clock = 5'000'000;
    L::set_clock(test_clock);
    IOMMUSIM_LOG(ch, Error, L::now(), "from the clock");
    CHECK(cap.text() ==
          "[   12.345678 us] system.iommu0 debug: IOTLB miss 0x1000\n"
          "[1234567.890123 us] system.iommu0 trace: walk\n"
          "[    0.000000 us] system.iommu0 warn: w\n"
          "[           - us] system.iommu0 info: no clock\n"
          "[    5.000000 us] system.iommu0 error: from the clock\n");
}

TEST_CASE("log: rules naming no module that logs are reported with the closest names", "[log]") {
    Capture cap;
    L::Channel a("system.iommu0"), b("system.iommu0.regs");
    L::Rule typo = rule("system.iommuO=debug");
    typo.origin = "p.ini:3";
    L::set_rules({rule("system.iommu0.regs"), rule("system"), typo});
    const std::vector<std::string> e = L::unmatched_rules();
    REQUIRE(e.size() == 1);
    CHECK(e[0].rfind("p.ini:3: no module logs under 'system.iommuO'", 0) == 0);
    CHECK(e[0].find("closest: system.iommu0") != std::string::npos);
}

TEST_CASE("log: requesters parse as BB:DD.F[/PASID] and filter lines and invalidations", "[log]") {
    Capture cap;
    L::RequesterFilter f;
    CHECK(L::parse_requester("00:03.0", &f).empty());
    CHECK(f.rid == Requester::bdf(0, 3, 0).rid);
    CHECK(f.pasid == Requester::kNoPasid);
    CHECK(L::parse_requester("0a:1f.7/0x5", &f).empty());
    CHECK(f.rid == Requester::bdf(0xa, 0x1f, 7).rid);
    CHECK(f.pasid == 5);
    CHECK_FALSE(L::parse_requester("00:20.0", &f).empty());  // device 32
    CHECK_FALSE(L::parse_requester("00:03.8", &f).empty());
    CHECK_FALSE(L::parse_requester("0:3.0", &f).empty());
    CHECK(L::parse_requester("00:03.0/0x100000", &f).find("PASID") != std::string::npos);

    const Requester dev3 = Requester::bdf(0, 3, 0), dev4 = Requester::bdf(0, 4, 0);
    CHECK(L::wants(dev4));  // no filter: everything
    REQUIRE(L::parse_requester("00:03.0", &f).empty());
    L::set_requester_filter(f);
    CHECK(L::wants(dev3));
    CHECK(L::wants(dev3.with_pasid(9)));
    CHECK_FALSE(L::wants(dev4));

    InvalidationScope page = InvalidationScope::covering(InvalidationScope::Kind::Page, 2, 0, 1);
    InvalidationScope global;
    InvalidationScope ctx;
    ctx.kind = InvalidationScope::Kind::ContextDevice;
    ctx.rid = dev4.rid;
    CHECK(L::wants(page));  // its domain is not known yet: shown
    CHECK(L::wants(global));
    CHECK_FALSE(L::wants(ctx));  // another device's context
    L::note_domain(dev4, 2);     // another requester's domain: not noted
    L::note_domain(dev3, 1);
    CHECK_FALSE(L::wants(page));  // domain 2 is not the followed requester's
    page.domain = 1;
    CHECK(L::wants(page));
    CHECK(L::wants(global));
}

TEST_CASE("log: a log file that cannot be written is an error naming it", "[log]") {
    Capture cap;
    try {
        L::open_file("/nonexistent-dir/x.log");
        FAIL("no error");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) ==
              "cannot write log file '/nonexistent-dir/x.log': No such file or directory");
    }
}
