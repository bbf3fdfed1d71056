#include <catch2/catch.hpp>

#include <algorithm>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "core/cache.h"

using namespace iommusim;

namespace {

// Set = key % sets, so tests can aim keys at sets.
struct IdHash {
    size_t operator()(uint64_t k) const { return size_t(k); }
};
using Cache = SetAssocCache<uint64_t, int, IdHash>;
using Entry = std::pair<uint64_t, int>;

CacheGeometry geo(uint32_t sets, uint32_t ways, Replacement p, uint64_t seed = 1) {
    CacheGeometry g;
    g.sets = sets;
    g.ways = ways;
    g.policy = p;
    g.seed = seed;
    return g;
}

// Reference model, written for clarity rather than speed. Each set keeps its ways (positions
// matter for tree-PLRU and for the fill order) and, for LRU and FIFO, a std::list of way numbers
// from next victim (front) to most recent (back). Tree-PLRU keeps one bit per node of a heap-
// numbered binary tree over way ranges [lo, hi): true means the next victim is in the upper half.
// Random cannot be predicted, so the reference accepts the cache's victim after checking it is
// a legal one. Fills take the lowest empty way, as the template does.
class RefCache {
public:
    explicit RefCache(const CacheGeometry& g) : g_(g), sets_(g.sets) {
        for (auto& s : sets_) {
            s.way.resize(g.ways);
            s.tree.assign(g.ways, false);
        }
    }

    std::optional<int> lookup(uint64_t k) {
        Set& s = set(k);
        int w = find(s, k);
        if (w < 0) return std::nullopt;
        if (g_.policy == Replacement::LRU) to_back(s, w);
        if (g_.policy == Replacement::TreePLRU) touch(s, w);
        return s.way[w]->second;
    }
    std::optional<int> peek(uint64_t k) {
        Set& s = set(k);
        int w = find(s, k);
        return w < 0 ? std::nullopt : std::optional<int>(s.way[w]->second);
    }
    // `random_victim`: what the cache evicted, needed (and checked) for Random only.
    std::optional<Entry> insert(uint64_t k, int v, std::optional<uint64_t> random_victim) {
        Set& s = set(k);
        int w = find(s, k);
        if (w >= 0) {  // update: a re-fill for FIFO, a use for LRU and PLRU
            s.way[w]->second = v;
            if (g_.policy == Replacement::LRU || g_.policy == Replacement::FIFO) to_back(s, w);
            if (g_.policy == Replacement::TreePLRU) touch(s, w);
            return std::nullopt;
        }
        std::optional<Entry> victim;
        for (uint32_t i = 0; i < g_.ways && w < 0; ++i)
            if (!s.way[i]) w = int(i);
        if (w < 0) {
            switch (g_.policy) {
                case Replacement::LRU:
                case Replacement::FIFO: w = s.order.front(); break;
                case Replacement::TreePLRU: w = plru_victim(s); break;
                case Replacement::Random:
                    REQUIRE(random_victim);
                    w = find(s, *random_victim);
                    REQUIRE(w >= 0);  // the victim must come from the full set
                    ++random_hits[w];
                    break;
            }
            victim = *s.way[w];
            s.order.remove(w);
        } else {
            ++size_;
        }
        s.way[w] = Entry{k, v};
        s.order.push_back(w);
        if (g_.policy == Replacement::TreePLRU) touch(s, w);
        return victim;
    }
    bool erase(uint64_t k) {
        Set& s = set(k);
        int w = find(s, k);
        if (w < 0) return false;
        drop(s, w);
        return true;
    }
    template <typename Pred>
    size_t erase_if(Pred p) {
        size_t n = 0;
        for (Set& s : sets_)
            for (uint32_t w = 0; w < g_.ways; ++w)
                if (s.way[w] && p(s.way[w]->first, s.way[w]->second)) drop(s, int(w)), ++n;
        return n;
    }
    void clear() {
        for (Set& s : sets_) {
            for (auto& e : s.way) e.reset();
            s.order.clear();
        }
        size_ = 0;
    }
    std::vector<Entry> contents() const {
        std::vector<Entry> out;
        for (const Set& s : sets_)
            for (const auto& e : s.way)
                if (e) out.push_back(*e);
        std::sort(out.begin(), out.end());
        return out;
    }
    size_t size() const { return size_; }

    std::map<int, int> random_hits;  // way -> times chosen by Random

private:
    struct Set {
        std::vector<std::optional<Entry>> way;
        std::list<int> order;
        std::vector<bool> tree;
    };
    Set& set(uint64_t k) { return sets_[k % g_.sets]; }
    int find(const Set& s, uint64_t k) const {
        for (uint32_t w = 0; w < g_.ways; ++w)
            if (s.way[w] && s.way[w]->first == k) return int(w);
        return -1;
    }
    void to_back(Set& s, int w) {
        s.order.remove(w);
        s.order.push_back(w);
    }
    void drop(Set& s, int w) {
        s.way[w].reset();
        s.order.remove(w);
        --size_;
    }
    void touch(Set& s, int w) {
        for (uint32_t node = 0, lo = 0, hi = g_.ways; hi - lo > 1;) {
            const uint32_t mid = (lo + hi) / 2;
            const bool upper = uint32_t(w) >= mid;
            s.tree[node] = !upper;  // point at the half the access did not touch
            node = 2 * node + (upper ? 2 : 1);
            (upper ? lo : hi) = mid;
        }
    }
    int plru_victim(const Set& s) const {
        uint32_t node = 0, lo = 0, hi = g_.ways;
        while (hi - lo > 1) {
            const uint32_t mid = (lo + hi) / 2;
            const bool upper = s.tree[node];
            node = 2 * node + (upper ? 2 : 1);
            (upper ? lo : hi) = mid;
        }
        return int(lo);
    }

    CacheGeometry g_;
    std::vector<Set> sets_;
    size_t size_ = 0;
};

std::vector<Entry> contents(const Cache& c) {
    std::vector<Entry> out;
    c.for_each([&](uint64_t k, int v) { out.push_back({k, v}); });
    std::sort(out.begin(), out.end());
    return out;
}

// Random operations on the cache and the reference, compared step by step.
// With repeat_pct > 0, that percentage of steps reuses the previous step's key (the cache's
// same-entry fast path: hit, then evicted, erased or refilled under it). A third of the way,
// the run goes on with a copy of the cache (the original gone), two thirds of the way with a
// copy assigned to a cache of another geometry and moved: the remembered line is the copy's.
void run_against_reference(const CacheGeometry& g, uint64_t seed, int steps,
                           unsigned repeat_pct = 0) {
    INFO("policy " << to_string(g.policy) << " sets " << g.sets << " ways " << g.ways);
    REQUIRE(check(g).empty());
    std::optional<Cache> cache(std::in_place, g);
    RefCache ref(g);
    std::mt19937_64 rng(seed);
    const uint64_t keys = 2 * uint64_t(g.entries()) + 3;
    uint64_t prev = 0;
    for (int step = 0; step < steps; ++step) {
        const uint64_t k = repeat_pct && step && rng() % 100 < repeat_pct ? prev : rng() % keys;
        prev = k;
        const unsigned op = unsigned(rng() % 100);
        INFO("step " << step << " op " << op << " key " << k);
        if (step == steps / 3) {
            Cache copy(*cache);
            cache.reset();
            cache.emplace(std::move(copy));
        } else if (step == 2 * steps / 3) {
            Cache other(CacheGeometry{});
            other = *cache;
            cache.reset();
            cache.emplace(std::move(other));
        }
        Cache& c = *cache;
        if (op < 35) {
            // lookup(), or its two halves: find(), then use() on a hit
            const Cache::Line l = c.find(k);
            const int* v = op % 2 ? c.lookup(k) : l.found() ? &c.use(l) : nullptr;
            const auto r = ref.lookup(k);
            REQUIRE(bool(v) == bool(r));
            if (v) CHECK(*v == *r);
        } else if (op < 45) {
            const int* v = c.peek(k);
            const auto r = ref.peek(k);
            REQUIRE(bool(v) == bool(r));
            if (v) CHECK(*v == *r);
            const Cache::Line l = c.find(k);  // changes nothing either
            REQUIRE(l.found() == bool(v));
            if (v) CHECK(c.at(l) == *v);
        } else if (op < 80) {
            const int v = int(rng() % 1000);
            const auto victim = c.insert(k, v);
            const auto r =
                ref.insert(k, v, victim ? std::optional<uint64_t>(victim->first) : std::nullopt);
            REQUIRE(bool(victim) == bool(r));
            if (victim) CHECK(*victim == *r);
        } else if (op < 92) {
            CHECK(c.erase(k) == ref.erase(k));
        } else if (op < 97) {
            const uint64_t m = 2 + rng() % 5;
            auto pred = [m](uint64_t key, int) { return key % m == 0; };
            CHECK(c.erase_if(pred) == ref.erase_if(pred));
        } else if (op < 98) {
            c.clear();
            ref.clear();
        } else {
            CHECK(contents(c) == ref.contents());
        }
        REQUIRE(c.size() == ref.size());
    }
    CHECK(contents(*cache) == ref.contents());
}

}  // namespace

TEST_CASE("cache geometry checks and policy names", "[cache]") {
    CHECK(check(geo(1, 1, Replacement::LRU)).empty());
    CHECK_FALSE(check(geo(0, 4, Replacement::LRU)).empty());
    CHECK_FALSE(check(geo(4, 0, Replacement::FIFO)).empty());
    CHECK(check(geo(3, 3, Replacement::LRU)).empty());  // any ways for LRU/FIFO/Random
    CHECK(check(geo(5, 7, Replacement::Random)).empty());
    CHECK(check(geo(1, 64, Replacement::TreePLRU)).empty());
    const std::string bad = check(geo(1, 6, Replacement::TreePLRU));
    CHECK(bad.find("power-of-two") != std::string::npos);
    CHECK(bad.find("6") != std::string::npos);
    CHECK_FALSE(check(geo(1, 128, Replacement::TreePLRU)).empty());
    for (Replacement r :
         {Replacement::LRU, Replacement::TreePLRU, Replacement::FIFO, Replacement::Random})
        CHECK(parse_replacement(to_string(r)) == r);
    CHECK(parse_replacement("tree-plru") == Replacement::TreePLRU);
    CHECK_FALSE(parse_replacement("mru"));
    CHECK(geo(6, 4, Replacement::LRU).entries() == 24);
}

TEST_CASE("LRU evicts the least recently used way", "[cache]") {
    Cache c(geo(1, 4, Replacement::LRU));
    for (uint64_t k = 0; k < 4; ++k) CHECK_FALSE(c.insert(k, int(k)));
    REQUIRE(c.lookup(0));  // order now 1 2 3 0
    auto v = c.insert(10, 10);
    REQUIRE(v);
    CHECK(v->first == 1);
    CHECK(c.insert(2, 22) == std::nullopt);  // update is a use: order 3 0 10 2
    CHECK(*c.peek(2) == 22);
    CHECK(c.insert(11, 11)->first == 3);
    CHECK(c.insert(12, 12)->first == 0);
    CHECK(c.size() == 4);
    CHECK(c.capacity() == 4);
}

TEST_CASE("FIFO evicts in fill order and ignores hits", "[cache]") {
    Cache c(geo(1, 3, Replacement::FIFO));
    for (uint64_t k = 0; k < 3; ++k) c.insert(k, 0);
    for (int i = 0; i < 5; ++i) REQUIRE(c.lookup(0));
    CHECK(c.insert(3, 0)->first == 0);  // hits did not save it
    // An update re-fills the entry: it becomes the newest.
    CHECK_FALSE(c.insert(1, 5));
    CHECK(c.insert(4, 0)->first == 2);
    CHECK(c.insert(5, 0)->first == 3);
    CHECK(c.insert(6, 0)->first == 1);
}

TEST_CASE("tree-PLRU victims for 4 ways differ from true LRU as expected", "[cache]") {
    // Bits b0 (root), b1 (ways 0-1), b2 (ways 2-3), each pointing away from the last access.
    // After filling A B C D and using A, B, C: b0 -> left, b1 -> way 0. True LRU would evict D.
    Cache c(geo(1, 4, Replacement::TreePLRU));
    for (uint64_t k : {0xA, 0xB, 0xC, 0xD}) c.insert(k, 0);
    for (uint64_t k : {0xA, 0xB, 0xC}) REQUIRE(c.lookup(k));
    CHECK(c.insert(0xE, 0)->first == 0xA);
    // E now in way 0: b0 -> right, b1 -> way 1; b2 still points at D (way 3).
    CHECK(c.insert(0xF, 0)->first == 0xD);

    Cache lru(geo(1, 4, Replacement::LRU));
    for (uint64_t k : {0xA, 0xB, 0xC, 0xD}) lru.insert(k, 0);
    for (uint64_t k : {0xA, 0xB, 0xC}) REQUIRE(lru.lookup(k));
    CHECK(lru.insert(0xE, 0)->first == 0xD);
}

TEST_CASE("tree-PLRU for 8 ways follows the reference tree", "[cache]") {
    const CacheGeometry g = geo(1, 8, Replacement::TreePLRU);
    Cache c(g);
    RefCache ref(g);
    for (uint64_t k = 0; k < 8; ++k) {
        c.insert(k, 0);
        ref.insert(k, 0, std::nullopt);
    }
    // Touch ways in a fixed pattern, then check the next eight victims.
    for (uint64_t k : {3, 6, 0, 5, 1}) {
        c.lookup(k);
        ref.lookup(k);
    }
    for (uint64_t k = 100; k < 108; ++k) {
        auto v = c.insert(k, 0);
        auto r = ref.insert(k, 0, std::nullopt);
        REQUIRE(v);
        CHECK(v->first == r->first);
    }
}

TEST_CASE("peek does not change replacement state", "[cache]") {
    for (Replacement p : {Replacement::LRU, Replacement::TreePLRU}) {
        Cache c(geo(1, 4, p));
        for (uint64_t k = 0; k < 4; ++k) c.insert(k, int(k));
        for (int i = 0; i < 3; ++i) REQUIRE(c.peek(0));
        CHECK(c.insert(9, 9)->first == 0);  // a lookup instead would have saved key 0
        Cache d(geo(1, 4, p));
        for (uint64_t k = 0; k < 4; ++k) d.insert(k, int(k));
        REQUIRE(d.lookup(0));
        CHECK(d.insert(9, 9)->first != 0);
    }
}

TEST_CASE("set indexing keeps sets apart, including non-power-of-two counts", "[cache]") {
    for (uint32_t sets : {1u, 2u, 3u, 5u, 6u, 8u}) {
        INFO("sets " << sets);
        Cache c(geo(sets, 2, Replacement::LRU));
        // Fill every set exactly: no evictions.
        for (uint64_t k = 0; k < 2 * sets; ++k) CHECK_FALSE(c.insert(k, int(k)));
        CHECK(c.size() == c.capacity());
        // A third key of set s evicts only from set s.
        for (uint64_t s = 0; s < sets; ++s) {
            auto v = c.insert(s + 2 * sets, 0);
            REQUIRE(v);
            CHECK(v->first % sets == s);
        }
        for (uint64_t k = 0; k < 3 * sets; ++k)
            if (const int* v = c.peek(k)) CHECK(*v == (k < 2 * sets ? int(k) : 0));
    }
}

TEST_CASE("erase, erase_if, for_each and clear", "[cache]") {
    Cache c(geo(4, 2, Replacement::FIFO));
    for (uint64_t k = 0; k < 8; ++k) c.insert(k, int(10 * k));
    CHECK(c.erase(3));
    CHECK_FALSE(c.erase(3));
    CHECK_FALSE(c.lookup(3));
    CHECK(c.size() == 7);
    CHECK(c.erase_if([](uint64_t k, int v) { return k % 2 == 0 && v >= 20; }) == 3);  // 2 4 6
    CHECK(contents(c) == std::vector<Entry>{{0, 0}, {1, 10}, {5, 50}, {7, 70}});
    // The freed way is reused without evicting anyone.
    CHECK_FALSE(c.insert(11, 0));
    c.clear();
    CHECK(c.size() == 0);
    CHECK(contents(c).empty());
    for (uint64_t k = 0; k < 8; ++k) CHECK_FALSE(c.insert(k, 0));
}

TEST_CASE("random operations match the reference model", "[cache]") {
    const Replacement policies[] = {Replacement::LRU, Replacement::TreePLRU, Replacement::FIFO,
                                    Replacement::Random};
    for (Replacement p : policies) {
        run_against_reference(geo(1, 4, p), 1, 3000);
        run_against_reference(geo(1, 8, p), 2, 3000);
        run_against_reference(geo(4, 2, p), 3, 3000);
        run_against_reference(geo(3, 4, p), 4, 3000);  // non-power-of-two sets
        run_against_reference(geo(5, 8, p), 5, 4000);
        run_against_reference(geo(2, 1, p), 6, 1000);
        run_against_reference(geo(1, 16, p), 7, 4000);
    }
    for (Replacement p : {Replacement::LRU, Replacement::FIFO, Replacement::Random})
        run_against_reference(geo(3, 3, p), 8, 3000);  // non-power-of-two ways
}

TEST_CASE("repeated lookups of one key match the reference model", "[cache]") {
    for (Replacement p :
         {Replacement::LRU, Replacement::TreePLRU, Replacement::FIFO, Replacement::Random}) {
        run_against_reference(geo(1, 4, p), 11, 4000, 60);
        run_against_reference(geo(4, 2, p), 12, 4000, 60);
        run_against_reference(geo(3, 4, p), 13, 4000, 40);
        run_against_reference(geo(2, 1, p), 14, 2000, 50);
    }
}

// Before its first hit the cache remembers line 0, which holds the default key while
// invalid: that key must still miss there, and after an erase leaves the remembered line.
TEST_CASE("the remembered line never answers for an invalid line", "[cache]") {
    Cache c(geo(1, 4, Replacement::LRU));
    CHECK_FALSE(c.find(0).found());
    CHECK(c.lookup(0) == nullptr);
    c.insert(0, 7);
    REQUIRE(c.lookup(0) != nullptr);
    CHECK(*c.lookup(0) == 7);
    CHECK(c.erase(0));
    CHECK_FALSE(c.find(0).found());
    CHECK(c.lookup(0) == nullptr);
    c.insert(5, 1);  // takes the erased line, which is still the remembered one
    CHECK_FALSE(c.find(0).found());
    REQUIRE(c.find(5).found());
    CHECK(c.at(c.find(5)) == 1);
}

TEST_CASE("Random replacement is deterministic per seed and spreads over ways", "[cache]") {
    auto victims = [](uint64_t seed) {
        Cache c(geo(2, 8, Replacement::Random, seed));
        std::vector<uint64_t> out;
        for (uint64_t k = 0; k < 4000; ++k)
            if (auto v = c.insert(k, 0)) out.push_back(v->first);
        return out;
    };
    CHECK(victims(42) == victims(42));
    CHECK(victims(42) != victims(43));
    CHECK(victims(42).size() == 4000 - 16);

    const CacheGeometry g = geo(1, 8, Replacement::Random, 99);
    Cache c(g);
    RefCache ref(g);
    for (uint64_t k = 0; k < 16000; ++k) {
        auto v = c.insert(k, 0);
        ref.insert(k, 0, v ? std::optional<uint64_t>(v->first) : std::nullopt);
    }
    REQUIRE(ref.random_hits.size() == 8);
    for (const auto& [way, n] : ref.random_hits) {
        INFO("way " << way);
        CHECK(n > 1600);  // expected ~2000 of 15992
        CHECK(n < 2400);
    }
}
