// dma-bench, the pcie-bench methodology (Neugebauer et al., SIGCOMM 2018) as a simulated
// device: DMA reads or writes of `size` bytes into a host buffer window of `window` bytes.
// The window is divided into units (size + offset, rounded up to a 64-byte cache line); each
// transfer accesses one unit at `offset` from its start, units taken in order (sequential)
// or uniformly at random from a seeded generator. Bandwidth runs keep as many transfers in
// flight as the engine's tags allow; latency runs (outstanding = 1) issue one at a time.
// Plain C++ (parameters and the address sequence), header-only for the unit tests.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/types.h"

namespace iommusim {

enum class DmaOp : uint8_t { Read, Write };
enum class DmaPattern : uint8_t { Sequential, Random };

inline const char* to_string(DmaOp o) {
    return o == DmaOp::Write ? "write" : "read";
}
inline const char* to_string(DmaPattern p) {
    return p == DmaPattern::Random ? "random" : "sequential";
}
inline std::optional<DmaOp> parse_dma_op(std::string_view s) {
    if (s == "read") return DmaOp::Read;
    if (s == "write") return DmaOp::Write;
    return std::nullopt;
}
inline std::optional<DmaPattern> parse_dma_pattern(std::string_view s) {
    if (s == "sequential" || s == "seq") return DmaPattern::Sequential;
    if (s == "random" || s == "rand") return DmaPattern::Random;
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
    static std::vector<DmaPattern> values() { return {DmaPattern::Sequential, DmaPattern::Random}; }
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
    uint32_t bus = 1, device = 0, function = 0;  // requester BDF

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("op", op, "", "read (host -> device) or write (device -> host)", 0, 1);
        v("size", size, "bytes", "bytes per DMA transfer", 1, 1 << 30);
        v("window", window, "bytes", "host buffer window the transfers spread over", 64,
          uint64_t(1) << 48);
        v("pattern", pattern, "", "unit order: sequential or random", 0, 1);
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
                          : op > DmaOp::Write || pattern > DmaPattern::Random ? "bad op or pattern"
                                                                              : nullptr;
        if (bad && why) *why = std::string("dma-bench: ") + bad;
        return !bad;
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
          random_(p.pattern == DmaPattern::Random),
          state_(p.seed) {}

    Addr next() {
        uint64_t i;
        if (random_) {
            i = uint64_t((unsigned __int128)(splitmix()) * units_ >> 64);
        } else {
            i = seq_;
            if (++seq_ == units_) seq_ = 0;
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

    Addr base_;
    uint64_t unit_, units_;
    bool random_;
    uint64_t state_, seq_ = 0;
};

}  // namespace iommusim
