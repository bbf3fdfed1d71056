// Helpers shared by the unit tests: a temporary file removed at scope exit, and the errors a
// configuration call throws.
#pragma once
#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/config.h"

namespace iommusim::test {

// A fresh path in the temporary folder (per process and call), removed when it goes out of
// scope; `suffix` keeps extensions such as ".gz" that change how the file is read.
struct TempPath {
    std::string path;
    explicit TempPath(const std::string& suffix) {
        static int n = 0;
        path = (std::filesystem::temp_directory_path() /
                fmt::format("iommusim-test-{}-{}{}", getpid(), n++, suffix))
                   .string();
    }
    ~TempPath() { std::remove(path.c_str()); }
    TempPath(const TempPath&) = delete;
    TempPath& operator=(const TempPath&) = delete;
};

// Write `bytes` to `path` as they are; read a whole file back.
inline void put(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}
inline std::string get(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The errors of a ConfigError the call throws; fails the test if it does not throw one.
template <typename F>
std::vector<std::string> errors_of(F&& f) {
    try {
        f();
    } catch (const ConfigError& e) {
        return e.errors();
    }
    FAIL("no ConfigError thrown");
    return {};
}

}  // namespace iommusim::test
