// The QEMU VT-d importer: on the sample recording the repository ships (traces/samples/), on
// the shared recordings (../shared/traces beside the repository; those cases skip when it is
// absent) and on hand-written logs for placement and malformed lines.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "traces/import_ftrace.h"
#include "traces/import_lines.h"
#include "traces/import_qemu.h"

#include "skip.h"

using namespace iommusim;
using namespace iommusim::trace;
namespace fs = std::filesystem;

namespace {

// This repository's root, for the sample recording and the shared ones beside it.
fs::path source_dir() {
#ifdef IOMMUSIM_SOURCE_DIR
    return IOMMUSIM_SOURCE_DIR;
#else
    return fs::path(__FILE__).parent_path().parent_path().parent_path();  // tests/unit/
#endif
}

// The shared recordings: $IOMMUSIM_SHARED_TRACES, else ../shared/traces beside the repository.
// Their cases skip when they are absent.
fs::path shared_traces() {
    if (const char* env = std::getenv("IOMMUSIM_SHARED_TRACES")) return env;
    return source_dir().parent_path() / "shared" / "traces";
}

// The small recording the repository ships (traces/samples/, one folder per capture, files
// gzipped); $IOMMUSIM_SAMPLE_TRACES points elsewhere. Always there: absent is a failure.
fs::path sample_traces() {
    if (const char* env = std::getenv("IOMMUSIM_SAMPLE_TRACES")) return env;
    return source_dir() / "traces" / "samples";
}

// The capture folders under the samples, sorted; fails the test case when there are none.
std::vector<fs::path> sample_folders() {
    const fs::path root = sample_traces();
    std::vector<fs::path> v;
    if (fs::is_directory(root))
        for (const auto& e : fs::directory_iterator(root))
            if (e.is_directory()) v.push_back(e.path());
    std::sort(v.begin(), v.end());
    INFO("the repository ships a sample recording under " << root.string());
    REQUIRE(!v.empty());
    return v;
}

// A recording's file: NAME as the shared recordings hold it, or NAME.gz as the samples do.
std::string input(const fs::path& dir, const std::string& name) {
    const fs::path plain = dir / name, gz = dir / (name + ".gz");
    return (fs::exists(plain) || !fs::exists(gz) ? plain : gz).string();
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& name, const std::string& text)
        : path((fs::temp_directory_path() /
                ("iommusim_import_" + std::to_string(::getpid()) + "_" + name))
                   .string()) {
        std::ofstream(path) << text;
    }
    ~TempFile() { std::remove(path.c_str()); }
};

std::vector<Record> run(const std::string& log, const std::string& ftrace, ImportReport& rep) {
    std::vector<Record> out;
    rep = import_qemu_vtd(log, ftrace, [&](const Record& r) { out.push_back(r); });
    return out;
}

// vtd_dmar_translate lines of a log, read without the importer: (rid, iova page, gpa page)
// and the leaf entry of the IOTLB event before it in the same thread.
struct Translate {
    uint16_t rid;
    uint64_t iova, gpa, pte;
};
std::vector<Translate> translations_in(const std::string& log) {
    std::vector<Translate> v;
    std::map<unsigned, uint64_t> pte;  // per thread
    ImportReport lines;
    LineSource in(log, lines);
    for (std::string line; in.next(line);) {
        const unsigned pid = unsigned(std::atoi(line.c_str()));
        const size_t e = line.find(" slpte 0x");
        if (e != std::string::npos) pte[pid] = std::strtoull(line.c_str() + e + 9, nullptr, 16);
        const size_t p = line.find(":vtd_dmar_translate ");
        if (p == std::string::npos) continue;
        unsigned bus, dev, fn;
        uint64_t iova, gpa, mask;
        REQUIRE(std::sscanf(line.c_str() + p,
                            ":vtd_dmar_translate dev %x:%x.%x iova 0x%" SCNx64 " -> gpa 0x%" SCNx64
                            " mask 0x%" SCNx64,
                            &bus, &dev, &fn, &iova, &gpa, &mask) == 6);
        v.push_back({Requester::bdf(bus, dev, fn).rid, iova & ~mask, gpa & ~mask, pte[pid]});
    }
    return v;
}

// Replays map/unmap per requester and checks that each DMA lies in a live mapping with the
// recorded translation and the permission its direction needs. Returns the DMAs that do not;
// `perms` (if given) receives the permissions of the mapping each DMA used.
std::vector<std::string> replay(const std::vector<Record>& recs,
                                std::vector<Perm>* perms = nullptr) {
    struct Mapping {
        Addr end, pa;
        Perm perm;
    };
    std::map<uint16_t, std::map<Addr, Mapping>> live;
    std::vector<std::string> bad;
    for (const Record& r : recs) {
        auto& m = live[r.req.rid];
        if (r.kind == Kind::Map) {
            const auto next = m.lower_bound(r.iova);
            const bool overlaps = (next != m.end() && next->first < r.iova + r.size) ||
                                  (next != m.begin() && std::prev(next)->second.end > r.iova);
            if (overlaps) bad.push_back("map overlaps a live mapping: " + format(r));
            m[r.iova] = {r.iova + r.size, r.pa, r.perm};
        } else if (r.kind == Kind::Unmap) {
            const Addr a = r.iova, b = r.iova + r.size;
            bool hit = false;
            for (auto it = m.begin(); it != m.end();) {
                const Addr s = it->first;
                const Mapping x = it->second;
                if (x.end <= a || s >= b) {
                    ++it;
                    continue;
                }
                hit = true;
                it = m.erase(it);
                if (s < a) m[s] = {a, x.pa, x.perm};
                if (b < x.end) m[b] = {x.end, x.pa + (b - s), x.perm};
            }
            // Maps and unmaps balance: the guest unmaps only what it mapped.
            if (!hit) bad.push_back("unmap of nothing live: " + format(r));
        } else if (r.kind == Kind::Dma) {
            auto it = m.upper_bound(r.iova);
            const bool inside = it != m.begin() && (--it, it->second.end > r.iova);
            const Perm need = r.dir == Dir::Read ? kPermR : r.dir == Dir::Write ? kPermW : 0;
            if (!inside || it->second.pa + (r.iova - it->first) != r.pa ||
                !permits(it->second.perm, need))
                bad.push_back(format(r));
            if (perms) perms->push_back(inside ? it->second.perm : kPermNone);
        }
    }
    return bad;
}

// Imports the recording in `dir` and checks what holds for any capture of the workload of
// scripts/capture-qemu-trace: every translation becomes one DMA record with its translation, in
// time order, inside a guest mapping live at that moment with the permission its leaf entry
// shows; guest maps, unmaps and invalidations are there and balance; NVMe DMAs have sizes and
// directions. Returns the report and the DMA records for checks specific to one recording.
struct Imported {
    ImportReport rep;
    std::vector<Record> recs;
    std::vector<const Record*> dma;
    size_t nvme = 0, data_r = 0, data_w = 0, sqe = 0, cqe = 0, virtio_r = 0;
};
void import_and_check(const fs::path& dir, Imported& im) {
    const uint16_t nvme = Requester::bdf(0, 2, 0).rid, virtio = Requester::bdf(0, 3, 0).rid;
    const std::string log = input(dir, "qemu-trace.log");
    im.recs = run(log, input(dir, "guest-ftrace.log"), im.rep);
    const ImportReport& rep = im.rep;
    INFO(rep.summary());
    CHECK(rep.ok());
    CHECK(rep.ops_unattributed <= 1);  // the ISA bridge's identity map: never used

    // Every translation becomes one DMA record, in order, with its translation.
    const auto want = translations_in(log);
    REQUIRE(!want.empty());
    for (const Record& r : im.recs)
        if (r.kind == Kind::Dma) im.dma.push_back(&r);
    const auto& dma = im.dma;
    REQUIRE(dma.size() == want.size());
    CHECK(rep.count(Kind::Dma) == want.size());
    for (size_t i = 0; i < dma.size(); ++i) {
        INFO(format(*dma[i]));
        CHECK(dma[i]->req.rid == want[i].rid);
        CHECK((dma[i]->iova & ~Addr(0xfff)) == want[i].iova);
        CHECK(dma[i]->has_pa);
        CHECK((dma[i]->pa & ~Addr(0xfff)) == want[i].gpa);
        CHECK((dma[i]->pa & 0xfff) == (dma[i]->iova & 0xfff));
    }

    // Time order; every DMA inside a mapping live at that moment; every unmap of a mapping.
    for (size_t i = 1; i < im.recs.size(); ++i)
        REQUIRE(im.recs[i - 1].time_ns <= im.recs[i].time_ns);
    std::vector<Perm> perms;
    const auto bad = replay(im.recs, &perms);
    INFO((bad.empty() ? std::string() : bad.front()));
    CHECK(bad.empty());
    // Each DMA went through the guest mapping whose permission its leaf entry shows.
    REQUIRE(perms.size() == want.size());
    size_t perm_mismatch = 0;
    for (size_t i = 0; i < perms.size(); ++i)
        perm_mismatch += bool(perms[i] & kPermW) != bool(want[i].pte & 2);
    CHECK(perm_mismatch == 0);
    CHECK(rep.count(Kind::Map) > 0);
    CHECK(rep.count(Kind::Unmap) > 0);
    CHECK(rep.count(Kind::Unmap) <= rep.count(Kind::Map));
    CHECK(rep.count(Kind::Invalidate) > 0);

    // NVMe DMAs all have sizes and directions, within one page; virtio ones where the leaf
    // entry says read-only.
    for (const Record* r : dma) {
        if (r->req.rid == virtio && r->dir == Dir::Read) ++im.virtio_r;
        if (r->req.rid != nvme) continue;
        ++im.nvme;
        INFO(format(*r));
        CHECK(r->size_known);
        CHECK(r->dir != Dir::Unknown);
        CHECK(r->size > 0);
        CHECK((r->iova & 0xfff) + r->size <= 0x1000);
        im.data_r += r->size == 4096 && r->dir == Dir::Read;
        im.data_w += r->size == 4096 && r->dir == Dir::Write;
        im.sqe += r->size == 64 && r->dir == Dir::Read;
        im.cqe += r->size == 16 && r->dir == Dir::Write;
    }
    // The workload writes and reads both disks: NVMe data both ways, its queue entries, and
    // virtio requests the device reads.
    CHECK(im.data_r > 0);
    CHECK(im.data_w > 0);
    CHECK(im.sqe > 0);
    CHECK(im.cqe > 0);
    CHECK(im.virtio_r > 0);
    CHECK(rep.dma_sized == im.nvme);
    CHECK(rep.dma_sized + rep.dma_unsized == dma.size());
}

// The guest log alone: every map and unmap line becomes one record, in time order.
void ftrace_import_and_check(const fs::path& dir) {
    const std::string log = input(dir, "guest-ftrace.log");
    size_t maps = 0, unmaps = 0;
    ImportReport lines;
    LineSource in(log, lines);
    for (std::string line; in.next(line);) {
        maps += line.find(": map: IOMMU:") != std::string::npos;
        unmaps += line.find(": unmap: IOMMU:") != std::string::npos;
    }
    std::vector<Record> recs;
    const ImportReport rep = import_ftrace({log}, [&](const Record& r) { recs.push_back(r); });
    INFO(dir.string() << "\n" << rep.summary());
    CHECK(rep.ok());
    CHECK(maps > 0);
    CHECK(unmaps > 0);
    CHECK(rep.count(Kind::Map) == maps);
    CHECK(rep.count(Kind::Unmap) == unmaps);
    CHECK(recs.size() == maps + unmaps);
    CHECK(rep.ops_unattributed == maps + unmaps);  // iommu:map/unmap name no device
    for (size_t i = 1; i < recs.size(); ++i) CHECK(recs[i - 1].time_ns <= recs[i].time_ns);
}

// The import written as a trace file reads back whole.
void trace_round_trip(const fs::path& dir) {
    const std::string out = (fs::temp_directory_path() /
                             ("iommusim_import_" + std::to_string(::getpid()) + ".trace.gz"))
                                .string();
    ImportReport rep;
    {
        Writer w(out, "qemu-vtd import test");
        rep = import_qemu_vtd(input(dir, "qemu-trace.log"), input(dir, "guest-ftrace.log"), w);
        w.close();
    }
    Reader rd(out);
    Record r;
    uint64_t n = 0;
    while (rd.next(r)) ++n;
    std::remove(out.c_str());
    CHECK(rep.ok());
    CHECK(rd.errors().empty());
    CHECK(rep.total() > 0);
    CHECK(n == rep.total());
}

const char* const kSharedFolders[] = {"qemu-vtd-legacy-strict", "qemu-vtd-scalable-strict"};

}  // namespace

TEST_CASE("qemu-vtd import of the sample recording", "[import]") {
    for (const fs::path& dir : sample_folders()) {
        SECTION(dir.filename().string()) {
            Imported im;
            import_and_check(dir, im);
        }
    }
}

TEST_CASE("qemu-vtd import of the shared recordings", "[import][shared]") {
    const fs::path root = shared_traces();
    if (!fs::is_directory(root)) IOMMUSIM_SKIP("no shared recordings at " << root.string());
    for (const char* folder : kSharedFolders) {
        SECTION(folder) {
            Imported im;
            import_and_check(root / folder, im);
            // What these two recordings hold (docs/traces.md lists their counts).
            const ImportReport& rep = im.rep;
            CHECK(rep.count(Kind::Map) > 100);
            CHECK(rep.count(Kind::Unmap) > 100);
            CHECK(rep.count(Kind::Invalidate) > 400);
            CHECK(im.nvme > 200);
            CHECK(im.data_r >= 33);  // 4 KiB and 128 KiB writes
            CHECK(im.data_w >= 35);  // identify, markers, reads
            CHECK(im.sqe > 20);
            CHECK(im.cqe > 20);
        }
    }
}

TEST_CASE("ftrace import of the sample recording's guest log", "[import]") {
    for (const fs::path& dir : sample_folders()) ftrace_import_and_check(dir);
}

TEST_CASE("ftrace import of the shared recordings' guest logs", "[import][shared]") {
    const fs::path root = shared_traces();
    if (!fs::is_directory(root)) IOMMUSIM_SKIP("no shared recordings at " << root.string());
    for (const char* folder : kSharedFolders) ftrace_import_and_check(root / folder);
}

TEST_CASE("qemu-vtd import of the sample writes a trace the reader reads back", "[import]") {
    for (const fs::path& dir : sample_folders()) trace_round_trip(dir);
}

TEST_CASE("qemu-vtd import of a shared recording writes a trace the reader reads back",
          "[import][shared]") {
    const fs::path dir = shared_traces() / kSharedFolders[0];
    if (!fs::is_directory(dir)) IOMMUSIM_SKIP("no shared recording at " << dir.string());
    trace_round_trip(dir);
}

// Two domains use the same IOVA; the unmap must take domain 2's mapping (the most recent), and
// each guest op lands at the IOTLB invalidation the guest issued for it.
TEST_CASE("qemu-vtd import places guest ops between the translations they allow", "[import]") {
    TempFile log(
        "q.log",
        "7@100.000000:vtd_inv_desc invalidate desc type iotlb high 0x1000 low 0x100f2\n"
        "7@100.000010:vtd_iotlb_page_update IOTLB page update sid 0x10 iova 0x1010 slpte "
        "0xa003 domain 0x1\n"
        "7@100.000011:vtd_dmar_translate dev 00:02.00 iova 0x1000 -> gpa 0xa000 mask 0xfff\n"
        "7@100.000020:vtd_inv_desc invalidate desc type iotlb high 0x1000 low 0x200f2\n"
        "7@100.000030:vtd_iotlb_page_update IOTLB page update sid 0x18 iova 0x1000 slpte "
        "0xb001 domain 0x2\n"
        "7@100.000031:vtd_dmar_translate dev 00:03.00 iova 0x1000 -> gpa 0xb000 mask 0xfff\n"
        "7@100.000040:vtd_inv_desc invalidate desc type iotlb high 0x1000 low 0x200f2\n"
        "7@100.000050:vtd_inv_desc invalidate desc type wait high 0x2810804 low 0x200000025\n"
        "7@100.000060:vtd_iotlb_page_hit IOTLB page hit sid 0x10 iova 0x1020 slpte 0xa003 "
        "domain 0x1\n"
        "7@100.000061:vtd_dmar_translate dev 00:02.00 iova 0x1000 -> gpa 0xa000 mask 0xfff\n");
    TempFile ft("g.log",
                " k-1 [000] ..... 5.000000: map: IOMMU: iova=0x1000 - 0x2000 paddr=0xa000 "
                "size=4096\n"
                " k-1 [000] ..... 5.000020: map: IOMMU: iova=0x1000 - 0x2000 paddr=0xb000 "
                "size=4096\n"
                " k-1 [000] ..... 5.000040: unmap: IOMMU: iova=0x1000 - 0x2000 size=4096 "
                "unmapped_size=4096\n"
                " k-1 [000] ..... 5.000100: unmap: IOMMU: iova=0x1000 - 0x2000 size=4096 "
                "unmapped_size=4096\n");
    ImportReport rep;
    const auto recs = run(log.path, ft.path, rep);
    INFO(rep.summary());
    CHECK(rep.ok());
    std::vector<std::string> lines;
    for (const Record& r : recs) lines.push_back(format(r));
    const std::vector<std::string> want = {
        "0 map 00:02.0 iova=0x1000 pa=0xa000 size=0x1000 perm=rw domain=1",
        "0 inval page domain=1 addr=0x1000 order=0",
        "11000 dma 00:02.0 iova=0x1010 size=? dir=? pa=0xa010",
        "20000 map 00:03.0 iova=0x1000 pa=0xb000 size=0x1000 perm=r domain=2",
        "20000 inval page domain=2 addr=0x1000 order=0",
        "31000 dma 00:03.0 iova=0x1000 size=? dir=r pa=0xb000",
        "40000 unmap 00:03.0 iova=0x1000 size=0x1000 domain=2",
        "40000 inval page domain=2 addr=0x1000 order=0",
        "50000 inval wait domain=0",
        "61000 dma 00:02.0 iova=0x1020 size=? dir=? pa=0xa020",
        "100000 unmap 00:02.0 iova=0x1000 size=0x1000 domain=1",
    };
    CHECK(lines == want);
    CHECK(rep.ops_anchored == 3);
    CHECK(rep.ops_interpolated == 1);
    CHECK(replay(recs).empty());
}

TEST_CASE("qemu-vtd import: malformed lines are errors naming file:line", "[import]") {
    TempFile log("bad.log",
                 "1@1.000000:vtd_iotlb_page_update IOTLB page update sid 0x10 iova 0x1000 slpte "
                 "0x5003 domain 0x1\n"
                 "1@1.000001:vtd_dmar_translate dev 00:02.00 iova 0x1000 -> gpa 0x5000 mask "
                 "0xfff\n"
                 "1@1.000002:vtd_dmar_translate dev zz iova 0x1000\n"
                 "some other output of QEMU\n"
                 "vtd_dmar_translate dev 00:02.00 iova 0x1000 -> gpa 0x5000 mask 0xfff\n"
                 "1@1.000003:vtd_inv_desc invalidate desc type iotlb high 0x1000\n"
                 "1@1.000004:pci_nvme_map_addr addr 0x1000\n"
                 "1@1.000005:vtd_dmar_translate dev 00:02.00 iova 0x9000 -> gpa 0x7000 mask "
                 "0xfff\n");
    TempFile ft("ok.log",
                " k-1 [000] ..... 5.0: map: IOMMU: iova=0x1000 - 0x2000 paddr=0x5000 "
                "size=4096\n");
    ImportReport rep;
    const auto recs = run(log.path, ft.path, rep);
    REQUIRE(rep.errors.size() == 5);
    CHECK(rep.errors[0].str().find(log.path + ":3: vtd_dmar_translate: expected 'dev") == 0);
    CHECK(rep.errors[1].str().find(log.path + ":5: expected 'PID@SECONDS:event args'") == 0);
    CHECK(rep.errors[2].str().find(log.path + ":6: vtd_inv_desc: expected") == 0);
    CHECK(rep.errors[3].str().find(log.path + ":7: pci_nvme_map_addr: expected 'len N'") == 0);
    // A translation the guest never mapped contradicts the inputs and is named too.
    CHECK(rep.errors[4].str().find(log.path + ":8: translation of 00:02.0 0x9000 -> 0x7000") == 0);
    CHECK(rep.count(Kind::Dma) == 2);
    CHECK(rep.count(Kind::Map) == 1);
    CHECK(rep.skipped == 2);  // QEMU's own output and the unstamped event line
    CHECK(recs.size() == 3);
}
