// Alignment of guest map/unmap events with QEMU's translations (docs/traces.md, "Importers").
//
// Positions are counted in ops applied: "prefix c" is the mapping state after ops 0..c-1.
//  1. Replaying the ops gives mapping pieces, each live for a range of prefixes. Where
//     mappings of several domains overlap an unmapped range, the unmap's domain is decided by
//     evidence (import_align_pieces.h), else the most recent mapping goes.
//  2. A translation (IOVA -> GPA) is explained by the prefixes at which a piece holding that
//     pair, of its domain, is live. Both the ops and the translations are in order, so the
//     prefix in force at each translation is non-decreasing: the smallest feasible choice per
//     translation (forward) and the largest (backward) bound where each op may go.
//  3. Within its window an op is placed at the page-selective IOTLB invalidation the guest
//     issued for it (strict unmap; map under caching mode), else by the guest-clock offset of
//     the nearest such anchor. The feasible prefixes of a translation need not be contiguous,
//     so the prefixes this placement implies are then snapped to feasible ones and the ops
//     placed again inside the exact windows that follows from them.
//  4. Unmaps whose domain was guessed are decided again from the invalidation that anchored
//     them (or the one nearest in time) and from translations left unexplained; the
//     alignment is repeated with those decisions while they change.
#include "traces/import_align.h"

#include <algorithm>
#include <map>
#include <memory>
#include <unordered_map>

#include "traces/import_align_pieces.h"

namespace iommusim::trace::align {

namespace {

using detail::Domains;
using detail::first_after;
using detail::Group;
using detail::Index;
using detail::Interval;
using detail::Piece;
using detail::Replay;

constexpr Addr kPage = 4096;
constexpr ptrdiff_t kMaxLook = detail::InvalIndex::kMaxLook;
constexpr int kRounds = 8;  // alignments that settle ambiguous unmaps

// Per map op: what the translations through it revealed.
struct Instance {
    std::optional<uint32_t> domain;
    std::optional<uint16_t> rid;
    bool writable = false, readonly = false, conflict = false;
};

class Aligner {
public:
    Aligner(const std::vector<GuestOp>& ops, const std::vector<Point>& tl, uint64_t start,
            const Windows& causal, const Domains& known, Domains label = {}, Domains prefer = {})
        : ops_(ops),
          causal_(causal),
          tl_(tl),
          start_(start),
          n_(uint32_t(ops.size())),
          known_(known),
          label_(with_known(std::move(label), known)),
          prefer_(std::move(prefer)),
          inst_(ops.size()),
          invals_(tl) {
        for (uint32_t k = 0; k < n_; ++k) inst_[k].domain = given(k);
    }

    Result run() {
        replay();
        candidates();
        bounds();
        windows(fwd_, bwd_);
        place();
        settle();
        place();
        return res_;
    }

private:
    void replay() {
        Replay r = detail::replay(ops_, label_, prefer_, known_);
        pieces_ = std::move(r.pieces);
        victims_ = std::move(r.victims);
        rivals_ = std::move(r.rivals);
        res_.unmatched_unmaps = std::move(r.unmatched);
        res_.guessed_unmaps = std::move(r.guessed);
    }

    void candidates() {
        Index x = detail::index(pieces_, tl_);
        groups_ = std::move(x.groups);
        trans_ = std::move(x.trans);
        group_of_ = std::move(x.group_of);
    }

    // Forward (smallest) and backward (largest) prefix per translation; both non-decreasing.
    // A piece serves one domain: the first translation through it fixes which.
    void bounds() {
        const size_t m = trans_.size();
        fwd_.assign(m, 0);
        bwd_.assign(m, n_);
        skip_.assign(m, false);
        uint32_t c = 0;
        for (size_t q = 0; q < m; ++q) {
            const Group& g = groups_[group_of_[q]];
            const Point& t = tl_[trans_[q]];
            size_t p = first_after(g, c);
            std::optional<size_t> pick;
            // Live at c: the most recently mapped such piece.
            for (size_t i = p; i-- > 0 && g.maxhi[i] >= c;)
                if (g.iv[i].hi >= c && fits(g.iv[i], t)) {
                    pick = i;
                    break;
                }
            // Else the first mapped later (the latest of those mapped by the same op prefix).
            for (; !pick && p < g.iv.size(); ++p)
                if (fits(g.iv[p], t)) {
                    for (size_t i = p + 1; i < g.iv.size() && g.iv[i].lo == g.iv[p].lo; ++i)
                        if (fits(g.iv[i], t)) p = i;
                    pick = p;
                    c = g.iv[p].lo;
                }
            if (!pick) {
                skip_[q] = true;
                res_.unexplained.push_back(trans_[q]);
                continue;
            }
            fwd_[q] = c;
            use(inst_, t, g.iv[*pick].op);
        }
        uint32_t d = n_;
        std::map<std::pair<uint32_t, uint32_t>, Group> by_domain;
        for (size_t q = m; q-- > 0;) {
            if (skip_[q]) continue;
            const Point& t = tl_[trans_[q]];
            const Group* g = &groups_[group_of_[q]];
            if (t.domain) {
                // Only the pieces of this translation's domain (or of none yet).
                auto [it, fresh] = by_domain.try_emplace({group_of_[q], *t.domain});
                if (fresh) {
                    uint32_t hi = 0;
                    for (const Interval& iv : g->iv) {
                        const auto& dom = inst_[iv.op].domain;
                        if (dom && *dom != *t.domain) continue;
                        it->second.iv.push_back(iv);
                        it->second.maxhi.push_back(hi = std::max(hi, iv.hi));
                    }
                }
                g = &it->second;
            }
            const size_t p = first_after(*g, d);
            if (p > 0) d = std::min(g->maxhi[p - 1], d);
            bwd_[q] = d;
        }
    }

    // Window of op k in timeline slots for prefixes early <= late per translation: after every
    // translation whose latest prefix does not include it, before the first whose earliest does.
    void windows(const std::vector<uint32_t>& early, const std::vector<uint32_t>& late) {
        const size_t m = trans_.size();
        lo_.assign(n_, 0);
        hi_.assign(n_, tl_.size());
        size_t q = 0;
        for (uint32_t k = 0; k < n_; ++k) {
            while (q < m && (skip_[q] || early[q] < k + 1)) ++q;
            if (q < m) hi_[k] = trans_[q];
        }
        std::optional<size_t> last;
        q = 0;
        for (uint32_t k = 0; k < n_; ++k) {
            for (; q < m && (skip_[q] || late[q] <= k); ++q)
                if (!skip_[q]) last = q;
            if (last) lo_[k] = trans_[*last] + 1;
        }
        // Causal windows narrow these; where the translations contradict one, they win (the
        // window is counted, not used).
        res_.causal_conflicts = 0;
        for (uint32_t k = 0; k < n_ && k < causal_.size(); ++k) {
            const size_t lo = std::max(lo_[k], causal_[k].first),
                         hi = std::min(hi_[k], causal_[k].second);
            if (lo <= hi)
                lo_[k] = lo, hi_[k] = hi;
            else
                ++res_.causal_conflicts;
        }
    }

    // The windows are exact only for one assignment of prefixes to translations, and the
    // explaining prefixes of a translation need not be contiguous. So: take, per translation,
    // the feasible prefix nearest to where the first placement put it (inside [previous, its
    // backward bound] every choice can be completed), derive exact windows and the pieces each
    // translation used from that, and place again.
    void settle() {
        const size_t m = trans_.size();
        std::vector<uint32_t> c(m, 0);
        std::vector<Instance> used(n_);
        size_t k = 0;
        uint32_t prev = 0;
        for (size_t q = 0; q < m; ++q) {
            while (k < n_ && res_.ops[k].slot <= trans_[q]) ++k;
            if (skip_[q]) continue;
            const Group& g = groups_[group_of_[q]];
            const Point& t = tl_[trans_[q]];
            const uint32_t target = uint32_t(k), hi = bwd_[q];
            std::optional<uint32_t> best, best_op;
            uint32_t best_dist = UINT32_MAX;
            for (size_t i = first_after(g, hi); i-- > 0 && g.maxhi[i] >= prev;) {
                const Interval& iv = g.iv[i];
                const uint32_t a = std::max(iv.lo, prev), b = std::min(iv.hi, hi);
                if (a > b || !fits(iv, t)) continue;
                const uint32_t x = std::clamp(target, a, b);
                const uint32_t dist = x > target ? x - target : target - x;
                if (dist < best_dist) best = x, best_op = iv.op, best_dist = dist;
            }
            c[q] = prev = best.value_or(prev);
            if (best_op) use(used, t, *best_op);
        }
        inst_ = std::move(used);
        windows(c, c);
    }

    void place() {
        res_.ops.assign(n_, Placement{});
        flushed_.assign(n_, std::nullopt);
        res_.conflicting_domains.clear();
        attribute();
        anchor();
        interpolate();
    }

    // Labels where a kprobe named the domain are that domain.
    static Domains with_known(Domains label, const Domains& known) {
        if (label.size() < known.size()) label.resize(known.size());
        for (size_t k = 0; k < known.size(); ++k)
            if (known[k]) label[k] = known[k];
        return label;
    }

    std::optional<uint32_t> given(uint32_t k) const {
        return k < label_.size() ? label_[k] : std::nullopt;
    }
    // A map op's domain: from the translations through it, else as given.
    std::optional<uint32_t> domain_of(uint32_t k) const {
        return inst_[k].domain ? inst_[k].domain : given(k);
    }

    // Whether the piece of `iv` may serve translation `t`: it serves one domain.
    bool fits(const Interval& iv, const Point& t) const {
        const auto& d = inst_[iv.op].domain;
        return !t.domain || !d || *d == *t.domain;
    }

    void use(std::vector<Instance>& inst, const Point& t, uint32_t op) {
        Instance& in = inst[op];
        if (t.domain && in.domain && *in.domain != *t.domain) in.conflict = true;
        if (t.domain && !in.domain) in.domain = t.domain, in.rid = t.rid;
        if (!in.rid) in.rid = t.rid;
        if (t.writable) (*t.writable ? in.writable : in.readonly) = true;
        if (t.domain && !domain_rid_.count(*t.domain)) domain_rid_[*t.domain] = t.rid;
    }

    void attribute() {
        for (uint32_t k = 0; k < n_; ++k) {
            Placement& p = res_.ops[k];
            const GuestOp& o = ops_[k];
            const Instance* in = nullptr;
            if (o.type == GuestOp::Type::Map) {
                in = &inst_[k];
                if (in->conflict) res_.conflicting_domains.push_back(k);
                p.perm = in->writable ? kPermR | kPermW : in->readonly ? kPermR : o.perm;
            } else if (given(k)) {
                p.domain = given(k);  // the kprobe's
                for (uint32_t v : victims_[k])
                    if (domain_of(v) == p.domain) in = &inst_[v];
            } else {
                for (uint32_t v : victims_[k])
                    if (domain_of(v)) {
                        in = &inst_[v];
                        p.domain = domain_of(v);
                        break;
                    }
            }
            if (in && in->domain) p.domain = in->domain, p.rid = in->rid;
            if (k < known_.size() && known_[k] && p.domain != known_[k]) {
                // The kprobe named the domain; translations through it in another contradict.
                if (p.domain && !(in && in->conflict)) res_.conflicting_domains.push_back(k);
                p.domain = known_[k];
                p.rid.reset();
            }
            if (!p.domain) p.domain = domain_of(k);
            if (p.domain && !p.rid) {
                const auto r = domain_rid_.find(*p.domain);
                if (r != domain_rid_.end()) p.rid = r->second;
            }
            if (!p.rid) p.rid = o.rid;
        }
    }

    // Whether unmap k, which overlapped mappings of several domains, may be one of `d`'s.
    bool may_be(uint32_t k, std::optional<uint32_t> d) const {
        if (rivals_[k].empty() || !d) return false;
        for (const auto* v : {&victims_[k], &rivals_[k]})
            for (uint32_t op : *v)
                if (!domain_of(op) || domain_of(op) == d) return true;
        return false;
    }

    // Each op at the first page-selective invalidation inside its window that covers its
    // range in its domain. One invalidation anchors consecutive ops of one kind (a scatter
    // list mapped in pieces is flushed once) and nothing else.
    void anchor() {
        size_t last = 0, last_slot = 0;
        bool have_last = false;
        for (uint32_t k = 0; k < n_; ++k) {
            const GuestOp& o = ops_[k];
            const Addr lo = o.iova & ~(kPage - 1),
                       hi = (o.iova + o.size + kPage - 1) & ~(kPage - 1);
            Placement& p = res_.ops[k];
            // A map no translation used could take another domain's flush of the same IOVA
            // (maps are flushed only under caching mode), unless it continues the previous
            // map's flush (a scatter list); an unmap is flushed in strict mode.
            const bool follow = k > 0 && res_.ops[k - 1].anchored && ops_[k - 1].type == o.type;
            if (!p.domain && o.type == GuestOp::Type::Map && !follow) continue;
            const size_t from = std::max(lo_[k], last_slot), to = hi_[k];
            auto covers = [&](size_t x) {
                const Point& v = tl_[x];
                if (x < from || x > to || v.addr > lo || v.addr + v.bytes < hi) return false;
                if (p.domain && v.domain != p.domain && !may_be(k, v.domain)) return false;
                if (!p.domain && o.type == GuestOp::Type::Map && x != last) return false;
                return !have_last || x != last || follow;
            };
            // The first that fits among the next few of its page (and of the large ones).
            auto first_fit = [&](const std::vector<size_t>& v) -> std::optional<size_t> {
                const auto first = std::lower_bound(v.begin(), v.end(), from);
                for (auto it = first; it != v.end() && *it <= to && it - first < kMaxLook; ++it)
                    if (covers(*it)) return *it;
                return std::nullopt;
            };
            std::optional<size_t> at;
            if (const auto* v = invals_.page(lo / kPage)) at = first_fit(*v);
            if (const auto x = first_fit(invals_.large()); x && (!at || *x < *at)) at = x;
            if (!at) continue;
            p.anchored = true;
            p.slot = last_slot = last = *at;
            have_last = true;
            p.ns = tl_[*at].ns;
            flushed_[k] = tl_[*at].domain;
            if (!p.domain) {
                p.domain = tl_[*at].domain;
                const auto r = domain_rid_.find(*p.domain);
                if (r != domain_rid_.end()) p.rid = r->second;
            }
        }
    }

    // The others by the guest-clock offset of the nearest anchor (the previous one, else the
    // next), clamped into their window and between their neighbours.
    void interpolate() {
        std::vector<size_t> next_anchor(n_ + 1, tl_.size());
        for (uint32_t k = n_; k-- > 0;)
            next_anchor[k] = res_.ops[k].anchored ? res_.ops[k].slot : next_anchor[k + 1];
        std::optional<int64_t> offset;
        for (uint32_t k = 0; k < n_ && !offset; ++k)
            if (res_.ops[k].anchored) offset = int64_t(res_.ops[k].ns - ops_[k].guest_ns);
        if (!offset) {
            // No anchor at all: the median offset that puts ops mid-window (robust to the
            // few long windows).
            std::vector<int64_t> mids;
            for (uint32_t k = 0; k < n_; ++k)
                if (lo_[k] > 0 && hi_[k] < tl_.size())
                    mids.push_back(int64_t(tl_[lo_[k] - 1].ns / 2 + tl_[hi_[k]].ns / 2) -
                                   int64_t(ops_[k].guest_ns));
            if (!mids.empty()) {
                std::nth_element(mids.begin(), mids.begin() + mids.size() / 2, mids.end());
                offset = mids[mids.size() / 2];
            } else {
                offset = int64_t((tl_.empty() ? start_ : tl_.front().ns) -
                                 (ops_.empty() ? 0 : ops_.front().guest_ns));
            }
        }
        size_t prev_slot = 0;
        uint64_t prev_ns = start_;
        for (uint32_t k = 0; k < n_; ++k) {
            Placement& p = res_.ops[k];
            if (p.anchored) {
                offset = int64_t(p.ns - ops_[k].guest_ns);
            } else {
                const int64_t est = int64_t(ops_[k].guest_ns) + *offset;
                const uint64_t t = est < int64_t(start_) ? start_ : uint64_t(est);
                size_t s =
                    size_t(std::upper_bound(tl_.begin(), tl_.end(), t,
                                            [](uint64_t v, const Point& x) { return v < x.ns; }) -
                           tl_.begin());
                const size_t lo_s = std::max(lo_[k], prev_slot);
                s = std::max(lo_s, std::min({s, hi_[k], next_anchor[k + 1]}));
                const uint64_t lo_ns = s > 0 ? tl_[s - 1].ns : start_;
                const uint64_t hi_ns = s < tl_.size() ? tl_[s].ns : UINT64_MAX;
                p.slot = s;
                p.ns = std::clamp(t, std::min(lo_ns, hi_ns), hi_ns);
            }
            p.ns = std::max(p.ns, prev_ns);
            prev_slot = p.slot;
            prev_ns = p.ns;
        }
    }

public:
    // After run(): for each unmap where mappings of several domains overlapped, the domain of
    // the page-selective invalidation nearest to its guest-clock estimate (strict mode flushes
    // each unmap at once); with the domains of the map ops, the inputs of a second alignment.
    std::pair<Domains, Domains> disambiguate() const {
        Domains label(n_), prefer(n_);
        for (uint32_t k = 0; k < n_; ++k)
            if (ops_[k].type == GuestOp::Type::Map) label[k] = domain_of(k);
        std::optional<int64_t> offset;
        std::vector<std::optional<int64_t>> off(n_);  // of the nearest earlier clean anchor
        for (uint32_t k = 0; k < n_; ++k) {
            if (res_.ops[k].anchored && rivals_[k].empty())
                offset = int64_t(res_.ops[k].ns - ops_[k].guest_ns);
            off[k] = offset;
        }
        for (uint32_t k = n_; k-- > 0;) {
            if (off[k] || rivals_[k].empty()) continue;
            for (uint32_t j = k + 1; j < n_ && !off[k]; ++j) off[k] = off[j];
        }
        bool any = false;
        for (uint32_t k = 0; k < n_; ++k) {
            if (rivals_[k].empty()) continue;
            if (flushed_[k]) {
                prefer[k] = flushed_[k];  // the domain of its own flush
                any = true;
                continue;
            }
            if (!off[k]) continue;
            const GuestOp& o = ops_[k];
            const auto best =
                invals_.nearest(o.iova, o.iova + o.size, int64_t(o.guest_ns) + *off[k]);
            if (best) prefer[k] = tl_[*best].domain, any = true;
        }
        // A translation left unexplained lost its piece to an ambiguous unmap: that unmap was
        // the other domain's.
        uint32_t placed = 0;
        for (size_t ti : res_.unexplained) {
            const size_t q =
                size_t(std::lower_bound(trans_.begin(), trans_.end(), ti) - trans_.begin());
            const Point& t = tl_[ti];
            while (placed < n_ && res_.ops[placed].slot <= ti) ++placed;
            std::optional<uint32_t> best;
            uint32_t best_dist = UINT32_MAX;
            for (const Interval& iv : groups_[group_of_[q]].iv) {
                if (iv.hi >= n_ || rivals_[iv.hi].empty() || prefer[iv.hi] ||
                    (t.domain && label[iv.op] && label[iv.op] != t.domain))
                    continue;
                const uint32_t dist = placed < iv.lo   ? iv.lo - placed
                                      : placed > iv.hi ? placed - iv.hi
                                                       : 0;
                if (dist < best_dist) best = iv.hi, best_dist = dist;
            }
            if (!best) continue;
            for (uint32_t op : rivals_[*best])
                if (label[op] && label[op] != t.domain) prefer[*best] = label[op], any = true;
        }
        if (!any) prefer.clear();
        return {label, prefer};
    }

private:
    const std::vector<GuestOp>& ops_;
    const Windows& causal_;
    const std::vector<Point>& tl_;
    const uint64_t start_;
    const uint32_t n_;
    Result res_;
    const Domains& known_;          // per op: the domain its kprobe named
    const Domains label_, prefer_;  // see detail::replay
    std::vector<Piece> pieces_;
    std::vector<std::vector<uint32_t>> victims_, rivals_;  // per unmap op: see detail::Replay
    std::vector<Instance> inst_;
    std::unordered_map<uint32_t, uint16_t> domain_rid_;
    std::vector<Group> groups_;
    std::vector<size_t> trans_;       // timeline index per translation
    std::vector<uint32_t> group_of_;  // group per translation
    std::vector<uint32_t> fwd_, bwd_;
    std::vector<bool> skip_;
    std::vector<size_t> lo_, hi_;  // per op: slot window
    const detail::InvalIndex invals_;
    Domains flushed_;  // per op: the domain of the invalidation that anchored it
};

}  // namespace

Result align(const std::vector<GuestOp>& ops, const std::vector<Point>& timeline, uint64_t start_ns,
             const Windows& causal, const Domains& known) {
    auto a = std::make_unique<Aligner>(ops, timeline, start_ns, causal, known,
                                       detail::static_labels(ops, timeline));
    Result r = a->run();
    // Each round attributes more mappings, which settles more ambiguous unmaps.
    Domains last;
    for (int round = 0; round < kRounds; ++round) {
        auto [label, prefer] = a->disambiguate();
        if (prefer.empty() || prefer == last) break;
        last = prefer;
        a = std::make_unique<Aligner>(ops, timeline, start_ns, causal, known, std::move(label),
                                      std::move(prefer));
        r = a->run();
    }
    return r;
}

}  // namespace iommusim::trace::align
