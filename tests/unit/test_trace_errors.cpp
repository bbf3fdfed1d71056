// Bad traces: every parse error says what was expected, with the file and line; Stop and Skip;
// bad headers; truncated and corrupt gzip; over-long lines and binary garbage never crash.
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <utility>

#include "support/property.h"
#include "support/test_files.h"
#include "traces/trace.h"

using namespace iommusim;
using namespace iommusim::test;
using namespace iommusim::trace;

namespace {

const std::string kHead = "#iommusim-trace 1 time=ns\n";
const std::string kGood = "10 dma 00:02.0 iova=0x1000 size=64 dir=r\n";

struct Result {
    uint64_t records = 0;
    std::vector<ParseError> errors;
};

Result read(const std::string& path, Reader::OnError mode) {
    Reader in(path, mode);
    Result res;
    Record r;
    while (in.next(r)) ++res.records;
    res.errors = in.errors();
    return res;
}

}  // namespace

TEST_CASE("trace parse errors say what was expected", "[trace]") {
    const std::pair<const char*, const char*> cases[] = {
        {"", "expected time in ns (decimal), got ''"},
        {"x10 dma", "expected time in ns (decimal), got 'x10'"},
        {"-1 dma", "expected time in ns (decimal), got '-1'"},
        {"99999999999999999999 dma", "expected time in ns (decimal)"},
        {"10 mapp 00:02.0",
         "unknown record kind 'mapp' (expected map, unmap, inval, dma or fault)"},
        {"10", "unknown record kind ''"},
        {"10 dma 0:02.0 iova=0x0 size=1 dir=r",
         "expected requester BB:DD.F or BB:DD.F/<hex pasid>"},
        {"10 dma 00:20.0 iova=0x0 size=1 dir=r", "got '00:20.0'"},
        {"10 dma 00:02.8 iova=0x0 size=1 dir=r", "got '00:02.8'"},
        {"10 dma 00:02.0/100000 iova=0x0 size=1 dir=r", "got '00:02.0/100000'"},
        {"10 dma 00:02.0/ iova=0x0 size=1 dir=r", "expected requester"},
        {"10 dma 00:02.0 size=1 dir=r", "expected iova=<hex>"},
        {"10 dma 00:02.0 iova=zz size=1 dir=r", "expected iova=<hex>, got 'iova=zz'"},
        {"10 dma 00:02.0 iova=4096 size=1 dir=r", "expected iova=<hex>, got 'iova=4096'"},
        {"10 dma 00:02.0 iova=0x size=1 dir=r", "expected iova=<hex>, got 'iova=0x'"},
        {"10 dma 00:02.0 iova=0x10000000000000000 size=1 dir=r", "expected iova=<hex>"},
        {"10 dma 00:02.0 iova=0x0 dir=r", "expected size=<decimal or hex>|?"},
        {"10 dma 00:02.0 iova=0x0 size=-1 dir=r", "expected size=<decimal or hex>|?, got"},
        {"10 dma 00:02.0 iova=0x0 size=1", "expected dir=r|w|?"},
        {"10 dma 00:02.0 iova=0x0 size=1 dir=rw", "expected dir=r|w|?, got 'dir=rw'"},
        {"10 dma 00:02.0 iova=0x0 size=1 dir=r pa=1", "expected pa=<hex>, got 'pa=1'"},
        {"10 dma 00:02.0 iova=0x0 size=1 dir=r iova=0x0", "duplicate field 'iova'"},
        {"10 dma 00:02.0 iova=0x0 size=1 dir=r perm=rw",
         "unknown field 'perm' in dma record (expected iova, pa, size, dir, priv or exec)"},
        {"10 dma 00:02.0 iova=0x0 size=1 dir=r junk", "expected key=value, got 'junk'"},
        {"10 dma 00:02.0 iova=0x0 size=1 dir=r priv=yes", "expected priv=0|1"},
        {"10 map 00:02.0 iova=0x0 pa=0x0 size=? perm=rw domain=1",
         "expected size=<hex or decimal>"},
        {"10 map 00:02.0 iova=0x0 pa=0x0 size=0x1000 perm=wr domain=1", "expected perm=r|w|rw|-"},
        {"10 map 00:02.0 iova=0x0 pa=0x0 size=0x1000 perm=rw", "expected domain=<decimal>|*"},
        {"10 map 00:02.0 iova=0x0 pa=0x0 size=0x1000 perm=rw domain=4294967296",
         "expected domain=<decimal>|*, got"},
        {"10 unmap 00:02.0 iova=0x0 size=0x1000", "expected domain=<decimal>|*"},
        {"10 fault 00:02.0 iova=0x0", "expected reason=<hex>"},
        {"10 fault 00:02.0 iova=0x0 reason=0x10000", "expected reason=<hex>, got"},
        {"10 inval pag domain=1",
         "unknown invalidation scope 'pag' (expected global, domain, page, "
         "pasid, pasid-page, context-global, context-domain, "
         "context-device, pasid-cache, device-tlb, wait)"},
        {"10 inval page domain=1 addr=0x1000", "expected order=<0..52>"},
        {"10 inval page domain=1 order=1", "expected addr=<hex>"},
        {"10 inval domain addr=0x0 order=1 domain=1 rid=00:00.0 order=0",
         "duplicate field 'order'"},
        {"10 inval domain domain=1 addr=0x1000", "expected order=<0..52> with addr="},
        {"10 inval page domain=1 addr=0x1000 order=53", "expected order=<0..52>, got 'order=53'"},
        {"10 inval pasid domain=1", "expected pasid=<hex>|*"},
        {"10 inval pasid domain=1 pasid=0x100000", "expected pasid=<hex>|*, got"},
        {"10 inval context-device domain=1", "expected rid=BB:DD.F"},
        {"10 inval context-device domain=1 rid=00:02.0/0x1", "expected rid=BB:DD.F, got"},
        {"10 inval device-tlb rid=00:02.0 addr=0x0 order=0 iova=0x0",
         "unknown field 'iova' in inval record (expected domain, pasid, addr, order, rid, "
         "rid-ignore, ih or g)"},
        {"10 inval wait ih=2", "expected ih=0|1"},
        {"10 dma 00:02.0 iova=\x01\xff size=1 dir=r", "got 'iova=\\x01\\xff'"},
    };
    for (const auto& [line, msg] : cases) {
        INFO(line);
        Record r;
        std::string why;
        CHECK_FALSE(parse(line, r, &why));
        CHECK_THAT(why, Catch::Contains(msg));
        CHECK_FALSE(parse(line, r, nullptr));
    }
    // A long token is cut in the message.
    std::string why;
    Record r;
    CHECK_FALSE(parse("1 dma 00:02.0 iova=" + std::string(10000, 'z'), r, &why));
    CHECK(why.size() < 200);
}

TEST_CASE("trace reader errors name the file and line; Stop and Skip", "[trace]") {
    TempPath tmp(".trace");
    put(tmp.path, kHead + "# comment\n\n" + kGood + "11 dma 00:02.0 iova=zz size=1 dir=r\n" +
                      "12 mapp 00:02.0\n" + "5 dma 00:02.0 iova=0x0 size=1 dir=w\n" + kGood +
                      "20 dma 00:02.0 iova=0x0 size=1 dir=w");  // last line has no newline
    {
        Reader in(tmp.path);  // Stop by default
        Record r;
        CHECK(in.next(r));
        CHECK(in.line() == 4);
        CHECK_FALSE(in.next(r));
        CHECK_FALSE(in.next(r));  // stays stopped
        REQUIRE(in.errors().size() == 1);
        CHECK(in.errors()[0].file == tmp.path);
        CHECK(in.errors()[0].line == 5);
        CHECK(in.errors()[0].str() == tmp.path + ":5: expected iova=<hex>, got 'iova=zz'");
    }
    const Result skip = read(tmp.path, Reader::OnError::Skip);
    CHECK(skip.records == 3);
    REQUIRE(skip.errors.size() == 3);
    CHECK(skip.errors[1].str() == tmp.path +
                                      ":6: unknown record kind 'mapp' (expected map, unmap, "
                                      "inval, dma or fault)");
    CHECK(skip.errors[2].str() ==
          tmp.path + ":7: time goes backwards: expected time >= 10 ns, got 5");
}

TEST_CASE("trace reader rejects files that are not traces of this version", "[trace]") {
    TempPath tmp(".trace");
    auto opening = [&](const std::string& bytes) {
        put(tmp.path, bytes);
        try {
            Reader in(tmp.path);
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string("opened");
    };
    CHECK(opening("") == tmp.path + ":1: empty file, not an iommusim trace");
    CHECK_THAT(opening("10 dma 00:02.0 iova=0x0 size=1 dir=r\n"),
               Catch::StartsWith(tmp.path + ":1: not an iommusim trace (expected "
                                            "'#iommusim-trace 1 time=ns'"));
    CHECK_THAT(opening("#iommusim-trace 2 time=ns\n"),
               Catch::Contains(":1: trace format version '2' is not supported"));
    CHECK_THAT(opening("#iommusim-trace 1 time=us\n"),
               Catch::Contains(":1: unsupported trace header"));
    CHECK_THAT(opening(std::string(200000, 'x')), Catch::Contains(":1: not an iommusim trace"));
    CHECK(opening("#iommusim-trace 1 time=ns\r\n") == "opened");
    CHECK(opening("#iommusim-trace 1 time=ns") == "opened");
    CHECK_THROWS_WITH(Reader("/nonexistent/x.trace"),
                      Catch::Contains("cannot read trace '/nonexistent/x.trace'"));
    CHECK_THROWS_WITH(Reader(std::filesystem::temp_directory_path().string()),
                      Catch::Contains("cannot read trace"));
}

TEST_CASE("truncated and corrupt gzip traces end with an error, never a crash", "[trace]") {
    TempPath full(".trace.gz"), cut(".trace.gz");
    {
        Writer w(full.path);
        Record r;
        for (uint64_t i = 0; i < 20000; ++i) {
            r.time_ns = i, r.iova = i << 12, r.size = 64, r.dir = Dir::Read;
            w.write(r);
        }
        w.close();
    }
    const std::string bytes = get(full.path);
    for (size_t keep : {size_t(10), bytes.size() / 2, bytes.size() - 5}) {
        INFO("kept " << keep << " of " << bytes.size() << " bytes");
        put(cut.path, bytes.substr(0, keep));
        for (auto mode : {Reader::OnError::Stop, Reader::OnError::Skip}) {
            Result res;
            try {
                res = read(cut.path, mode);
            } catch (const std::runtime_error& e) {
                CHECK(keep == 10);  // only when the header itself is lost
                CHECK_THAT(e.what(), Catch::Contains("truncated or corrupt gzip data"));
                continue;
            }
            CHECK(res.records <= 20000);  // a cut in the trailer loses no record
            REQUIRE(res.errors.size() == 1);
            CHECK_THAT(res.errors[0].str(), Catch::Contains("truncated or corrupt gzip data"));
            CHECK(res.errors[0].line == res.records + 2);  // the first line not delivered
        }
    }
    // Flipped bytes: whatever zlib makes of them, reading ends cleanly.
    test::Rng g(7);
    for (int round = 0; round < 20; ++round) {
        std::string bad = bytes;
        for (int i = 0; i < 4; ++i) bad[20 + g.below(bad.size() - 20)] ^= char(1 + g.below(255));
        put(cut.path, bad);
        try {
            const Result res = read(cut.path, Reader::OnError::Skip);
            CHECK(res.records <= 20000);
        } catch (const std::runtime_error&) {
        }
    }
}

TEST_CASE("over-long lines and binary garbage are reported and skipped", "[trace]") {
    TempPath tmp(".trace");
    const std::string huge(1 << 20, 'a');
    put(tmp.path, kHead + kGood + huge + "\n" + kGood + huge);
    Result res = read(tmp.path, Reader::OnError::Skip);
    CHECK(res.records == 2);
    REQUIRE(res.errors.size() == 2);
    CHECK(res.errors[0].str() == tmp.path + ":3: line longer than 65536 bytes, not a trace record");
    CHECK(res.errors[1].line == 5);
    res = read(tmp.path, Reader::OnError::Stop);
    CHECK(res.records == 1);
    CHECK(res.errors.size() == 1);
    // Just over the limit, and whole in the read buffer: still refused.
    put(tmp.path, kHead + std::string(65537, 'b') + "\n" + kGood);
    res = read(tmp.path, Reader::OnError::Skip);
    CHECK(res.records == 1);
    REQUIRE(res.errors.size() == 1);
    CHECK(res.errors[0].line == 2);

    std::mt19937_64 g(11);
    for (int round = 0; round < 50; ++round) {
        std::string junk = kHead;
        const size_t n = g() % 5000;
        for (size_t i = 0; i < n; ++i) junk += char(g() % 4 ? g() % 256 : '\n');
        put(tmp.path, junk);
        res = read(tmp.path, Reader::OnError::Skip);
        for (const ParseError& e : res.errors)
            for (char c : e.what) REQUIRE((c >= 0x20 && c < 0x7f));
    }
}

TEST_CASE("a trace of garbage keeps a bounded list of errors", "[trace]") {
    TempPath tmp(".trace");
    std::string text = kHead;
    for (int i = 0; i < 1500; ++i) text += "garbage\n";
    text += kGood;
    put(tmp.path, text);
    const Result res = read(tmp.path, Reader::OnError::Skip);
    CHECK(res.records == 1);
    REQUIRE(res.errors.size() == 1001);
    CHECK(res.errors.back().line == 1501);
    CHECK(res.errors.back().what == "500 more bad lines not listed (this is the last of them)");
}
