#include "translation_unit.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <queue>

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
struct ContextEntry {
    WalkContext ctx;
    bool full;  // the context alone (no PASID stage) gives the page-walk start
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
    }

    using Iotlb = SetAssocCache<IotlbKey, IotlbEntry, IotlbKeyHash>;
    using WalkCache = SetAssocCache<WalkKey, uint8_t, WalkKeyHash>;

    const UnitParams& p;
    Clock clk;
    Walker& walker;
    MemoryPort& mem;
    ServerPool walkers;
    Tick last_walk = 0;         // length of the last walk: the gap a new walk looks for
    std::vector<Iotlb> iotlbs;  // [0] unified, or 4K / 2M / 1G classes
    uint64_t shifts_seen = 0;   // page sizes present in the IOTLB: the sizes a lookup probes
    SetAssocCache<uint16_t, ContextEntry> ctx_cache;
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
            "stale_hits", "IOTLB hits the driver's intent disagrees with (checking mode)");
        invalidations = &stats.counter("invalidations", "invalidations executed");
        invalidated_entries =
            &stats.counter("invalidated_entries", "cache entries removed by invalidations");
        lat_all = &stats.histogram("latency", "ns", "translation latency, all requests");
        lat_hit = &stats.histogram("hit_latency", "ns", "translation latency of IOTLB hits");
        lat_miss = &stats.histogram("miss_latency", "ns", "translation latency of IOTLB misses");
    }

    PerRequester& requester(const Requester& r) {
        uint64_t key = (uint64_t(r.rid) << 32) | (r.has_pasid() ? r.pasid : 0xFFFFFFFFu);
        auto it = per_req.find(key);
        if (it != per_req.end()) return it->second;
        std::string name = fmt::format("bdf_{:02x}_{:02x}_{:x}", r.bus(), r.dev(), r.fn());
        if (r.has_pasid()) name += fmt::format("_pasid_{:x}", r.pasid);
        StatGroup& g = stats.child("requesters").child(name);
        PerRequester pr{&g.counter("lookups", "translation requests"),
                        &g.counter("hits", "IOTLB hits"), &g.counter("misses", "IOTLB misses")};
        return per_req.emplace(key, pr).first->second;
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

    // One read of a walk: free if a structure cache holds it, otherwise timed through memory.
    void step_read(const WalkStep& s, bool cached, Tick& cur) {
        uint8_t buf[64];
        if (cached) {
            if (mem.peek(s.addr, buf, s.size))
                walker.feed(buf);
            else
                walker.feed_error();
            return;
        }
        MemDone d = mem.read(s.addr, buf, s.size, cur + clk.cycles(p.walk_step_cycles));
        ++*mem_reads;
        cur = d.at;
        if (d.ok)
            walker.feed(buf);
        else
            walker.feed_error();
    }

    // Drive the walker from where it stands to the end (or, with `until_context`, to the
    // point where its context is decoded). Returns the time it got there.
    struct WalkTrace {
        PasidKey pasid_key{0, 0};
        bool ctx_cached = false, pasid_checked = false, pasid_cached = false, saw_pasid = false;
        bool have_ctx = false;
        WalkContext ctx;  // for walk-cache tags, read once the walk reaches the page tables
        std::array<Tick, 6> level_time{};
        Tick context_time = 0, pasid_time = 0;
        std::vector<std::pair<int, WalkKey>> fills;  // walk-cache entries to insert
        // The steps' times, for the timeline only.
        struct Step {
            WalkStage stage;
            uint8_t level;
            Tick start, end;
        };
        bool record = false;
        std::vector<Step> steps;
    };
    Tick drive(Tick cur, bool until_context, WalkTrace& tr) {
        for (;;) {
            if (until_context && walker.context_ready()) return cur;
            WalkStep s = walker.next();
            if (s.kind == WalkStep::Kind::Done) return cur;
            if (s.kind == WalkStep::Kind::Write) {
                cur = mem.write(s.addr, &s.wdata, 8, cur).at;
                ++*mem_writes;
                continue;
            }
            const Tick before = cur;
            switch (s.stage) {
                case WalkStage::Root:
                case WalkStage::Context:
                    step_read(s, tr.ctx_cached, cur);
                    tr.context_time += cur - before;
                    break;
                case WalkStage::PasidDir:
                case WalkStage::PasidEntry:
                    if (!tr.pasid_checked) {  // the walk reached the PASID stage: ask the cache
                        tr.pasid_checked = true;
                        ++*pasid_lookups;
                        tr.pasid_cached = pasid_cache.lookup(tr.pasid_key) != nullptr;
                        if (tr.pasid_cached)
                            ++*pasid_hits, cur += clk.cycles(p.pasid_cache.latency);
                        else
                            ++*pasid_misses;
                    }
                    tr.saw_pasid = true;
                    step_read(s, tr.pasid_cached, cur);
                    tr.pasid_time += cur - before;
                    break;
                case WalkStage::FirstLevel:
                case WalkStage::SecondLevel:
                case WalkStage::Tce: {
                    bool hit = false;
                    int l = s.level >= 2 && s.level <= 5 ? s.level - 2 : kNoCache;
                    if (l != kNoCache && walk_caches[l]) {
                        if (!tr.have_ctx) tr.ctx = walker.context(), tr.have_ctx = true;
                        WalkKey k{tr.ctx.tag, tr.ctx.pasid, s.shift < 64 ? s.input >> s.shift : 0,
                                  uint8_t(s.stage), s.nested};
                        hit = walk_caches[l]->lookup(k) != nullptr;
                        ++*(hit ? wc_hits[l] : wc_misses[l]);
                        if (hit)
                            cur += clk.cycles(p.walk_cache_latency);
                        else
                            tr.fills.push_back({l, k});
                    }
                    step_read(s, hit, cur);
                    if (s.level <= 5) tr.level_time[s.level] += cur - before;
                    break;
                }
            }
            if (tr.record) tr.steps.push_back({s.stage, s.level, before, cur});
        }
    }

    bool check_stale(const Requester& req, Addr iova, Access a, Addr out, Tick when) {
        if (!oracle) return false;
        Expectation e = oracle(req, iova);
        if (e.mapped && e.pa == out && permits(e.perm, perm_needed(a, false))) return false;
        ++*stale_hits;
        if (stale_list->size() < keep_stale) stale_list->push_back({when, req, iova, out, e});
        return true;
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
        WalkContext ctx;
        bool have_ctx = false;
        bool walking = false;    // holds a walker (slot) since the context stage
        bool at_tables = false;  // the walker stands at this request's page tables
        ServerPool::Slot slot{0, 0};
        WalkTrace tr;
        WalkSpan ws;
        TranslateOutcome out;
    };

    TranslateOutcome translate(const Requester& req, Addr iova, Access acc, Tick t0);
    bool context_stage(Txn& x);
    bool iotlb_stage(Txn& x);
    bool merge_stage(Txn& x);
    void walk_stage(Txn& x);
    void fill(const WalkContext& ctx, Addr iova, const WalkResult& r, Tick ready);
    void fill_walk_caches(const WalkTrace& tr);
    void prefetch(Txn& x, unsigned shift);
    TranslateOutcome finish(Txn& x);
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
TranslateOutcome TranslationUnit::Impl::translate(const Requester& req, Addr iova, Access acc,
                                                  Tick t0) {
    retire(t0);
    Txn x(req, iova, acc, t0);
    ++*translations;
    x.pr = &requester(req);
    ++*x.pr->lookups;
    if (!context_stage(x) && !iotlb_stage(x) && !merge_stage(x)) walk_stage(x);
    return finish(x);
}

void TranslationUnit::Impl::take_walker(Txn& x) {
    x.slot = walkers.earliest(x.t, last_walk);
    lat_queue->add(ns(x.slot.start - x.t));
    x.walking = true;
    ++*walks;
}

// The context: PASID cache (complete), or context cache, or a context walk.
bool TranslationUnit::Impl::context_stage(Txn& x) {
    const Requester& req = x.req;
    WalkTrace& tr = x.tr;
    const PasidKey pk{req.rid, req.has_pasid() ? req.pasid : Requester::kNoPasid};
    ++*ctx_lookups;
    const ContextEntry* ce = ctx_cache.lookup(req.rid);
    x.t += clk.cycles(p.context_cache.latency);
    if (ce) {
        ++*ctx_hits;
        tr.ctx_cached = true;
        // A cached PASID-less context serves requests without PASID only: one with a PASID
        // is the walker's to judge (VT-d legacy mode blocks it).
        if (ce->full && !req.has_pasid()) x.ctx = ce->ctx, x.have_ctx = true;
    } else {
        ++*ctx_misses;
    }
    tr.pasid_key = pk;
    if (ce && !ce->full) {  // scalable mode: the context entry is cached, the PASID entry may be
        tr.pasid_checked = true;
        ++*pasid_lookups;
        x.t += clk.cycles(p.pasid_cache.latency);
        if (const WalkContext* pc = pasid_cache.lookup(pk)) {
            ++*pasid_hits;
            x.ctx = *pc, x.have_ctx = true;
        } else {
            ++*pasid_misses;
        }
    }
    if (Timeline* tl = timeline(); tl && tl->near(x.t0, kNever))
        tr.record = true, x.ws.reads0 = mem_reads->value();
    if (x.have_ctx) return false;
    take_walker(x);
    walker.start(req, x.iova, x.acc);
    x.t = drive(x.slot.start, true, tr);
    if (!walker.context_ready()) {  // faulted in the context structures
        walkers.occupy(x.slot.server, x.slot.start, x.t);
        x.ws.end = x.t;
        x.out.result = walker.result();
        return true;
    }
    x.ctx = walker.context();
    x.have_ctx = true;
    x.at_tables = true;
    if (tr.saw_pasid && !tr.pasid_cached) pasid_cache.insert(pk, x.ctx);
    if (!tr.ctx_cached) ctx_cache.insert(req.rid, {x.ctx, !tr.saw_pasid});
    return false;
}

bool TranslationUnit::Impl::iotlb_stage(Txn& x) {
    ++*iotlb_lookups;
    x.t += clk.cycles(p.iotlb.latency);
    unsigned shift = 0;
    IotlbEntry* e = iotlb_probe(x.ctx, x.iova, &shift);
    if (!e || !permits(e->perm, perm_needed(x.acc, false))) {
        ++*iotlb_misses;
        ++*x.pr->misses;
        return false;
    }
    if (x.walking) walkers.occupy(x.slot.server, x.slot.start, x.t), x.ws.end = x.t;
    ++*iotlb_hits;
    ++*x.pr->hits;
    x.out.iotlb_hit = true;
    if (e->ready > x.t) x.out.merged = true, lat_merge->add(ns(e->ready - x.t)), x.t = e->ready;
    Translation& r = x.out.result.tr;
    r.out = e->page_out | (x.iova & ((Addr(1) << shift) - 1));
    r.page_shift = uint8_t(shift);
    r.perm = e->perm;
    r.mem_type = e->mem_type;
    r.tag = e->out_tag;
    x.out.stale = check_stale(x.req, x.iova, x.acc, r.out, x.t);
    return true;
}

// A miss to a page whose walk is in flight waits for that walk.
bool TranslationUnit::Impl::merge_stage(Txn& x) {
    if (x.walking) return false;  // already holds a walker: walks on
    const IotlbKey page{x.ctx.tag, x.ctx.pasid, x.iova >> 12, 12};
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
    return true;
}

void TranslationUnit::Impl::walk_stage(Txn& x) {
    if (!x.walking) take_walker(x), x.t = x.slot.start;
    if (!x.at_tables) walker.resume(x.ctx, x.req, x.iova, x.acc);
    x.t = drive(x.t, false, x.tr);
    walkers.occupy(x.slot.server, x.slot.start, x.t);
    x.ws.end = x.t;
    last_walk = x.t - x.slot.start;
    x.out.result = walker.result();
    fill_walk_caches(x.tr);
    if (x.tr.context_time) lat_context->add(ns(x.tr.context_time));
    if (x.tr.pasid_time) lat_pasid->add(ns(x.tr.pasid_time));
    for (unsigned l = 1; l <= 5; ++l)
        if (x.tr.level_time[l]) lat_level[l]->add(ns(x.tr.level_time[l]));
    if (!x.out.result.ok()) return;
    fill(x.ctx, x.iova, x.out.result, x.t);
    ++*iotlb_fills;
    const IotlbKey page{x.ctx.tag, x.ctx.pasid, x.iova >> 12, 12};
    in_flight[page] = {x.t, x.out.result};
    in_flight_due.push({x.t, page});
    if (p.prefetch_next_page) prefetch(x, x.out.result.tr.page_shift);
}

// The next page, walked by the same walker right after the demand walk; nobody waits for it.
void TranslationUnit::Impl::prefetch(Txn& x, unsigned shift) {
    const Addr next = ((x.iova >> shift) + 1) << shift;
    WalkTrace pt;
    walker.resume(x.ctx, x.req, next, Access::Read);
    const Tick end = drive(x.t, false, pt);
    walkers.occupy(x.slot.server, x.t, end);
    x.ws.prefetch_end = end;
    ++*prefetches;
    fill_walk_caches(pt);
    if (walker.result().ok()) fill(x.ctx, next, walker.result(), end);
}

// A walk's translation into the IOTLB, ready (hits wait for it) at `ready`.
void TranslationUnit::Impl::fill(const WalkContext& ctx, Addr iova, const WalkResult& r,
                                 Tick ready) {
    const Translation& x = r.tr;
    const unsigned sh = x.page_shift;
    const IotlbEntry e{x.page_out(), x.perm, x.mem_type, x.tag, ready};
    if (iotlb_for(sh).insert({ctx.tag, ctx.pasid, iova >> sh, uint8_t(sh)}, e)) ++*iotlb_evictions;
    shifts_seen |= uint64_t(1) << sh;
}

void TranslationUnit::Impl::fill_walk_caches(const WalkTrace& tr) {
    for (auto& [l, k] : tr.fills) walk_caches[l]->insert(k, 1);
}

TranslateOutcome TranslationUnit::Impl::finish(Txn& x) {
    if (!x.out.result.ok()) ++*faults;
    x.out.done = x.t;
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
    auto walk = [&](auto pred) {
        for (auto& c : walk_caches)
            if (c) n += c->erase_if([&](const WalkKey& k, uint8_t) { return pred(k); });
    };
    switch (s.kind) {
        case K::Global:
            tlb([](auto&, auto&) { return true; });
            walk([](auto&) { return true; });
            break;
        case K::Domain:
            tlb([&](const IotlbKey&, const IotlbEntry& e) { return s.matches_domain(e.out_tag); });
            walk([&](const WalkKey& k) { return s.matches_domain(k.tag); });
            break;
        case K::Page:
        case K::PasidPage: {
            const bool pasid = s.kind == K::PasidPage;
            tlb([&](const IotlbKey& k, const IotlbEntry& e) {
                return s.matches_domain(e.out_tag) && (!pasid || s.matches_pasid(k.pasid)) &&
                       s.overlaps(k.vpn << k.shift, k.shift);
            });
            if (!s.leaf_only)
                walk([&](const WalkKey& k) {
                    return s.matches_domain(k.tag) && (!pasid || s.matches_pasid(k.pasid));
                });
            break;
        }
        case K::Pasid:
            tlb([&](const IotlbKey& k, const IotlbEntry& e) {
                return s.matches_domain(e.out_tag) && s.matches_pasid(k.pasid);
            });
            walk([&](const WalkKey& k) {
                return s.matches_domain(k.tag) && s.matches_pasid(k.pasid);
            });
            break;
        case K::ContextGlobal:
            n += ctx_cache.size();
            ctx_cache.clear();
            break;
        case K::ContextDomain:
            n += ctx_cache.erase_if([&](uint16_t, const ContextEntry& c) {
                return !c.full || s.matches_domain(c.ctx.tag);
            });
            break;
        case K::ContextDevice:
            n += ctx_cache.erase_if(
                [&](uint16_t rid, const ContextEntry&) { return s.matches_rid(rid); });
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
    if (Timeline* tl = timeline(); tl && tl->near(at, at)) {
        const std::string& proc = tl->process_of(&walker);
        tl->span(tl->track(proc, "invalidations"), to_string(s.kind), at,
                 at + clk.cycles(p.invalidate_cycles), {{"entries", std::to_string(n)}});
        tl->counter(proc, "iotlb entries", at, double(iotlb_entries()));
    }
    return at + clk.cycles(p.invalidate_cycles);
}

std::string format_stale_hits(const std::vector<StaleHit>& hits) {
    std::string out = "# time_ns requester iova used expected\n";
    for (const StaleHit& h : hits)
        out += fmt::format(
            "{} {} {:#x} {:#x} {}\n", h.when / kTicksPerNs, to_string(h.req), h.iova, h.used,
            h.expected.mapped ? fmt::format("{:#x}/{}", h.expected.pa, perm_string(h.expected.perm))
                              : std::string("unmapped"));
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
