// The timeline writer (core/timeline.h): lanes keep a track's spans from overlapping, the
// window and the event limit bound what is kept (and the file says so), counters are kept
// only when they change, names are escaped.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/json.h"
#include "core/timeline.h"

using namespace iommusim;

namespace {
size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
    return n;
}
}  // namespace

TEST_CASE("Timeline: overlapping spans of a track go to further lanes", "[timeline]") {
    Timeline t({"unused.json", 0, kNever, 100});
    const int tr = t.track("system.iommu0", "translations");
    const int a = t.span(tr, "miss", 1'000'000, 3'000'000);
    const int b = t.span(tr, "hit", 2'000'000, 2'500'000);  // overlaps a: a second lane
    const int c = t.span(tr, "hit", 3'000'000, 4'000'000);  // a has ended: the first lane again
    CHECK(a != b);
    CHECK(c == a);
    t.child(a, "level 4", 1'000'000, 1'500'000);  // nested: no lane search
    const std::string j = t.json();
    CHECK(j.find("\"name\":\"translations #2\"") != std::string::npos);
    CHECK(j.find("\"ts\":1.0,\"dur\":2.0,\"name\":\"miss\"") != std::string::npos);
    CHECK(t.events() == 4);
    CHECK(j.find("\"truncated\":false") != std::string::npos);
}

TEST_CASE("Timeline: the window and the event limit bound the events, noted in the file",
          "[timeline]") {
    Timeline t({"unused.json", 10'000, 20'000, 3});
    const int tr = t.track("dev", "transfers");
    CHECK(t.span(tr, "early", 5'000, 15'000) == -1);  // starts before the window
    CHECK(t.span(tr, "late", 20'000, 25'000) == -1);  // starts at its end
    CHECK(!t.near(0, 9'999));
    CHECK(t.near(0, 10'000));
    t.span(tr, "a", 10'000, 11'000);
    t.span(tr, "b", 11'000, 12'000);
    t.instant(tr, "fault", 12'000);
    t.span(tr, "c", 13'000, 14'000);  // past the limit
    t.span(tr, "d", 14'000, 15'000);
    CHECK(t.events() == 3);
    CHECK(t.dropped() == 2);
    const std::string j = t.json();
    CHECK(j.find("\"truncated\":true,\"dropped_events\":2,\"truncated_at_us\":0.013") !=
          std::string::npos);
    CHECK(j.find("\"window_start_us\":0.01,\"window_end_us\":0.02") != std::string::npos);
}

TEST_CASE("Timeline: counters only when they change; names escaped", "[timeline]") {
    Timeline t({"unused.json", 0, kNever, 100});
    t.counter("system.iommu0", "iotlb entries", 1000, 1);
    t.counter("system.iommu0", "iotlb entries", 2000, 1);
    t.counter("system.iommu0", "iotlb entries", 3000, 2);
    t.counter("system.iommu1", "iotlb entries", 3000, 2);  // another module's counter
    CHECK(t.events() == 3);
    t.span(t.track("odd \"name\"\\", "x"), "s", 0, 1);
    const std::string j = t.json();
    CHECK(count(j, "\"ph\":\"C\"") == 3);
    CHECK(j.find(R"("name":"odd \"name\"\\")") != std::string::npos);
    CHECK_THROWS_AS(Timeline({"unused.json", 5, 5, 1}), std::invalid_argument);
}

TEST_CASE("Timeline: the file reads back with the library, times exact to the picosecond",
          "[timeline][json]") {
    Timeline t({"unused.json", 0, kNever, 100});
    const int tr = t.track("system.nic0", "tab\there \x01 \xc2\xb5");
    // Up to 10^15 ps (1000 s) a double holds every picosecond of a microsecond time.
    const uint64_t kTimes[] = {1, 999'999, 123'456'789'012, 999'999'999'999'999};
    for (uint64_t ps : kTimes)
        t.span(tr, "s", ps, ps + 1, {{"bytes", "64"}, {"iova", "\"0x1000\""}});
    t.counter("system.nic0", "queue", 5, 2.5);
    const Json j = json_parse(t.json(), "the timeline");
    size_t spans = 0;
    for (const Json& e : j.at("traceEvents")) {
        if (e.at("ph") == "M" && e.at("name") == "thread_name")
            CHECK(e.at("args").at("name") == "tab\there \x01 \xc2\xb5");
        if (e.at("ph") == "C") CHECK(e.at("args").at("value") == 2.5);
        if (e.at("ph") != "X") continue;
        CHECK(std::llround(e.at("ts").get<double>() * 1e6) == int64_t(kTimes[spans]));
        CHECK(e.at("dur") == 1e-6);
        CHECK(e.at("args").at("bytes") == 64);
        CHECK(e.at("args").at("iova") == "0x1000");
        ++spans;
    }
    CHECK(spans == 4);
    CHECK(j.at("otherData").at("window_end_us").is_null());
}

TEST_CASE("Timeline: non-finite counters, bad arguments and non-UTF-8 names are errors",
          "[timeline][json]") {
    Timeline t({"unused.json", 0, kNever, 100});
    CHECK_THROWS_WITH(
        t.counter("system.dev", "depth", 1000, std::nan("")),
        Catch::Matchers::Contains("counter 'depth' of system.dev at 1.000 ns is nan"));
    CHECK_THROWS_AS(t.counter("system.dev", "depth", 1000, HUGE_VAL), std::invalid_argument);
    CHECK(t.events() == 0);
    t.span(t.track("dev", "x"), "s", 0, 1, {{"bad", "not json"}});
    CHECK_THROWS_WITH(t.json(), Catch::Matchers::Contains("argument 'bad' of timeline event 's'"));
    Timeline u({"unused.json", 0, kNever, 100});
    u.span(u.track("dev\xff", "x"), "s", 0, 1);
    CHECK_THROWS_WITH(u.json(), Catch::Matchers::Contains("a timeline module name"));
}
