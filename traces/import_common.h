// What the importers (QEMU vtd_* log, Linux ftrace) share: the report they return, the sink
// they write records to, a line source that reads plain or gzip text, and the small field
// parsers their line formats need. Specification of the importers: docs/traces.md, "Importers".
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

// Reads an input text file line by line, plain or gzip (recognised by its magic bytes;
// members one after another read as one stream). The newline (and a CR before it) is removed.
// Every line is counted in report.lines. A line holding a NUL byte or longer than kMaxLine is
// an error in `report` (file:line) and is not returned: a NUL is not text, and must not hide
// or join what follows it.
class LineSource {
public:
    static constexpr size_t kMaxLine = 1 << 20;
    // Throws std::runtime_error naming the path when it cannot be opened.
    LineSource(const std::string& path, ImportReport& report);
    ~LineSource();
    // False at the end. Throws std::runtime_error "path:line: what" on a read error, a
    // truncated or corrupt gzip stream, or data after its end: an import of part of a file
    // would look complete.
    bool next(std::string& line);
    uint64_t line() const { return line_; }
    const std::string& path() const { return path_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string path_;
    uint64_t line_ = 0;
};

namespace import {

// An unsigned number at the start of `s`: 0x-prefixed hex or decimal. Sets `used` to the
// characters consumed. nullopt if there is none or it overflows 64 bits.
std::optional<uint64_t> number(std::string_view s, size_t* used = nullptr);
std::optional<uint64_t> hex(std::string_view s, size_t* used = nullptr);  // without 0x

// The number after the word `key` in `args`: "key 0x10", "key=0x10" and "key = 5" all match,
// `key` must start a word (so "addr" does not match inside "dbs_addr"). Later occurrences are
// tried when the first is not followed by a number ("config controller config=0x1").
std::optional<uint64_t> field(std::string_view args, std::string_view key);
// The same for values printed in hex without a prefix (Linux dma:* events print "%llx").
std::optional<uint64_t> hex_field(std::string_view args, std::string_view key);
// Where the value of `key` starts in `args` (after the blanks or '='), or npos.
size_t value_pos(std::string_view args, std::string_view key);

// Seconds with a fraction ("1795289230.276783", "1.379440") as integer nanoseconds; exact for
// up to 9 fractional digits, later digits truncated. nullopt unless digits '.' digits.
std::optional<uint64_t> seconds_ns(std::string_view s);

// A PCI function "BB:DD.F", "BB:DD.FF" (QEMU prints the function with two digits) or with a
// segment "SSSS:BB:DD.F", as a requester ID.
std::optional<uint16_t> bdf(std::string_view s);

// `s` without leading and trailing blanks.
std::string_view trim(std::string_view s);

}  // namespace import
}  // namespace iommusim::trace
