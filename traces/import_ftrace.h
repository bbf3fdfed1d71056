// Importer of a Linux ftrace text dump (the `trace` file, trace_pipe, or the console with
// tp_printk) of the iommu:map, iommu:unmap and iommu:io_page_fault events, and of the dma:*
// events of kernels that have them. Specification: docs/traces.md, "Importers".
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "traces/import_report.h"

namespace iommusim::trace {

// Records in guest time (ns since the guest's trace clock started). iommu:map/unmap name no
// device: a kprobe on __iommu_map/__iommu_unmap paired with the event names its domain, and
// one on intel_iommu_attach_device the devices attached to that domain (written with the first
// of them and the domain numbered 1, 2, ... in order of first appearance); else a dma:* event
// of the same mapping names the device; else they are written with requester 00:00.0 and
// domain 0 (counted in ImportReport::ops_unattributed).
ImportReport import_ftrace(const std::vector<std::string>& paths, Writer& out);
ImportReport import_ftrace(const std::vector<std::string>& paths, const RecordSink& sink);

// ---- The parsed dump, shared with the QEMU importer ----

// One guest event that changes or reports on the mappings.
struct GuestOp {
    enum class Type : uint8_t { Map, Unmap, Fault };
    Type type = Type::Map;
    uint64_t guest_ns = 0;
    Addr iova = 0;
    uint64_t size = 0;
    Addr pa = 0;                  // map
    Perm perm = kPermR | kPermW;  // map: from dma:* direction; iommu:map has none (rw)
    std::optional<uint16_t> rid;  // from a dma:* or io_page_fault device name
    // The guest's struct iommu_domain pointer, from the __iommu_map/__iommu_unmap kprobe
    // paired with this event.
    std::optional<uint64_t> domain_ptr;
    Dir dir = Dir::Unknown;  // fault
    uint32_t file = 0;       // index into GuestTrace::files
    uint64_t line = 0;
};

// One intel_iommu:qi_submit: a descriptor the guest queued for the IOMMU (words 0 and 1; QEMU
// logs the same two in its vtd_inv_desc). A clock anchor for the QEMU importer.
struct QiSubmit {
    uint64_t guest_ns = 0;
    uint64_t qw0 = 0, qw1 = 0;
    uint32_t file = 0;
    uint64_t line = 0;
};

// One block:block_rq_issue or block_rq_complete with sectors (flushes and the like: not kept).
struct BlockRq {
    uint64_t guest_ns = 0;
    uint32_t dev = 0;  // major << 20 | minor
    uint64_t sector = 0, sectors = 0;
    bool write = false, complete = false;
};

// One intel_iommu_attach_device kprobe: `rid` joins the domain at `domain_ptr` (and leaves the
// one it was attached to before).
struct Attach {
    uint64_t guest_ns = 0;
    uint64_t domain_ptr = 0;
    uint16_t rid = 0;
};

struct GuestTrace {
    std::vector<GuestOp> ops;    // in guest time order (stable across files)
    std::vector<QiSubmit> qi;    // in guest time order
    std::vector<BlockRq> block;  // in guest time order
    std::vector<Attach> attach;  // in guest time order
    // __iommu_map/__iommu_unmap kprobes were traced: ops without domain_ptr lost their kprobe.
    bool kprobes = false;
    // The timestamps are raw counts without a unit (trace_clock=x86-tsc or counter): guest_ns
    // then holds the count. Decided per file: raw when no event line has SECONDS.FRACTION.
    bool raw_clock = false;
    std::vector<std::string> files;
    std::string where(const GuestOp& op) const {
        return files[op.file] + ":" + std::to_string(op.line);
    }
};

// Reads the dumps; lines that are not these events are counted in report.skipped, malformed
// event lines are reported in report.errors. Throws std::runtime_error if a file cannot be read.
GuestTrace read_ftrace(const std::vector<std::string>& paths, ImportReport& report);

// The devices attached to domain `ptr` at guest time `ns`, by the attach kprobes: each device
// whose latest attach at or before `ns` (or, if it has none by then, whose first attach) named
// `ptr`. In order of requester ID.
std::vector<uint16_t> attached(const GuestTrace& t, uint64_t ptr, uint64_t ns);

}  // namespace iommusim::trace
