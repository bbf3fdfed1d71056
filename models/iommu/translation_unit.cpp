// The translation path's stages (translation_unit_impl.h holds the unit's state).
#include <fmt/format.h>

#include <algorithm>

#include "core/log.h"
#include "core/timeline.h"
#include "translation_unit_impl.h"

namespace iommusim {

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
    TranslateOutcome out;  // one return object for both paths: no copy of the outcome
    if (!hit_path(req, iova, acc, t0, pr, out)) out = stages(req, iova, acc, t0, pr);
    return out;
}

// The stages, apart: a Txn and its walk state are built only when the hit path declines.
TranslateOutcome TranslationUnit::Impl::stages(const Requester& req, Addr iova, Access acc, Tick t0,
                                               PerRequester& pr) {
    Txn x(req, iova, acc, t0);
    x.pr = &pr;
    x.tr.used.swap(spare_used);
    if (!context_stage(x) && !iotlb_stage(x) && !merge_stage(x)) walk_stage(x);
    const TranslateOutcome out = finish(x);
    spare_used.swap(x.tr.used);
    spare_used.clear();
    return out;
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
    decltype(pasid_cache)::Line pl{0};
    const WalkContext* ctx = &ce;
    if (ce.complete) {
        if (req.has_pasid()) return false;  // the walker judges it
    } else {
        pl = pasid_cache.find({req.rid, req.has_pasid() ? req.pasid : Requester::kNoPasid});
        if (!pl.found()) return false;
        ctx = &pasid_cache.at(pl);
    }
    // Each page size present, smallest first, until one holds the page.
    uint64_t sizes = shifts_seen;
    if (!sizes) return false;
    Iotlb* tlb;
    Iotlb::Line il;
    unsigned shift;
    do {
        shift = unsigned(__builtin_ctzll(sizes));
        sizes &= sizes - 1;
        tlb = &iotlb_for(shift);
        il = tlb->find({ctx->tag, ctx->pasid, iova >> shift, uint8_t(shift)});
    } while (!il.found() && sizes);
    if (!il.found() || !permits(tlb->at(il).perm, perm_needed(acc, false))) return false;

    ++*ctx_hits;
    ctx_cache.use(cl);
    Tick t = t0 + ctx_lat;
    if (!ce.complete) {
        ++*pasid_hits;
        pasid_cache.use(pl);
        t += pasid_lat;
    }
    t += iotlb_lat;
    iotlb_hit(tlb->use(il), iova, shift, pr, out, t);
    out.done = t;
    if (oracle) {
        const Expectation want = oracle(req, iova);
        if (!translation_matches(out.result, want, acc, false))
            stale_hit(req, iova, acc, t0, ce, ctx, want, out);
    }
    lat_hit->add(ns(t - t0));
    return true;
}

// A hit whose translation disagrees with the intent: judged as finish() judges the stages'.
void TranslationUnit::Impl::stale_hit(const Requester& req, Addr iova, Access acc, Tick t0,
                                      const WalkContext& dev, const WalkContext* ctx,
                                      const Expectation& want, TranslateOutcome& out) {
    Txn x(req, iova, acc, t0);
    x.t = out.done;
    x.out = out;
    x.dev_cached = true, x.cached_dev = &dev;
    if (!dev.complete) x.pasid_cached = true, x.cached_pasid = ctx;
    report_stale(x, want);
    out.stale = x.out.stale;
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
    const WalkContext* ce = ctx_cache.lookup(req.rid);
    x.t += ctx_lat;
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
    const WalkContext* pc = pasid_cache.lookup(pk);
    if (pc || miss_costs) x.t += pasid_lat;
    if (!pc) return ++*pasid_misses, false;
    ++*pasid_hits;
    x.ctx = pc;
    x.pasid_cached = true;
    x.cached_pasid = pc;
    return true;
}

bool TranslationUnit::Impl::iotlb_stage(Txn& x) {
    x.t += iotlb_lat;
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
    const InFlight walk{x.t, x.out.result};
    if (auto it = in_flight.find(page); it != in_flight.end()) {
        it->second = walk;
    } else if (spare_in_flight.empty()) {
        in_flight.emplace(page, walk);
    } else {
        auto node = std::move(spare_in_flight.back());
        spare_in_flight.pop_back();
        node.key() = page;
        node.mapped() = walk;
        in_flight.insert(std::move(node));
    }
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
void TranslationUnit::Impl::retire_until(Tick horizon) {
    while (!in_flight_due.empty() && in_flight_due.top().first <= horizon) {
        auto it = in_flight.find(in_flight_due.top().second);
        if (it != in_flight.end() && it->second.done <= horizon)
            spare_in_flight.push_back(in_flight.extract(it));
        in_flight_due.pop();
    }
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

void TranslationUnit::set_floor(Tick now) {
    floor_ = now;
    impl_->floor = now;
    impl_->update_horizon();
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
