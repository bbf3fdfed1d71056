// Streaming reader and writer of the canonical trace. The writer goes through zlib's gzFile
// (mode "T" writes plain text), the reader through detail::Input, which reports a cut-off
// gzip stream and bytes after it (gzread would not). The reader holds one fixed buffer, never
// the whole file.
#include "traces/trace.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "traces/trace_input.h"
#include "traces/trace_line.h"

namespace iommusim::trace {

namespace {

constexpr const char* kHeader = "#iommusim-trace 1 time=ns";
constexpr unsigned kGzBuffer = 128 * 1024;
constexpr size_t kReadChunk = 256 * 1024;
constexpr size_t kWriteFlush = 64 * 1024;
// Past this many bad lines, Skip keeps counting but stops listing them (memory stays flat).
constexpr size_t kMaxErrors = 1000;

bool ends_with(const std::string& s, const char* suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// zlib's message for the last error on `gz`, or the OS's when zlib says it was one.
std::string gz_message(gzFile gz, int* code = nullptr) {
    int err = Z_OK;
    const char* msg = gz ? gzerror(gz, &err) : nullptr;
    if (code) *code = err;
    if (err == Z_ERRNO || !msg || !*msg) return std::strerror(errno);
    return msg;
}

}  // namespace

std::string ParseError::str() const {
    return file + ":" + std::to_string(line) + ": " + what;
}

std::string format(const Record& r) {
    std::string why;
    if (!detail::representable(r, &why))
        throw std::invalid_argument("trace record cannot be written: " + why);
    std::string out;
    detail::append_line(out, r);
    return out;
}

bool parse(const std::string& line, Record& r, std::string* error) {
    std::string_view v = line;
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.remove_suffix(1);
    return detail::parse_line(v, r, error);
}

// ---- Writer ----

struct Writer::Impl {
    std::string path;
    gzFile gz = nullptr;
    std::string buf;
    uint64_t last_time = 0;

    void flush() {
        if (buf.empty()) return;
        if (gzwrite(gz, buf.data(), unsigned(buf.size())) != int(buf.size()))
            throw std::runtime_error("cannot write trace '" + path + "': " + gz_message(gz));
        buf.clear();
    }
    void check_open() const {
        if (!gz) throw std::runtime_error("trace '" + path + "' is already closed");
    }
    // Each line of `text` as its own comment line, so a comment cannot inject records.
    void put_comment(const std::string& text) {
        for (size_t start = 0;;) {
            const size_t nl = text.find('\n', start);
            const size_t end = nl == std::string::npos ? text.size() : nl;
            buf += '#';
            if (end > start) buf.append(" ").append(text, start, end - start);
            buf += '\n';
            if (nl == std::string::npos) return;
            start = nl + 1;
        }
    }
};

Writer::Writer(const std::string& path, const std::string& source) : impl_(new Impl) {
    impl_->path = path;
    // Level 1: trace text compresses well even so, and the writer must keep up with importers.
    impl_->gz = gzopen(path.c_str(), ends_with(path, ".gz") ? "wb1" : "wbT");
    if (!impl_->gz)
        throw std::runtime_error("cannot write trace '" + path + "': " + std::strerror(errno));
    gzbuffer(impl_->gz, kGzBuffer);
    impl_->buf.reserve(kWriteFlush + 1024);
    impl_->buf = kHeader;
    impl_->buf += '\n';
    if (!source.empty()) impl_->put_comment(source);
}

Writer::~Writer() {
    try {
        close();
    } catch (const std::exception&) {
        // A destructor cannot report; callers that care call close() themselves.
    }
}

void Writer::write(const Record& r) {
    impl_->check_open();
    std::string why;
    if (!detail::representable(r, &why))
        throw std::invalid_argument("trace '" + impl_->path +
                                    "': record cannot be written: " + why);
    if (r.time_ns < impl_->last_time)
        throw std::invalid_argument("trace '" + impl_->path + "': record at " +
                                    std::to_string(r.time_ns) + " ns after one at " +
                                    std::to_string(impl_->last_time) +
                                    " ns (records must be in time order)");
    impl_->last_time = r.time_ns;
    detail::append_line(impl_->buf, r);
    impl_->buf += '\n';
    ++records_;
    if (impl_->buf.size() >= kWriteFlush) impl_->flush();
}

void Writer::comment(const std::string& text) {
    impl_->check_open();
    impl_->put_comment(text);
    if (impl_->buf.size() >= kWriteFlush) impl_->flush();
}

void Writer::close() {
    if (!impl_ || !impl_->gz) return;
    std::string error;
    try {
        impl_->flush();
    } catch (const std::runtime_error& e) {
        error = e.what();
    }
    const int rc = gzclose(impl_->gz);
    impl_->gz = nullptr;
    if (error.empty() && rc != Z_OK)
        error = "cannot write trace '" + impl_->path +
                "': " + (rc == Z_ERRNO ? std::strerror(errno) : "zlib error " + std::to_string(rc));
    if (!error.empty()) throw std::runtime_error(error);
}

// ---- Reader ----

struct Reader::Impl {
    enum class Got { Line, End, TooLong, IoError };

    std::string path;
    std::unique_ptr<detail::Input> in;
    std::unique_ptr<char[]> buf{new char[detail::kMaxLine + kReadChunk]};
    size_t pos = 0, end = 0;  // unread bytes are buf[pos, end)
    bool eof = false;
    bool skipping = false;  // inside an over-long line, dropping bytes up to its newline
    bool stopped = false;
    std::string io_error;
    uint64_t last_time = 0;
    uint64_t unlisted = 0;  // bad lines past kMaxErrors

    bool fill() {
        const long n = in->read(buf.get() + end, detail::kMaxLine + kReadChunk - end);
        if (n > 0) {
            end += size_t(n);
            return true;
        }
        if (n == 0) {
            eof = true;
            return true;
        }
        io_error = in->error() + "; the rest is lost";
        return false;
    }

    // The next line without its newline. A partial line before a read error is dropped: a
    // cut-off line could parse as a different, valid record.
    Got next_line(std::string_view& line) {
        for (;;) {
            const char* base = buf.get();
            const void* nl = std::memchr(base + pos, '\n', end - pos);
            if (skipping) {
                if (nl || eof) {
                    pos = nl ? size_t(static_cast<const char*>(nl) - base) + 1 : end;
                    skipping = false;
                    return Got::TooLong;
                }
                pos = end = 0;
                if (!fill()) return Got::IoError;
                continue;
            }
            if (nl) {
                const size_t at = size_t(static_cast<const char*>(nl) - base), from = pos;
                pos = at + 1;
                // The limit holds however much of the line happened to be in the buffer.
                if (at - from > detail::kMaxLine) return Got::TooLong;
                line = std::string_view(base + from, at - from);
                return Got::Line;
            }
            if (end - pos > detail::kMaxLine) {
                skipping = true;
                pos = end;
                continue;
            }
            if (eof) {
                if (pos == end) return Got::End;
                line = std::string_view(base + pos, end - pos);
                pos = end;
                return Got::Line;
            }
            std::memmove(buf.get(), base + pos, end - pos);
            end -= pos;
            pos = 0;
            if (!fill()) return Got::IoError;
        }
    }
};

Reader::Reader(const std::string& path, OnError on_error) : impl_(new Impl), on_error_(on_error) {
    impl_->path = path;
    try {
        impl_->in = std::make_unique<detail::Input>(path);
    } catch (const std::runtime_error& e) {
        throw std::runtime_error("cannot read trace '" + path + "': " + e.what());
    }

    std::string_view line;
    const auto got = impl_->next_line(line);
    const std::string where = path + ":1: ";
    if (got == Impl::Got::IoError)
        throw std::runtime_error("cannot read trace '" + path + "': " + impl_->io_error);
    if (got == Impl::Got::End)
        throw std::runtime_error(where + "empty file, not an iommusim trace");
    line_ = 1;
    const std::string expected = std::string("expected '") + kHeader + "'";
    if (got == Impl::Got::TooLong)
        throw std::runtime_error(where + "not an iommusim trace (" + expected + ")");
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    const std::string_view magic = "#iommusim-trace ";
    if (line.substr(0, magic.size()) != magic)
        throw std::runtime_error(where + "not an iommusim trace (" + expected + ", got " +
                                 detail::quoted(line) + ")");
    const std::string_view rest = line.substr(magic.size());
    const std::string_view version = rest.substr(0, rest.find(' '));
    if (version != std::to_string(kVersion))
        throw std::runtime_error(where + "trace format version " + detail::quoted(version) +
                                 " is not supported (this build reads version " +
                                 std::to_string(kVersion) + ")");
    if (line != kHeader)
        throw std::runtime_error(where + "unsupported trace header (" + expected + ", got " +
                                 detail::quoted(line) + ")");
}

Reader::~Reader() = default;

bool Reader::next(Record& r) {
    Impl& im = *impl_;
    std::string why;
    auto bad = [&](uint64_t line, std::string what) {
        if (errors_.size() < kMaxErrors) {
            errors_.push_back({im.path, line, std::move(what)});
        } else {
            // One summary entry replaces the rest, so a file of garbage cannot exhaust memory.
            if (++im.unlisted == 1) errors_.push_back({im.path, line, ""});
            errors_.back().line = line;
            errors_.back().what = std::to_string(im.unlisted) +
                                  " more bad lines not listed (this is the last of them)";
        }
        if (on_error_ == OnError::Stop) im.stopped = true;
        return on_error_ == OnError::Skip;
    };
    while (!im.stopped) {
        std::string_view line;
        switch (im.next_line(line)) {
            case Impl::Got::End: return false;
            case Impl::Got::IoError:
                bad(line_ + 1, im.io_error);
                im.stopped = true;
                return false;
            case Impl::Got::TooLong:
                ++line_;
                if (!bad(line_, "line longer than " + std::to_string(detail::kMaxLine) +
                                    " bytes, not a trace record"))
                    return false;
                continue;
            case Impl::Got::Line: ++line_; break;
        }
        size_t first = 0;
        while (first < line.size() &&
               (line[first] == ' ' || line[first] == '\t' || line[first] == '\r'))
            ++first;
        if (first == line.size() || line[first] == '#') continue;  // blank or comment
        if (!detail::parse_line(line, r, &why)) {
            if (!bad(line_, std::move(why))) return false;
            continue;
        }
        if (r.time_ns < im.last_time) {
            if (!bad(line_,
                     "time goes backwards: expected time >= " + std::to_string(im.last_time) +
                         " ns, got " + std::to_string(r.time_ns)))
                return false;
            continue;
        }
        im.last_time = r.time_ns;
        return true;
    }
    return false;
}

}  // namespace iommusim::trace
