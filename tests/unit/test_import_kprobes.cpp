// Guest kprobes on __iommu_map, __iommu_unmap and intel_iommu_attach_device: pairing with the
// iommu:map/unmap events, the domain they give in the QEMU join and in the ftrace import, the
// ambiguity report, and malformed kprobe lines (file:line errors, never fatal).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support/test_files.h"
#include "traces/import_ftrace.h"
#include "traces/import_qemu.h"

using namespace iommusim;
using namespace iommusim::trace;
using iommusim::test::put;
using iommusim::test::TempPath;

namespace {

constexpr const char* kNvmeDomain = "0xffff8880034c2e00";
constexpr const char* kVirtioDomain = "0xffff888003a1f400";

// NVMe (00:02.0, VT-d domain 1) and virtio-blk (00:03.0, domain 2) both map 0xfffff000, each
// to its own page, and QEMU translates both. Lazy mode: no invalidation follows the unmap.
const char* const kQemuLog =
    "7@100.000010:vtd_iotlb_page_update IOTLB page update sid 0x10 iova 0xfffff000 slpte "
    "0xa003 domain 0x1\n"
    "7@100.000011:vtd_dmar_translate dev 00:02.00 iova 0xfffff000 -> gpa 0xa000 mask 0xfff\n"
    "7@100.000020:vtd_iotlb_page_update IOTLB page update sid 0x18 iova 0xfffff000 slpte "
    "0xb003 domain 0x2\n"
    "7@100.000021:vtd_dmar_translate dev 00:03.00 iova 0xfffff000 -> gpa 0xb000 mask 0xfff\n"
    "7@100.000030:vtd_inv_desc invalidate desc type wait high 0x2810804 low 0x200000025\n";

// The guest's events: the attachments, two maps of 0xfffff000, an unmap of it (NVMe's), and a
// map of virtio's that no DMA used. With `kprobes`, each map/unmap follows its kprobe.
std::string guest_log(bool kprobes) {
    std::string s = "# tracer: nop\n";
    auto kp = [&](const std::string& line) {
        if (kprobes) s += line;
    };
    kp(std::string("  swapper/0-1 [000] ..... 1.000000: iommusim_attach: "
                   "(intel_iommu_attach_device+0x0/0x90) domain=") +
       kNvmeDomain + " dev=\"0000:00:02.0\"\n");
    kp(std::string("  swapper/0-1 [000] ..... 1.000001: iommusim_attach: "
                   "(intel_iommu_attach_device+0x0/0x90) domain=") +
       kVirtioDomain + " dev=\"0000:00:03.0\"\n");
    kp(std::string("  dd-73 [000] d..1. 5.000000: iommusim_map: (__iommu_map+0x0/0x1a0) domain=") +
       kNvmeDomain + " iova=0xfffff000 paddr=0xa000 size=4096\n");
    s += "  dd-73 [000] ..... 5.000001: map: IOMMU: iova=0xfffff000 - 0x100000000 paddr=0xa000 "
         "size=4096\n";
    kp(std::string("  dd-74 [001] d..1. 5.000010: iommusim_map: (__iommu_map+0x0/0x1a0) domain=") +
       kVirtioDomain + " iova=0xfffff000 paddr=0xb000 size=4096\n");
    s += "  dd-74 [001] ..... 5.000011: map: IOMMU: iova=0xfffff000 - 0x100000000 paddr=0xb000 "
         "size=4096\n";
    kp(std::string("  dd-73 [000] d..1. 5.000030: iommusim_unmap: (__iommu_unmap+0x0/0x120) "
                   "domain=") +
       kNvmeDomain + " iova=0xfffff000 size=4096\n");
    s += "  dd-73 [000] ..... 5.000031: unmap: IOMMU: iova=0xfffff000 - 0x100000000 size=4096 "
         "unmapped_size=4096\n";
    kp(std::string("  dd-74 [001] d..1. 5.000040: iommusim_map: (__iommu_map+0x0/0x1a0) domain=") +
       kVirtioDomain + " iova=0xffffe000 paddr=0xc000 size=4096\n");
    s += "  dd-74 [001] ..... 5.000041: map: IOMMU: iova=0xffffe000 - 0xfffff000 paddr=0xc000 "
         "size=4096\n";
    return s;
}

std::vector<Record> import_pair(const std::string& guest, ImportReport& rep) {
    TempPath q(".log"), g(".log");
    put(q.path, kQemuLog);
    put(g.path, guest);
    std::vector<Record> out;
    rep = import_qemu_vtd(q.path, g.path, [&](const Record& r) { out.push_back(r); });
    return out;
}

std::vector<std::string> ops_of(const std::vector<Record>& recs) {
    std::vector<std::string> v;
    for (const Record& r : recs)
        if (r.kind == Kind::Map || r.kind == Kind::Unmap) {
            const std::string line = format(r);
            v.push_back(line.substr(line.find(' ') + 1));  // without the time
        }
    return v;
}

}  // namespace

TEST_CASE("kprobes decide the domain of an unmap over two domains' mappings", "[import][kprobe]") {
    SECTION("without kprobes: the most recent mapping is taken, and reported ambiguous") {
        ImportReport rep;
        const auto recs = import_pair(guest_log(false), rep);
        INFO(rep.summary());
        CHECK(rep.ok());
        CHECK(rep.ops_kprobe == 0);
        CHECK(rep.ops_by_kprobe == 0);
        // Both maps are translated, so their domains are known; the unmap is a guess (virtio's,
        // the most recent) and the last map has no domain at all.
        CHECK(ops_of(recs) ==
              std::vector<std::string>{"map 00:02.0 iova=0xfffff000 pa=0xa000 size=0x1000 perm=rw "
                                       "domain=1",
                                       "map 00:03.0 iova=0xfffff000 pa=0xb000 size=0x1000 perm=rw "
                                       "domain=2",
                                       "unmap 00:03.0 iova=0xfffff000 size=0x1000 domain=2",
                                       "map 00:00.0 iova=0xffffe000 pa=0xc000 size=0x1000 perm=rw "
                                       "domain=0"});
        CHECK(rep.ambiguous_unmaps == 1);
        CHECK(rep.ambiguous_maps == 0);
        CHECK(rep.ambiguous_none == 1);
        REQUIRE(rep.ambiguous_examples.size() == 2);
        // The examples name the guest log's lines (the unmap is line 4, the last map line 5).
        CHECK(rep.ambiguous_examples[0].find(".log:4: unmap iova=0xfffff000 size=0x1000: "
                                             "mappings of several domains") != std::string::npos);
        CHECK(rep.ambiguous_examples[1].find(".log:5: map iova=0xffffe000") != std::string::npos);
        CHECK(rep.summary().find("ambiguous domains: 2 (1 unmaps") != std::string::npos);
    }
    SECTION("with kprobes: NVMe's unmap and virtio's unused map, nothing ambiguous") {
        ImportReport rep;
        const auto recs = import_pair(guest_log(true), rep);
        INFO(rep.summary());
        CHECK(rep.ok());
        CHECK(rep.ops_kprobe == 4);
        CHECK(rep.ops_without_kprobe == 0);
        CHECK(rep.kprobes_unpaired == 0);
        CHECK(rep.ops_by_kprobe == 4);
        CHECK(ops_of(recs) ==
              std::vector<std::string>{"map 00:02.0 iova=0xfffff000 pa=0xa000 size=0x1000 perm=rw "
                                       "domain=1",
                                       "map 00:03.0 iova=0xfffff000 pa=0xb000 size=0x1000 perm=rw "
                                       "domain=2",
                                       "unmap 00:02.0 iova=0xfffff000 size=0x1000 domain=1",
                                       "map 00:03.0 iova=0xffffe000 pa=0xc000 size=0x1000 perm=rw "
                                       "domain=2"});
        CHECK(rep.ambiguous_total() == 0);
        CHECK(rep.ambiguous_examples.empty());
        CHECK(rep.ops_unattributed == 0);
        CHECK(rep.summary().find("kprobes: 4 map/unmap paired with their kprobe, 4 written in the "
                                 "domain it names, 0 without one, 0 kprobes without their event") !=
              std::string::npos);
    }
}

TEST_CASE("kprobes without attach events: the domain from the maps' translated pages",
          "[import][kprobe]") {
    // The attachments happened before tracing began: the pointers are tied to VT-d domains by
    // the translations of their maps' pages.
    std::string g = guest_log(true);
    for (size_t p; (p = g.find("iommusim_attach")) != std::string::npos;)
        g.erase(g.rfind('\n', p) + 1, g.find('\n', p) - g.rfind('\n', p));
    REQUIRE(g.find("attach") == std::string::npos);
    ImportReport rep;
    const auto recs = import_pair(g, rep);
    INFO(rep.summary());
    CHECK(rep.ok());
    CHECK(rep.ops_by_kprobe == 4);
    CHECK(rep.ambiguous_total() == 0);
    const auto ops = ops_of(recs);
    REQUIRE(ops.size() == 4);
    CHECK(ops[2] == "unmap 00:02.0 iova=0xfffff000 size=0x1000 domain=1");
    CHECK(ops[3] == "map 00:03.0 iova=0xffffe000 pa=0xc000 size=0x1000 perm=rw domain=2");
}

TEST_CASE("ftrace import with kprobes: the attached device and a numbered domain",
          "[import][kprobe]") {
    TempPath g(".log");
    put(g.path, guest_log(true));
    std::vector<Record> recs;
    const ImportReport rep = import_ftrace({g.path}, [&](const Record& r) { recs.push_back(r); });
    INFO(rep.summary());
    CHECK(rep.ok());
    CHECK(rep.ops_unattributed == 0);
    CHECK(rep.ambiguous_total() == 0);
    CHECK(ops_of(recs) ==
          std::vector<std::string>{
              "map 00:02.0 iova=0xfffff000 pa=0xa000 size=0x1000 perm=rw domain=1",
              "map 00:03.0 iova=0xfffff000 pa=0xb000 size=0x1000 perm=rw domain=2",
              "unmap 00:02.0 iova=0xfffff000 size=0x1000 domain=1",
              "map 00:03.0 iova=0xffffe000 pa=0xc000 size=0x1000 perm=rw domain=2"});
}

TEST_CASE("kprobe pairing: task and CPU, iova and size, a nested map in between",
          "[import][kprobe]") {
    // Task 73's kprobe, then an interrupt on the same CPU maps something else (its own kprobe
    // and event), then 73's event; task 80's event has no kprobe; a kprobe of a failed map is
    // followed by nothing; probes of other functions and return probes are not these.
    TempPath g(".log");
    put(g.path,
        "  dd-73 [000] d..1. 5.000000: p1: (__iommu_map+0x0/0x1a0) domain=0xaaa0 iova=0x1000 "
        "paddr=0x5000 size=0x1000\n"
        "  dd-73 [000] d.h1. 5.000001: p1: (__iommu_map+0x0/0x1a0) domain=0xbbb0 iova=0x8000 "
        "paddr=0x6000 size=0x2000\n"
        "  dd-73 [000] d.h1. 5.000002: map: IOMMU: iova=0x8000 - 0xa000 paddr=0x6000 "
        "size=8192\n"
        "  dd-73 [000] ..... 5.000003: map: IOMMU: iova=0x1000 - 0x2000 paddr=0x5000 "
        "size=4096\n"
        "  kw-80 [001] ..... 5.000004: map: IOMMU: iova=0x3000 - 0x4000 paddr=0x7000 "
        "size=4096\n"
        "  dd-73 [000] d..1. 5.000005: p1: (__iommu_map+0x0/0x1a0) domain=0xaaa0 iova=0x9000 "
        "paddr=0x5000 size=4096\n"
        "  dd-73 [000] d..1. 5.000006: other: (kfree+0x0/0x30) x=1\n"
        "  dd-73 [000] d..1. 5.000007: r1: (iommu_map+0x4c/0x90 <- __iommu_map) arg1=0x0\n");
    ImportReport rep;
    const GuestTrace t = read_ftrace({g.path}, rep);
    INFO(rep.summary());
    CHECK(rep.ok());
    CHECK(t.kprobes);
    REQUIRE(t.ops.size() == 3);
    CHECK(t.ops[0].domain_ptr == 0xbbb0u);  // the interrupt's
    CHECK(t.ops[1].domain_ptr == 0xaaa0u);  // task 73's, across the interrupt
    CHECK(!t.ops[2].domain_ptr);            // task 80 had no kprobe
    CHECK(rep.ops_kprobe == 2);
    CHECK(rep.ops_without_kprobe == 1);
    CHECK(rep.kprobes_unpaired == 1);  // the map at 0x9000 never happened
    CHECK(rep.skipped == 2);           // kfree's probe and the return probe
}

TEST_CASE("malformed kprobe lines are errors naming file:line", "[import][kprobe]") {
    TempPath g(".log");
    put(g.path,
        "  dd-73 [000] d..1. 5.000000: p1: (__iommu_map+0x0/0x1a0) domain=0xaaa0 iova=0x1000 "
        "size=0x1000\n"
        "  dd-73 [000] d..1. 5.000001: p2: (__iommu_unmap+0x0/0x120) iova=0x1000 size=4096\n"
        "  swapper/0-1 [000] ..... 1.0: p3: (intel_iommu_attach_device+0x0/0x90) "
        "domain=0xaaa0 dev=(fault)\n"
        "  swapper/0-1 [000] ..... 1.1: p3: (intel_iommu_attach_device+0x0/0x90) "
        "domain=0xaaa0 dev=\"INT33C3:00\"\n"
        "  dd-73 [000] d..1. nan: p1: (__iommu_map+0x0/0x1a0) domain=0xaaa0 iova=0x1000 "
        "paddr=0x1 size=4096\n"
        "  swapper/0-1 [000] ..... 1.2: p3: (intel_iommu_attach_device+0x0/0x90) "
        "domain=0xaaa0 dev=\"0000:00:02.0\"\n");
    ImportReport rep;
    const GuestTrace t = read_ftrace({g.path}, rep);
    INFO(rep.summary());
    REQUIRE(rep.errors.size() == 4);
    CHECK(rep.errors[0].str().find(g.path + ":1: p1: expected '(__iommu_map+..) domain=0x.. "
                                            "iova=0x.. paddr=0x.. size=N', got") == 0);
    CHECK(rep.errors[1].str().find(g.path + ":2: p2: expected '(__iommu_unmap+..) domain=0x.. "
                                            "iova=0x.. size=N'") == 0);
    CHECK(rep.errors[2].str().find(g.path + ":3: p3: expected '(intel_iommu_attach_device+..) "
                                            "domain=0x.. dev=\"NAME\"'") == 0);
    CHECK(rep.errors[3].str().find(g.path + ":5: expected a timestamp") == 0);
    // A device that is not a PCI function is noted, not an error; the good attach is kept.
    REQUIRE(t.attach.size() == 1);
    CHECK(t.attach[0].rid == Requester::bdf(0, 2, 0).rid);
    CHECK(t.attach[0].domain_ptr == 0xaaa0u);
    bool noted = false;
    for (const std::string& n : rep.notes)
        noted |= n.find("not a PCI function") != std::string::npos;
    CHECK(noted);
    CHECK(rep.skipped == 0);
}
