// Invalidation of the translation unit's caches, and checking mode: whether a translation
// made from cached contents used contents memory no longer holds (a stale use).
#include <fmt/format.h>

#include "core/bits.h"
#include "core/log.h"
#include "core/timeline.h"
#include "translation_unit_impl.h"

namespace iommusim {

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

}  // namespace iommusim
