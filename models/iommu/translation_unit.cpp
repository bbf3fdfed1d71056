#include "translation_unit.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <queue>

#include "core/bits.h"
#include "core/log.h"
#include "core/timeline.h"

namespace iommusim {

namespace {

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
int size_class(unsigned shift) {
    return shift < 21 ? 0 : shift < 30 ? 1 : 2;
}

// Each cache's replacement stream: its own constant, moved by the unit's seed (golden ratio
// multiplier, so nearby seeds give unrelated streams).
uint64_t cache_seed(const UnitParams& p, uint64_t which) {
    return which + p.seed * 0x9E3779B97F4A7C15ull;
}

// For log lines: "4 KiB", "2 MiB", "1 GiB".
std::string page_size(unsigned shift) {
    static const char* const kUnit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    return fmt::format("{} {}", Addr(1) << (shift % 10), kUnit[shift / 10]);
}

}  // namespace

struct TranslationUnit::Impl {
    Impl(const UnitParams& p, Walker& w, MemoryPort& m, StatGroup& g)
        : p(p),
          clk(p.clock()),
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
    using Due = std::pair<Tick, IotlbKey>;  // when an in-flight entry may go
    struct Later {
        bool operator()(const Due& a, const Due& b) const { return a.first > b.first; }
    };
    std::priority_queue<Due, std::vector<Due>, Later> in_flight_due;
    Tick floor = 0;   // forget_before(): no request arrives before it any more
    Tick latest = 0;  // latest arrival seen
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
    }

    PerRequester& requester(const Requester& r) {
        uint64_t key = (uint64_t(r.rid) << 32) | (r.has_pasid() ? r.pasid : 0xFFFFFFFFu);
        if (key == last_req_key) return *last_req;
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
    TranslateOutcome translate(const Requester& req, Addr iova, Access acc, Tick t0);
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
    bool hit_path(const Requester& req, Addr iova, Access acc, Tick t0, PerRequester& pr,
                  TranslateOutcome& out);
    void iotlb_hit(const IotlbEntry& e, Addr iova, unsigned shift, PerRequester& pr,
                   TranslateOutcome& out, Tick& t);
    void take_walker(Txn& x);
    void retire(Tick now);
    Tick invalidate(const InvalidationScope& s, Tick at);

    size_t iotlb_entries() const {
        size_t n = 0;
        for (const auto& c : iotlbs) n += c.size();
        return n;
    }
    void record(Timeline& tl, const Requester& req, Addr iova, Tick t0, const TranslateOutcome& out,
                const WalkTrace& tr, const WalkSpan& w);
};

void TranslationUnit::Impl::record(Timeline& tl, const Requester& req, Addr iova, Tick t0,
                                   const TranslateOutcome& out, const WalkTrace& tr,
                                   const WalkSpan& w) {
    static const char* const kLevel[] = {"level 0", "level 1", "level 2",
                                         "level 3", "level 4", "level 5"};
    if (!tl.near(t0, std::max({out.done, w.end, w.prefetch_end}))) return;
    const std::string& proc = tl.process_of(&walker);
    const std::string iova_s = fmt::format("\"{:#x}\"", iova);
    const std::string req_s = fmt::format("\"{}\"", to_string(req));
    const int tr_track = tl.track(proc, "translations");
    const char* what = !out.result.ok() ? "fault"
                       : out.iotlb_hit  ? "hit"
                       : out.merged     ? "merged miss"
                                        : "miss";
    Timeline::Args args{{"iova", iova_s}, {"requester", req_s}};
    if (w.walked) args.push_back({"walker", std::to_string(w.server)});
    tl.span(tr_track, what, t0, out.done, args);
    if (!out.result.ok())
        tl.instant(tr_track, "fault", out.done,
                   {{"iova", iova_s},
                    {"requester", req_s},
                    {"kind", fmt::format("\"{}\"", to_string(out.result.fault.kind))}});
    if (!w.walked) return;
    unsigned levels = 0;
    for (const WalkTrace::Step& st : tr.steps)
        levels += st.stage == WalkStage::FirstLevel || st.stage == WalkStage::SecondLevel ||
                  st.stage == WalkStage::Tce;
    const int walker_track = tl.track(proc, fmt::format("walker {}", w.server));
    const int lane = tl.span(walker_track, "walk", w.start, w.end,
                             {{"iova", iova_s},
                              {"requester", req_s},
                              {"levels", std::to_string(levels)},
                              {"memory_reads", std::to_string(mem_reads->value() - w.reads0)}});
    for (const WalkTrace::Step& st : tr.steps) {
        const bool table = st.stage == WalkStage::FirstLevel ||
                           st.stage == WalkStage::SecondLevel || st.stage == WalkStage::Tce;
        tl.child(lane, table && st.level <= 5 ? kLevel[st.level] : to_string(st.stage), st.start,
                 st.end, {{"stage", fmt::format("\"{}\"", to_string(st.stage))}});
    }
    if (w.prefetch_end) tl.span(walker_track, "prefetch", w.end, w.prefetch_end);
    tl.counter(proc, "busy walkers", w.start, double(walkers.busy_at(w.start)));
    tl.counter(proc, "busy walkers", w.end, double(walkers.busy_at(w.end)));
    if (!out.iotlb_hit) tl.counter(proc, "iotlb entries", out.done, double(iotlb_entries()));
}

// The stages, in the order a request meets them: context (context and PASID caches, or a
// context walk), IOTLB, merge onto an in-flight walk, walk (then fill). Each returns true
// once the request's outcome is known.
void TranslationUnit::Impl::log_read(const WalkStep& s, const uint8_t* buf, bool cached,
                                     Tick at) const {
    std::string value;  // the entry as one number, most significant quadword first
    for (unsigned i = cached ? 1 : s.size / 8; buf && i-- > 0;) {
        uint64_t q = 0;
        for (unsigned b = 0; b < 8; ++b) q |= uint64_t(buf[8 * i + b]) << (8 * b);
        value += fmt::format("{:016x}", q);
    }
    IOMMUSIM_LOG(log_ch, Debug, at, "walk {}{}{} read {:#x} = {}{}: {}", to_string(s.stage),
                 s.level ? fmt::format(" L{}", s.level) : std::string(),
                 s.nested ? " (nested)" : "", s.addr, buf ? value : "error",
                 cached ? " (walk cache hit: no memory read)" : "",
                 buf ? walker.describe(s, buf) : std::string("read failed"));
}

TranslateOutcome TranslationUnit::Impl::translate(const Requester& req, Addr iova, Access acc,
                                                  Tick t0) {
    retire(t0);
    log_walk = IOMMUSIM_LOG_ON(log_ch, Debug) && log::wants(req);
    ++*translations;
    PerRequester& pr = requester(req);
    ++*pr.lookups;
    TranslateOutcome out;
    if (hit_path(req, iova, acc, t0, pr, out)) return out;
    Txn x(req, iova, acc, t0);
    x.pr = &pr;
    if (!context_stage(x) && !iotlb_stage(x) && !merge_stage(x)) walk_stage(x);
    return finish(x);
}

// Most requests find their context in the caches and their translation in the IOTLB. This
// is that case through the stages, without a Txn and its walk state: every cache is first
// searched without touching it, and only when all hit are they used, counted and timed as
// context_stage, pasid_lookup, iotlb_stage and finish do; otherwise nothing has changed and
// the stages run. Not taken while the request is logged or on the timeline.
bool TranslationUnit::Impl::hit_path(const Requester& req, Addr iova, Access acc, Tick t0,
                                     PerRequester& pr, TranslateOutcome& out) {
    if (log_walk) return false;
    if (Timeline* tl = timeline(); tl && tl->near(t0, kNever)) return false;
    const auto cl = ctx_cache.find(req.rid);
    if (!cl.found()) return false;
    const WalkContext& ce = ctx_cache.at(cl);
    decltype(pasid_cache)::Line pl{0, 0};
    const WalkContext* ctx = &ce;
    if (ce.complete) {
        if (req.has_pasid()) return false;  // the walker judges it
    } else {
        pl = pasid_cache.find({req.rid, req.has_pasid() ? req.pasid : Requester::kNoPasid});
        if (!pl.found()) return false;
        ctx = &pasid_cache.at(pl);
    }
    Iotlb* tlb = nullptr;
    Iotlb::Line il{0, 0};
    unsigned shift = 0;
    for (uint64_t s = shifts_seen; s && !tlb; s &= s - 1) {
        shift = unsigned(__builtin_ctzll(s));
        Iotlb& c = iotlb_for(shift);
        il = c.find({ctx->tag, ctx->pasid, iova >> shift, uint8_t(shift)});
        if (il.found()) tlb = &c;
    }
    if (!tlb || !permits(tlb->at(il).perm, perm_needed(acc, false))) return false;

    ++*ctx_lookups;
    ++*ctx_hits;
    ctx_cache.use(cl);
    Tick t = t0 + clk.cycles(p.context_cache.latency);
    if (!ce.complete) {
        ++*pasid_lookups;
        ++*pasid_hits;
        pasid_cache.use(pl);
        t += clk.cycles(p.pasid_cache.latency);
    }
    ++*iotlb_lookups;
    t += clk.cycles(p.iotlb.latency);
    iotlb_hit(tlb->use(il), iova, shift, pr, out, t);
    out.done = t;
    if (oracle) {
        const Expectation want = oracle(req, iova);
        if (!translation_matches(out.result, want, acc, false)) {
            Txn x(req, iova, acc, t0);
            x.t = t;
            x.out = out;
            x.dev_cached = true, x.cached_dev = &ce;
            if (!ce.complete) x.pasid_cached = true, x.cached_pasid = ctx;
            report_stale(x, want);
            out.stale = x.out.stale;
        }
    }
    lat_all->add(ns(t - t0));
    lat_hit->add(ns(t - t0));
    return true;
}

void TranslationUnit::Impl::take_walker(Txn& x) {
    x.slot = walkers.earliest(x.t, last_walk);
    lat_queue->add(ns(x.slot.start - x.t));
    x.walking = true;
    ++*walks;
    IOMMUSIM_LOG_IF(log_ch, Debug, log_walk, x.slot.start, "{}: walk on walker {} (queued {} ns)",
                    who(x), x.slot.server, ns(x.slot.start - x.t));
}

// The context: the context cache (a complete context, or in scalable mode the context entry
// followed by a PASID-cache lookup), or a context walk.
bool TranslationUnit::Impl::context_stage(Txn& x) {
    const Requester& req = x.req;
    WalkTrace& tr = x.tr;
    tr.check = bool(oracle);
    ++*ctx_lookups;
    const WalkContext* ce = ctx_cache.lookup(req.rid);
    x.t += clk.cycles(p.context_cache.latency);
    bool pasid_checked = false;
    if (ce) {
        ++*ctx_hits;
        x.dev_cached = true;
        x.cached_dev = ce;
        // A cached PASID-less context serves requests without PASID only: one with a PASID
        // is the walker's to judge (VT-d legacy mode blocks it).
        if (ce->complete && !req.has_pasid())
            x.ctx = ce, x.have_ctx = true;
        else if (ce->complete)
            x.dev_cached = false;  // not used: the walker starts afresh
        else
            pasid_checked = true, x.have_ctx = pasid_lookup(x, true);
    } else {
        ++*ctx_misses;
    }
    if (Timeline* tl = timeline(); tl && tl->near(x.t0, kNever))
        tr.record = true, x.ws.reads0 = mem_reads->value();
    IOMMUSIM_LOG_IF(log_ch, Debug, log_walk, x.t, "{}: context cache {}{}", who(x),
                    !ce                          ? "miss"
                    : x.dev_cached || x.have_ctx ? "hit"
                                                 : "hit, not usable here",
                    !pasid_checked   ? ""
                    : x.pasid_cached ? ", PASID cache hit"
                                     : ", PASID cache miss");
    if (x.have_ctx) return false;
    take_walker(x);
    if (x.dev_cached)  // scalable mode: the PASID stage from the cached context entry
        walker.resume(*x.cached_dev, req, x.iova, x.acc);
    else
        walker.start(req, x.iova, x.acc);
    x.t = drive(x.slot.start, Until::DeviceContext, tr);
    // The walk reached the PASID stage: the PASID cache may hold the rest (a miss costs
    // nothing here, the lookup overlapping the PASID-directory read).
    if (!pasid_checked && walker.device_context_ready() && !walker.context_ready())
        pasid_checked = true, x.have_ctx = pasid_lookup(x, false);
    const bool pasid_walked = pasid_checked && !x.have_ctx;
    if (!x.have_ctx) {
        x.t = drive(x.t, Until::Context, tr);
        if (!walker.context_ready()) {  // faulted in the context structures
            walkers.occupy(x.slot.server, x.slot.start, x.t);
            x.ws.end = x.t;
            x.out.result = walker.result();
            return true;
        }
        x.ctx = &x.own_ctx.emplace(walker.context());
        x.have_ctx = true;
        x.at_tables = true;
    }
    const PasidKey pk{req.rid, req.has_pasid() ? req.pasid : Requester::kNoPasid};
    if (pasid_walked) pasid_cache.insert(pk, *x.ctx);
    if (!ce) ctx_cache.insert(req.rid, walker.device_context());
    IOMMUSIM_LOG_IF(log_ch, Debug, log_walk, x.t, "{}: context decoded, tag {}{}{}", who(x),
                    x.ctx->tag, ce ? "" : ", context cache fill",
                    pasid_walked ? ", PASID cache fill" : "");
    return false;
}

// A PASID-cache lookup for the request; on a hit the complete context comes from the cache.
bool TranslationUnit::Impl::pasid_lookup(Txn& x, bool miss_costs) {
    const PasidKey pk{x.req.rid, x.req.has_pasid() ? x.req.pasid : Requester::kNoPasid};
    ++*pasid_lookups;
    const WalkContext* pc = pasid_cache.lookup(pk);
    if (pc || miss_costs) x.t += clk.cycles(p.pasid_cache.latency);
    if (!pc) return ++*pasid_misses, false;
    ++*pasid_hits;
    x.ctx = pc;
    x.pasid_cached = true;
    x.cached_pasid = pc;
    return true;
}

bool TranslationUnit::Impl::iotlb_stage(Txn& x) {
    ++*iotlb_lookups;
    x.t += clk.cycles(p.iotlb.latency);
    unsigned shift = 0;
    IotlbEntry* e = iotlb_probe(*x.ctx, x.iova, &shift);
    if (!e || !permits(e->perm, perm_needed(x.acc, false))) {
        ++*iotlb_misses;
        ++*x.pr->misses;
        IOMMUSIM_LOG_IF(log_ch, Debug, log_walk, x.t, "{}: IOTLB miss{}", who(x),
                        e ? " (the cached entry lacks the rights: walk again)" : "");
        return false;
    }
    if (x.walking) walkers.occupy(x.slot.server, x.slot.start, x.t), x.ws.end = x.t;
    iotlb_hit(*e, x.iova, shift, *x.pr, x.out, x.t);
    const Translation& r = x.out.result.tr;
    IOMMUSIM_LOG_IF(log_ch, Debug, log_walk, x.t, "{}: IOTLB hit -> {:#x} ({} page, {}, tag {})",
                    who(x), r.out, page_size(shift), perm_string(r.perm), r.tag);
    return true;
}

// An IOTLB hit on `e` for `iova`, found at `t`: counted, its translation, and the wait for
// the entry's walk if that is still in flight.
void TranslationUnit::Impl::iotlb_hit(const IotlbEntry& e, Addr iova, unsigned shift,
                                      PerRequester& pr, TranslateOutcome& out, Tick& t) {
    ++*iotlb_hits;
    ++*pr.hits;
    out.iotlb_hit = true;
    if (e.ready > t) out.merged = true, lat_merge->add(ns(e.ready - t)), t = e.ready;
    Translation& r = out.result.tr;
    r.out = e.page_out | (iova & ((Addr(1) << shift) - 1));
    r.page_shift = uint8_t(shift);
    r.perm = e.perm;
    r.mem_type = e.mem_type;
    r.tag = e.out_tag;
}

// A miss to a page whose walk is in flight waits for that walk.
bool TranslationUnit::Impl::merge_stage(Txn& x) {
    if (x.walking) return false;  // already holds a walker: walks on
    const IotlbKey page{x.ctx->tag, x.ctx->pasid, x.iova >> 12, 12};
    auto it = in_flight.find(page);
    // Only onto a walk whose result grants this access: a write must not ride on a read's
    // walk of a read-only page.
    if (it == in_flight.end() || it->second.done <= x.t ||
        !permits(it->second.result.tr.perm, perm_needed(x.acc, false)))
        return false;
    ++*merges;
    lat_merge->add(ns(it->second.done - x.t));
    x.out.merged = true;
    x.out.result = it->second.result;
    Translation& r = x.out.result.tr;
    const Addr mask = (Addr(1) << r.page_shift) - 1;
    r.out = (r.out & ~mask) | (x.iova & mask);
    x.t = it->second.done;
    IOMMUSIM_LOG_IF(log_ch, Debug, log_walk, x.t, "{}: merged onto the in-flight walk of its page",
                    who(x));
    return true;
}

void TranslationUnit::Impl::walk_stage(Txn& x) {
    if (!x.walking) take_walker(x), x.t = x.slot.start;
    if (!x.at_tables) walker.resume(*x.ctx, x.req, x.iova, x.acc);
    x.t = drive(x.t, Until::Done, x.tr);
    walkers.occupy(x.slot.server, x.slot.start, x.t);
    x.ws.end = x.t;
    last_walk = x.t - x.slot.start;
    x.out.result = walker.result();
    fill_walk_caches(x.tr);
    if (log_walk && IOMMUSIM_LOG_ON(log_ch, Debug) && !x.tr.fills.empty()) {
        std::string levels;
        for (const WalkTrace::Fill& f : x.tr.fills) levels += fmt::format(" L{}", f.level + 2);
        IOMMUSIM_LOG(log_ch, Debug, x.t, "walk cache fill:{}", levels);
    }
    if (x.tr.context_time) lat_context->add(ns(x.tr.context_time));
    if (x.tr.pasid_time) lat_pasid->add(ns(x.tr.pasid_time));
    for (unsigned l = 1; l <= 5; ++l)
        if (x.tr.level_time[l]) lat_level[l]->add(ns(x.tr.level_time[l]));
    if (!x.out.result.ok()) return;
    fill(*x.ctx, x.iova, x.out.result, x.t);
    ++*iotlb_fills;
    const IotlbKey page{x.ctx->tag, x.ctx->pasid, x.iova >> 12, 12};
    in_flight[page] = {x.t, x.out.result};
    in_flight_due.push({x.t, page});
    if (p.prefetch_next_page) prefetch(x, x.out.result.tr.page_shift);
}

// The next page, walked by the same walker right after the demand walk; nobody waits for it.
void TranslationUnit::Impl::prefetch(Txn& x, unsigned shift) {
    const Addr next = ((x.iova >> shift) + 1) << shift;
    WalkTrace pt;
    walker.resume(*x.ctx, x.req, next, Access::Read);
    const Tick end = drive(x.t, Until::Done, pt);
    walkers.occupy(x.slot.server, x.t, end);
    x.ws.prefetch_end = end;
    ++*prefetches;
    fill_walk_caches(pt);
    if (walker.result().ok()) fill(*x.ctx, next, walker.result(), end);
}

// A walk's translation into the IOTLB, ready (hits wait for it) at `ready`.
void TranslationUnit::Impl::fill(const WalkContext& ctx, Addr iova, const WalkResult& r,
                                 Tick ready) {
    const Translation& x = r.tr;
    const unsigned sh = x.page_shift;
    const IotlbEntry e{x.page_out(), x.perm, x.mem_type, x.tag, ready};
    const bool evicted =
        bool(iotlb_for(sh).insert({ctx.tag, ctx.pasid, iova >> sh, uint8_t(sh)}, e));
    if (evicted) ++*iotlb_evictions;
    shifts_seen |= uint64_t(1) << sh;
    IOMMUSIM_LOG_IF(log_ch, Debug, log_walk, ready,
                    "IOTLB fill {:#x} -> {:#x} ({} page, {}, tag {}){}", (iova >> sh) << sh,
                    x.page_out(), page_size(sh), perm_string(x.perm), x.tag,
                    evicted ? ", evicting an entry" : "");
}

void TranslationUnit::Impl::fill_walk_caches(const WalkTrace& tr) {
    for (const WalkTrace::Fill& f : tr.fills) walk_caches[f.level]->insert(f.key, f.line);
}

bool TranslationUnit::Impl::fresh_walk(const Txn& x, Until until) {
    uint8_t buf[64];
    walker.start(x.req, x.iova, x.acc);
    for (;;) {
        if (until == Until::DeviceContext && walker.device_context_ready()) return true;
        if (until == Until::Context && walker.context_ready()) return true;
        const WalkStep s = walker.next();
        if (s.kind == WalkStep::Kind::Done) return false;
        if (s.kind != WalkStep::Kind::Read) continue;  // no accessed/dirty updates
        if (mem.peek(s.addr, buf, s.size))
            walker.feed(buf);
        else
            walker.feed_error();
    }
}

// Checking mode: a translation that used cached contents (IOTLB entry, context, PASID entry,
// paging-structure entries) and disagrees with the driver's intent is a stale use when one of
// those contents is no longer what memory holds (the IOTLB entry always counts: it is the
// translation). The walker is free to run again here: the request's walks are over.
void TranslationUnit::Impl::check_stale(Txn& x) {
    if (!oracle) return;
    if (!x.out.iotlb_hit && !x.dev_cached && !x.pasid_cached && x.tr.used.empty()) return;
    const Expectation e = oracle(x.req, x.iova);
    if (!translation_matches(x.out.result, e, x.acc, false)) report_stale(x, e);
}

// The translation disagrees with `e`, the driver's intent: is it from stale cached contents?
void TranslationUnit::Impl::report_stale(Txn& x, const Expectation& e) {
    uint8_t what = x.out.iotlb_hit ? kStaleIotlb : 0;
    for (const WalkTrace::Used& u : x.tr.used) {
        uint8_t b[8];
        if (!mem.peek(u.addr, b, 8) || load_le64(b) != u.value)
            what |= uint8_t(kStaleWalkL2 << (u.level - 2));
    }
    if (x.dev_cached) {
        const bool ok = fresh_walk(x, Until::DeviceContext);
        if (!ok || !walker.same_context(walker.device_context(), *x.cached_dev))
            what |= kStaleContext;
    }
    if (x.pasid_cached) {
        const bool ok = fresh_walk(x, Until::Context);
        if (!ok || !walker.same_context(walker.context(), *x.cached_pasid)) what |= kStalePasid;
    }
    if (!what) return;  // wrong, but not from a cache: not a stale use
    ++*stale_hits;
    x.out.stale = true;
    const Translation& r = x.out.result.tr;
    if (stale_list->size() < keep_stale)
        stale_list->push_back({x.t, x.req, x.iova, r.out, e, what, !x.out.result.ok()});
}

TranslateOutcome TranslationUnit::Impl::finish(Txn& x) {
    if (!x.out.result.ok()) ++*faults;
    x.out.done = x.t;
    check_stale(x);
    if (log_walk) {
        if (x.have_ctx) log::note_domain(x.req, x.ctx->tag);
        const Fault& f = x.out.result.fault;
        IOMMUSIM_LOG(log_ch, Debug, x.t, "{}: {} in {} ns{}", who(x),
                     x.out.result.ok() ? fmt::format("-> {:#x}", x.out.result.tr.out)
                                       : fmt::format("{} fault, reason {:#x}, level {}",
                                                     to_string(f.kind), f.reason, f.level),
                     ns(x.t - x.t0),
                     x.out.stale ? ", STALE: a cached entry differs from memory" : "");
    }
    lat_all->add(ns(x.t - x.t0));
    (x.out.iotlb_hit ? lat_hit : lat_miss)->add(ns(x.t - x.t0));
    if (x.tr.record) {
        x.ws.walked = x.walking, x.ws.server = x.slot.server, x.ws.start = x.slot.start;
        record(*timeline(), x.req, x.iova, x.t0, x.out, x.tr, x.ws);
    }
    return x.out;
}

// In-flight walks leave the table once no request can arrive before they end. In a loosely
// timed model a walk has not "completed" when the request that started it returns: another
// initiator may still call with an earlier local time (up to a quantum behind). Every
// initiator's local time is at or after the current SystemC time, which the shell passes to
// forget_before(); a plain-C++ user that never does is assumed to lag its latest arrival by
// less than the walker pool's history (1 ms), as the pool itself assumes.
void TranslationUnit::Impl::retire(Tick now) {
    latest = std::max(latest, now);
    const Tick horizon =
        std::max(floor, latest > ServerPool::kDefaultHistory ? latest - ServerPool::kDefaultHistory
                                                             : Tick(0));
    while (!in_flight_due.empty() && in_flight_due.top().first <= horizon) {
        auto it = in_flight.find(in_flight_due.top().second);
        if (it != in_flight.end() && it->second.done <= horizon) in_flight.erase(it);
        in_flight_due.pop();
    }
}

Tick TranslationUnit::Impl::invalidate(const InvalidationScope& s, Tick at) {
    using K = InvalidationScope::Kind;
    ++*invalidations;
    size_t n = 0;
    auto tlb = [&](auto pred) {
        for (Iotlb& c : iotlbs)
            n += c.erase_if([&](const IotlbKey& k, const IotlbEntry& e) { return pred(k, e); });
        in_flight.clear();  // an in-flight walk may have read what is being invalidated
        in_flight_due = {};
    };
    // Levels from 2 (index 0: the entries that point to leaf tables) up.
    auto walk_levels = [&](auto pred) {
        for (unsigned l = 0; l < walk_caches.size(); ++l)
            if (walk_caches[l])
                n += walk_caches[l]->erase_if(
                    [&](const WalkKey& k, const WalkLine& w) { return pred(l, k, w); });
    };
    auto walk = [&](auto pred) {
        walk_levels([&](unsigned, const WalkKey& k, const WalkLine& w) { return pred(k, w); });
    };
    switch (s.kind) {
        case K::Global:
            tlb([](auto&, auto&) { return true; });
            walk([](auto&, auto&) { return true; });
            break;
        case K::Domain:
            tlb([&](const IotlbKey&, const IotlbEntry& e) { return s.matches_domain(e.out_tag); });
            walk([&](const WalkKey& k, const WalkLine&) { return s.matches_domain(k.tag); });
            break;
        case K::Page:
        case K::PasidPage: {
            const bool pasid = s.kind == K::PasidPage;
            tlb([&](const IotlbKey& k, const IotlbEntry& e) {
                return s.matches_domain(e.out_tag) && (!pasid || s.matches_pasid(k.pasid)) &&
                       s.overlaps(k.vpn << k.shift, k.shift);
            });
            // Large-page leaves in range always go; non-leaf entries as walk_cache.psi says.
            const PsiWalkScope scope = p.walk_cache_psi;
            walk_levels([&](unsigned level, const WalkKey& k, const WalkLine& w) {
                if (!s.matches_domain(k.tag) || (pasid && !s.matches_pasid(k.pasid))) return false;
                const bool in_range = s.overlaps(k.prefix << w.shift, w.shift);
                if (w.entry.leaf) return in_range;
                if (!s.leaf_only) return scope == PsiWalkScope::Domain || in_range;
                return scope == PsiWalkScope::LeafTable && level == 0;
            });
            break;
        }
        case K::Pasid:
            tlb([&](const IotlbKey& k, const IotlbEntry& e) {
                return s.matches_domain(e.out_tag) && s.matches_pasid(k.pasid);
            });
            walk([&](const WalkKey& k, const WalkLine&) {
                return s.matches_domain(k.tag) && s.matches_pasid(k.pasid);
            });
            break;
        case K::ContextGlobal:
            n += ctx_cache.size();
            ctx_cache.clear();
            break;
        case K::ContextDomain:
            // A scalable-mode context entry names no domain: any domain's invalidation drops it.
            n += ctx_cache.erase_if([&](uint16_t, const WalkContext& c) {
                return !c.complete || s.matches_domain(c.tag);
            });
            break;
        case K::ContextDevice:
            n += ctx_cache.erase_if(
                [&](uint16_t rid, const WalkContext&) { return s.matches_rid(rid); });
            break;
        case K::PasidCache:
            n += pasid_cache.erase_if([&](const PasidKey&, const WalkContext& c) {
                return s.matches_domain(c.tag) && s.matches_pasid(c.pasid);
            });
            break;
        case K::DeviceTlb:
        case K::Wait: break;
    }
    *invalidated_entries += n;
    IOMMUSIM_LOG_IF(log_ch, Debug, log::wants(s), at, "invalidation {}: {} entries removed",
                    to_string(s), n);
    if (Timeline* tl = timeline(); tl && tl->near(at, at)) {
        const std::string& proc = tl->process_of(&walker);
        tl->span(tl->track(proc, "invalidations"), to_string(s.kind), at,
                 at + clk.cycles(p.invalidate_cycles), {{"entries", std::to_string(n)}});
        tl->counter(proc, "iotlb entries", at, double(iotlb_entries()));
    }
    return at + clk.cycles(p.invalidate_cycles);
}

std::string stale_sources(uint8_t what) {
    static const char* const kName[] = {"iotlb",   "context", "pasid",  "walk-l2",
                                        "walk-l3", "walk-l4", "walk-l5"};
    std::string out;
    for (unsigned b = 0; b < 7; ++b)
        if (what & (1u << b)) out += (out.empty() ? "" : ",") + std::string(kName[b]);
    return out.empty() ? "-" : out;
}

std::string format_stale_hits(const std::vector<StaleHit>& hits) {
    std::string out = "# time_ns requester iova used expected stale\n";
    for (const StaleHit& h : hits)
        out += fmt::format(
            "{} {} {:#x} {} {} {}\n", h.when / kTicksPerNs, to_string(h.req), h.iova,
            h.fault ? std::string("fault") : fmt::format("{:#x}", h.used),
            h.expected.mapped ? fmt::format("{:#x}/{}", h.expected.pa, perm_string(h.expected.perm))
                              : std::string("unmapped"),
            stale_sources(h.what));
    return out;
}

TranslationUnit::TranslationUnit(const UnitParams& p, Walker& walker, MemoryPort& mem,
                                 StatGroup& stats)
    : p_(p) {
    impl_ = std::make_unique<Impl>(p_, walker, mem, stats);
    impl_->stale_list = &stale_list_;
}

TranslationUnit::~TranslationUnit() = default;

TranslateOutcome TranslationUnit::translate(const Requester& req, Addr iova, Access access,
                                            Tick arrival) {
    return impl_->translate(req, iova, access, arrival);
}

Tick TranslationUnit::invalidate(const InvalidationScope& scope, Tick at) {
    return impl_->invalidate(scope, at);
}

void TranslationUnit::forget_before(Tick now) {
    impl_->floor = std::max(impl_->floor, now);
    impl_->walkers.forget_before(now);
}

void TranslationUnit::set_oracle(Oracle oracle, size_t keep) {
    impl_->oracle = std::move(oracle);
    impl_->keep_stale = keep;
}

size_t TranslationUnit::iotlb_size() const {
    size_t n = 0;
    for (const auto& c : impl_->iotlbs) n += c.size();
    return n;
}

}  // namespace iommusim
