// Transfer-size distributions of the traffic devices (NIC packet sizes, NVMe I/O sizes): one
// size ("1500", "4K") or weighted sizes ("64:7,576:4,1500:1"), drawn from a seeded splitmix64
// stream so a seed gives the same sizes on every platform. Plain C++, header-only.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config.h"

namespace iommusim {

// splitmix64 (Steele, Lea, Flood 2014): one 64-bit draw, advancing `state`.
inline uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// A uniform draw in [0, n) by multiply-shift (no modulo bias worth the name, no division).
inline uint64_t draw_below(uint64_t& state, uint64_t n) {
    return uint64_t((unsigned __int128)(splitmix64(state)) * n >> 64);
}

class SizeDist {
public:
    // The simple IMIX (7:4:1 of 64, 576 and 1500-byte frames), accepted as "imix".
    static constexpr const char* kImix = "64:7,576:4,1500:1";

    // "SIZE" or "SIZE:WEIGHT,SIZE:WEIGHT,...": sizes in bytes with optional K/M/Ki/Mi
    // (powers of 1024), each in [lo, hi]; weights 1..2^32. nullopt with the reason in *why.
    static std::optional<SizeDist> parse(std::string_view text, uint64_t lo, uint64_t hi,
                                         std::string* why = nullptr) {
        if (text == "imix") text = kImix;
        const std::string_view all = text;
        SizeDist d;
        auto fail = [&](const std::string& what) -> std::optional<SizeDist> {
            if (why) *why = "sizes '" + std::string(all) + "': " + what;
            return std::nullopt;
        };
        while (!text.empty()) {
            const size_t comma = text.find(',');
            std::string_view item = trim(text.substr(0, comma));
            text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
            const size_t colon = item.find(':');
            uint64_t size = 0, weight = 1;
            std::string e =
                config_detail::parse_unsigned(trim(item.substr(0, colon)), true, lo, hi, &size);
            if (e.empty() && colon != std::string_view::npos)
                e = config_detail::parse_unsigned(trim(item.substr(colon + 1)), false, 1,
                                                  uint64_t(1) << 32, &weight);
            if (!e.empty()) return fail(e);
            d.entries_.push_back({size, weight});
            d.total_ += weight;
        }
        if (d.entries_.empty()) return fail("no sizes");
        return d;
    }

    // The next size from the stream `state` (a single size consumes no draw).
    uint64_t draw(uint64_t& state) const {
        if (entries_.size() == 1) return entries_[0].first;
        uint64_t w = draw_below(state, total_);
        for (const auto& [size, weight] : entries_) {
            if (w < weight) return size;
            w -= weight;
        }
        return entries_.back().first;
    }

    uint64_t min() const {
        uint64_t m = ~uint64_t(0);
        for (const auto& e : entries_) m = e.first < m ? e.first : m;
        return m;
    }
    uint64_t max() const {
        uint64_t m = 0;
        for (const auto& e : entries_) m = e.first > m ? e.first : m;
        return m;
    }
    double mean() const {
        double s = 0;
        for (const auto& [size, weight] : entries_) s += double(size) * double(weight);
        return s / double(total_);
    }
    const std::vector<std::pair<uint64_t, uint64_t>>& entries() const { return entries_; }

private:
    static std::string_view trim(std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    }

    std::vector<std::pair<uint64_t, uint64_t>> entries_;  // (size, weight)
    uint64_t total_ = 0;
};

}  // namespace iommusim
