// dma-bench, the pcie-bench methodology (Neugebauer et al., SIGCOMM 2018) as a simulated
// device: DMA reads or writes of `size` bytes into a host buffer window of `window` bytes.
// The window is divided into units (size + offset, rounded up to a 64-byte cache line); each
// transfer accesses one unit at `offset` from its start, units taken in order (sequential)
// or uniformly at random from a seeded generator. Bandwidth runs keep as many transfers in
// flight as the engine's tags allow; latency runs (outstanding = 1) issue one at a time.
// Plain C++ (parameters and the address sequence), header-only for the unit tests.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ats_params.h"
#include "core/config.h"
#include "core/types.h"

namespace iommusim {

enum class DmaOp : uint8_t { Read, Write };
enum class DmaPattern : uint8_t { Sequential, Random, Strided, Zipf };

inline const char* to_string(DmaOp o) {
    return o == DmaOp::Write ? "write" : "read";
}
inline const char* to_string(DmaPattern p) {
    switch (p) {
        case DmaPattern::Random: return "random";
        case DmaPattern::Strided: return "strided";
        case DmaPattern::Zipf: return "zipf";
        case DmaPattern::Sequential: break;
    }
    return "sequential";
}
inline std::optional<DmaOp> parse_dma_op(std::string_view s) {
    if (s == "read") return DmaOp::Read;
    if (s == "write") return DmaOp::Write;
    return std::nullopt;
}
inline std::optional<DmaPattern> parse_dma_pattern(std::string_view s) {
    if (s == "sequential" || s == "seq") return DmaPattern::Sequential;
    if (s == "random" || s == "rand") return DmaPattern::Random;
    if (s == "strided") return DmaPattern::Strided;
    if (s == "zipf") return DmaPattern::Zipf;
    return std::nullopt;
}

// So that configuration files and `iommusim params` read and list the names.
template <>
struct EnumParam<DmaOp> {
    static std::optional<DmaOp> parse(std::string_view s) { return parse_dma_op(s); }
    static std::string name(DmaOp o) { return to_string(o); }
    static std::vector<DmaOp> values() { return {DmaOp::Read, DmaOp::Write}; }
};
template <>
struct EnumParam<DmaPattern> {
    static std::optional<DmaPattern> parse(std::string_view s) { return parse_dma_pattern(s); }
    static std::string name(DmaPattern p) { return to_string(p); }
    static std::vector<DmaPattern> values() {
        return {DmaPattern::Sequential, DmaPattern::Random, DmaPattern::Strided, DmaPattern::Zipf};
    }
};

struct DmaBenchParams {
    static constexpr uint32_t kLine = 64;  // units start on cache lines, as in pcie-bench

    DmaOp op = DmaOp::Read;
    uint32_t size = 64;         // bytes per transfer
    uint64_t window = 1 << 16;  // host buffer bytes the transfers spread over
    DmaPattern pattern = DmaPattern::Random;
    uint32_t offset = 0;       // bytes from the start of a unit (unaligned DMA)
    uint64_t count = 100000;   // transfers; 0 = until `duration_ns`
    uint64_t duration_ns = 0;  // stop submitting after this long; 0 = until `count`
    uint32_t outstanding = 0;  // transfers in flight; 0 = as many as the tags allow
    uint64_t seed = 1;
    uint64_t stride = 4096;                      // strided: bytes between consecutive transfers
    double zipf_s = 1.0;                         // zipf: skew exponent
    uint32_t bus = 1, device = 0, function = 0;  // requester BDF
    AtsParams ats;                               // the function's ATS/PRI (off by default)

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("op", op, "", "read (host -> device) or write (device -> host)", 0, 1);
        v("size", size, "bytes", "bytes per DMA transfer", 1, 1 << 30);
        v("window", window, "bytes", "host buffer window the transfers spread over", 64,
          uint64_t(1) << 48);
        v("pattern", pattern, "",
          "unit order: sequential, random, strided or zipf (over the footprint)", 0, 3);
        v("stride", stride, "bytes",
          "strided: distance between consecutive transfers (rounded to units)", 1,
          uint64_t(1) << 40);
        v("zipf_s", zipf_s, "",
          "zipf: skew exponent s > 0 (unit k has weight 1/k^s, hottest first)", 0.01, 10.0);
        v("offset", offset, "bytes", "start of each transfer within its unit", 0, 4095);
        v("count", count, "transfers", "transfers to issue; 0 = until duration_ns", 0,
          uint64_t(1) << 48);
        v("duration_ns", duration_ns, "ns", "stop submitting after this long; 0 = until count", 0,
          uint64_t(1) << 48);
        v("outstanding", outstanding, "transfers",
          "transfers in flight; 0 = as many as tags allow (bandwidth), 1 = latency test", 0,
          1 << 20);
        v("seed", seed, "", "random pattern seed", 0, ~uint64_t(0));
        v("requester.bus", bus, "", "requester bus number", 0, 255);
        v("requester.device", device, "", "requester device number", 0, 31);
        v("requester.function", function, "", "requester function number", 0, 7);
        ats.visit(v);
    }

    uint64_t unit_bytes() const { return (uint64_t(offset) + size + kLine - 1) / kLine * kLine; }
    uint64_t units() const { return window / unit_bytes(); }
    Requester requester() const { return Requester::bdf(bus, device, function); }

    // Ranges, at least one stop condition, and a window holding at least one unit;
    // otherwise false with the reason in *why.
    bool valid(std::string* why = nullptr) const {
        const char* bad = size < 1 || size > (1u << 30) ? "size out of 1..2^30"
                          : offset > 4095               ? "offset above 4095"
                          : !count && !duration_ns      ? "count and duration_ns both 0"
                          : bus > 255 || device > 31 || function > 7 ? "requester out of range"
                          : window < unit_bytes()
                              ? "window smaller than one unit (size + offset, cache-line rounded)"
                          : op > DmaOp::Write || pattern > DmaPattern::Zipf ? "bad op or pattern"
                          : !(zipf_s > 0)                                   ? "zipf_s must be > 0"
                                                                            : nullptr;
        if (bad && why) *why = std::string("dma-bench: ") + bad;
        if (bad) return false;
        if (const std::string a = ats.check(); !a.empty()) {
            if (why) *why = "dma-bench: " + a;
            return false;
        }
        return true;
    }
};

// The address of each transfer, in issue order. Random draws use splitmix64 and a
// multiply-shift range reduction so every platform produces the same sequence for a seed.
class DmaBenchPattern {
public:
    DmaBenchPattern(const DmaBenchParams& p, Addr base)
        : base_(base + p.offset),
          unit_(p.unit_bytes()),
          units_(p.units() ? p.units() : 1),
          pattern_(p.pattern),
          step_(std::max<uint64_t>(1, (p.stride + unit_ - 1) / unit_)),
          state_(p.seed) {
        if (pattern_ == DmaPattern::Zipf) zipf_init(p.zipf_s);
    }

    Addr next() {
        uint64_t i = 0;
        switch (pattern_) {
            case DmaPattern::Random:
                i = uint64_t((unsigned __int128)(splitmix()) * units_ >> 64);
                break;
            case DmaPattern::Zipf: i = zipf() - 1; break;
            case DmaPattern::Sequential:
            case DmaPattern::Strided:
                i = seq_;
                seq_ = (seq_ + (pattern_ == DmaPattern::Strided ? step_ : 1)) % units_;
                break;
        }
        return base_ + i * unit_;
    }

private:
    uint64_t splitmix() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(splitmix() >> 11) * 0x1.0p-53; }

    // Zipf over 1..units_ by rejection-inversion (Hoermann & Derflinger, 1996): O(1) memory
    // and time per draw whatever the footprint.
    double h(double x) const { return std::exp(-s_ * std::log(x)); }  // x^-s
    double H(double x) const {                                        // integral of h
        const double l = std::log(x);
        return std::abs(1 - s_) < 1e-8 ? l : (std::exp((1 - s_) * l) - 1) / (1 - s_);
    }
    double H_inv(double y) const {
        return std::abs(1 - s_) < 1e-8 ? std::exp(y)
                                       : std::exp(std::log1p(y * (1 - s_)) / (1 - s_));
    }
    void zipf_init(double s) {
        s_ = s;
        h_x1_ = H(1.5) - 1;
        h_n_ = H(double(units_) + 0.5);
        cut_ = 2 - H_inv(H(2.5) - h(2));
    }
    // Out of line: inlined, its loop made every draw's caller save and restore registers.
    [[gnu::noinline]] uint64_t zipf() {
        for (;;) {
            const double u = h_n_ + uniform() * (h_x1_ - h_n_);
            const double x = H_inv(u);
            double k = std::floor(x + 0.5);
            if (k < 1) k = 1;
            if (k > double(units_)) k = double(units_);
            if (k - x <= cut_ || u >= H(k + 0.5) - h(k)) return uint64_t(k);
        }
    }

    Addr base_;
    uint64_t unit_, units_;
    DmaPattern pattern_;
    uint64_t step_;
    uint64_t state_, seq_ = 0;
    double s_ = 1, h_x1_ = 0, h_n_ = 0, cut_ = 0;
};

}  // namespace iommusim
