// The canonical trace format: every record kind as its documented line, and back; files plain
// and gzip; seeded random round trips; the writer refusing what the reader would reject.
#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "support/property.h"
#include "support/test_files.h"
#include "traces/trace.h"

using namespace iommusim;
using namespace iommusim::test;
using namespace iommusim::trace;
using SK = InvalidationScope::Kind;

namespace {

// Every field, so two records compare equal exactly when their dumps do (and Catch shows both).
std::string dump(const Record& r) {
    const InvalidationScope& s = r.scope;
    return fmt::format(
        "kind={} t={} rid={:#x} pasid={:#x} priv={} exec={} iova={:#x} size={:#x} known={} "
        "pa={:#x} has_pa={} perm={} domain={} dir={} reason={:#x} | scope={} dom={} pasid={:#x} "
        "rid={:#x} addr={:#x} order={} ih={} ignore={:#x} g={}",
        int(r.kind), r.time_ns, r.req.rid, r.req.pasid, r.req.priv, r.req.exec, r.iova, r.size,
        r.size_known, r.pa, r.has_pa, int(r.perm), r.domain, int(r.dir), r.reason, int(s.kind),
        s.domain, s.pasid, s.rid, s.addr, int(s.order), s.leaf_only, s.rid_ignore, s.global);
}

const Requester kNvme = Requester::bdf(0, 2, 0);

Record rec(Kind k, uint64_t t) {
    Record r;
    r.kind = k;
    r.time_ns = t;
    r.req = kNvme;
    return r;
}

// One record of each kind and scope with the line the format documents for it.
std::vector<std::pair<Record, std::string>> examples() {
    std::vector<std::pair<Record, std::string>> out;
    Record r = rec(Kind::Map, 100);
    r.iova = 0xfffdf000, r.pa = 0x1234000, r.size = 0x1000, r.perm = kPermRW, r.domain = 1;
    out.push_back({r, "100 map 00:02.0 iova=0xfffdf000 pa=0x1234000 size=0x1000 perm=rw domain=1"});
    r = rec(Kind::Unmap, 200);
    r.req = Requester::bdf(0x3a, 0x1f, 7).with_pasid(0x1f);
    r.iova = 0xfffdf000, r.size = 0x20000, r.domain = 65535;
    out.push_back({r, "200 unmap 3a:1f.7/0x1f iova=0xfffdf000 size=0x20000 domain=65535"});
    r = rec(Kind::Dma, 300);
    r.iova = 0xfffdf010, r.size = 64, r.dir = Dir::Read, r.has_pa = true, r.pa = 0x1234010;
    out.push_back({r, "300 dma 00:02.0 iova=0xfffdf010 size=64 dir=r pa=0x1234010"});
    r = rec(Kind::Dma, 300);
    r.iova = 0x1000, r.size_known = false;
    out.push_back({r, "300 dma 00:02.0 iova=0x1000 size=? dir=?"});
    r = rec(Kind::Dma, 301);
    r.req = kNvme.with_pasid(5, true), r.req.exec = true, r.iova = 0x2000, r.size = 4096,
    r.dir = Dir::Write;
    out.push_back({r, "301 dma 00:02.0/0x5 iova=0x2000 size=4096 dir=w priv=1 exec=1"});
    r = rec(Kind::Fault, 400);
    r.iova = 0xdead000, r.reason = 0x5, r.dir = Dir::Write;
    out.push_back({r, "400 fault 00:02.0 iova=0xdead000 reason=0x5 dir=w"});
    r = rec(Kind::Fault, 401);
    r.iova = 0, r.reason = 0xffff;
    out.push_back({r, "401 fault 00:02.0 iova=0x0 reason=0xffff"});

    auto inval = [&](SK k, const std::string& tail, auto&& set) {
        Record v = rec(Kind::Invalidate, 500);
        v.req = Requester{};
        v.scope.kind = k;
        set(v.scope);
        v.domain = v.scope.domain;
        out.push_back({v, "500 inval " + std::string(to_string(k)) + tail});
    };
    auto none = [](InvalidationScope&) {};
    inval(SK::Global, " domain=0", none);
    inval(SK::Domain, " domain=4", [](auto& s) { s.domain = 4; });
    inval(SK::Page, " domain=4 addr=0xfffdf000 order=0 ih=1",
          [](auto& s) { s.domain = 4, s.addr = 0xfffdf000, s.leaf_only = true; });
    inval(SK::Page, " domain=* addr=0x0 order=52",
          [](auto& s) { s.domain = InvalidationScope::kAllDomains, s.order = 52; });
    inval(SK::Pasid, " domain=2 pasid=0x7", [](auto& s) { s.domain = 2, s.pasid = 7; });
    inval(SK::PasidPage, " domain=2 pasid=0xfffff addr=0x10000 order=4", [](auto& s) {
        s.domain = 2, s.pasid = Requester::kPasidMax, s.addr = 0x10000, s.order = 4;
    });
    inval(SK::ContextGlobal, " domain=0", none);
    inval(SK::ContextDomain, " domain=9", [](auto& s) { s.domain = 9; });
    inval(SK::ContextDevice, " domain=9 rid=00:03.0 rid-ignore=0x7",
          [](auto& s) { s.domain = 9, s.rid = 0x18, s.rid_ignore = 7; });
    inval(SK::PasidCache, " domain=* pasid=*", [](auto& s) {
        s.domain = InvalidationScope::kAllDomains, s.pasid = InvalidationScope::kAllPasids;
    });
    inval(SK::DeviceTlb, " domain=0 pasid=0x3 addr=0x7000 order=1 rid=00:02.0 g=1", [](auto& s) {
        s.rid = 0x10, s.pasid = 3, s.addr = 0x7000, s.order = 1, s.global = true;
    });
    inval(SK::Wait, " domain=0", none);
    return out;
}

Record random_record(test::Rng& g, uint64_t t) {
    Record r;
    r.time_ns = t;
    r.kind = Kind(g.below(5));
    auto addr = [&] { return g.chance(60) ? g.below(1u << 24) << 12 : g.g(); };
    auto size = [&] { return g.chance(60) ? Addr(4096) << g.below(10) : g.g(); };
    if (r.kind != Kind::Invalidate) {
        r.req = Requester::bdf(unsigned(g.below(256)), unsigned(g.below(32)), unsigned(g.below(8)));
        if (g.chance(30)) r.req.pasid = uint32_t(g.below(Requester::kPasidMax + 1));
        r.req.priv = g.chance(10), r.req.exec = g.chance(10);
        r.iova = addr();
    }
    const auto domain = [&] {
        return g.chance(5) ? InvalidationScope::kAllDomains : uint32_t(g.g());
    };
    switch (r.kind) {
        case Kind::Map:
            r.pa = addr(), r.size = size(), r.perm = Perm(g.below(8)), r.domain = domain();
            break;
        case Kind::Unmap: r.size = size(), r.domain = domain(); break;
        case Kind::Dma:
            r.size_known = !g.chance(20);
            r.size = r.size_known ? (g.chance(80) ? g.below(8193) : g.g()) : 0;
            r.dir = Dir(g.below(3));
            r.has_pa = g.chance(50);
            r.pa = r.has_pa ? addr() : 0;
            break;
        case Kind::Fault: r.reason = uint16_t(g.g()), r.dir = Dir(g.below(3)); break;
        case Kind::Invalidate: {
            InvalidationScope& s = r.scope;
            s.kind = SK(g.below(unsigned(SK::Wait) + 1));
            s.domain = r.domain = g.chance(50) ? domain() : 0;
            const bool pasid_scope =
                s.kind == SK::Pasid || s.kind == SK::PasidPage || s.kind == SK::PasidCache;
            if (pasid_scope || g.chance(20))
                s.pasid = g.chance(10) ? InvalidationScope::kAllPasids
                                       : uint32_t(g.below(Requester::kPasidMax + 1));
            if (g.chance(50)) s.addr = addr(), s.order = uint8_t(g.below(53));
            if (g.chance(50)) s.rid = uint16_t(g.g());
            if (g.chance(20)) s.rid_ignore = uint16_t(g.g());
            s.leaf_only = g.chance(30), s.global = g.chance(30);
            break;
        }
    }
    return r;
}

std::vector<Record> read_all(const std::string& path, std::vector<ParseError>* errors = nullptr) {
    Reader in(path);
    std::vector<Record> out;
    Record r;
    while (in.next(r)) out.push_back(r);
    if (errors) *errors = in.errors();
    return out;
}

std::string head(const std::string& path, size_t n) {
    std::ifstream f(path, std::ios::binary);
    std::string s(n, '\0');
    f.read(&s[0], std::streamsize(n));
    s.resize(size_t(f.gcount()));
    return s;
}

}  // namespace

TEST_CASE("trace lines of every record kind and scope", "[trace]") {
    for (const auto& [r, line] : examples()) {
        INFO(line);
        CHECK(format(r) == line);
        Record back;
        std::string why;
        REQUIRE(parse(line, back, &why));
        CHECK(dump(back) == dump(r));
    }
}

TEST_CASE("trace parser accepts the documented alternative spellings", "[trace]") {
    Record r;
    std::string why;
    auto same = [&](const std::string& a, const std::string& b) {
        INFO(a << " vs " << b);
        Record ra, rb;
        REQUIRE(parse(a, ra, &why));
        REQUIRE(parse(b, rb, &why));
        CHECK(dump(ra) == dump(rb));
    };
    // Sizes hex or decimal, fields in any order, runs of blanks and tabs, CRLF, trailing blanks.
    same("1 map 00:02.0 iova=0x1000 pa=0x2000 size=0x1000 perm=rw domain=1",
         "1\tmap  00:02.0 domain=1 perm=rw size=4096   pa=0x2000 iova=0x1000 \r");
    same("2 dma 00:02.0 iova=0x10 size=64 dir=r", "2 dma 00:02.0 iova=0X10 size=0x40 dir=r\n");
    // PASID with or without 0x, hex digits in either case.
    same("3 dma 0a:1f.3/0x1F iova=0xAB size=1 dir=w", "3 dma 0A:1F.3/1f iova=0xab size=1 dir=w");
    same("4 fault 00:02.0 iova=0x1 reason=0x1 dir=?", "4 fault 00:02.0 iova=0x1 reason=0x1");
    REQUIRE(parse("5 map 00:02.0 iova=0x0 pa=0x0 size=0x1000 perm=rwx domain=0", r, &why));
    CHECK(r.perm == (kPermRW | kPermX));
    REQUIRE(parse("5 map 00:02.0 iova=0x0 pa=0x0 size=0x1000 perm=- domain=0", r, &why));
    CHECK(r.perm == kPermNone);
    REQUIRE(parse("6 inval global", r, &why));
    CHECK(r.scope.kind == SK::Global);
    REQUIRE(
        parse("18446744073709551615 dma ff:1f.7 iova=0xffffffffffffffff size=? dir=?", r, &why));
    CHECK(r.time_ns == ~uint64_t(0));
    CHECK(r.iova == ~uint64_t(0));
    CHECK(r.req.rid == 0xffff);
}

TEST_CASE("trace files round trip every record kind, plain and gzip", "[trace]") {
    const auto ex = examples();
    for (const char* suffix : {".trace", ".trace.gz"}) {
        INFO(suffix);
        TempPath tmp(suffix);
        {
            Writer w(tmp.path, "made by the unit tests\nsecond line");
            uint64_t t = 0;
            for (auto [r, line] : ex) {
                r.time_ns = t += 10;  // the examples' own times are not in order
                w.write(r);
                if (t == 30) w.comment("a comment in the middle");
            }
            w.close();
            CHECK(w.records() == ex.size());
        }
        const std::string magic = head(tmp.path, 2);
        if (std::string(suffix) == ".trace.gz")
            CHECK(magic == "\x1f\x8b");
        else
            CHECK(head(tmp.path, 100)
                      .rfind("#iommusim-trace 1 time=ns\n# made by the unit "
                             "tests\n# second line\n",
                             0) == 0);
        std::vector<ParseError> errors;
        const auto back = read_all(tmp.path, &errors);
        CHECK(errors.empty());
        REQUIRE(back.size() == ex.size());
        uint64_t t = 0;
        for (size_t i = 0; i < ex.size(); ++i) {
            Record want = ex[i].first;
            want.time_ns = t += 10;
            CHECK(dump(back[i]) == dump(want));
        }
    }
}

TEST_CASE("seeded random trace records round trip through lines and files", "[trace]") {
    const uint64_t seed = GENERATE(1, 2, 3);
    test::Rng g(seed);
    INFO("seed " << seed);
    std::vector<Record> recs;
    uint64_t t = 0;
    for (uint64_t i = 0; i < test::scaled(20000); ++i) {
        t += g.chance(50) ? 0 : g.below(1000);
        recs.push_back(random_record(g, t));
        const std::string line = format(recs.back());
        Record back;
        std::string why;
        INFO(line);
        REQUIRE(parse(line, back, &why));
        REQUIRE(dump(back) == dump(recs.back()));
    }
    for (const char* suffix : {".trace", ".trace.gz"}) {
        TempPath tmp(suffix);
        Writer w(tmp.path);
        for (const Record& r : recs) w.write(r);
        w.close();
        const auto back = read_all(tmp.path);
        REQUIRE(back.size() == recs.size());
        for (size_t i = 0; i < recs.size(); ++i) REQUIRE(dump(back[i]) == dump(recs[i]));
    }
}

TEST_CASE("trace writer refuses what the reader would reject", "[trace]") {
    TempPath tmp(".trace");
    Writer w(tmp.path);
    w.write(rec(Kind::Dma, 10));
    CHECK_THROWS_WITH(w.write(rec(Kind::Dma, 9)), Catch::Contains("time order"));
    Record r = rec(Kind::Dma, 10);
    r.req.pasid = Requester::kPasidMax + 1;
    CHECK_THROWS_AS(w.write(r), std::invalid_argument);
    r = rec(Kind::Invalidate, 10);
    r.scope.kind = SK::Pasid;
    CHECK_THROWS_WITH(w.write(r), Catch::Contains("pasid invalidation without a PASID"));
    CHECK_THROWS_WITH(format(r), Catch::Contains("without a PASID"));
    r.scope.kind = SK::Page, r.scope.order = 53;
    CHECK_THROWS_AS(w.write(r), std::invalid_argument);
    CHECK(w.records() == 1);
    w.close();
    w.close();  // idempotent
    CHECK_THROWS_WITH(w.write(rec(Kind::Dma, 11)), Catch::Contains("closed"));
    CHECK(read_all(tmp.path).size() == 1);

    // A full disk shows at the latest when the writer is closed.
    if (std::filesystem::exists("/dev/full")) {
        Writer full("/dev/full");
        CHECK_THROWS_WITH(
            [&] {
                for (uint64_t i = 0; i < 100000; ++i) full.write(rec(Kind::Dma, i));
                full.close();
            }(),
            Catch::Contains("cannot write trace '/dev/full'"));
    }
    CHECK_THROWS_WITH(Writer("/nonexistent-dir/x.trace"),
                      Catch::Contains("/nonexistent-dir/x.trace"));
}
