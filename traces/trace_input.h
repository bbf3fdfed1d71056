// Internal to the trace library: the bytes of an input file, gunzipped when it is gzip. Both
// the trace Reader and the importers' LineSource read through it.
//
// zlib's gzread is not used because it ignores what follows a gzip stream (any garbage after
// the last member reads as a clean end of file) and a cut-off stream reads as a short file
// unless every caller checks gzerror for Z_BUF_ERROR. Here both are errors:
//   - gzip is recognised by its magic bytes (1f 8b) at the start, whatever the file's name;
//   - members one after another (`cat a.gz b.gz`, pigz, bgzip) are legal gzip and read as one
//     stream, as gzip -d does;
//   - bytes after a member that do not start another member, a stream cut off before its
//     trailer (truncated), and data that does not decode or fails its CRC are errors.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace iommusim::trace::detail {

class Input {
public:
    // Throws std::runtime_error saying why (strerror) when the file cannot be opened.
    explicit Input(const std::string& path);
    ~Input();
    Input(const Input&) = delete;
    Input& operator=(const Input&) = delete;

    // Up to `n` bytes into `buf`: the count, 0 at the end of the data, -1 on an error (then
    // error() says what; every later call returns -1). Bytes decoded before an error are
    // returned first; the error comes with the next call.
    long read(char* buf, size_t n);
    // "truncated gzip data (unexpected end of file)", "corrupt gzip data (...)", "data after
    // the end of the gzip stream (not a gzip member)", "read error (...)".
    const std::string& error() const;
    bool gzip() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace iommusim::trace::detail
