// libFuzzer target for the trace reader (build with -DIOMMUSIM_FUZZ=ON and clang).
//
// Each input goes two ways:
//  1. every line through parse(); a line that parses must format to a line that parses back
//     to the same text (format and parse agree on everything the parser accepts);
//  2. the whole input as a file through Reader, from an in-memory file (memfd) so that no
//     disk is touched. The first byte chooses how: bit 0 prepends the header (so the fuzzer
//     reaches records at once), bit 1 gzip-compresses the rest, bit 2 selects Skip over Stop,
//     bits 3-7 cut that many bytes off the end (truncated gzip streams).
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "traces/trace.h"

using namespace iommusim::trace;

namespace {

void check(bool ok, const char* what, std::string_view line) {
    if (ok) return;
    std::fprintf(stderr, "trace_fuzz: %s: '%.*s'\n", what, int(line.size()), line.data());
    std::abort();
}

void lines_through_parse(std::string_view data) {
    Record r, back;
    std::string why;
    while (!data.empty()) {
        const size_t nl = data.find('\n');
        const std::string line(data.substr(0, nl));
        data.remove_prefix(nl == std::string_view::npos ? data.size() : nl + 1);
        if (!parse(line, r, &why)) {
            check(!why.empty(), "parse failed without saying why", line);
            continue;
        }
        const std::string text = format(r);  // throws (and so crashes) if not representable
        check(parse(text, back, &why), "formatted record does not parse", text);
        check(format(back) == text, "format/parse round trip differs", text);
    }
}

std::string gzip(std::string_view data) {
    z_stream zs{};
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
    std::string out(deflateBound(&zs, uLong(data.size())), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = uInt(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
    zs.avail_out = uInt(out.size());
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

void file_through_reader(const uint8_t* data, size_t size) {
    static const int fd = memfd_create("trace_fuzz", 0);
    static const std::string path = "/proc/self/fd/" + std::to_string(fd);
    if (fd < 0 || size == 0) return;
    const uint8_t mode = data[0];
    std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
    if (mode & 1) body = "#iommusim-trace 1 time=ns\n" + body;
    if (mode & 2) body = gzip(body);
    body.resize(body.size() - std::min<size_t>(body.size(), mode >> 3));
    if (ftruncate(fd, 0) != 0 || pwrite(fd, body.data(), body.size(), 0) != ssize_t(body.size()))
        std::abort();

    try {
        Reader in(path, mode & 4 ? Reader::OnError::Skip : Reader::OnError::Stop);
        Record r;
        uint64_t last = 0;
        while (in.next(r)) {
            check(r.time_ns >= last, "records out of time order", "");
            last = r.time_ns;
            (void)format(r);
        }
        for (const ParseError& e : in.errors()) check(!e.str().empty(), "empty error", "");
        check(mode & 4 || in.errors().size() <= 1, "Stop reported more than one error", "");
    } catch (const std::runtime_error&) {
        // Not a trace (bad header, unreadable): the reader says so and that is all.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    lines_through_parse(std::string_view(reinterpret_cast<const char*>(data), size));
    file_through_reader(data, size);
    return 0;
}
