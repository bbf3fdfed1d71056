// LineSource: plain or gzip text, line by line, in fixed chunks.
#include "traces/import_lines.h"

#include <cstring>
#include <stdexcept>

#include "traces/trace_input.h"
#include "traces/trace_line.h"

namespace iommusim::trace {

namespace {
constexpr size_t kReadChunk = 256 * 1024;
}  // namespace

struct LineSource::Impl {
    explicit Impl(const std::string& path) : in(path) {}
    detail::Input in;
    ImportReport* report = nullptr;
    std::unique_ptr<char[]> buf{new char[kReadChunk]};
    size_t pos = 0, end = 0;
    bool eof = false;
};

LineSource::LineSource(const std::string& path, ImportReport& report) : path_(path) {
    try {
        impl_ = std::make_unique<Impl>(path);
    } catch (const std::runtime_error& e) {
        throw std::runtime_error("cannot read '" + path + "': " + e.what());
    }
    impl_->report = &report;
}

LineSource::~LineSource() = default;

bool LineSource::next(std::string& line) {
    Impl& im = *impl_;
    for (;;) {
        line.clear();
        bool any = false, too_long = false;
        for (;;) {
            if (im.pos == im.end) {
                if (im.eof) break;
                const long n = im.in.read(im.buf.get(), kReadChunk);
                if (n < 0)
                    throw std::runtime_error(path_ + ":" + std::to_string(line_ + 1) + ": " +
                                             im.in.error());
                if (n == 0) {
                    im.eof = true;
                    break;
                }
                im.pos = 0;
                im.end = size_t(n);
            }
            any = true;
            const char* base = im.buf.get();
            const void* nl = std::memchr(base + im.pos, '\n', im.end - im.pos);
            const size_t stop = nl ? size_t(static_cast<const char*>(nl) - base) : im.end;
            if (!too_long && line.size() + (stop - im.pos) > kMaxLine) {
                too_long = true;  // the rest of it is dropped as it comes, never held
                line.clear();
            }
            if (!too_long) line.append(base + im.pos, stop - im.pos);
            im.pos = nl ? stop + 1 : im.end;
            if (nl) break;
        }
        if (!any) return false;
        ++line_;
        ++im.report->lines;
        if (too_long) {
            im.report->error(path_, line_,
                             "line longer than " + std::to_string(kMaxLine) + " bytes, not used");
            continue;
        }
        if (const void* nul = std::memchr(line.data(), '\0', line.size())) {
            const size_t at = size_t(static_cast<const char*>(nul) - line.data());
            im.report->error(path_, line_,
                             "NUL byte at column " + std::to_string(at + 1) +
                                 " (not a line of text), line not used: " + detail::quoted(line));
            continue;
        }
        while (!line.empty() && line.back() == '\r') line.pop_back();
        return true;
    }
}

}  // namespace iommusim::trace
