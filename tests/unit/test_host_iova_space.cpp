#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>

#include "host/iova_space.h"

using namespace iommusim;

namespace {

constexpr Addr kTop = ~Addr(0);

// Brute force: every aligned slot, highest first, in every window.
std::optional<Addr> reference_alloc(const IovaSpace& s, const std::map<Addr, Addr>& live, Addr size,
                                    Addr limit) {
    Addr align = 1;
    while (align < size) align <<= 1;
    auto is_free = [&](Addr a) {
        const Addr last = a + size - 1;
        for (const IovaRegion& r : s.reserved())
            if (r.base <= last && r.last() >= a) return false;
        auto it = live.upper_bound(last);
        return it == live.begin() || std::prev(it)->first + std::prev(it)->second <= a;
    };
    std::optional<Addr> best;
    for (const IovaRegion& w : s.windows()) {
        const Addr hi = std::min(w.last(), limit);
        if (hi < w.base || hi - w.base < size - 1) continue;
        for (Addr a = (hi - (size - 1)) & ~(align - 1); a >= w.base; a -= align) {
            if (is_free(a)) {
                if (!best || a > *best) best = a;
                break;
            }
            if (a < align) break;
        }
    }
    return best;
}

}  // namespace

TEST_CASE("iova check names the window or region at fault", "[host][iova]") {
    IovaSpace s;
    CHECK(s.check(0, 0x1000) ==
          "iova 0x0 size 0x1000 is outside every permitted window (none defined)");
    s.add_window({0, 0x1'0000'0000, "dma32"});
    s.add_window({Addr(1) << 40, Addr(1) << 30, "dma64"});
    s.add_reserved(x86_msi_region());

    CHECK(s.check(0x1000, 0x1000).empty());
    CHECK(s.check(Addr(1) << 40, Addr(1) << 30).empty());
    CHECK(s.check(0x1'0000'0000, 0x1000) ==
          "iova 0x100000000 size 0x1000 is outside every permitted window (dma32 "
          "0x0-0xffffffff, dma64 0x10000000000-0x1003fffffff)");
    CHECK(s.check(0xffff'f000, 0x2000) ==
          "iova 0xfffff000 size 0x2000 crosses the edge of permitted window dma32 0x0-0xffffffff");
    CHECK(s.check(0xfeef'f000, 0x2000) ==
          "iova 0xfeeff000 size 0x2000 overlaps reserved region msi 0xfee00000-0xfeefffff");
    CHECK(s.check(0xfed0'0000, 0x10'0000).empty());
    CHECK(s.check(0x1000, 0) == "iova 0x1000 size 0x0 is an empty range");
    CHECK(s.check(kTop - 0xfff, 0x2000) ==
          "iova 0xfffffffffffff000 size 0x2000 wraps past the end of the 64-bit address space");
}

TEST_CASE("iova alloc is top-down and size-aligned", "[host][iova]") {
    IovaSpace s;
    CHECK_FALSE(s.alloc(0x1000));  // no window yet
    s.add_window({0, 0x1'0000'0000, "dma32"});
    s.add_reserved(x86_msi_region());
    CHECK(s.alloc(0x1000) == Addr(0xffff'f000));
    CHECK(s.alloc(0x1000) == Addr(0xffff'e000));
    CHECK(s.alloc(0x2000) == Addr(0xffff'c000));
    CHECK(s.alloc(0x3000) == Addr(0xffff'8000));  // aligned to 16 KiB, leaving 0xffffb000 free
    CHECK(s.alloc(0x1000) == Addr(0xffff'b000));  // the highest free range first
    CHECK(s.alloc(0x10) == Addr(0xffff'7ff0));
    CHECK(s.alloc(0x5000) == Addr(0xffff'0000));
    CHECK(s.live() == 7);
    CHECK(s.allocated(0xffff'8000));
    CHECK_FALSE(s.allocated(0xffff'9000));
}

TEST_CASE("iova alloc skips the MSI hole", "[host][iova]") {
    IovaSpace s;
    s.add_window({0xfe00'0000, 0x100'0000, "win"});
    s.add_reserved(x86_msi_region());
    CHECK(s.alloc(0x10'0000) == Addr(0xfef0'0000));
    CHECK(s.alloc(0x10'0000) == Addr(0xfed0'0000));
    CHECK(s.alloc(0x1000, 0xfeef'ffff) == Addr(0xfecf'f000));
    CHECK(s.alloc(0x20'0000) == Addr(0xfea0'0000));  // 0xfec00000 would overlap 0xfecff000
    CHECK(s.alloc(0x40'0000) == Addr(0xfe40'0000));
    CHECK(s.alloc(0x40'0000) == Addr(0xfe00'0000));
    CHECK(s.alloc(0x40'0000) == std::nullopt);
}

TEST_CASE("iova alloc honours a 32-bit limit in a window reaching 2^64", "[host][iova]") {
    IovaSpace s;
    s.add_window({0x1000, kTop - 0xfff, "all"});
    s.add_reserved(x86_msi_region());
    CHECK(s.alloc(0x1000) == kTop - 0xfff);
    CHECK(s.alloc(0x1000, 0xffff'ffff) == Addr(0xffff'f000));
    CHECK(s.alloc(0x10000, 0xffff'ffff) == Addr(0xfffe'0000));
    CHECK(s.alloc(0x1000, 0xfef0'0fff) == Addr(0xfef0'0000));
    CHECK(s.alloc(0x2000, 0xfef0'1fff) == Addr(0xfedf'e000));  // below the MSI hole
    CHECK(s.alloc(Addr(1) << 62) == Addr(2) << 62);            // the top quarter holds the first
    CHECK(s.alloc((Addr(1) << 63) + 1) == std::nullopt);       // only 0 is aligned; not in window
    CHECK(s.alloc(0x1000, 0xfff) == std::nullopt);             // below the window
    CHECK(s.alloc(0) == std::nullopt);
}

TEST_CASE("iova alloc exhausts, frees and reallocates", "[host][iova]") {
    IovaSpace s;
    s.add_window({0x10000, 0x4000, "small"});
    CHECK(s.alloc(0x1000) == Addr(0x13000));
    CHECK(s.alloc(0x1000) == Addr(0x12000));
    CHECK(s.alloc(0x1000) == Addr(0x11000));
    CHECK(s.alloc(0x1000) == Addr(0x10000));
    CHECK(s.alloc(0x1000) == std::nullopt);
    s.free(0x12000);
    s.free(0x12345);  // unknown: ignored
    CHECK(s.live() == 3);
    CHECK_FALSE(s.allocated(0x12000));
    CHECK(s.alloc(0x2000) == std::nullopt);
    CHECK(s.alloc(0x1000) == Addr(0x12000));
    s.free(0x11000);
    s.free(0x10000);
    CHECK(s.alloc(0x2000) == Addr(0x10000));  // freed neighbours merged
    s.free(0x13000);
    s.free(0x12000);
    CHECK(s.alloc(0x2000) == Addr(0x12000));
}

TEST_CASE("iova alloc matches a brute-force reference", "[host][iova]") {
    std::mt19937_64 rng(0x10fa);
    IovaSpace s;
    s.add_window({0x10'0000, 0x80'0000, "low"});
    s.add_window({0x400'0000, 0x80'0000, "high"});
    s.add_window({0x480'0000, 0x40'0000, "adjacent"});  // touches "high": no alloc spans both
    s.add_reserved({0x440'0000, 0x10'0000, "hole"});
    s.add_reserved({0x13'0000, 0x1'0000, "small"});
    s.add_reserved({0x13'8000, 0x1'0000, "overlapping"});
    std::map<Addr, Addr> live;
    const Addr limits[] = {kTop, 0x460'0000, 0x4a0'0000, 0x20'0000, 0x80'0000};
    for (int step = 0; step < 4000; ++step) {
        if (live.empty() || rng() % 5 < 3) {
            Addr size = 0x1000 * (1 + rng() % 64);
            if (rng() % 8 == 0) size = 0x800 + rng() % 0x1800;
            if (rng() % 50 == 0) size = 0x40'0000;
            const Addr limit = limits[rng() % 5];
            auto want = reference_alloc(s, live, size, limit);
            auto got = s.alloc(size, limit);
            INFO("step " << step << " size " << size << " limit " << limit);
            REQUIRE(got == want);
            if (got) {
                REQUIRE(s.check(*got, size).empty());
                live.emplace(*got, size);
            }
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            s.free(it->first);
            live.erase(it);
        }
        REQUIRE(s.live() == live.size());
    }
}

TEST_CASE("iova alloc stays fast with thousands live", "[host][iova]") {
    std::mt19937_64 rng(7);
    IovaSpace s;
    s.add_window({0x1000, (Addr(1) << 48) - 0x1000, "dma"});
    s.add_reserved(x86_msi_region());
    std::vector<std::pair<Addr, Addr>> live;
    std::map<Addr, Addr> by_base;
    for (int step = 0; step < 100000; ++step) {
        if (live.size() < 4000 || rng() % 2) {
            const Addr size = 0x1000 << (rng() % 7);
            auto a = s.alloc(size, rng() % 4 ? 0xffff'ffff : kTop);
            REQUIRE(a);
            auto next = by_base.lower_bound(*a);
            if (next != by_base.end()) REQUIRE(*a + size <= next->first);
            if (next != by_base.begin()) REQUIRE(std::prev(next)->second <= *a);
            by_base.emplace(*a, *a + size);
            live.emplace_back(*a, size);
        } else {
            const size_t i = rng() % live.size();
            s.free(live[i].first);
            by_base.erase(live[i].first);
            live[i] = live.back();
            live.pop_back();
        }
    }
    CHECK(s.live() == live.size());
}

// ---------------------------------------------------------------------------------------------
// Per-CPU range caches (Linux iova_rcache)

TEST_CASE("iova rcache reuses a freed range LIFO on the CPU that freed it", "[host][iova]") {
    IovaSpace s;
    s.add_window({0x100000, 0x100000, "w"});
    s.enable_rcache({});
    s.set_cpu(0);
    const Addr a = *s.alloc(0x1000), b = *s.alloc(0x1000), c = *s.alloc(0x1000);
    CHECK(a == 0x1ff000);  // top-down from the tree while the caches are empty
    CHECK(b == 0x1fe000);
    CHECK(c == 0x1fd000);
    s.free(a);
    s.free(c);
    CHECK_FALSE(s.allocated(a));
    CHECK(s.live() == 1);
    // Another CPU's cache is empty: the tree, below the cached (still reserved) ranges.
    s.set_cpu(1);
    const Addr d = *s.alloc(0x1000);
    CHECK(d == 0x1fc000);
    s.set_cpu(0);
    CHECK(s.alloc(0x1000) == c);  // newest first
    CHECK(s.alloc(0x1000) == a);
    CHECK(s.rcache_counts().hits == 2);
    // Sizes round up to a power of two of granules, so a 3-page range serves 4-page requests.
    const Addr e = *s.alloc(0x3000);
    CHECK((e & 0x3fff) == 0);
    s.free(e);
    CHECK(s.alloc(0x4000) == e);
    // 32 granules and more are beyond the caches (IOVA_RANGE_CACHE_MAX_SIZE 6).
    const Addr big = *s.alloc(0x40000);
    s.free(big);
    CHECK(s.rcache_counts().inserts == 3);
    CHECK_FALSE(s.allocated(big));
}

TEST_CASE("iova rcache: full magazines go to the depot, then back to the tree", "[host][iova]") {
    IovaSpace s;
    s.add_window({0, Addr(1) << 32, "w"});
    IovaRcacheConfig c;
    c.mag_size = 4;
    c.depot_mags = 2;
    s.enable_rcache(c);
    std::vector<Addr> v;
    for (int i = 0; i < 20; ++i) v.push_back(*s.alloc(0x1000));
    // loaded (4) + prev (4) + depot (2 x 4) = 16 cached; the 17th free spills a magazine.
    for (int i = 0; i < 17; ++i) s.free(v[size_t(i)]);
    CHECK(s.rcache_counts().to_tree == 4);
    CHECK(s.live() == 3);
    // A CPU with empty magazines takes a full one from the depot.
    s.set_cpu(3);
    CHECK(s.alloc(0x1000).has_value());
    CHECK(s.rcache_counts().hits == 1);
    s.flush_rcache();
    CHECK(s.live() == 4);
}

TEST_CASE("iova rcache: a full tree flushes the caches and retries", "[host][iova]") {
    IovaSpace s;
    s.add_window({0x10000, 0x4000, "small"});
    s.enable_rcache({});
    for (int i = 0; i < 4; ++i) CHECK(s.alloc(0x1000).has_value());
    s.free(0x13000);
    s.free(0x12000);
    s.set_cpu(1);  // its cache is empty and the tree is full of cached ranges
    CHECK(s.alloc(0x2000) == Addr(0x12000));
    CHECK(s.rcache_counts().flushes == 1);
    CHECK_THROWS_AS(s.set_cpu(1u << 20), std::invalid_argument);
    IovaRcacheConfig bad;
    bad.granule = 3000;
    CHECK_THROWS_AS(s.enable_rcache(bad), std::invalid_argument);
}

TEST_CASE("iova rcache property: never hands out a live IOVA, reuses what a CPU freed",
          "[host][iova]") {
    for (uint64_t seed : {1u, 2u, 3u, 4u}) {
        std::mt19937_64 rng(seed);
        IovaSpace s;
        s.add_window({0, Addr(1) << 30, "w"});
        s.add_reserved(x86_msi_region());
        IovaRcacheConfig c;
        c.mag_size = 8;
        c.depot_mags = 3;
        c.cpus = 4;
        s.enable_rcache(c);
        std::map<Addr, Addr> live;                                 // base -> requested size
        std::vector<std::vector<std::pair<Addr, Addr>>> freed(4);  // per CPU: (base, pages)
        uint64_t expected_hits = 0;
        for (int step = 0; step < 20000; ++step) {
            const unsigned cpu = unsigned(rng() % 4);
            s.set_cpu(cpu);
            if (live.empty() || rng() % 100 < 55) {
                const Addr pages = Addr(1) << (rng() % 7);  // 1..64: the last is uncached
                const Addr size = pages * 0x1000 - (rng() % 2 ? 0x800 : 0);
                const auto a = s.alloc(size);
                REQUIRE(a.has_value());
                // Never overlapping a live range.
                auto next = live.lower_bound(*a);
                if (next != live.end()) REQUIRE(next->first >= *a + size);
                if (next != live.begin()) {
                    auto prev = std::prev(next);
                    REQUIRE(prev->first + prev->second <= *a);
                }
                REQUIRE(s.allocated(*a));
                // What this CPU freed last of this size, if still in its cache, comes back.
                auto& f = freed[cpu];
                if (pages < 32 && !f.empty() && f.back().second == pages && f.back().first == *a)
                    ++expected_hits;
                live.emplace(*a, size);
            } else {
                auto it = live.begin();
                std::advance(it, long(rng() % live.size()));
                const Addr pages = (it->second + 0xfff) / 0x1000;
                s.free(it->first);
                REQUIRE_FALSE(s.allocated(it->first));
                freed[cpu].push_back({it->first, pages});
                live.erase(it);
            }
            REQUIRE(s.live() == live.size());
        }
        CHECK(s.rcache_counts().hits > 1000);  // reuse happens
        CHECK(expected_hits > 100);
        // Immediately after a free, the same CPU gets that range back (LIFO).
        s.set_cpu(2);
        const Addr x = *s.alloc(0x2000);
        s.free(x);
        CHECK(s.alloc(0x2000) == x);
    }
}
