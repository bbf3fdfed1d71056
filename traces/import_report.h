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
    uint64_t ops_unattributed = 0;  // requester/domain unknown: written as 00:00.0 domain 0

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
