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
    struct CacheLine;

public:
    explicit SetAssocCache(const CacheGeometry& g)
        : geo_(g),
          set_mask_(is_pow2(g.sets) ? g.sets - 1 : 0),
          // At least one line: the remembered line (last_) always exists.
          lines_(std::max<size_t>(1, size_t(g.sets) * g.ways)),
          plru_(g.sets, 0),
          rng_(g.seed ? g.seed : 1),
          last_(lines_.data()) {}
    // last_ points into lines_: a copy remembers the same line of its own lines; a move takes
    // the lines' buffer, and the pointer with it.
    SetAssocCache(const SetAssocCache& o) : SetAssocCache(o.geo_) { *this = o; }
    SetAssocCache& operator=(const SetAssocCache& o) {
        geo_ = o.geo_, set_mask_ = o.set_mask_, lines_ = o.lines_, plru_ = o.plru_;
        clock_ = o.clock_, rng_ = o.rng_, size_ = o.size_;
        last_ = lines_.data() + (o.last_ - o.lines_.data());
        return *this;
    }
    SetAssocCache(SetAssocCache&&) noexcept = default;
    SetAssocCache& operator=(SetAssocCache&&) noexcept = default;

    // A hit updates the replacement state and returns the value; a miss returns nullptr.
    Value* lookup(const Key& k) {
        const Line l = find(k);
        return l.found() ? &use(l) : nullptr;
    }
    // lookup() in two halves, for a caller that decides on several caches before it uses any:
    // find() the line (the replacement state does not move), then use() it, which is
    // lookup()'s hit: same replacement update, same line remembered. A pointer rather than an
    // index: at() and use() on the hit path then need no index arithmetic.
    struct Line {
        const CacheLine* p;  // null: not found
        bool found() const { return p; }
    };
    Line find(const Key& k) const {
        // Back-to-back lookups often hit the same entry (one device's context, one page): a
        // key lives in one line only, so a match there is the hit the search would find.
        if (holds(*last_, k)) return {last_};
        return {line_of(size_t(set_of(k)) * geo_.ways, k)};
    }
    // The value of a found line, before or after use().
    const Value& at(Line l) const { return l.p->value; }
    Value& use(Line l) {
        CacheLine& line = const_cast<CacheLine&>(*l.p);  // a line of this (non-const) cache
        touch(line);
        last_ = &line;
        return line.value;
    }
    // Like lookup, without changing which entry is evicted next.
    const Value* peek(const Key& k) const {
        const CacheLine* l = line_of(size_t(set_of(k)) * geo_.ways, k);
        return l ? &l->value : nullptr;
    }

    // Insert or update `k`. Returns the evicted valid entry, if one had to go.
    std::optional<std::pair<Key, Value>> insert(const Key& k, const Value& v) {
        const size_t base = size_t(set_of(k)) * geo_.ways;
        const CacheLine* hit = line_of(base, k);
        size_t i = hit ? size_t(hit - lines_.data()) : kNoLine;
        for (uint32_t w = 0; w < geo_.ways && i == kNoLine; ++w)
            if (!lines_[base + w].valid) i = base + w;
        std::optional<std::pair<Key, Value>> victim;
        if (i == kNoLine) {
            i = base + pick_victim(base);
            CacheLine& old = lines_[i];
            victim.emplace(std::move(old.key), std::move(old.value));
        } else if (!lines_[i].valid) {
            ++size_;
        }
        CacheLine& line = lines_[i];
        line.key = k;
        line.value = v;
        line.valid = 1;
        if (geo_.policy == Replacement::FIFO) line.stamp = ++clock_;
        touch(line);
        return victim;
    }

    bool erase(const Key& k) {
        const CacheLine* l = line_of(size_t(set_of(k)) * geo_.ways, k);
        if (!l) return false;
        drop(size_t(l - lines_.data()));
        return true;
    }
    // Remove every entry for which pred(key, value) holds (scoped invalidation). Returns count.
    template <typename Pred>
    size_t erase_if(Pred&& pred) {
        size_t n = 0;
        for (size_t i = 0; i < lines_.size(); ++i)
            if (lines_[i].valid && pred(lines_[i].key, lines_[i].value)) drop(i), ++n;
        return n;
    }
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (size_t i = 0; i < lines_.size(); ++i)
            if (lines_[i].valid) fn(lines_[i].key, lines_[i].value);
    }
    void clear() {
        for (CacheLine& l : lines_) l.valid = 0;
        size_ = 0;
    }

    size_t size() const { return size_; }
    size_t capacity() const { return geo_.entries(); }
    const CacheGeometry& geometry() const { return geo_; }

private:
    static constexpr bool is_pow2(uint32_t x) { return x && !(x & (x - 1)); }
    uint32_t set_of(const Key& k) const {
        if (geo_.sets == 1) return 0;
        size_t h = Hash{}(k);
        return uint32_t(set_mask_ ? (h & set_mask_) : (h % geo_.sets));
    }
    // The key is compared before the valid flag: most lines a lookup meets differ in the key's
    // first field, so a miss costs one compare.
    static bool holds(const CacheLine& l, const Key& k) { return l.key == k && l.valid; }
    // The line of the set at `base` holding `k`, or null.
    const CacheLine* line_of(size_t base, const Key& k) const {
        const CacheLine* const first = lines_.data() + base;
        for (const CacheLine *l = first, *end = first + geo_.ways; l != end; ++l)
            if (holds(*l, k)) return l;
        return nullptr;
    }
    void drop(size_t i) {
        lines_[i].valid = 0;
        --size_;
    }
    void touch(CacheLine& line) {
        switch (geo_.policy) {
            case Replacement::LRU: line.stamp = ++clock_; break;
            case Replacement::TreePLRU: {
                const size_t i = size_t(&line - lines_.data());
                plru_touch(i / geo_.ways, uint32_t(i % geo_.ways));
                break;
            }
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
            if (lines_[base + w].stamp < lines_[base + v].stamp) v = w;
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

    static constexpr size_t kNoLine = ~size_t(0);
    CacheGeometry geo_;
    uint32_t set_mask_;
    // One line's state together: a lookup touches its key, validity and stamp.
    struct CacheLine {
        Key key{};
        Value value{};
        uint64_t stamp = 0;  // LRU: last use; FIFO: insertion
        uint8_t valid = 0;
    };
    std::vector<CacheLine> lines_;
    std::vector<uint64_t> plru_;  // tree bits per set (ways - 1 nodes, ways <= 64)
    uint64_t clock_ = 0;
    uint64_t rng_;
    size_t size_ = 0;
    // The line lookup() or use() hit last; line 0 (invalid) before the first hit.
    const CacheLine* last_;
};

}  // namespace iommusim
