// Files that belong together are replaced together; simulated time is printed in scaled units.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/stats_output.h"

using namespace iommusim;
namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}
}  // namespace

TEST_CASE("write_files replaces every file or none", "[stats-output][errors]") {
    const fs::path d =
        fs::temp_directory_path() / ("iommusim_test_stats_files_" + std::to_string(::getpid()));
    fs::create_directories(d);
    const std::string a = (d / "stats.json").string(), b = (d / "stats.csv").string();
    write_files({{a, "old json"}, {b, "old csv"}});
    // The second file cannot be written (its folder is missing): the first keeps its old text.
    const std::string bad = (d / "missing" / "stats.csv").string();
    CHECK_THROWS_WITH(write_files({{a, "new json"}, {bad, "new csv"}}),
                      "cannot write '" + bad + "': No such file or directory");
    CHECK(slurp(a) == "old json");
    CHECK(!fs::exists(a + ".tmp"));
    write_files({{a, "new json"}, {b, "new csv"}});
    CHECK(slurp(a) == "new json");
    CHECK(slurp(b) == "new csv");
    CHECK(!fs::exists(b + ".tmp"));
    fs::remove_all(d);
}

TEST_CASE("simulated time in scaled units", "[stats-output]") {
    CHECK(format_time_ps(0) == "0 ps");
    CHECK(format_time_ps(999) == "999 ps");
    CHECK(format_time_ps(1000) == "1.000 ns");
    CHECK(format_time_ps(2'500'000) == "2.500 us");
    CHECK(format_time_ps(157'652'331'176) == "157.652 ms");
    CHECK(format_time_ps(3'000'000'000'000) == "3.000 s");
}
