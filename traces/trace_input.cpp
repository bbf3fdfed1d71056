// A file's bytes, plain or gunzipped, with truncation and trailing garbage as errors.
#include "traces/trace_input.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace iommusim::trace::detail {

namespace {
constexpr size_t kInBuffer = 128 * 1024;
}  // namespace

struct Input::Impl {
    int fd = -1;
    bool gz = false;
    bool member = false;  // inside a gzip member (between members otherwise)
    bool zinit = false;
    bool in_eof = false;
    bool failed = false;
    z_stream zs{};  // next_in/avail_in are the unread raw bytes, in both modes
    std::unique_ptr<unsigned char[]> in{new unsigned char[kInBuffer]};
    std::string error;

    ~Impl() {
        if (zinit) inflateEnd(&zs);
        if (fd >= 0) ::close(fd);
    }

    long fail(std::string why, size_t produced) {
        error = std::move(why);
        failed = true;
        return produced ? long(produced) : -1;
    }

    // Keeps the unread raw bytes (moved to the front) and reads more after them. False on a
    // read error; sets in_eof at the end of the file.
    bool refill() {
        if (zs.avail_in && zs.next_in != in.get()) std::memmove(in.get(), zs.next_in, zs.avail_in);
        zs.next_in = in.get();
        for (;;) {
            const ssize_t n = ::read(fd, in.get() + zs.avail_in, kInBuffer - zs.avail_in);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return false;
            if (n == 0) in_eof = true;
            zs.avail_in += uInt(n);
            return true;
        }
    }

    long read_plain(char* buf, size_t n) {
        if (zs.avail_in) {  // the bytes read to look for the gzip magic
            const size_t k = std::min<size_t>(n, zs.avail_in);
            std::memcpy(buf, zs.next_in, k);
            zs.next_in += k;
            zs.avail_in -= uInt(k);
            return long(k);
        }
        if (in_eof) return 0;
        for (;;) {
            const ssize_t got = ::read(fd, buf, n);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) return fail(std::string("read error (") + std::strerror(errno) + ")", 0);
            if (got == 0) in_eof = true;
            return long(got);
        }
    }

    long read_gzip(char* buf, size_t n) {
        zs.next_out = reinterpret_cast<Bytef*>(buf);
        zs.avail_out = uInt(std::min<size_t>(n, 1u << 30));
        const uInt want = zs.avail_out;
        auto produced = [&] { return size_t(want - zs.avail_out); };
        for (;;) {
            if (!member) {
                if (zs.avail_in < 2 && !in_eof) {
                    if (!refill())
                        return fail(std::string("read error (") + std::strerror(errno) + ")",
                                    produced());
                    continue;
                }
                if (zs.avail_in == 0) return long(produced());  // the end, after a whole member
                if (zs.avail_in < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b)
                    return fail(
                        "trailing data after the end of the gzip stream (not a gzip member)",
                        produced());
                if (inflateReset(&zs) != Z_OK) return fail("zlib error", produced());
                member = true;
            }
            if (zs.avail_in == 0 && !in_eof && !refill())
                return fail(std::string("read error (") + std::strerror(errno) + ")", produced());
            const int ret = inflate(&zs, Z_NO_FLUSH);
            if (ret == Z_STREAM_END) {
                member = false;  // another member may follow
                if (zs.avail_out == 0) return long(produced());
                continue;
            }
            if (ret != Z_OK && ret != Z_BUF_ERROR)
                return fail(std::string("truncated or corrupt gzip data (") +
                                (zs.msg ? zs.msg : "zlib error " + std::to_string(ret)) + ")",
                            produced());
            if (zs.avail_out == 0) return long(produced());
            // Output room left and no input left: inflate waits for bytes that will never come.
            if (zs.avail_in == 0 && in_eof)
                return fail("truncated or corrupt gzip data (unexpected end of file)", produced());
            if (ret == Z_BUF_ERROR && zs.avail_in)  // no progress with input and room: stuck
                return fail("truncated or corrupt gzip data (zlib made no progress)", produced());
        }
    }
};

Input::Input(const std::string& path) : impl_(new Impl) {
    Impl& im = *impl_;
    im.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (im.fd < 0) throw std::runtime_error(std::strerror(errno));
    im.zs.next_in = im.in.get();
    // The first bytes say whether it is gzip; a read error shows at the first read().
    while (im.zs.avail_in < 2 && !im.in_eof)
        if (!im.refill()) {
            im.fail(std::string("read error (") + std::strerror(errno) + ")", 0);
            return;
        }
    im.gz = im.zs.avail_in >= 2 && im.in[0] == 0x1f && im.in[1] == 0x8b;
    if (im.gz) {
        if (inflateInit2(&im.zs, 16 + MAX_WBITS) != Z_OK)
            throw std::runtime_error("zlib cannot start");
        im.zinit = true;
        im.zs.next_in = im.in.get();  // inflateInit2 leaves next_in alone, but be explicit
    }
}

Input::~Input() = default;

long Input::read(char* buf, size_t n) {
    Impl& im = *impl_;
    if (im.failed) return -1;
    if (n == 0) return 0;
    return im.gz ? im.read_gzip(buf, n) : im.read_plain(buf, n);
}

const std::string& Input::error() const {
    return impl_->error;
}

bool Input::gzip() const {
    return impl_->gz;
}

}  // namespace iommusim::trace::detail
