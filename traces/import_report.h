// What an import produced and what it could not use (ImportReport), and the sink importers
// deliver records to. Specification of the importers: docs/traces.md, "Importers".
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "traces/trace.h"

namespace iommusim::trace {

// What an import produced and what it could not use.
struct ImportReport {
    std::array<uint64_t, 5> records{};  // per Kind (map, unmap, inval, dma, fault)
    uint64_t lines = 0;                 // input lines read
    uint64_t skipped = 0;               // lines that are not events the importer uses
    std::vector<ParseError> errors;     // malformed lines and inputs that contradict each other
    uint64_t errors_unlisted = 0;       // past kMaxErrors, errors are counted, not listed
    std::vector<std::string> notes;     // what the output leaves unknown, and why

    // DMA records whose access size / direction the inputs gave (the rest say size=? / dir=?).
    uint64_t dma_sized = 0, dma_unsized = 0;
    uint64_t dma_dir_known = 0, dma_dir_unknown = 0;

    // QEMU join: how each guest map/unmap was placed on the QEMU timeline.
    uint64_t ops_anchored = 0;      // at the IOTLB invalidation the guest issued for it
    uint64_t ops_interpolated = 0;  // by guest-clock offset, inside the window the DMAs allow
    uint64_t ops_unattributed = 0;  // qemu-vtd: domain unknown (written as domain 0); ftrace:
                                    // device unknown (written as 00:00.0)

    // Guest kprobes (__iommu_map/__iommu_unmap, intel_iommu_attach_device), when traced.
    uint64_t ops_kprobe = 0;          // map/unmap paired with the kprobe naming its domain
    uint64_t ops_without_kprobe = 0;  // map/unmap of a trace with kprobes that lacked its own
    uint64_t kprobes_unpaired = 0;    // __iommu_map/_unmap kprobes no map/unmap event followed
    uint64_t ops_by_kprobe = 0;       // map/unmap whose written domain the kprobe decided

    // Map/unmap whose domain the inputs do not decide (counted once each, by the first
    // reason): an unmap over mappings of several domains that took the most recent one, a map
    // whose translations name two domains, a map/unmap written without a domain.
    uint64_t ambiguous_unmaps = 0, ambiguous_maps = 0, ambiguous_none = 0;
    std::vector<std::string> ambiguous_examples;  // "file:line: what", the first few
    static constexpr size_t kMaxExamples = 5;
    void ambiguous(uint64_t& counter, std::string example);
    uint64_t ambiguous_total() const { return ambiguous_unmaps + ambiguous_maps + ambiguous_none; }

    static constexpr size_t kMaxErrors = 1000;
    void error(const std::string& file, uint64_t line, std::string what);
    bool ok() const { return errors.empty() && !errors_unlisted; }
    uint64_t count(Kind k) const { return records[size_t(k)]; }
    uint64_t total() const;
    // A few lines for a terminal: counts, then the first errors and the notes.
    std::string summary(size_t max_errors = 10) const;
};

// Where importers deliver records, in time order. The Writer overloads wrap one of these.
using RecordSink = std::function<void(const Record&)>;

// Counts `r` into `report` and hands it on.
void emit(const Record& r, const RecordSink& sink, ImportReport& report);

}  // namespace iommusim::trace
