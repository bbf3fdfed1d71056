// The canonical iommusim trace: one record per line, human-readable and greppable, streamed
// (never loaded whole), optionally gzip-compressed. Specification: docs/traces.md.
//
//   #iommusim-trace 1 time=ns
//   <time> map   <bdf>[/<pasid>] iova=0x.. pa=0x.. size=0x.. perm=rw domain=<n>
//   <time> unmap <bdf>[/<pasid>] iova=0x.. size=0x.. domain=<n>
//   <time> inval <scope> domain=<n> [pasid=0x..] [addr=0x.. order=<n>] [rid=<bdf>]
//   <time> dma   <bdf>[/<pasid>] iova=0x.. size=<n>|? dir=r|w|? [pa=0x..]
//   <time> fault <bdf>[/<pasid>] iova=0x.. reason=0x.. [dir=r|w|?]
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/invalidation.h"
#include "core/types.h"

namespace iommusim::trace {

constexpr int kVersion = 1;

enum class Kind : uint8_t { Map, Unmap, Invalidate, Dma, Fault };
enum class Dir : uint8_t { Read, Write, Unknown };

struct Record {
    Kind kind = Kind::Dma;
    uint64_t time_ns = 0;
    Requester req;  // map/unmap/dma/fault
    Addr iova = 0;
    uint64_t size = 0;  // bytes; dma: 0 with size_known = false when not recorded
    bool size_known = true;
    Addr pa = 0;  // map: target; dma: the recorded translation when has_pa
    bool has_pa = false;
    Perm perm = kPermNone;    // map
    uint32_t domain = 0;      // map/unmap/inval
    Dir dir = Dir::Unknown;   // dma/fault
    uint16_t reason = 0;      // fault: the architecture's reason code
    InvalidationScope scope;  // inval
};

// Where a reader found a problem: "file:line: what was expected".
struct ParseError {
    std::string file;
    uint64_t line = 0;
    std::string what;
    std::string str() const;
};

class Writer {
public:
    // Path ending in .gz: gzip-compressed. `source` is written as a comment after the header.
    // Throws std::runtime_error naming the path when it cannot be written.
    explicit Writer(const std::string& path, const std::string& source = "");
    ~Writer();
    void write(const Record& r);
    void comment(const std::string& text);
    void close();  // flushes; throws on I/O errors
    uint64_t records() const { return records_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    uint64_t records_ = 0;
};

class Reader {
public:
    enum class OnError { Stop, Skip };
    // Opens (gzip or plain, detected from the content); throws std::runtime_error naming the
    // path when it cannot be read or the header is not an iommusim trace of a known version.
    explicit Reader(const std::string& path, OnError on_error = OnError::Stop);
    ~Reader();
    // The next record; false at the end or, with OnError::Stop, at the first bad line (see
    // errors()). With Skip, bad lines are recorded in errors() and reading goes on.
    bool next(Record& r);
    const std::vector<ParseError>& errors() const { return errors_; }
    uint64_t line() const { return line_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::vector<ParseError> errors_;
    uint64_t line_ = 0;
    OnError on_error_;
};

// One record as its trace line (without the newline), and back (nullopt-like: false + error).
std::string format(const Record& r);
bool parse(const std::string& line, Record& r, std::string* error);

}  // namespace iommusim::trace
