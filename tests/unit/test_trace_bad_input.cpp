// Bad input to the trace reader and the importers is an error naming file:line, never a
// silently shorter or different result: gzip streams cut short or followed by garbage (several
// members are legal gzip and read as one), NUL bytes inside lines, event timestamps that are
// not numbers, and ftrace ranges that are empty, reversed or contradict themselves.
#include <unistd.h>
#include <zlib.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "support/test_files.h"
#include "traces/import_ftrace.h"
#include "traces/import_qemu.h"
#include "traces/trace.h"

using namespace iommusim;
using namespace iommusim::test;
using namespace iommusim::trace;

namespace {

// One gzip member holding `text`.
std::string gzip(const std::string& text) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&zs, uLong(text.size())), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    zs.avail_in = uInt(text.size());
    zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
    zs.avail_out = uInt(out.size());
    REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

const std::string kHead = "#iommusim-trace 1 time=ns\n";

// `n` DMA records at times from..from+n-1.
std::string records(uint64_t from, uint64_t n) {
    std::string s;
    for (uint64_t i = from; i < from + n; ++i)
        s += std::to_string(i) + " dma 00:02.0 iova=0x1000 size=64 dir=r\n";
    return s;
}

struct Result {
    uint64_t records = 0;
    std::vector<ParseError> errors;
};

Result read(const std::string& path, Reader::OnError mode = Reader::OnError::Skip) {
    Reader in(path, mode);
    Result res;
    Record r;
    while (in.next(r)) ++res.records;
    res.errors = in.errors();
    return res;
}

std::string ftrace_map(const std::string& time, const std::string& range, uint64_t size) {
    return " k-1 [000] ..... " + time + ": map: IOMMU: iova=" + range +
           " paddr=0x9000 size=" + std::to_string(size) + "\n";
}

std::vector<Record> import_ft(const std::string& path, ImportReport& rep) {
    std::vector<Record> out;
    rep = import_ftrace({path}, [&](const Record& r) { out.push_back(r); });
    return out;
}

}  // namespace

TEST_CASE("gzip traces: members one after another read as one, garbage after them is an error",
          "[trace][bad-input]") {
    TempPath p(".trace.gz");
    const std::string one = gzip(kHead + records(0, 100)), two = gzip(records(100, 50));

    put(p.path, one + two);  // `cat a.gz b.gz`: legal gzip
    Result res = read(p.path);
    CHECK(res.records == 150);
    CHECK(res.errors.empty());

    for (const std::string& tail : {std::string("garbage\n"), std::string(512, '\0')}) {
        put(p.path, one + tail);
        for (auto mode : {Reader::OnError::Stop, Reader::OnError::Skip}) {
            res = read(p.path, mode);
            CHECK(res.records == 100);  // everything before the garbage, then the error
            REQUIRE(res.errors.size() == 1);
            CHECK(res.errors[0].str() ==
                  p.path +
                      ":102: trailing data after the end of the gzip stream (not a gzip "
                      "member); the rest is lost");
        }
    }

    // A cut in the middle of the second member, and a bad CRC in the first one's trailer.
    put(p.path, one + two.substr(0, two.size() / 2));
    res = read(p.path);
    REQUIRE(res.errors.size() == 1);
    CHECK(res.records < 150);
    CHECK_THAT(res.errors[0].what, Catch::Contains("unexpected end of file"));
    std::string bad_crc = one;
    bad_crc[bad_crc.size() - 8] ^= 1;
    put(p.path, bad_crc);
    res = read(p.path);
    REQUIRE(res.errors.size() == 1);
    CHECK_THAT(res.errors[0].what, Catch::Contains("incorrect data check"));
}

TEST_CASE("a NUL byte in a trace line is an error at that line, not a merge",
          "[trace][bad-input]") {
    TempPath p(".trace");
    const std::string nul(1, '\0');
    put(p.path, kHead + records(0, 1) + "1 dma 00:02.0 iova=0x1000" + nul + " size=64 dir=r\n" +
                    records(2, 1));
    const Result res = read(p.path);
    CHECK(res.records == 2);
    REQUIRE(res.errors.size() == 1);
    CHECK(res.errors[0].line == 3);
    CHECK_THAT(res.errors[0].what, Catch::Contains("\\x00"));
}

TEST_CASE("importer inputs: truncated or trailing-garbage gzip stops the import, naming the file",
          "[import][bad-input]") {
    TempPath p(".log.gz");
    std::string text;
    for (int i = 0; i < 2000; ++i) {
        char line[200];
        std::snprintf(line, sizeof line,
                      " k-1 [000] ..... 1.%06d: map: IOMMU: iova=0x%x - 0x%x paddr=0x9000 "
                      "size=4096\n",
                      100000 + i, 0x100000 + i * 0x1000, 0x101000 + i * 0x1000);
        text += line;
    }
    const std::string z = gzip(text);
    ImportReport rep;

    put(p.path, z);
    CHECK(import_ft(p.path, rep).size() == 2000);
    CHECK(rep.ok());

    put(p.path, z.substr(0, z.size() / 2));  // half a log must not look like a whole one
    CHECK_THROWS_WITH(
        import_ft(p.path, rep),
        Catch::StartsWith(p.path + ":") &&
            Catch::Contains("truncated or corrupt gzip data (unexpected end of file)"));
    put(p.path, z + "more text\n");
    CHECK_THROWS_WITH(import_ft(p.path, rep),
                      Catch::StartsWith(p.path + ":2001: trailing data after the end of the gzip"));
    put(p.path, gzip(text.substr(0, text.size() / 2)) + gzip(text.substr(text.size() / 2)));
    CHECK(import_ft(p.path, rep).size() == 2000);  // two members: one stream
    CHECK(rep.ok());

    // The QEMU log goes through the same reader.
    TempPath q(".log.gz");
    std::string log;
    for (int i = 0; i < 2000; ++i)
        log += "7@100." + std::to_string(100000 + i) +
               ":vtd_dmar_translate dev 00:02.00 iova 0x1000 -> gpa 0xa000 mask 0xfff\n";
    const std::string lz = gzip(log);
    put(q.path, lz.substr(0, lz.size() / 2));
    CHECK_THROWS_WITH(import_qemu_vtd(q.path, "", [](const Record&) {}),
                      Catch::StartsWith(q.path + ":") && Catch::Contains("truncated"));
}

TEST_CASE("importer inputs: a NUL byte is an error at its line and joins nothing",
          "[import][bad-input]") {
    TempPath p(".log");
    std::string text = ftrace_map("1.000000", "0x1000 - 0x2000", 4096);
    const std::string start = " k-1 [000] ..... 1.000001: map: IOMMU: iova=0x3000 - 0x4000";
    text += start + std::string(1, '\0') + " paddr=0x9000 size=4096\n";
    text += ftrace_map("1.000002", "0x5000 - 0x6000", 4096);
    put(p.path, text);
    ImportReport rep;
    const auto recs = import_ft(p.path, rep);
    REQUIRE(recs.size() == 2);
    CHECK(recs[0].iova == 0x1000);
    CHECK(recs[1].iova == 0x5000);  // the line after the NUL is its own line
    REQUIRE(rep.errors.size() == 1);
    CHECK(rep.errors[0].line == 2);
    CHECK_THAT(rep.errors[0].what,
               Catch::StartsWith("NUL byte at column " + std::to_string(start.size() + 1)));
    CHECK(rep.lines == 3);
}

TEST_CASE("importer inputs: event timestamps that are not numbers are errors, not skips",
          "[import][bad-input]") {
    TempPath p(".log");
    std::string text;
    for (const char* t : {"nan", "-1.000000", "1e30", "99999999999999999999.000000", "12"})
        text += ftrace_map(t, "0x1000 - 0x2000", 4096);
    text += "[   -inf] map: IOMMU: iova=0x1000 - 0x2000 paddr=0x9000 size=4096\n";
    text += ftrace_map("1.000000", "0x1000 - 0x2000", 4096);
    text += "     some-task-1 [000] ..... 1.000001: sched_switch: nothing used\n";
    put(p.path, text);
    ImportReport rep;
    const auto recs = import_ft(p.path, rep);
    CHECK(recs.size() == 1);
    REQUIRE(rep.errors.size() == 6);
    for (uint64_t i = 0; i < 6; ++i) {
        CHECK(rep.errors[i].line == i + 1);
        CHECK_THAT(rep.errors[i].what, Catch::StartsWith("expected a timestamp SECONDS.FRACTION"));
    }
    CHECK_THAT(rep.errors[0].what, Catch::EndsWith("got 'nan'"));
    CHECK(rep.skipped == 1);  // sched_switch: not an event the importer uses

    TempPath q(".log");
    put(q.path,
        "7@nan:vtd_dmar_translate dev 00:02.00 iova 0x1000 -> gpa 0xa000 mask 0xfff\n"
        "7@-5.0:vtd_inv_desc invalidate desc type iotlb high 0x1000 low 0x100f2\n"
        "7@100.000000:vtd_dmar_translate dev 00:02.00 iova 0x1000 -> gpa 0xa000 mask 0xfff\n"
        "7@1e30:some_other_event x\n");
    std::vector<Record> out;
    rep = import_qemu_vtd(q.path, "", [&](const Record& r) { out.push_back(r); });
    CHECK(out.size() == 1);
    REQUIRE(rep.errors.size() == 2);
    CHECK(rep.errors[0].str() ==
          q.path + ":1: expected 'PID@SECONDS.FRACTION:' (at most 18446744073 s), got '7@nan:'");
    CHECK(rep.errors[1].line == 2);
    CHECK(rep.skipped == 1);  // an event the importer does not use
}

TEST_CASE("ftrace ranges: empty, reversed, inconsistent and large-page unmaps are not records",
          "[import][bad-input]") {
    TempPath p(".log");
    std::string text;
    text += ftrace_map("1.000001", "0x1000 - 0x1000", 0);              // size=0
    text += ftrace_map("1.000002", "0x3000 - 0x2000", 4096);           // reversed
    text += ftrace_map("1.000003", "0x1000 - 0x9000", 4096);           // end is not iova + size
    text += ftrace_map("1.000004", "0xfffffffffffff000 - 0x0", 8192);  // past 2^64
    text +=
        " k-1 [000] ..... 1.000005: unmap: IOMMU: iova=0x1000 - 0x2000 size=4096 "
        "unmapped_size=2097152\n";
    text +=
        " k-1 [000] ..... 1.000006: unmap: IOMMU: iova=0x1000 - 0x2000 size=4096 "
        "unmapped_size=0\n";
    text +=
        " k-1 [000] ..... 1.000007: unmap: IOMMU: iova=0x1000 - 0x1000 size=0 "
        "unmapped_size=0\n";
    text +=
        " k-1 [000] ..... 1.000008: dma_map_page: 0000:00:02.0 dir=TO_DEVICE dma_addr=4000 "
        "size=0 phys_addr=9000 attrs=\n";
    text += ftrace_map("1.000009", "0x1000 - 0x2000", 4096);  // the one good line
    put(p.path, text);
    ImportReport rep;
    const auto recs = import_ft(p.path, rep);
    REQUIRE(recs.size() == 1);
    CHECK(recs[0].kind == Kind::Map);
    INFO(rep.summary());
    REQUIRE(rep.errors.size() == 7);
    const uint64_t lines[] = {1, 2, 3, 4, 5, 7, 8};
    for (size_t i = 0; i < 7; ++i) CHECK(rep.errors[i].line == lines[i]);
    CHECK_THAT(rep.errors[0].what, Catch::Contains("size=0"));
    CHECK_THAT(rep.errors[1].what, Catch::Contains("reversed range"));
    CHECK_THAT(rep.errors[2].what, Catch::Contains("end is not iova + size"));
    CHECK_THAT(rep.errors[3].what, Catch::Contains("beyond 2^64"));
    CHECK_THAT(rep.errors[4].what, Catch::Contains("unmapped_size=2097152 exceeds size=4096"));
    CHECK_THAT(rep.errors[6].what, Catch::StartsWith("dma_map_page: size=0"));
    // An unmap that removed nothing is a counted skip, reported in a note.
    bool noted = false;
    for (const std::string& n : rep.notes)
        noted |= n.find("1 iommu:unmap events removed nothing") != std::string::npos &&
                 n.find(p.path + ":6") != std::string::npos;
    CHECK(noted);
}
