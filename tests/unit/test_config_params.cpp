// ParamRegistry: binding visit() declarations, parsing values by type, range checks, unknown
// and unused keys with suggestions, all-or-nothing apply, and the `iommusim params` listing.
#include <catch2/catch.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/config.h"
#include "iommu/unit_params.h"
#include "support/test_files.h"

using namespace iommusim;
using namespace iommusim::test;

namespace {

enum class Mode : uint8_t { Fast, Exact };

}  // namespace

namespace iommusim {
template <>
struct EnumParam<Mode> {
    static std::optional<Mode> parse(std::string_view s) {
        if (s == "fast") return Mode::Fast;
        if (s == "exact" || s == "precise") return Mode::Exact;
        return std::nullopt;
    }
    static std::string name(Mode m) { return m == Mode::Fast ? "fast" : "exact"; }
    static std::vector<Mode> values() { return {Mode::Fast, Mode::Exact}; }
};
}  // namespace iommusim

namespace {

struct DevParams {
    uint32_t entries = 64;
    uint64_t buffer = 4096;
    uint64_t rate = 1000;
    int32_t skew = -2;
    bool enabled = false;
    Replacement policy = Replacement::LRU;
    double llc_fraction = 0.5;
    std::string label = "nic";
    Mode mode = Mode::Fast;
    uint16_t tags = 32;

    template <typename V>
    void visit(V&& v) {
        v("entries", entries, "entries", "cache entries", 1, 1 << 20);
        v("buffer", buffer, "bytes", "buffer size", 0, uint64_t(1) << 40);
        v("rate", rate, "bit/s", "line rate", 1, UINT64_MAX);
        v("skew", skew, "ns", "clock skew", -100, 100);
        v("enabled", enabled, "", "device present", 0, 1);
        v("cache.policy", policy, "", "replacement", 0, 3);
        v("llc_fraction", llc_fraction, "", "walks hitting the LLC", 0.0, 1.0);
        v("label", label, "", "name in reports", 0, 0);
        v("mode", mode, "", "model precision", 0, 1);
        v("tags", tags, "tags", "outstanding reads", 1, 1 << 20);  // bound above uint16_t
    }
};

Config config(const std::string& text) {
    Config c;
    c.load_string(text, "t.ini");
    return c;
}

}  // namespace

TEST_CASE("apply parses every parameter type", "[config]") {
    DevParams p;
    ParamRegistry r;
    r.bind("sys.dev", p);
    Config c = config(
        "[sys.dev]\nentries = 4Ki\nbuffer = 2M\nrate = 200G\nskew = -0x10\nenabled = YES\n"
        "cache.policy = plru\nllc_fraction = 0.25\nlabel = nic 0\nmode = precise\ntags = 1_000\n");
    r.apply(c);
    CHECK(p.entries == 4096);
    CHECK(p.buffer == 2 * 1024 * 1024);  // bytes: K/M/G are binary
    CHECK(p.rate == 200000000000);       // other units: K/M/G are decimal
    CHECK(p.skew == -16);
    CHECK(p.enabled);
    CHECK(p.policy == Replacement::TreePLRU);
    CHECK(p.llc_fraction == 0.25);
    CHECK(p.label == "nic 0");
    CHECK(p.mode == Mode::Exact);
    CHECK(p.tags == 1000);
    for (const auto& v : c.values()) CHECK(v.used);
    REQUIRE(c.unused().empty());
}

TEST_CASE("Integer and boolean spellings", "[config]") {
    DevParams p;
    ParamRegistry r;
    r.bind("d", p);
    auto set = [&](const std::string& key, const std::string& text) {
        Config c;
        c.set("d." + key + "=" + text);
        r.apply(c);
    };
    set("rate", "0x1F");
    CHECK(p.rate == 31);
    set("rate", "0b101");
    CHECK(p.rate == 5);
    set("rate", "010");  // not octal
    CHECK(p.rate == 10);
    set("rate", "3k");
    CHECK(p.rate == 3000);
    set("rate", "2Ki");
    CHECK(p.rate == 2048);
    set("rate", "1T");
    CHECK(p.rate == 1000000000000);
    set("buffer", "1Ti");
    CHECK(p.buffer == uint64_t(1) << 40);
    set("buffer", "64K");
    CHECK(p.buffer == 65536);
    set("llc_fraction", "1e-1");
    CHECK(p.llc_fraction == 0.1);
    for (const char* t : {"true", "1", "yes", "on", "TRUE", "On"}) {
        set("enabled", "false");
        set("enabled", t);
        CHECK(p.enabled);
    }
    for (const char* f : {"false", "0", "no", "off", "No"}) {
        set("enabled", "true");
        set("enabled", f);
        CHECK_FALSE(p.enabled);
    }
}

TEST_CASE("Value errors name file, line, key and what was expected", "[config]") {
    DevParams p;
    ParamRegistry r;
    r.bind("sys.dev", p);
    Config c = config(
        "[sys.dev]\n"
        "entries = four\n"      // 2
        "buffer = 2Ti\n"        // 3
        "rate = 0\n"            // 4
        "skew = 101\n"          // 5
        "enabled = maybe\n"     // 6
        "cache.policy = lfu\n"  // 7
        "llc_fraction = 1.5\n"  // 8
        "mode = slow\n"         // 9
        "tags = 70000\n");      // 10
    c.set("sys.dev.rate=-1");
    const auto errs = errors_of([&] { r.apply(c); });
    REQUIRE(errs.size() == 9);
    CHECK(errs[0] ==
          "t.ini:2: sys.dev.entries: 'four' is not an integer (expected an integer in "
          "1..1Mi; e.g. 4096, 0x1000, 4Ki)");
    CHECK(errs[1] ==
          "t.ini:3: sys.dev.buffer: '2Ti' (2199023255552) is out of range (expected an "
          "integer in 0..1Ti)");
    CHECK(errs[2] ==
          "--set: sys.dev.rate: '-1' is not a non-negative integer (expected an "
          "integer in 1..18446744073709551615)");
    CHECK(errs[3] ==
          "t.ini:5: sys.dev.skew: 101 is out of range (expected an integer in -100..100)");
    CHECK(errs[4] ==
          "t.ini:6: sys.dev.enabled: 'maybe' is not a boolean (expected true/false, "
          "yes/no, on/off or 1/0)");
    CHECK(errs[5] == "t.ini:7: sys.dev.cache.policy: 'lfu' is not one of: lru, plru, fifo, random");
    CHECK(errs[6] ==
          "t.ini:8: sys.dev.llc_fraction: 1.5 is out of range (expected a number in "
          "0..1)");
    CHECK(errs[7] == "t.ini:9: sys.dev.mode: 'slow' is not one of: fast, exact");
    CHECK(errs[8] ==
          "t.ini:10: sys.dev.tags: 70000 is out of range (expected an integer in "
          "1..65535)");
    // Nothing was assigned, not even the valid values.
    CHECK(p.entries == 64);
    CHECK(p.rate == 1000);
}

TEST_CASE("Malformed numbers", "[config]") {
    DevParams p;
    ParamRegistry r;
    r.bind("d", p);
    auto error = [&](const std::string& key, const std::string& text) {
        Config c;
        c.set("d." + key + "=" + text);
        const auto errs = errors_of([&] { r.apply(c); });
        REQUIRE(errs.size() == 1);
        return errs[0];
    };
    CHECK(error("rate", "4KB") ==
          "--set: d.rate: '4KB' has an unknown multiplier 'KB' (expected K, M, G, T (powers of "
          "1000) or Ki, Mi, Gi, Ti (powers of 1024))");
    CHECK(error("buffer", "4x").find("(powers of 1024)") != std::string::npos);
    CHECK(error("rate", "").rfind("--set: d.rate: '' is not an integer", 0) == 0);
    CHECK(error("rate", "1_").rfind("--set: d.rate: '1_' is not an integer", 0) == 0);
    CHECK(error("rate", "_1").rfind("--set: d.rate: '_1' is not an integer", 0) == 0);
    CHECK(error("rate", "99999999999999999999").find("is too large") != std::string::npos);
    CHECK(error("rate", "20000000Ti").find("is too large") != std::string::npos);
    CHECK(error("skew", "-")
              .rfind("--set: d.skew: '-' is not an integer (expected an integer in "
                     "-100..100",
                     0) == 0);
    CHECK(error("skew", "-101") ==
          "--set: d.skew: -101 is out of range (expected an integer in -100..100)");
    CHECK(error("skew", "-9223372036854775809").find("is too large") != std::string::npos);
    CHECK(error("entries", "4Gi") ==
          "--set: d.entries: '4Gi' (4294967296) is out of range "
          "(expected an integer in 1..1Mi)");
    CHECK(error("llc_fraction", "nan").find("is not a number") != std::string::npos);
    CHECK(error("llc_fraction", "0.5x").find("unknown multiplier 'x'") != std::string::npos);
}

TEST_CASE("Unknown keys name the closest valid keys", "[config]") {
    UnitParams u0, u1;
    ParamRegistry r;
    r.bind("system.iommu0", u0);
    r.bind("system.iommu1", u1);
    Config c = config(
        "[system.iommu0]\n"
        "walkrs = 8\n"           // 2: typo
        "entries = 128\n"        // 3: belongs one section deeper
        "iotlb.entires = 128\n"  // 4: transposition
        "[system.iommu2]\n"
        "walkers = 2\n"  // 6: no such unit
        "[system.iommu1]\n"
        "walkers = 16\n");  // 8: fine
    const auto errs = errors_of([&] { r.apply(c); });
    REQUIRE(errs.size() == 4);
    CHECK(errs[0] ==
          "t.ini:2: unknown key 'system.iommu0.walkrs'; closest valid keys: "
          "system.iommu0.walkers, system.iommu1.walkers, system.iommu0.walk_step_cycles");
    CHECK(errs[1].rfind("t.ini:3: unknown key 'system.iommu0.entries'; closest valid keys: "
                        "system.iommu0.iotlb.entries, ",
                        0) == 0);
    CHECK(errs[2].rfind("t.ini:4: unknown key 'system.iommu0.iotlb.entires'; closest valid keys: "
                        "system.iommu0.iotlb.entries, ",
                        0) == 0);
    CHECK(errs[3].rfind("t.ini:6: unknown key 'system.iommu2.walkers'; closest valid keys: "
                        "system.iommu0.walkers, system.iommu1.walkers",
                        0) == 0);
    CHECK(u1.walkers == 4);  // the valid line was not applied either
    const auto near = r.closest("system.iommu0.walkrs", 1);
    REQUIRE(near == std::vector<std::string>{"system.iommu0.walkers"});
}

TEST_CASE("Keys read by the assembly are neither unknown nor unused", "[config]") {
    UnitParams u;
    ParamRegistry r;
    r.bind("system.iommu0", u);
    Config c = config(
        "[system]\n"
        "devices = nic0\n"  // 2: read by the assembly
        "device = nic1\n"   // 3: typo of a key the assembly reads
        "[system.iommu0]\n"
        "walkers = 2\n"  // 5
        "[system.nic0]\n"
        "rings = 4\n");  // 7: nobody binds nic0 here
    REQUIRE(c.get_list("system.devices") == std::vector<std::string>{"nic0"});
    r.apply(c, ParamRegistry::Unknown::Ignore);
    CHECK(u.walkers == 2);
    const auto errs = errors_of([&] { r.check_unused(c); });
    REQUIRE(errs.size() == 2);
    CHECK(errs[0].rfind("t.ini:3: nothing uses key 'system.device'; closest valid keys: "
                        "system.devices",
                        0) == 0);
    CHECK(errs[1].rfind("t.ini:7: nothing uses key 'system.nic0.rings'; closest valid keys: ", 0) ==
          0);
    // With Unknown::Error the same keys fail apply itself, and the read key does not.
    const auto strict = errors_of([&] { r.apply(c); });
    REQUIRE(strict.size() == 2);
    CHECK(strict[0].rfind("t.ini:3: unknown key 'system.device'; closest valid keys: "
                          "system.devices",
                          0) == 0);
}

TEST_CASE("list, values and the params table", "[config]") {
    DevParams p;
    p.entries = 128;  // the value at bind time is the documented default
    ParamRegistry r;
    r.bind("sys.dev", p);
    const auto list = r.list();
    REQUIRE(list.size() == 10);
    CHECK(list[0].name == "sys.dev.entries");
    CHECK(list[0].type == ParamType::Unsigned);
    CHECK(list[0].default_text == "128");
    CHECK(list[0].unit == "entries");
    CHECK(list[0].doc == "cache entries");
    CHECK(list[0].range == "1..1Mi");
    CHECK(list[1].range == "0..1Ti");
    CHECK(list[3].range == "-100..100");
    CHECK(list[3].default_text == "-2");
    CHECK(list[4].range == "true/false");
    CHECK(list[5].range == "lru, plru, fifo, random");
    CHECK(list[5].type == ParamType::Enum);
    CHECK(list[6].range == "0..1");
    CHECK(list[6].default_text == "0.5");
    CHECK(list[7].range.empty());
    CHECK(list[7].type == ParamType::String);
    CHECK(list[9].range == "1..65535");
    CHECK(std::string(to_string(ParamType::Double)) == "real");

    Config c;
    c.set("sys.dev.cache.policy=fifo");
    r.apply(c);
    CHECK(r.value("sys.dev.cache.policy") == "fifo");
    CHECK_FALSE(r.value("sys.dev.nothing").has_value());
    CHECK(r.values()[5] ==
          std::make_pair(std::string("sys.dev.cache.policy"), std::string("fifo")));
    CHECK(r.list()[5].default_text == "lru");  // list() keeps the default

    const std::string table = params_table(list);
    // Columns line up: each value starts where its heading does.
    const size_t eol = table.find('\n');
    const std::string head = table.substr(0, eol);
    const size_t at = table.find("\nsys.dev.entries ") + 1;
    const std::string first = table.substr(at, table.find('\n', at) - at);
    CHECK(head.rfind("parameter ", 0) == 0);
    CHECK(first.find("128") == head.find("default"));
    CHECK(first.find("  entries") + 2 == head.find("unit"));
    CHECK(first.find("1..1Mi") == head.find("range"));
    CHECK(first.find("cache entries") == head.find("doc"));
    CHECK(table.find(" \n") == std::string::npos);  // no trailing blanks
    size_t lines = 0;
    for (char ch : table) lines += ch == '\n';
    CHECK(lines == list.size() + 1);
}

TEST_CASE("Registry rejects declaration mistakes", "[config]") {
    DevParams a, b;
    ParamRegistry r;
    r.bind("dev", a);
    REQUIRE(r.contains("dev.entries"));
    REQUIRE_THROWS_AS(r.bind("dev", b), std::logic_error);
    REQUIRE_THROWS_AS(r.bind("bad name", b), std::logic_error);
}

TEST_CASE("The IOMMU unit's parameters bind and apply", "[config]") {
    UnitParams u;
    ParamRegistry r;
    r.bind("system.iommu0", u);
    Config c = config(
        "[system.iommu0]\niotlb.entries = 128\niotlb.ways = 8\n"
        "iotlb.policy = random\nprefetch_next_page = on\nwalk_cache.l3_entries = 0\n");
    r.apply(c);
    CHECK(u.iotlb.entries == 128);
    CHECK(u.iotlb.ways == 8);
    CHECK(u.iotlb.policy == Replacement::Random);
    CHECK(u.prefetch_next_page);
    CHECK(u.walk_cache_entries[1] == 0);
    CHECK(r.list().size() == 25);
}
