// Mapping pieces and the translation index of the alignment.
#include "traces/import_align_pieces.h"

#include <algorithm>
#include <cstdlib>
#include <map>

namespace iommusim::trace::align::detail {

namespace {
constexpr Addr kPage = 4096;
constexpr Addr kBig = 2u << 20;       // larger pieces (identity maps) are searched linearly
constexpr uint32_t kLookAhead = 256;  // ops looked at for the next one on an unmapped range
constexpr uint64_t kIndexedInval = 512 * kPage;  // larger invalidations: not by page
}  // namespace

Replay replay(const std::vector<GuestOp>& ops, const Domains& label, const Domains& prefer,
              const Domains& known) {
    const uint32_t n = uint32_t(ops.size());
    Replay r;
    r.victims.resize(n);
    r.rivals.resize(n);
    // Live pieces: the small ones by start (an overlap search looks back at most kBig), the few
    // large ones in a list.
    std::multimap<Addr, uint32_t> small;
    std::vector<uint32_t> big;
    auto add = [&](const Piece& p) {
        const uint32_t id = uint32_t(r.pieces.size());
        r.pieces.push_back(p);
        if (p.b - p.a > kBig)
            big.push_back(id);
        else
            small.emplace(p.a, id);
    };
    auto remove = [&](uint32_t id) {
        const Piece& p = r.pieces[id];
        if (p.b - p.a > kBig) return void(big.erase(std::find(big.begin(), big.end(), id)));
        for (auto it = small.find(p.a); it != small.end() && it->first == p.a; ++it)
            if (it->second == id) return void(small.erase(it));
    };
    auto domain = [&](uint32_t op) { return op < label.size() ? label[op] : std::nullopt; };
    for (uint32_t k = 0; k < n; ++k) {
        const GuestOp& o = ops[k];
        if (o.type == GuestOp::Type::Map) {
            add({o.iova, o.iova + o.size, o.pa, k, k, n});
            continue;
        }
        const Addr a = o.iova, b = o.iova + o.size;
        std::vector<uint32_t> over;
        for (auto it = small.lower_bound(a > kBig ? a - kBig : 0);
             it != small.end() && it->first < b; ++it)
            if (r.pieces[it->second].b > a) over.push_back(it->second);
        for (uint32_t id : big)
            if (r.pieces[id].a < b && r.pieces[id].b > a) over.push_back(id);
        const std::optional<uint32_t> fixed = k < known.size() ? known[k] : std::nullopt;
        if (fixed)  // the kprobe's domain: the others' pieces are not this unmap's to cut
            over.erase(std::remove_if(over.begin(), over.end(),
                                      [&](uint32_t id) {
                                          const auto d = domain(r.pieces[id].op);
                                          return d && d != fixed;
                                      }),
                       over.end());
        // A domain does not map an address it still has mapped: if the next op here maps in
        // one of the overlapping domains, this unmap was that domain's (this outranks `prefer`).
        std::optional<uint32_t> want = fixed;
        for (uint32_t j = k + 1; !fixed && j < n && j <= k + kLookAhead; ++j) {
            const GuestOp& x = ops[j];
            if (x.iova >= b || x.iova + x.size <= a) continue;
            if (x.type == GuestOp::Type::Map && domain(j))
                for (uint32_t id : over)
                    if (domain(r.pieces[id].op) == domain(j)) want = domain(j);
            break;
        }
        if (!want && k < prefer.size()) want = prefer[k];
        const bool chose_latest = !want;
        // The preferred domain's pieces first, then those of unknown domain, then the others.
        auto rank = [&](uint32_t id) {
            const uint32_t op = r.pieces[id].op;
            const auto d = domain(op);
            return std::make_pair(!want ? 0 : d == want ? 2 : d ? 0 : 1, op);
        };
        std::sort(over.begin(), over.end(),
                  [&](uint32_t x, uint32_t y) { return rank(x) > rank(y); });
        std::vector<std::pair<Addr, Addr>> todo{{a, b}};
        for (uint32_t id : over) {
            std::vector<std::pair<Addr, Addr>> left;
            bool cut = false;
            for (auto [x, y] : todo) {
                const Piece p = r.pieces[id];
                const Addr lo = std::max(x, p.a), hi = std::min(y, p.b);
                if (cut || lo >= hi) {
                    left.push_back({x, y});
                    continue;
                }
                cut = true;
                remove(id);
                r.pieces[id] = {lo, hi, p.pa + (lo - p.a), p.op, p.born, k};
                // The parts outside the unmapped range stay live, born when p was.
                if (p.a < lo) add({p.a, lo, p.pa, p.op, p.born, n});
                if (hi < p.b) add({hi, p.b, p.pa + (hi - p.a), p.op, p.born, n});
                r.victims[k].push_back(p.op);
                if (x < lo) left.push_back({x, lo});
                if (hi < y) left.push_back({hi, y});
            }
            if (!cut) r.rivals[k].push_back(r.pieces[id].op);
            todo = std::move(left);
        }
        if (r.victims[k].empty()) r.unmatched.push_back(k);
        // A guess unless every mapping it could have cut is known to be in the same domain.
        bool guess = false;
        for (uint32_t v : r.victims[k])
            for (uint32_t x : r.rivals[k]) guess |= !domain(v) || domain(v) != domain(x);
        if (chose_latest && guess) r.guessed.push_back(k);
    }
    return r;
}

Index index(const std::vector<Piece>& pieces, const std::vector<Point>& tl) {
    Index x;
    std::map<std::pair<Addr, Addr>, uint32_t> key_group;
    std::vector<Addr> pages;
    for (const Point& p : tl)
        if (p.type == Point::Type::Translation) {
            pages.push_back(p.iova / kPage);
            key_group.emplace(std::make_pair(p.iova / kPage, p.gpa / kPage), 0);
        }
    std::sort(pages.begin(), pages.end());
    pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
    for (auto& [key, g] : key_group) g = uint32_t(x.groups.size()), x.groups.emplace_back();
    for (const Piece& p : pieces) {
        if (p.b <= p.a || p.born + 1 > p.died) continue;
        for (auto it = std::lower_bound(pages.begin(), pages.end(), p.a / kPage);
             it != pages.end() && *it <= (p.b - 1) / kPage; ++it) {
            const Addr gpage = (p.pa + (*it * kPage - std::min(p.a, *it * kPage))) / kPage;
            const auto g = key_group.find({*it, gpage});
            if (g != key_group.end()) x.groups[g->second].iv.push_back({p.born + 1, p.died, p.op});
        }
    }
    for (Group& g : x.groups) {
        std::stable_sort(g.iv.begin(), g.iv.end(),
                         [](const Interval& l, const Interval& r) { return l.lo < r.lo; });
        uint32_t m = 0;
        for (const Interval& iv : g.iv) g.maxhi.push_back(m = std::max(m, iv.hi));
    }
    for (size_t i = 0; i < tl.size(); ++i) {
        const Point& t = tl[i];
        if (t.type != Point::Type::Translation) continue;
        x.trans.push_back(i);
        x.group_of.push_back(key_group.at({t.iova / kPage, t.gpa / kPage}));
    }
    return x;
}

Domains static_labels(const std::vector<GuestOp>& ops, const std::vector<Point>& tl) {
    constexpr uint32_t kMixed = UINT32_MAX;
    std::map<std::pair<Addr, Addr>, uint32_t> key_domain;  // (iova page, gpa page)
    std::vector<Addr> pages;                               // translated IOVA pages, sorted
    for (const Point& p : tl) {
        if (p.type != Point::Type::Translation || !p.domain) continue;
        const auto [it, fresh] =
            key_domain.emplace(std::make_pair(p.iova / kPage, p.gpa / kPage), *p.domain);
        if (!fresh && it->second != *p.domain) it->second = kMixed;
        if (fresh) pages.push_back(p.iova / kPage);
    }
    std::sort(pages.begin(), pages.end());
    pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
    Domains label(ops.size());
    for (size_t k = 0; k < ops.size(); ++k) {
        const GuestOp& o = ops[k];
        if (o.type != GuestOp::Type::Map || !o.size) continue;
        // The first translated page of the op to the op's physical page decides (looked up by
        // that pair: a page reused by many mappings has many keys).
        for (auto it = std::lower_bound(pages.begin(), pages.end(), o.iova / kPage);
             it != pages.end() && *it <= (o.iova + o.size - 1) / kPage; ++it) {
            const Addr page = *it * kPage;
            const Addr off = page > o.iova ? page - o.iova : 0;
            const auto d = key_domain.find({*it, (o.pa + off) / kPage});
            if (d == key_domain.end()) continue;
            if (d->second != kMixed) label[k] = d->second;
            break;
        }
    }
    return label;
}

size_t first_after(const Group& g, uint32_t c) {
    return size_t(std::upper_bound(g.iv.begin(), g.iv.end(), c,
                                   [](uint32_t v, const Interval& x) { return v < x.lo; }) -
                  g.iv.begin());
}

InvalIndex::InvalIndex(const std::vector<Point>& tl) : tl_(tl) {
    for (size_t i = 0; i < tl.size(); ++i) {
        const Point& p = tl[i];
        if (p.type != Point::Type::PageInval) continue;
        if (p.bytes > kIndexedInval || p.bytes == 0) {
            large_.push_back(i);
            continue;
        }
        for (Addr a = p.addr; a < p.addr + p.bytes; a += kPage) by_page_[a / kPage].push_back(i);
    }
}

const std::vector<size_t>* InvalIndex::page(Addr page) const {
    const auto it = by_page_.find(page);
    return it == by_page_.end() ? nullptr : &it->second;
}

std::optional<size_t> InvalIndex::nearest(Addr a, Addr b, int64_t ns) const {
    const std::vector<size_t>* v = page(a / kPage);
    if (!v) return std::nullopt;
    const auto mid = std::lower_bound(v->begin(), v->end(), ns,
                                      [&](size_t x, int64_t t) { return int64_t(tl_[x].ns) < t; });
    std::optional<size_t> best;
    auto dist = [&](size_t y) { return std::abs(int64_t(tl_[y].ns) - ns); };
    auto consider = [&](size_t x) {
        const Point& p = tl_[x];
        if (!p.domain || p.addr > a || p.addr + p.bytes < b) return;
        if (!best || dist(x) < dist(*best)) best = x;
    };
    for (auto it = mid; it != v->end() && it - mid < kMaxLook; ++it) consider(*it);
    for (auto it = mid; it != v->begin() && mid - it < kMaxLook;) consider(*--it);
    return best;
}

}  // namespace iommusim::trace::align::detail
