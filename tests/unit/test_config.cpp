// Config files and --set: syntax, provenance, precedence and every syntax error message.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/config.h"
#include "support/test_files.h"

using namespace iommusim;
using namespace iommusim::test;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system's temporary directory, removed afterwards.
struct TempDir {
    fs::path dir;
    TempDir() {
        static int n = 0;
        dir = fs::temp_directory_path() /
              ("iommusim_test_config_" + std::to_string(::getpid()) + "_" + std::to_string(++n));
        fs::create_directories(dir);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        const fs::path p = dir / name;
        std::ofstream(p, std::ios::binary) << text;
        return p.string();
    }
};

std::string value_of(const Config& c, const std::string& key) {
    const ConfigValue* v = c.find(key);
    REQUIRE(v != nullptr);
    return v->value;
}

}  // namespace

TEST_CASE("Config reads sections, keys, comments and quoted values", "[config]") {
    Config c;
    c.load_string(
        "\xEF\xBB\xBF# a platform\r\n"
        "top = 1\r\n"
        "; another comment\n"
        "\n"
        "[system.iommu0]\n"
        "  walkers   =  8   # inline comment\n"
        "iotlb.entries=128 ; also a comment\n"
        "label = a#b\n"
        "quoted = \"  x # y ; z \"  # comment\n"
        "empty =\n"
        "[ system.nic0 ]   # section comment\n"
        "rings = 4\n",
        "plat.ini");
    REQUIRE(value_of(c, "top") == "1");
    REQUIRE(value_of(c, "system.iommu0.walkers") == "8");
    REQUIRE(value_of(c, "system.iommu0.iotlb.entries") == "128");
    REQUIRE(value_of(c, "system.iommu0.label") == "a#b");
    REQUIRE(value_of(c, "system.iommu0.quoted") == "  x # y ; z ");
    REQUIRE(value_of(c, "system.iommu0.empty").empty());
    REQUIRE(value_of(c, "system.nic0.rings") == "4");
    REQUIRE(c.values().size() == 7);
    REQUIRE(c.find("system.iommu0.walkers")->origin.str() == "plat.ini:6");
    REQUIRE(c.where("system.nic0.rings") == "plat.ini:12: system.nic0.rings");
    REQUIRE(c.where("absent") == "absent");
    REQUIRE_FALSE(c.has("walkers"));
}

TEST_CASE("Later files override earlier ones and --set overrides every file", "[config]") {
    TempDir t;
    const std::string a = t.write("a.ini", "[s]\nx = 1\ny = 2\nz = 3\n");
    const std::string b = t.write("b.ini", "[s]\ny = 20\nw = 40\n");
    Config c = Config::load({a, b}, {"s.z=300", "s.z = 301", "s.v=5"});
    REQUIRE(value_of(c, "s.x") == "1");
    REQUIRE(value_of(c, "s.y") == "20");
    REQUIRE(value_of(c, "s.z") == "301");  // the last --set wins
    REQUIRE(c.find("s.x")->origin.str() == a + ":2");
    REQUIRE(c.find("s.y")->origin.str() == b + ":2");
    REQUIRE(c.find("s.z")->origin.str() == "--set");
    // A key keeps the place where it was first given.
    std::vector<std::string> keys;
    for (const auto& v : c.values()) keys.push_back(v.key);
    REQUIRE(keys == std::vector<std::string>{"s.x", "s.y", "s.z", "s.w", "s.v"});
}

TEST_CASE("Config syntax errors name file and line, all together", "[config]") {
    TempDir t;
    const std::string p = t.write("bad.ini",
                                  "[system.iommu0]\n"   // 1
                                  "walkers = 4\n"       // 2
                                  "walkers 8\n"         // 3: missing '='
                                  "[system.nic0\n"      // 4: unterminated section
                                  "ignored = 1\n"       // 5: under a bad header: skipped
                                  "[]\n"                // 6
                                  "[a..b]\n"            // 7
                                  "[a b]\n"             // 8
                                  "[ok] trailing\n"     // 9
                                  "[system.iommu0]\n"   // 10
                                  "walkers = 6\n"       // 11: duplicate of line 2
                                  "= 3\n"               // 12: missing key
                                  "bad key = 1\n"       // 13
                                  "q = \"open\n"        // 14
                                  "r = \"x\" tail\n");  // 15
    const auto errs = errors_of([&] { Config::load({p}); });
    REQUIRE(errs.size() == 11);
    CHECK(errs[0] == p + ":3: expected 'key = value', '[section]' or a comment, not 'walkers 8'");
    CHECK(errs[1] == p + ":4: bad section header '[system.nic0' (expected '[name]' with a dotted "
                         "name of letters, digits, '_' and '-')");
    CHECK(errs[2].rfind(p + ":6: bad section header '[]'", 0) == 0);
    CHECK(errs[3].rfind(p + ":7: bad section header '[a..b]'", 0) == 0);
    CHECK(errs[4].rfind(p + ":8: bad section header '[a b]'", 0) == 0);
    CHECK(errs[5].rfind(p + ":9: bad section header '[ok] trailing'", 0) == 0);
    CHECK(errs[6] ==
          p + ":11: 'system.iommu0.walkers' is set twice in this file (first at line 2)");
    CHECK(errs[7] == p + ":12: missing key before '='");
    CHECK(errs[8] == p + ":13: bad key 'bad key' (expected a dotted name of letters, digits, '_' "
                         "and '-')");
    CHECK(errs[9].rfind(p + ":14: system.iommu0.q: bad quoted value '\"open", 0) == 0);
    CHECK(errs[10].rfind(p + ":15: system.iommu0.r: bad quoted value '\"x\" tail", 0) == 0);
}

TEST_CASE("Config reports unreadable files and bad --set, after collecting all", "[config]") {
    TempDir t;
    const std::string missing = (t.dir / "missing.ini").string();
    const std::string bad = t.write("bad.ini", "[x]\ny\n");
    const auto errs = errors_of([&] { Config::load({missing, bad}, {"novalue", "a..b=1", "=2"}); });
    REQUIRE(errs.size() == 5);
    CHECK(errs[0] == "cannot read config file '" + missing + "': No such file or directory");
    CHECK(errs[1].rfind(bad + ":2: expected 'key = value'", 0) == 0);
    CHECK(errs[2] ==
          "--set: 'novalue' should be key=value with the key a dotted name of "
          "letters, digits, '_' and '-'");
    CHECK(errs[3].rfind("--set: 'a..b=1' should be key=value", 0) == 0);
    CHECK(errs[4].rfind("--set: '=2' should be key=value", 0) == 0);
    // what() holds every message, one a line.
    try {
        Config::load({missing}, {"novalue"});
    } catch (const ConfigError& e) {
        CHECK(std::string(e.what()) == errs[0] + "\n" + errs[2]);
    }
    // A directory is not a readable config file either.
    REQUIRE(errors_of([&] {
                Config c;
                c.load_file(t.dir.string());
            }).size() == 1);
}

TEST_CASE("A key may repeat across files but not within one", "[config]") {
    Config c;
    c.load_string("[s]\nk = 1\n", "one.ini");
    c.load_string("s.k = 2\n", "two.ini");  // same key, other file: an override
    REQUIRE(value_of(c, "s.k") == "2");
    const auto errs =
        errors_of([&] { c.load_string("[s]\nk = 1\n[t]\nt = 1\n[s]\nk = 3\n", "x.ini"); });
    REQUIRE(errs ==
            std::vector<std::string>{"x.ini:6: 's.k' is set twice in this file (first at line 2)"});
    REQUIRE(value_of(c, "s.k") == "2");  // a failed load changes nothing
    REQUIRE_FALSE(c.has("t.t"));
}

TEST_CASE("Platform keys: get_string, get_list, keys_under and unused", "[config]") {
    Config c;
    c.load_string(
        "[system]\ndevices = nic0, nvme0,, dma0 \nroot_complexes = 1\n"
        "[system.nic0]\nkind = nic\n[system.nvme0]\nkind = nvme\n[systemx]\nfoo = 1\n",
        "p.ini");
    c.set("system.nic0.rings=8");
    REQUIRE(c.get_list("system.devices") == std::vector<std::string>{"nic0", "nvme0", "dma0"});
    REQUIRE(c.get_list("system.absent").empty());
    REQUIRE(c.get_string("system.nic0.kind") == "nic");
    REQUIRE_FALSE(c.get_string("system.other").has_value());
    REQUIRE(c.keys_under("system.nic0") ==
            std::vector<std::string>{"system.nic0.kind", "system.nic0.rings"});
    REQUIRE(c.keys_under("system").size() == 5);  // not systemx.foo
    c.mark_used("system.root_complexes");
    std::vector<std::string> unused;
    for (const ConfigValue* v : c.unused()) unused.push_back(v->key);
    REQUIRE(unused ==
            std::vector<std::string>{"system.nvme0.kind", "systemx.foo", "system.nic0.rings"});
    // Keys that were read count as known even when absent (for suggestions).
    REQUIRE(c.known_keys() == std::vector<std::string>{"system.devices", "system.absent",
                                                       "system.nic0.kind", "system.other",
                                                       "system.root_complexes"});
}

TEST_CASE("Edit distance counts a swapped pair as one edit", "[config]") {
    REQUIRE(edit_distance("", "") == 0);
    REQUIRE(edit_distance("abc", "") == 3);
    REQUIRE(edit_distance("entries", "entires") == 1);
    REQUIRE(edit_distance("walkers", "walkrs") == 1);
    REQUIRE(edit_distance("kitten", "sitting") == 3);
}
