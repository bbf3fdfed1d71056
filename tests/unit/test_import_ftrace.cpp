// The Linux ftrace importer on hand-written dumps: line layouts, dma:* attribution, faults,
// malformed lines (named file:line, never fatal).
#include <catch2/catch.hpp>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "traces/import_ftrace.h"

using namespace iommusim;
using namespace iommusim::trace;

namespace {

// A file in the temporary directory holding `text`, removed at the end of the test.
struct TempFile {
    std::string path;
    explicit TempFile(const std::string& name, const std::string& text)
        : path((std::filesystem::temp_directory_path() /
                ("iommusim_import_" + std::to_string(::getpid()) + "_" + name))
                   .string()) {
        std::ofstream(path) << text;
    }
    ~TempFile() { std::remove(path.c_str()); }
};

std::vector<Record> run(const std::vector<std::string>& paths, ImportReport& report) {
    std::vector<Record> out;
    report = import_ftrace(paths, [&](const Record& r) { out.push_back(r); });
    return out;
}

const char* kHeader =
    "# tracer: nop\n"
    "#\n"
    "# entries-in-buffer/entries-written: 4/4   #P:1\n"
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n";

}  // namespace

TEST_CASE("ftrace import: iommu:map/unmap in guest ns, requester unknown", "[import]") {
    TempFile f("basic.log",
               std::string(kHeader) +
                   "    kworker/u2:0-9       [000] .....     1.562992: map: IOMMU: "
                   "iova=0x00000000fffff000 - 0x0000000100000000 paddr=0x0000000002e42000 "
                   "size=4096\n"
                   "     swapper/0-1       [000] d.h1.     1.600789: unmap: IOMMU: "
                   "iova=0x00000000fffff000 - 0x0000000100000000 size=4096 "
                   "unmapped_size=4096\n"
                   "          <idle>-0       [000] d.h..     1.700000: sched_switch: prev=a\n");
    ImportReport rep;
    const auto recs = run({f.path}, rep);
    CHECK(rep.ok());
    REQUIRE(recs.size() == 2);
    CHECK(recs[0].kind == Kind::Map);
    CHECK(recs[0].time_ns == 1562992000u);
    CHECK(recs[0].iova == 0xfffff000u);
    CHECK(recs[0].pa == 0x2e42000u);
    CHECK(recs[0].size == 4096);
    CHECK(recs[0].perm == (kPermR | kPermW));
    CHECK(recs[0].req.rid == 0);
    CHECK(recs[0].domain == 0);
    CHECK(recs[1].kind == Kind::Unmap);
    CHECK(recs[1].time_ns == 1600789000u);
    CHECK(recs[1].size == 4096);
    CHECK(rep.count(Kind::Map) == 1);
    CHECK(rep.count(Kind::Unmap) == 1);
    CHECK(rep.ops_unattributed == 2);
    CHECK(rep.skipped == 5);  // four header lines and sched_switch
    CHECK(rep.notes.size() == 1);
}

TEST_CASE("ftrace import: printk layout, odd task names, several files merged", "[import]") {
    TempFile a("a.log",
               "[    2.000000] map: IOMMU: iova=0x0000000000002000 - 0x0000000000003000 "
               "paddr=0x0000000000009000 size=4096\n");
    TempFile b("b.log",
               "  my: task-7 [000] 1.000000001: map: IOMMU: iova=0x0000000000001000 - "
               "0x0000000000002000 paddr=0x0000000000008000 size=4096\n"
               "  kworker/0:1H-35 [000] 3.5: unmap: IOMMU: iova=0x0000000000001000 - "
               "0x0000000000003000 size=8192 unmapped_size=4096\n");
    ImportReport rep;
    const auto recs = run({a.path, b.path}, rep);
    CHECK(rep.ok());
    REQUIRE(recs.size() == 3);
    CHECK(recs[0].time_ns == 1000000001u);  // nanosecond timestamps are kept exactly
    CHECK(recs[0].iova == 0x1000);
    CHECK(recs[1].time_ns == 2000000000u);
    CHECK(recs[2].kind == Kind::Unmap);
    CHECK(recs[2].size == 4096);  // what was actually unmapped
    CHECK(recs[2].time_ns == 3500000000u);
}

TEST_CASE("ftrace import: dma:* events name the device of the iommu:* mappings", "[import]") {
    TempFile f("dma.log",
               " kworker-9 [000] ..... 2.000000: map: IOMMU: iova=0x00000000fffff000 - "
               "0x0000000100000000 paddr=0x0000000002e42000 size=4096\n"
               " kworker-9 [000] ..... 2.000001: dma_map_page: 0000:00:02.0 dir=FROM_DEVICE "
               "dma_addr=fffff000 size=4096 phys_addr=2e42000 attrs=\n"
               " kworker-9 [000] ..... 2.000002: unmap: IOMMU: iova=0x00000000fffff000 - "
               "0x0000000100000000 size=4096 unmapped_size=4096\n"
               " kworker-9 [000] ..... 2.000003: dma_unmap_page: 0000:00:02.0 dir=FROM_DEVICE "
               "dma_addr=fffff000 size=4096 attrs=\n"
               " kworker-9 [000] ..... 2.000004: dma_map_page: 0000:00:03.0 dir=TO_DEVICE "
               "dma_addr=12345678 size=100 phys_addr=12345678 attrs=\n"
               " kworker-9 [000] ..... 2.000005: dma_map_sg: 0000:00:04.0 dir=BIDIRECTIONAL "
               "dma_addrs={0x40000,0x50000} sizes={0x1000,0x2000} phys_addrs={0x90000,0xa0000} "
               "attrs=\n"
               " kworker-9 [000] ..... 2.000006: dma_unmap_sg: 0000:00:04.0 dir=BIDIRECTIONAL "
               "phys_addrs={0xa0000} attrs=\n"
               " kworker-9 [000] ..... 2.000007: dma_sync_single_for_cpu: 0000:00:02.0 "
               "dir=FROM_DEVICE dma_addr=fffff000 size=4096\n"
               "    <idle>-0 [000] d.h.. 2.5: io_page_fault: IOMMU:nvme 0000:00:02.0 "
               "iova=0x0000000000001000 flags=0x0001\n");
    ImportReport rep;
    const auto recs = run({f.path}, rep);
    CHECK(rep.ok());
    REQUIRE(recs.size() == 7);
    CHECK(recs[0].kind == Kind::Map);
    CHECK(recs[0].req.rid == Requester::bdf(0, 2, 0).rid);
    CHECK(recs[0].perm == kPermW);  // FROM_DEVICE: the device writes memory
    CHECK(recs[1].kind == Kind::Unmap);
    CHECK(recs[1].req.rid == Requester::bdf(0, 2, 0).rid);
    // A dma_map_page without iommu:map (direct mapping): a page-granular map of its own.
    CHECK(recs[2].kind == Kind::Map);
    CHECK(recs[2].req.rid == Requester::bdf(0, 3, 0).rid);
    CHECK(recs[2].iova == 0x12345000);
    CHECK(recs[2].size == 0x1000);
    CHECK(recs[2].pa == 0x12345000);
    CHECK(recs[2].perm == kPermR);
    // Scatter list: one map per entry; the unmap found through the physical address.
    CHECK(recs[3].iova == 0x40000);
    CHECK(recs[4].iova == 0x50000);
    CHECK(recs[4].size == 0x2000);
    CHECK(recs[5].kind == Kind::Unmap);
    CHECK(recs[5].iova == 0x50000);
    CHECK(recs[6].kind == Kind::Fault);
    CHECK(recs[6].req.rid == Requester::bdf(0, 2, 0).rid);
    CHECK(recs[6].dir == Dir::Write);
    CHECK(recs[6].iova == 0x1000);
    CHECK(rep.ops_unattributed == 0);
    CHECK(rep.skipped == 1);  // dma_sync_*
}

TEST_CASE("ftrace import: malformed event lines are errors naming file:line", "[import]") {
    TempFile f("bad.log",
               std::string(kHeader) +
                   " kworker-9 [000] ..... 1.000000: map: IOMMU: iova=0x1000 - 0x2000 "
                   "size=4096\n"
                   " kworker-9 [000] ..... 1.000001: unmap: IOMMU: garbage\n"
                   " kworker-9 [000] ..... 1.000002: map: IOMMU: iova=0x1000 - 0x2000 "
                   "paddr=0x5000 size=4096\n"
                   " kworker-9 [000] ..... 1.000003: io_page_fault: nonsense\n"
                   " kworker-9 [000] ..... 1.000004: dma_map_page: 0000:00:02.0 dir=SIDEWAYS "
                   "dma_addr=1000 size=1 phys_addr=1000 attrs=\n"
                   "\x01\xff binary junk: map: \n");
    ImportReport rep;
    const auto recs = run({f.path}, rep);
    REQUIRE(rep.errors.size() == 4);
    CHECK(rep.errors[0].file == f.path);
    CHECK(rep.errors[0].line == 5);
    CHECK(rep.errors[0].what.find("map: expected") == 0);
    CHECK(rep.errors[0].what.find("paddr") != std::string::npos);
    CHECK(rep.errors[1].line == 6);
    CHECK(rep.errors[1].what.find("unmap: expected") == 0);
    CHECK(rep.errors[2].line == 8);
    CHECK(rep.errors[3].line == 9);
    CHECK(rep.errors[0].str().find(f.path + ":5: map: expected") == 0);
    REQUIRE(recs.size() == 1);  // the good map
    CHECK(recs[0].pa == 0x5000);
}

TEST_CASE("ftrace import: a wrapped ring buffer is noted; unreadable files throw", "[import]") {
    TempFile f("wrapped.log", "# entries-in-buffer/entries-written: 10/25   #P:1\n");
    ImportReport rep;
    run({f.path}, rep);
    CHECK(rep.ok());
    REQUIRE(rep.notes.size() == 1);
    CHECK(rep.notes[0].find("overwrote 15 events") != std::string::npos);
    CHECK_THROWS_WITH(run({"/nonexistent/iommusim/ftrace.log"}, rep),
                      Catch::Contains("/nonexistent/iommusim/ftrace.log"));
}
