// The one set-associative cache template: IOTLB, context/PASID caches, walk caches and device
// ATCs are all instances of it. Key needs operator==; Hash picks the set. A page-size-aware
// cache keys on (page number at size, size) and the caller probes each size it supports.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iommusim {

enum class Replacement : uint8_t { LRU, TreePLRU, FIFO, Random };
std::optional<Replacement> parse_replacement(std::string_view name);  // "lru", "plru", ...
const char* to_string(Replacement r);

struct CacheGeometry {
    uint32_t sets = 1;  // 1 = fully associative
    uint32_t ways = 1;
    Replacement policy = Replacement::LRU;
    uint64_t seed = 1;  // Random replacement only; same seed, same victims

    constexpr uint32_t entries() const { return sets * ways; }
};
// Empty string if usable; otherwise what is wrong (tree-PLRU needs power-of-two ways <= 64).
std::string check(const CacheGeometry& g);

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class SetAssocCache {
public:
    explicit SetAssocCache(const CacheGeometry& g)
        : geo_(g),
          set_mask_(is_pow2(g.sets) ? g.sets - 1 : 0),
          lines_(size_t(g.sets) * g.ways),
          valid_(lines_.size(), 0),
          stamp_(lines_.size(), 0),
          plru_(g.sets, 0),
          rng_(g.seed ? g.seed : 1) {}

    // A hit updates the replacement state and returns the value; a miss returns nullptr.
    Value* lookup(const Key& k) {
        // Back-to-back lookups often hit the same entry (one device's context, one page): a
        // key lives in one line only, so a match there is the hit the search would find.
        if (last_way_ != kNoWay && valid_[last_base_ + last_way_] &&
            lines_[last_base_ + last_way_].first == k) {
            touch(last_base_, last_way_);
            return &lines_[last_base_ + last_way_].second;
        }
        const size_t base = size_t(set_of(k)) * geo_.ways;
        for (uint32_t w = 0; w < geo_.ways; ++w) {
            if (valid_[base + w] && lines_[base + w].first == k) {
                touch(base, w);
                last_base_ = base, last_way_ = w;
                return &lines_[base + w].second;
            }
        }
        return nullptr;
    }
    // lookup() in two halves, for a caller that decides on several caches before it uses any:
    // find() the line (the replacement state does not move), then use() it, which is
    // lookup()'s hit: same replacement update, same line remembered.
    struct Line {
        size_t base;
        uint32_t way;  // kNoWay: not found
        bool found() const { return way != kNoWay; }
    };
    Line find(const Key& k) const {
        if (last_way_ != kNoWay && valid_[last_base_ + last_way_] &&
            lines_[last_base_ + last_way_].first == k)
            return {last_base_, last_way_};
        const size_t base = size_t(set_of(k)) * geo_.ways;
        for (uint32_t w = 0; w < geo_.ways; ++w)
            if (valid_[base + w] && lines_[base + w].first == k) return {base, w};
        return {0, kNoWay};
    }
    // The value of a found line, before or after use().
    const Value& at(Line l) const { return lines_[l.base + l.way].second; }
    Value& use(Line l) {
        touch(l.base, l.way);
        last_base_ = l.base, last_way_ = l.way;
        return lines_[l.base + l.way].second;
    }
    // Like lookup, without changing which entry is evicted next.
    const Value* peek(const Key& k) const {
        const size_t base = size_t(set_of(k)) * geo_.ways;
        for (uint32_t w = 0; w < geo_.ways; ++w)
            if (valid_[base + w] && lines_[base + w].first == k) return &lines_[base + w].second;
        return nullptr;
    }

    // Insert or update `k`. Returns the evicted valid entry, if one had to go.
    std::optional<std::pair<Key, Value>> insert(const Key& k, const Value& v) {
        const size_t base = size_t(set_of(k)) * geo_.ways;
        uint32_t way = geo_.ways;
        for (uint32_t w = 0; w < geo_.ways && way == geo_.ways; ++w)
            if (valid_[base + w] && lines_[base + w].first == k) way = w;
        for (uint32_t w = 0; w < geo_.ways && way == geo_.ways; ++w)
            if (!valid_[base + w]) way = w;
        std::optional<std::pair<Key, Value>> victim;
        if (way == geo_.ways) {
            way = pick_victim(base);
            victim = std::move(lines_[base + way]);
        } else if (!valid_[base + way]) {
            ++size_;
        }
        lines_[base + way] = {k, v};
        valid_[base + way] = 1;
        if (geo_.policy == Replacement::FIFO) stamp_[base + way] = ++clock_;
        touch(base, way);
        return victim;
    }

    bool erase(const Key& k) {
        const size_t base = size_t(set_of(k)) * geo_.ways;
        for (uint32_t w = 0; w < geo_.ways; ++w)
            if (valid_[base + w] && lines_[base + w].first == k) return drop(base + w), true;
        return false;
    }
    // Remove every entry for which pred(key, value) holds (scoped invalidation). Returns count.
    template <typename Pred>
    size_t erase_if(Pred&& pred) {
        size_t n = 0;
        for (size_t i = 0; i < lines_.size(); ++i)
            if (valid_[i] && pred(lines_[i].first, lines_[i].second)) drop(i), ++n;
        return n;
    }
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (size_t i = 0; i < lines_.size(); ++i)
            if (valid_[i]) fn(lines_[i].first, lines_[i].second);
    }
    void clear() {
        std::fill(valid_.begin(), valid_.end(), 0);
        size_ = 0;
    }

    size_t size() const { return size_; }
    size_t capacity() const { return lines_.size(); }
    const CacheGeometry& geometry() const { return geo_; }

private:
    static constexpr bool is_pow2(uint32_t x) { return x && !(x & (x - 1)); }
    uint32_t set_of(const Key& k) const {
        if (geo_.sets == 1) return 0;
        size_t h = Hash{}(k);
        return uint32_t(set_mask_ ? (h & set_mask_) : (h % geo_.sets));
    }
    void drop(size_t i) {
        valid_[i] = 0;
        --size_;
    }
    void touch(size_t base, uint32_t way) {
        switch (geo_.policy) {
            case Replacement::LRU: stamp_[base + way] = ++clock_; break;
            case Replacement::TreePLRU: plru_touch(base / geo_.ways, way); break;
            case Replacement::FIFO:
            case Replacement::Random: break;
        }
    }
    uint32_t pick_victim(size_t base) {
        switch (geo_.policy) {
            case Replacement::TreePLRU: return plru_victim(base / geo_.ways);
            case Replacement::Random: {
                rng_ ^= rng_ << 13, rng_ ^= rng_ >> 7, rng_ ^= rng_ << 17;  // xorshift64
                return uint32_t(rng_ % geo_.ways);
            }
            case Replacement::LRU:
            case Replacement::FIFO: break;
        }
        uint32_t v = 0;  // oldest stamp (last use for LRU, insertion for FIFO)
        for (uint32_t w = 1; w < geo_.ways; ++w)
            if (stamp_[base + w] < stamp_[base + v]) v = w;
        return v;
    }
    // Tree-PLRU: node i has children 2i+1, 2i+2; a set bit means "the victim is on the right".
    void plru_touch(size_t set, uint32_t way) {
        uint64_t& t = plru_[set];
        uint32_t node = 0;
        for (uint32_t span = geo_.ways; span > 1; span /= 2) {
            bool right = (way % span) >= span / 2;
            t = right ? (t & ~(1ULL << node)) : (t | (1ULL << node));  // point away from `way`
            node = 2 * node + (right ? 2 : 1);
        }
    }
    uint32_t plru_victim(size_t set) const {
        uint64_t t = plru_[set];
        uint32_t node = 0, way = 0;
        for (uint32_t span = geo_.ways; span > 1; span /= 2) {
            bool right = (t >> node) & 1;
            if (right) way += span / 2;
            node = 2 * node + (right ? 2 : 1);
        }
        return way;
    }

    static constexpr uint32_t kNoWay = ~uint32_t(0);
    CacheGeometry geo_;
    uint32_t set_mask_;
    uint32_t last_way_ = kNoWay;  // the line lookup() hit last: last_base_ + last_way_
    size_t last_base_ = 0;
    std::vector<std::pair<Key, Value>> lines_;
    std::vector<uint8_t> valid_;
    std::vector<uint64_t> stamp_;  // LRU: last use; FIFO: insertion
    std::vector<uint64_t> plru_;   // tree bits per set (ways - 1 nodes, ways <= 64)
    uint64_t clock_ = 0;
    uint64_t rng_;
    size_t size_ = 0;
};

}  // namespace iommusim
