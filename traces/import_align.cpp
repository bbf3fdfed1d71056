// Alignment of guest map/unmap events with QEMU's translations (docs/traces.md, "Importers").
//
// Positions are counted in ops applied: "prefix c" is the mapping state after ops 0..c-1.
//  1. Replaying the ops gives mapping pieces, each live for a range of prefixes. An unmap
//     removes, at each address, the most recently mapped live piece (IOVA spaces of different
//     domains overlap; the guest driver unmaps what it mapped last there).
//  2. A translation (IOVA -> GPA) is explained by the prefixes at which a piece holding that
//     pair is live. Since both the ops and the translations are in order, the prefix in force
//     at each translation is non-decreasing: the smallest feasible choice per translation
//     (forward) and the largest (backward) bound where each op may go on the timeline.
//  3. Within its window an op is placed at the page-selective IOTLB invalidation the guest
//     issued for it (strict unmap; map under caching mode) when there is one, else by the
//     guest-clock offset of the nearest such anchor, clamped into the window.
#include "traces/import_align.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace iommusim::trace::align {

namespace {

constexpr Addr kPage = 4096;
constexpr uint64_t kIndexedInval = 512 * kPage;  // larger invalidations are searched linearly
constexpr Addr kBig = 2u << 20;                   // larger pieces are searched linearly

struct Piece {
    Addr a, b, pa;
    uint32_t op;           // the map op that made it
    uint32_t born, died;   // live for prefixes born+1 .. died
};

struct Interval {
    uint32_t lo, hi, op;
};

// The pieces that map one translated IOVA page to one GPA page, as prefix intervals.
struct Group {
    std::vector<Interval> iv;      // by lo
    std::vector<uint32_t> maxhi;   // running maximum of hi
};

// Per map op: what the translations through it revealed.
struct Instance {
    std::optional<uint32_t> domain;
    std::optional<uint16_t> rid;
    bool writable = false, readonly = false, conflict = false;
};

class Aligner {
public:
    Aligner(const std::vector<GuestOp>& ops, const std::vector<Point>& tl, uint64_t start)
        : ops_(ops), tl_(tl), start_(start), n_(uint32_t(ops.size())), inst_(ops.size()) {}

    Result run() {
        res_.ops.resize(n_);
        replay();
        candidates();
        bounds();
        attribute();
        anchor();
        interpolate();
        return std::move(res_);
    }

private:
    void replay() {
        // Live pieces: the small ones by start (an overlap search looks back at most kBig), the
        // few large ones (identity maps) in a list.
        std::multimap<Addr, uint32_t> small;
        std::vector<uint32_t> big;
        victims_.resize(n_);
        auto add = [&](const Piece& p) {
            const uint32_t id = uint32_t(pieces_.size());
            pieces_.push_back(p);
            if (p.b - p.a > kBig)
                big.push_back(id);
            else
                small.emplace(p.a, id);
        };
        auto remove = [&](uint32_t id) {
            const Piece& p = pieces_[id];
            if (p.b - p.a > kBig) return void(big.erase(std::find(big.begin(), big.end(), id)));
            for (auto it = small.find(p.a); it != small.end() && it->first == p.a; ++it)
                if (it->second == id) return void(small.erase(it));
        };
        for (uint32_t k = 0; k < n_; ++k) {
            const GuestOp& o = ops_[k];
            if (o.type == GuestOp::Type::Map) {
                add({o.iova, o.iova + o.size, o.pa, k, k, n_});
                continue;
            }
            const Addr a = o.iova, b = o.iova + o.size;
            std::vector<uint32_t> over;
            for (auto it = small.lower_bound(a > kBig ? a - kBig : 0);
                 it != small.end() && it->first < b; ++it)
                if (pieces_[it->second].b > a) over.push_back(it->second);
            for (uint32_t id : big)
                if (pieces_[id].a < b && pieces_[id].b > a) over.push_back(id);
            std::sort(over.begin(), over.end(),
                      [&](uint32_t x, uint32_t y) { return pieces_[x].op > pieces_[y].op; });
            std::vector<std::pair<Addr, Addr>> todo{{a, b}};
            for (uint32_t id : over) {
                std::vector<std::pair<Addr, Addr>> left;
                bool cut = false;
                for (auto [x, y] : todo) {
                    const Piece p = pieces_[id];
                    const Addr lo = std::max(x, p.a), hi = std::min(y, p.b);
                    if (cut || lo >= hi) {
                        left.push_back({x, y});
                        continue;
                    }
                    cut = true;
                    remove(id);
                    pieces_[id] = {lo, hi, p.pa + (lo - p.a), p.op, p.born, k};
                    // The parts outside the unmapped range stay live, born when p was.
                    if (p.a < lo) add({p.a, lo, p.pa, p.op, p.born, n_});
                    if (hi < p.b) add({hi, p.b, p.pa + (hi - p.a), p.op, p.born, n_});
                    victims_[k].push_back(p.op);
                    if (x < lo) left.push_back({x, lo});
                    if (hi < y) left.push_back({hi, y});
                }
                todo = std::move(left);
                if (todo.empty()) break;
            }
            if (victims_[k].empty()) res_.unmatched_unmaps.push_back(k);
        }
    }

    // The prefix intervals explaining a translation are those of the pieces mapping its IOVA
    // page to its GPA page: grouped by that pair (only translated pages are looked at, so large
    // identity maps stay cheap), sorted by start, with the running maximum of their ends.
    void candidates() {
        std::map<std::pair<Addr, Addr>, uint32_t> key_group;
        std::vector<Addr> pages;
        for (const Point& p : tl_)
            if (p.type == Point::Type::Translation) {
                pages.push_back(p.iova / kPage);
                key_group.emplace(std::make_pair(p.iova / kPage, p.gpa / kPage), 0);
            }
        std::sort(pages.begin(), pages.end());
        pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
        for (auto& [key, g] : key_group) g = uint32_t(groups_.size()), groups_.emplace_back();
        for (const Piece& p : pieces_) {
            if (p.b <= p.a || p.born + 1 > p.died) continue;
            for (auto it = std::lower_bound(pages.begin(), pages.end(), p.a / kPage);
                 it != pages.end() && *it <= (p.b - 1) / kPage; ++it) {
                const Addr gpage = (p.pa + (*it * kPage - std::min(p.a, *it * kPage))) / kPage;
                const auto g = key_group.find({*it, gpage});
                if (g != key_group.end()) groups_[g->second].iv.push_back({p.born + 1, p.died, p.op});
            }
        }
        for (Group& g : groups_) {
            std::stable_sort(g.iv.begin(), g.iv.end(),
                             [](const Interval& x, const Interval& y) { return x.lo < y.lo; });
            uint32_t m = 0;
            for (const Interval& iv : g.iv) g.maxhi.push_back(m = std::max(m, iv.hi));
        }
        for (size_t i = 0; i < tl_.size(); ++i) {
            const Point& t = tl_[i];
            if (t.type != Point::Type::Translation) continue;
            trans_.push_back(i);
            group_of_.push_back(key_group.at({t.iova / kPage, t.gpa / kPage}));
        }
    }

    // Forward (smallest) and backward (largest) prefix per translation; both non-decreasing.
    void bounds() {
        const size_t m = trans_.size();
        fwd_.assign(m, 0);
        bwd_.assign(m, n_);
        skip_.assign(m, false);
        auto first_after = [](const Group& g, uint32_t c) {
            return size_t(std::upper_bound(g.iv.begin(), g.iv.end(), c,
                                           [](uint32_t v, const Interval& x) { return v < x.lo; }) -
                          g.iv.begin());
        };
        uint32_t c = 0;
        for (size_t q = 0; q < m; ++q) {
            const Group& g = groups_[group_of_[q]];
            size_t p = first_after(g, c);
            std::optional<size_t> pick;
            if (p > 0 && g.maxhi[p - 1] >= c) {
                // Live at c: the most recently mapped such piece.
                for (size_t i = p; i-- > 0;)
                    if (g.iv[i].hi >= c) {
                        pick = i;
                        break;
                    }
            } else if (p < g.iv.size()) {
                while (p + 1 < g.iv.size() && g.iv[p + 1].lo == g.iv[p].lo) ++p;
                pick = p;
                c = g.iv[p].lo;
            }
            if (!pick) {
                skip_[q] = true;
                res_.unexplained.push_back(trans_[q]);
                continue;
            }
            fwd_[q] = c;
            use(tl_[trans_[q]], g.iv[*pick].op);
        }
        uint32_t d = n_;
        for (size_t q = m; q-- > 0;) {
            if (skip_[q]) continue;
            const Group& g = groups_[group_of_[q]];
            const size_t p = first_after(g, d);
            if (p > 0) d = std::min(g.maxhi[p - 1], d);
            bwd_[q] = d;
        }
        // Window of op k in timeline slots: after every translation whose latest prefix does
        // not include it, before the first whose earliest prefix does.
        lo_.assign(n_, 0);
        hi_.assign(n_, tl_.size());
        size_t q = 0;
        for (uint32_t k = 0; k < n_; ++k) {
            while (q < m && (skip_[q] || fwd_[q] < k + 1)) ++q;
            if (q < m) hi_[k] = trans_[q];
        }
        std::optional<size_t> last;
        q = 0;
        for (uint32_t k = 0; k < n_; ++k) {
            for (; q < m && (skip_[q] || bwd_[q] <= k); ++q)
                if (!skip_[q]) last = q;
            if (last) lo_[k] = trans_[*last] + 1;
        }
    }

    void use(const Point& t, uint32_t op) {
        Instance& in = inst_[op];
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
            } else {
                for (uint32_t v : victims_[k])
                    if (inst_[v].domain) {
                        in = &inst_[v];
                        break;
                    }
            }
            if (in && in->domain) p.domain = in->domain, p.rid = in->rid;
            if (!p.rid) p.rid = o.rid;
        }
    }

    // Each op at the first page-selective invalidation inside its window that covers its
    // range in its domain. One invalidation anchors consecutive ops of one kind (a scatter
    // list mapped in pieces is flushed once) and nothing else.
    void anchor() {
        std::unordered_map<Addr, std::vector<size_t>> by_page;
        std::vector<size_t> large;
        for (size_t i = 0; i < tl_.size(); ++i) {
            const Point& p = tl_[i];
            if (p.type != Point::Type::PageInval) continue;
            if (p.bytes > kIndexedInval || p.bytes == 0) {
                large.push_back(i);
                continue;
            }
            for (Addr a = p.addr; a < p.addr + p.bytes; a += kPage) by_page[a / kPage].push_back(i);
        }
        size_t last = 0, last_slot = 0;
        bool have_last = false;
        for (uint32_t k = 0; k < n_; ++k) {
            const GuestOp& o = ops_[k];
            const Addr lo = o.iova & ~(kPage - 1), hi = (o.iova + o.size + kPage - 1) & ~(kPage - 1);
            Placement& p = res_.ops[k];
            const size_t from = std::max(lo_[k], last_slot), to = hi_[k];
            auto fits = [&](size_t x) {
                const Point& v = tl_[x];
                if (x < from || x > to || v.addr > lo || v.addr + v.bytes < hi) return false;
                if (p.domain && v.domain != p.domain) return false;
                return !have_last || x != last ||
                       (k > 0 && res_.ops[k - 1].anchored && ops_[k - 1].type == o.type);
            };
            std::optional<size_t> at;
            const auto b = by_page.find(lo / kPage);
            if (b != by_page.end())
                for (auto it = std::lower_bound(b->second.begin(), b->second.end(), from);
                     it != b->second.end() && *it <= to; ++it)
                    if (fits(*it)) {
                        at = *it;
                        break;
                    }
            for (size_t x : large)
                if ((!at || x < *at) && fits(x)) at = x;
            if (!at) continue;
            p.anchored = true;
            p.slot = last_slot = last = *at;
            have_last = true;
            p.ns = tl_[*at].ns;
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
        if (!offset)
            offset = int64_t((tl_.empty() ? start_ : tl_.front().ns) -
                             (ops_.empty() ? 0 : ops_.front().guest_ns));
        size_t prev_slot = 0;
        uint64_t prev_ns = start_;
        for (uint32_t k = 0; k < n_; ++k) {
            Placement& p = res_.ops[k];
            if (p.anchored) {
                offset = int64_t(p.ns - ops_[k].guest_ns);
            } else {
                const int64_t est = int64_t(ops_[k].guest_ns) + *offset;
                const uint64_t t = est < int64_t(start_) ? start_ : uint64_t(est);
                size_t s = size_t(std::upper_bound(tl_.begin(), tl_.end(), t,
                                                   [](uint64_t v, const Point& x) {
                                                       return v < x.ns;
                                                   }) -
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

    const std::vector<GuestOp>& ops_;
    const std::vector<Point>& tl_;
    const uint64_t start_;
    const uint32_t n_;
    Result res_;
    std::vector<Piece> pieces_;
    std::vector<std::vector<uint32_t>> victims_;  // per unmap op: the map ops it cut
    std::vector<Instance> inst_;
    std::unordered_map<uint32_t, uint16_t> domain_rid_;
    std::vector<Group> groups_;
    std::vector<size_t> trans_;      // timeline index per translation
    std::vector<uint32_t> group_of_;  // group per translation
    std::vector<uint32_t> fwd_, bwd_;
    std::vector<bool> skip_;
    std::vector<size_t> lo_, hi_;  // per op: slot window
};

}  // namespace

Result align(const std::vector<GuestOp>& ops, const std::vector<Point>& timeline,
             uint64_t start_ns) {
    return Aligner(ops, timeline, start_ns).run();
}

}  // namespace iommusim::trace::align
