// stats.json, stats.csv and the terminal summary: content, determinism and file errors.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/stats_output.h"

using namespace iommusim;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path dir;
    TempDir() {
        static int n = 0;
        dir = fs::temp_directory_path() / ("iommusim_test_stats_output_" +
                                           std::to_string(::getpid()) + "_" + std::to_string(++n));
        fs::create_directories(dir);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// A small system: two units with counters and a latency histogram.
struct Tree {
    StatGroup root{"system"};
    Tree() {
        StatGroup& u = root.child("iommu0");
        u.counter("translations", "requests") += 1000;
        u.counter("faults", "faulted") += 3;
        Histogram& h = u.histogram("miss_latency", "ns", "miss latency");
        for (uint64_t v = 1; v <= 100; ++v) h.add(v);  // exact buckets
        StatGroup& t = u.child("iotlb");
        t.counter("hits", "hits") += 900;
        t.counter("misses", "misses") += 100;
        root.child("nic0").counter("packets", "packets") += 42;
        root.counter("ticks", "simulated ps") += 5;
    }
};

size_t count_of(const std::string& s, char c) {
    size_t n = 0;
    for (char x : s) n += x == c;
    return n;
}

}  // namespace

TEST_CASE("stats.json holds run metadata, parameters and the statistics tree", "[stats-output]") {
    Tree t;
    const std::string json = stats_json(t.root, {{"platform", "platforms/x86.ini"}, {"seed", "1"}},
                                        {{"system.iommu0.walkers", "4"}});
    const std::string expected = R"({
  "run": {
    "platform": "platforms/x86.ini",
    "seed": "1"
  },
  "params": {
    "system.iommu0.walkers": "4"
  },
  "system": {
    "ticks": 5,
    "iommu0": {
      "translations": 1000,
      "faults": 3,
      "miss_latency": {
        "unit": "ns",
        "count": 100,
        "sum": 5050,
        "mean": 50.5,
        "min": 1,
        "p50": 50,
        "p90": 90,
        "p99": 99,
        "p99.9": 100,
        "max": 100
      },
      "iotlb": {
        "hits": 900,
        "misses": 100
      }
    },
    "nic0": {
      "packets": 42
    }
  }
}
)";
    CHECK(json == expected);
    Tree again;
    CHECK(stats_json(again.root, {{"platform", "platforms/x86.ini"}, {"seed", "1"}},
                     {{"system.iommu0.walkers", "4"}}) == json);
}

TEST_CASE("stats.json edge cases", "[stats-output]") {
    StatGroup empty{""};
    CHECK(stats_json(empty) == "{\n  \"run\": {},\n  \"params\": {}\n}\n");
    StatGroup unnamed{""};
    unnamed.counter("a", "") += 1;
    CHECK(stats_json(unnamed, {{"q\"\n", "\\"}}) ==
          "{\n  \"run\": {\n    \"q\\\"\\n\": \"\\\\\"\n  },\n  \"params\": {},\n  \"a\": "
          "1\n}\n");
    StatGroup clash{""};
    clash.child("run");
    CHECK_THROWS_AS(stats_json(clash), std::invalid_argument);
    CHECK_THROWS_AS(stats_json(StatGroup{"params"}), std::invalid_argument);
    CHECK_THROWS_AS(stats_json(empty, {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
}

TEST_CASE("CSV flattens every statistic into one row in registration order", "[stats-output]") {
    Tree t;
    const Metadata extra{{"iotlb_entries", "64"}, {"label", "a,\"b\""}};
    const std::string header = csv_header(t.root, extra);
    const std::string row = csv_row(t.root, extra);
    CHECK(header ==
          "iotlb_entries,label,system.ticks,system.iommu0.translations,system.iommu0.faults,"
          "system.iommu0.miss_latency.count,system.iommu0.miss_latency.mean,"
          "system.iommu0.miss_latency.p50,system.iommu0.miss_latency.p90,"
          "system.iommu0.miss_latency.p99,system.iommu0.miss_latency.p99.9,"
          "system.iommu0.miss_latency.max,system.iommu0.iotlb.hits,system.iommu0.iotlb.misses,"
          "system.nic0.packets\n");
    CHECK(row == "64,\"a,\"\"b\"\"\",5,1000,3,100,50.500,50,90,99,100,100,900,100,42\n");
    CHECK(csv_columns(t.root, extra).size() == count_of(header, ',') + 1);
    // Same tree, same bytes; rows of a sweep share the header.
    Tree again;
    CHECK(csv_header(again.root, extra) == header);
    CHECK(csv_row(again.root, extra) == row);
    again.root.child("iommu0").child("iotlb").counter("hits", "") += 1;
    CHECK(csv_header(again.root, extra) == header);
    CHECK(csv_row(again.root, extra) != row);
}

TEST_CASE("Summary table: aligned statistics, groups and derived values", "[stats-output]") {
    Tree t;
    const std::string s = summary_table(
        t.root, {"system.iommu0.translations", SummaryLine::value("IOTLB hit rate", "90.0", "%"),
                 "system.iommu0.miss_latency", "system.iommu0.iotlb"});
    const std::string expected =
        "statistic                   value    mean  p50  p90  p99  p99.9  max  unit\n"
        "system.iommu0.translations   1000\n"
        "IOTLB hit rate               90.0                                     %\n"
        "system.iommu0.miss_latency    100  50.500   50   90   99    100  100  ns\n"
        "system.iommu0.iotlb.hits      900\n"
        "system.iommu0.iotlb.misses    100\n";
    CHECK(s == expected);
    // Counters only: no percentile or unit columns.
    SummaryLine labelled("system.nic0.packets");
    labelled.label = "packets";
    CHECK(summary_table(t.root, {labelled, "system.ticks"}) ==
          "statistic     value\npackets          42\nsystem.ticks      5\n");
    try {
        summary_table(t.root, {"system.iommu0.iotlb.hit"});
        FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) ==
              "summary: no statistic or group 'system.iommu0.iotlb.hit'; closest: "
              "system.iommu0.iotlb.hits, system.iommu0.iotlb, system.iommu0.iotlb.misses");
    }
}

TEST_CASE("find_stat and find_group resolve dotted paths", "[stats-output]") {
    Tree t;
    REQUIRE(find_group(t.root, "system") == &t.root);
    REQUIRE(find_group(t.root, "system.iommu0.iotlb") != nullptr);
    REQUIRE(find_group(t.root, "iommu0") == nullptr);
    REQUIRE(find_group(t.root, "system.") == nullptr);
    REQUIRE(find_stat(t.root, "system.iommu0.iotlb.misses")->counter->value() == 100);
    REQUIRE(find_stat(t.root, "system.ticks")->counter->value() == 5);
    REQUIRE(find_stat(t.root, "system.iommu0") == nullptr);
    REQUIRE(find_stat(t.root, "ticks") == nullptr);
    StatGroup unnamed{""};
    unnamed.counter("a", "");
    REQUIRE(find_stat(unnamed, "a") != nullptr);
}

TEST_CASE("Writing outputs to files, and failing clearly", "[stats-output]") {
    TempDir d;
    Tree t;
    const fs::path json = d.dir / "stats.json", csv = d.dir / "stats.csv";
    write_json(json.string(), t.root, {{"seed", "7"}});
    write_csv(csv.string(), t.root);
    CHECK(slurp(json) == stats_json(t.root, {{"seed", "7"}}));
    CHECK(slurp(csv) == csv_header(t.root) + csv_row(t.root));
    write_csv(csv.string(), StatGroup{"x"});  // replaces the file
    CHECK(slurp(csv) == "\n\n");
    CHECK_FALSE(fs::exists(d.dir / "stats.json.tmp"));

    const std::string missing = (d.dir / "no" / "such" / "stats.json").string();
    try {
        write_json(missing, t.root);
        FAIL("no exception");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "cannot write '" + missing + "': No such file or directory");
    }
    // A directory in the way (root may write anywhere, so permissions are not tested).
    fs::create_directories(d.dir / "adir");
    try {
        write_csv((d.dir / "adir").string(), t.root);
        FAIL("no exception");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).rfind("cannot replace '" + (d.dir / "adir").string() + "': ",
                                          0) == 0);
    }
    CHECK_FALSE(fs::exists(d.dir / "adir.tmp"));
    const std::string under_file = (json / "stats.csv").string();
    CHECK_THROWS_WITH(write_csv(under_file, t.root),
                      "cannot write '" + under_file + "': Not a directory");
}
