// The translation unit's state and its stages' declarations, shared by the files that
// implement them: translation_unit.cpp (the stages, on every request) and
// translation_unit_invalidation.cpp (invalidation and checking mode's stale-use
// verdicts). Private to models/iommu.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <queue>

#include "core/bits.h"
#include "core/log.h"
#include "core/timeline.h"
#include "translation_unit.h"

namespace iommusim {
namespace unit_detail {

struct IotlbKey {
    uint32_t tag, pasid;
    Addr vpn;
    uint8_t shift;
    bool operator==(const IotlbKey& o) const {
        return vpn == o.vpn && tag == o.tag && pasid == o.pasid && shift == o.shift;
    }
};
struct IotlbKeyHash {
    size_t operator()(const IotlbKey& k) const {
        return size_t(k.vpn ^ (uint64_t(k.tag) << 16) ^ k.pasid);
    }
};
struct IotlbEntry {
    Addr page_out;  // output page base
    Perm perm;
    uint8_t mem_type;
    uint32_t out_tag;  // Translation::tag: what invalidations name
    Tick ready;        // fill time: earlier hits wait for it
};

struct PasidKey {
    uint16_t rid;
    uint32_t pasid;
    bool operator==(const PasidKey& o) const { return rid == o.rid && pasid == o.pasid; }
};
struct PasidKeyHash {
    size_t operator()(const PasidKey& k) const { return k.rid ^ (size_t(k.pasid) << 16); }
};

struct WalkKey {
    uint32_t tag, pasid;
    Addr prefix;  // input >> shift: which entry of this level
    uint8_t stage, nested;
    bool operator==(const WalkKey& o) const {
        return prefix == o.prefix && tag == o.tag && pasid == o.pasid && stage == o.stage &&
               nested == o.nested;
    }
};
struct WalkKeyHash {
    size_t operator()(const WalkKey& k) const {
        return size_t(k.prefix ^ (uint64_t(k.tag) << 20) ^ (uint64_t(k.stage) << 40) ^ k.nested);
    }
};

constexpr int kNoCache = -1;
// Page-size classes of a split IOTLB.
inline int size_class(unsigned shift) {
    return shift < 21 ? 0 : shift < 30 ? 1 : 2;
}

// Each cache's replacement stream: its own constant, moved by the unit's seed (golden ratio
// multiplier, so nearby seeds give unrelated streams).
inline uint64_t cache_seed(const UnitParams& p, uint64_t which) {
    return which + p.seed * 0x9E3779B97F4A7C15ull;
}

// For log lines: "4 KiB", "2 MiB", "1 GiB".
inline std::string page_size(unsigned shift) {
    static const char* const kUnit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    return fmt::format("{} {}", Addr(1) << (shift % 10), kUnit[shift / 10]);
}

}  // namespace unit_detail

using namespace unit_detail;  // NOLINT: private header of this folder

struct TranslationUnit::Impl {
    Impl(const UnitParams& p, Walker& w, MemoryPort& m, StatGroup& g)
        : p(p),
          clk(p.clock()),
          ctx_lat(clk.cycles(p.context_cache.latency)),
          pasid_lat(clk.cycles(p.pasid_cache.latency)),
          iotlb_lat(clk.cycles(p.iotlb.latency)),
          walker(w),
          mem(m),
          walkers(p.walkers),
          ctx_cache(p.context_cache.geometry(cache_seed(p, 11))),
          pasid_cache(p.pasid_cache.geometry(cache_seed(p, 12))),
          stats(g) {
        iotlbs.emplace_back(p.iotlb.geometry(cache_seed(p, 13)));
        if (p.iotlb_split) {
            CacheParams c2 = p.iotlb, c1 = p.iotlb;
            c2.entries = p.iotlb_entries_2m;
            c1.entries = p.iotlb_entries_1g;
            iotlbs.emplace_back(c2.geometry(cache_seed(p, 14)));
            iotlbs.emplace_back(c1.geometry(cache_seed(p, 15)));
        }
        for (unsigned l = 0; l < 4; ++l) {
            CacheParams c{p.walk_cache_entries[l], p.walk_cache_ways, Replacement::LRU,
                          p.walk_cache_latency};
            if (c.entries) walk_caches[l].emplace(c.geometry(cache_seed(p, 20 + l)));
        }
        register_stats();
        log_ch = log::Channel(g.path());
    }

    using Iotlb = SetAssocCache<IotlbKey, IotlbEntry, IotlbKeyHash>;
    // A paging-structure cache line: the entry's contents and the input span it covers.
    struct WalkLine {
        PagingEntry entry;
        uint8_t shift;
    };
    using WalkCache = SetAssocCache<WalkKey, WalkLine, WalkKeyHash>;

    const UnitParams& p;
    Clock clk;
    // The caches' lookup times in ticks: every request pays them.
    const Tick ctx_lat, pasid_lat, iotlb_lat;
    Walker& walker;
    MemoryPort& mem;
    ServerPool walkers;
    Tick last_walk = 0;         // length of the last walk: the gap a new walk looks for
    std::vector<Iotlb> iotlbs;  // [0] unified, or 4K / 2M / 1G classes
    uint64_t shifts_seen = 0;   // page sizes present in the IOTLB: the sizes a lookup probes
    SetAssocCache<uint16_t, WalkContext> ctx_cache;  // device contexts (complete or not)
    SetAssocCache<PasidKey, WalkContext, PasidKeyHash> pasid_cache;
    std::array<std::optional<WalkCache>, 4> walk_caches;  // levels 2..5
    // Miss status holding: walks by 4 KiB page, kept while a request may still arrive before
    // they end (see retire()).
    struct InFlight {
        Tick done;
        WalkResult result;
    };
    std::unordered_map<IotlbKey, InFlight, IotlbKeyHash> in_flight;
    // Nodes of retired in-flight walks, reused by later walks: no allocation per walk.
    std::vector<decltype(in_flight)::node_type> spare_in_flight;
    using Due = std::pair<Tick, IotlbKey>;  // when an in-flight entry may go
    struct Later {
        bool operator()(const Due& a, const Due& b) const { return a.first > b.first; }
    };
    std::priority_queue<Due, std::vector<Due>, Later> in_flight_due;
    Tick floor = 0;   // forget_before(): no request arrives before it any more
    Tick latest = 0;  // latest arrival seen
    // What retire() retires up to, kept as floor and latest move: most requests move neither.
    Tick horizon = 0;
    Oracle oracle;
    size_t keep_stale = 0;
    log::Channel log_ch;    // cache decisions, walk steps, fills, invalidations (debug)
    bool log_walk = false;  // this request is logged (channel on, requester followed)

    StatGroup& stats;
    Counter *translations, *faults, *stale_hits, *iotlb_lookups, *iotlb_hits, *iotlb_misses,
        *iotlb_fills, *iotlb_evictions, *ctx_lookups, *ctx_hits, *ctx_misses, *pasid_lookups,
        *pasid_hits, *pasid_misses, *walks, *merges, *prefetches, *mem_reads, *mem_writes,
        *invalidations, *invalidated_entries;
    std::array<Counter*, 4> wc_hits{}, wc_misses{};
    Histogram *lat_all, *lat_hit, *lat_miss, *lat_context, *lat_pasid, *lat_queue, *lat_merge;
    std::array<Histogram*, 6> lat_level{};  // page-table time by level 1..5 (index 0 unused)
    struct PerRequester {
        Counter *lookups, *hits, *misses;
    };
    std::unordered_map<uint64_t, PerRequester> per_req;
    // The last requester looked up (devices send runs of requests): most lookups skip the
    // map. Values of per_req never move.
    uint64_t last_req_key = ~uint64_t(0);
    PerRequester* last_req = nullptr;

    void register_stats() {
        StatGroup& t = stats.child("iotlb");
        iotlb_lookups = &t.counter("lookups", "IOTLB lookups (one per translation request)");
        iotlb_hits = &t.counter("hits", "lookups that found a translation");
        iotlb_misses = &t.counter("misses", "lookups that needed a walk or an in-flight walk");
        iotlb_fills = &t.counter("fills", "translations inserted after a walk");
        iotlb_evictions = &t.counter("evictions", "valid entries replaced by fills");
        StatGroup& c = stats.child("context_cache");
        ctx_lookups = &c.counter("lookups", "context-cache lookups");
        ctx_hits = &c.counter("hits", "context-cache hits");
        ctx_misses = &c.counter("misses", "context-cache misses (root and context entries read)");
        StatGroup& pc = stats.child("pasid_cache");
        pasid_lookups = &pc.counter("lookups", "PASID-cache lookups");
        pasid_hits = &pc.counter("hits", "PASID-cache hits");
        pasid_misses = &pc.counter("misses", "PASID-cache misses (PASID entries read)");
        // Every lookup is a hit or a miss: the lookups are their sum, not a third count.
        for (auto [lookups, hits, misses] : {std::array{iotlb_lookups, iotlb_hits, iotlb_misses},
                                             std::array{ctx_lookups, ctx_hits, ctx_misses},
                                             std::array{pasid_lookups, pasid_hits, pasid_misses}})
            lookups->include({{hits, 1}, {misses, 1}});
        StatGroup& wc = stats.child("walk_cache");
        for (unsigned l = 0; l < 4; ++l) {
            wc_hits[l] =
                &wc.counter(fmt::format("l{}_hits", l + 2),
                            fmt::format("level-{} entries found in the walk cache", l + 2));
            wc_misses[l] = &wc.counter(fmt::format("l{}_misses", l + 2),
                                       fmt::format("level-{} entries read from memory", l + 2));
        }
        StatGroup& w = stats.child("walker");
        walks = &w.counter("walks", "walks started (context and page-table)");
        merges = &w.counter("merges", "misses that waited for an in-flight walk of the same page");
        prefetches = &w.counter("prefetches", "next-page walks started after a miss");
        mem_reads = &w.counter("memory_reads", "translation-structure reads sent to memory");
        mem_writes = &w.counter("memory_writes", "accessed/dirty updates written to memory");
        lat_queue = &w.histogram("queueing", "ns", "wait for a free walker");
        lat_merge = &w.histogram("merge_wait", "ns", "wait for an in-flight walk of the same page");
        lat_context = &w.histogram("context_fetch", "ns", "root/context entry reads of a miss");
        lat_pasid = &w.histogram("pasid_fetch", "ns", "PASID directory/table reads of a miss");
        for (unsigned l = 1; l <= 5; ++l)
            lat_level[l] = &w.histogram(
                fmt::format("level{}", l), "ns",
                fmt::format("level-{} page-table steps of a miss (walk-cache hit or read)", l));
        translations = &stats.counter("translations", "translation requests");
        faults = &stats.counter("faults", "requests that faulted");
        stale_hits = &stats.counter(
            "stale_hits",
            "translations from stale cached contents the driver's intent disagrees with (checking "
            "mode)");
        invalidations = &stats.counter("invalidations", "invalidations executed");
        invalidated_entries =
            &stats.counter("invalidated_entries", "cache entries removed by invalidations");
        lat_all = &stats.histogram("latency", "ns", "translation latency, all requests");
        lat_hit = &stats.histogram("hit_latency", "ns", "translation latency of IOTLB hits");
        lat_miss = &stats.histogram("miss_latency", "ns", "translation latency of IOTLB misses");
        // Every request is a hit or a miss: the total is their merge, not a third add.
        lat_all->include({lat_hit, lat_miss});
    }

    // Inline for the common case, the same requester as the last request.
    PerRequester& requester(const Requester& r) {
        const uint64_t key = (uint64_t(r.rid) << 32) | (r.has_pasid() ? r.pasid : 0xFFFFFFFFu);
        return key == last_req_key ? *last_req : new_requester(r, key);
    }
    PerRequester& new_requester(const Requester& r, uint64_t key) {
        last_req_key = key;
        auto it = per_req.find(key);
        if (it != per_req.end()) return *(last_req = &it->second);
        std::string name = fmt::format("bdf_{:02x}_{:02x}_{:x}", r.bus(), r.dev(), r.fn());
        if (r.has_pasid()) name += fmt::format("_pasid_{:x}", r.pasid);
        StatGroup& g = stats.child("requesters").child(name);
        PerRequester pr{&g.counter("lookups", "translation requests"),
                        &g.counter("hits", "IOTLB hits"), &g.counter("misses", "IOTLB misses")};
        return *(last_req = &per_req.emplace(key, pr).first->second);
    }

    static Tick ns(Tick t) { return t / kTicksPerNs; }

    Iotlb& iotlb_for(unsigned shift) { return iotlbs[iotlbs.size() == 1 ? 0 : size_class(shift)]; }

    IotlbEntry* iotlb_probe(const WalkContext& c, Addr iova, unsigned* shift) {
        for (uint64_t s = shifts_seen; s; s &= s - 1) {
            unsigned sh = unsigned(__builtin_ctzll(s));
            if (IotlbEntry* e = iotlb_for(sh).lookup({c.tag, c.pasid, iova >> sh, uint8_t(sh)})) {
                *shift = sh;
                return e;
            }
        }
        return nullptr;
    }

    // A walk step for the log: the entry as read (or as a walk cache held it) and decoded.
    void log_read(const WalkStep& s, const uint8_t* buf, bool cached, Tick at) const;
    // One read of a walk, timed through memory after the walker's step work.
    void timed_read(const WalkStep& s, Tick& cur) {
        uint8_t buf[64];
        MemDone d = mem.read(s.addr, buf, s.size, cur + clk.cycles(p.walk_step_cycles));
        ++*mem_reads;
        cur = d.at;
        if (log_walk) log_read(s, d.ok ? buf : nullptr, false, cur);
        if (d.ok)
            walker.feed(buf);
        else
            walker.feed_error();
    }

    // What one walk met on its way: times by part, walk-cache fills and, in checking mode,
    // the cached entries it used.
    struct WalkTrace {
        // For walk-cache tags, read once the walk reaches the page tables. Optional: a
        // WalkContext is large, and most requests never walk.
        std::optional<WalkContext> ctx;
        std::array<Tick, 6> level_time{};
        Tick context_time = 0, pasid_time = 0;
        struct Fill {
            int level;
            WalkKey key;
            WalkLine line;
        };
        std::vector<Fill> fills;  // walk-cache entries to insert
        // Checking mode: each cached paging entry the walk used, to compare with memory.
        struct Used {
            Addr addr;
            uint64_t value;
            uint8_t level;
        };
        bool check = false;
        std::vector<Used> used;
        uint64_t cached_value = 0;  // the last step's entry came from a walk cache: its value
        bool last_cached = false;
        // The steps' times, for the timeline only.
        struct Step {
            WalkStage stage;
            uint8_t level;
            Tick start, end;
        };
        bool record = false;
        std::vector<Step> steps;
    };
    // How far drive() takes the walker: to the device context (the context cache's content),
    // to the complete context (the PASID cache's), or to the end.
    enum class Until : uint8_t { DeviceContext, Context, Done };
    // Drive the walker from where it stands; returns the time it got there.
    Tick drive(Tick cur, Until until, WalkTrace& tr) {
        for (;;) {
            if (until == Until::DeviceContext && walker.device_context_ready()) return cur;
            if (until == Until::Context && walker.context_ready()) return cur;
            WalkStep s = walker.next();
            if (s.kind == WalkStep::Kind::Done) return cur;
            if (s.kind == WalkStep::Kind::Write) {
                uint64_t v = s.wdata;
                // Accessed/dirty bits for an entry used from a walk cache are set in what memory
                // holds now (an atomic update), not written back from a copy that may be stale.
                if (tr.last_cached && mem.peek(s.addr, &v, 8)) v |= s.wdata & ~tr.cached_value;
                cur = mem.write(s.addr, &v, 8, cur).at;
                ++*mem_writes;
                IOMMUSIM_LOG_IF(log_ch, Debug, log_walk, cur,
                                "walk {} L{} write {:#x} = {:#018x} (accessed/dirty)",
                                to_string(s.stage), s.level, s.addr, v);
                continue;
            }
            tr.last_cached = false;
            const Tick before = cur;
            switch (s.stage) {
                case WalkStage::Root:
                case WalkStage::Context:
                    timed_read(s, cur);
                    tr.context_time += cur - before;
                    break;
                case WalkStage::PasidDir:
                case WalkStage::PasidEntry:
                    timed_read(s, cur);
                    tr.pasid_time += cur - before;
                    break;
                case WalkStage::FirstLevel:
                case WalkStage::SecondLevel:
                case WalkStage::Tce:
                    paging_step(s, cur, tr);
                    if (s.level <= 5) tr.level_time[s.level] += cur - before;
                    break;
            }
            if (tr.record) tr.steps.push_back({s.stage, s.level, before, cur});
        }
    }
    // A paging-structure read at level >= 2 first asks its walk cache: a hit costs the cache
    // latency and the walk goes on from the cached contents, a miss reads memory and keeps
    // the entry (unless it is unusable: faults are not cached).
    void paging_step(const WalkStep& s, Tick& cur, WalkTrace& tr) {
        const int l = s.level >= 2 && s.level <= 5 ? s.level - 2 : kNoCache;
        if (l == kNoCache || !walk_caches[l]) return timed_read(s, cur);
        if (!tr.ctx) tr.ctx.emplace(walker.context());
        const WalkKey k{tr.ctx->tag, tr.ctx->pasid, s.shift < 64 ? s.input >> s.shift : 0,
                        uint8_t(s.stage), s.nested};
        WalkLine* c = walk_caches[l]->lookup(k);
        ++*(c ? wc_hits[l] : wc_misses[l]);
        if (!c) {
            timed_read(s, cur);
            PagingEntry e;
            if (walker.paging_entry(&e)) tr.fills.push_back({l, k, {e, s.shift}});
            return;
        }
        cur += clk.cycles(p.walk_cache_latency);
        const PagingEntry used = c->entry;
        if (log_walk) {
            uint8_t b[8];
            for (unsigned i = 0; i < 8; ++i) b[i] = uint8_t(used.value >> (8 * i));
            log_read(s, b, true, cur);
        }
        walker.feed_cached(used);
        tr.last_cached = true;
        tr.cached_value = used.value;
        if (tr.check) tr.used.push_back({s.addr, used.value, uint8_t(l + 2)});
        // The walk may have set accessed/dirty bits in it: the cached copy has them too.
        PagingEntry now;
        if (walker.paging_entry(&now)) c->entry.value = now.value;
    }

    std::vector<StaleHit>* stale_list = nullptr;
    // WalkTrace::used's storage between requests: it would grow from empty on every walk.
    std::vector<WalkTrace::Used> spare_used;

    // What the timeline shows of one translation: its span, its walk (with the walk's steps)
    // on the walker that served it, a fault, the IOTLB occupancy.
    struct WalkSpan {
        bool walked = false;
        unsigned server = 0;
        Tick start = 0, end = 0, prefetch_end = 0;
        uint64_t reads0 = 0;
    };
    // One request on its way through the stages.
    struct Txn {
        Txn(const Requester& r, Addr a, Access c, Tick at)
            : req(r), iova(a), acc(c), t0(at), t(at) {}
        const Requester& req;
        Addr iova;
        Access acc;
        Tick t0;
        Tick t;  // where the request stands
        PerRequester* pr = nullptr;
        // The request's context: an entry of the context or PASID cache (nothing changes
        // those entries while a request is on its way), or own_ctx once walked (the walker's
        // own moves on with its next walk). Pointers: a WalkContext is large, and every
        // request finds one.
        const WalkContext* ctx = nullptr;
        std::optional<WalkContext> own_ctx;
        bool have_ctx = false;
        bool walking = false;    // holds a walker (slot) since the context stage
        bool at_tables = false;  // the walker stands at this request's page tables
        // Contexts used from the context and PASID caches (kept in checking mode).
        bool dev_cached = false, pasid_cached = false;
        const WalkContext *cached_dev = nullptr, *cached_pasid = nullptr;
        ServerPool::Slot slot{0, 0};
        WalkTrace tr;
        WalkSpan ws;
        TranslateOutcome out;
    };

    static std::string who(const Txn& x) {
        return fmt::format("{} {} {:#x}", to_string(x.req), to_string(x.acc), x.iova);
    }
    // Inlined into TranslationUnit::translate (both in translation_unit.cpp): one call less.
    [[gnu::always_inline]] inline TranslateOutcome translate(const Requester& req, Addr iova,
                                                             Access acc, Tick t0);
    bool context_stage(Txn& x);
    bool iotlb_stage(Txn& x);
    bool merge_stage(Txn& x);
    void walk_stage(Txn& x);
    void fill(const WalkContext& ctx, Addr iova, const WalkResult& r, Tick ready);
    void fill_walk_caches(const WalkTrace& tr);
    void prefetch(Txn& x, unsigned shift);
    TranslateOutcome finish(Txn& x);
    bool pasid_lookup(Txn& x, bool miss_costs);
    // Checking mode: run the walker from scratch on what memory holds now (untimed, no
    // writes) as far as `until`; what cached contexts are compared with.
    bool fresh_walk(const Txn& x, Until until);
    void check_stale(Txn& x);
    void report_stale(Txn& x, const Expectation& e);
    // Inlined into translate(): most requests take it, and the stages are out of line.
    [[gnu::always_inline]] inline bool hit_path(const Requester& req, Addr iova, Access acc,
                                                Tick t0, PerRequester& pr, TranslateOutcome& out);
    [[gnu::noinline]] TranslateOutcome stages(const Requester& req, Addr iova, Access acc, Tick t0,
                                              PerRequester& pr);
    [[gnu::noinline]] void stale_hit(const Requester& req, Addr iova, Access acc, Tick t0,
                                     const WalkContext& dev, const WalkContext* ctx,
                                     const Expectation& want, TranslateOutcome& out);
    // Inlined into both callers: on the hit path a call costs ~25 instructions per request
    // (callgrind), and GCC stopped inlining it once the unit's state moved to this header.
    [[gnu::always_inline]] inline void iotlb_hit(const IotlbEntry& e, Addr iova, unsigned shift,
                                                 PerRequester& pr, TranslateOutcome& out, Tick& t);
    void take_walker(Txn& x);
    // Inline up to the first due walk: on most requests none is due.
    void retire(Tick now) {
        if (now > latest) latest = now, update_horizon();
        if (!in_flight_due.empty() && in_flight_due.top().first <= horizon) retire_until(horizon);
    }
    void update_horizon() {
        horizon = std::max(floor, latest > ServerPool::kDefaultHistory
                                      ? latest - ServerPool::kDefaultHistory
                                      : Tick(0));
    }
    void retire_until(Tick horizon);
    Tick invalidate(const InvalidationScope& s, Tick at);

    size_t iotlb_entries() const {
        size_t n = 0;
        for (const auto& c : iotlbs) n += c.size();
        return n;
    }
    void record(Timeline& tl, const Requester& req, Addr iova, Tick t0, const TranslateOutcome& out,
                const WalkTrace& tr, const WalkSpan& w);
};

}  // namespace iommusim
