// Volume: a million records written and read back in both formats, and (hidden, run by hand
// with "[trace-speed]") the parse rate that replay depends on.
#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "support/property.h"
#include "support/test_files.h"
#include "traces/trace.h"

using namespace iommusim;
using namespace iommusim::test;
using namespace iommusim::trace;

namespace {

// A typical replay mix: per 4 KiB page a map, a few DMAs with recorded translations, an unmap
// and its invalidation.
Record typical(uint64_t i) {
    Record r;
    r.time_ns = i * 7;
    r.req = Requester::bdf(0, 2, 0);
    const Addr page = 0xfff00000 - ((i / 8) % 4096) * 0x1000;
    switch (i % 8) {
        case 0:
            r.kind = Kind::Map, r.iova = page, r.pa = 0x10000000 + page, r.size = 0x1000,
            r.perm = kPermRW, r.domain = 1;
            break;
        case 6: r.kind = Kind::Unmap, r.iova = page, r.size = 0x1000, r.domain = 1; break;
        case 7:
            r.kind = Kind::Invalidate;
            r.scope = InvalidationScope::covering(InvalidationScope::Kind::Page, 1, page, 0x1000);
            r.domain = 1;
            break;
        default:
            r.kind = Kind::Dma, r.iova = page + (i % 8) * 64, r.size = 64,
            r.dir = i % 2 ? Dir::Read : Dir::Write, r.has_pa = true, r.pa = 0x10000000 + r.iova;
    }
    return r;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("a million-record trace is written and read back in both formats", "[trace]") {
    const uint64_t n = test::scaled(1000000);
    for (const char* suffix : {".trace", ".trace.gz"}) {
        TempPath tmp(suffix);
        const auto t0 = std::chrono::steady_clock::now();
        Writer w(tmp.path, "volume test");
        for (uint64_t i = 0; i < n; ++i) w.write(typical(i));
        w.close();
        CHECK(w.records() == n);
        const double wrote = seconds_since(t0);

        uint64_t want_checksum = 0;
        for (uint64_t i = 0; i < n; ++i) {
            const Record t = typical(i);
            want_checksum += t.iova ^ t.pa ^ t.time_ns;
        }

        const auto t1 = std::chrono::steady_clock::now();
        Reader in(tmp.path);
        Record r;
        uint64_t count = 0, dmas = 0, checksum = 0;
        while (in.next(r)) {
            ++count;
            dmas += r.kind == Kind::Dma;
            checksum += r.iova ^ r.pa ^ r.time_ns;
        }
        const double read = seconds_since(t1);
        CHECK(in.errors().empty());
        CHECK(count == n);
        CHECK(dmas == n / 8 * 5 + (n % 8 > 1 ? std::min<uint64_t>(n % 8 - 1, 5) : 0));
        CHECK(checksum == want_checksum);
        CHECK(in.line() == n + 2);  // header and source comment
        // Shown with -s: the write and read times (the whole test is meant to stay under 2 s).
        INFO(fmt::format("{}: {} records written in {:.2f} s, read in {:.2f} s ({:.1f} MB)", suffix,
                         n, wrote, read, double(std::filesystem::file_size(tmp.path)) / 1e6));
        SUCCEED();
    }
}

TEST_CASE("trace line parse rate", "[.][trace-speed]") {
    std::vector<std::string> lines;
    for (uint64_t i = 0; i < 4096; ++i) lines.push_back(format(typical(i)));
    const uint64_t n = 5000000;
    Record r;
    std::string why;
    uint64_t sum = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < n; ++i) {
        REQUIRE(parse(lines[i % lines.size()], r, &why));
        sum += r.iova;
    }
    const double s = seconds_since(t0);
    CHECK(sum != 0);
    WARN(fmt::format("parse(): {:.2f} M records/s", double(n) / s / 1e6));
}
