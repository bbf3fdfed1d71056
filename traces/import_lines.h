// The importers' line reader: an input text file, plain or gzip, line by line, with NUL bytes
// and overlong lines reported at their line.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "traces/import_report.h"

namespace iommusim::trace {

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

}  // namespace iommusim::trace
