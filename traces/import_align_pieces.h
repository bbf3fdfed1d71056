// Internal to the alignment (import_align.cpp): the guest's mapping state as pieces with
// lifetimes counted in ops applied, and the index from translations to the pieces that could
// explain them.
#pragma once
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "traces/import_align.h"

namespace iommusim::trace::align::detail {

using Domains = std::vector<std::optional<uint32_t>>;  // per op

// A contiguous part of one guest mapping, live for prefixes born+1 .. died ("prefix c": the
// mapping state after ops 0..c-1).
struct Piece {
    Addr a, b, pa;
    uint32_t op;  // the map op that made it
    uint32_t born, died;
};

struct Replay {
    std::vector<Piece> pieces;
    std::vector<std::vector<uint32_t>> victims;  // per unmap op: the map ops it cut
    std::vector<std::vector<uint32_t>> rivals;   // per unmap op: other map ops live there
    std::vector<size_t> unmatched;               // unmaps that cut nothing
    std::vector<size_t> guessed;  // unmaps with rivals that took the most recent mapping
};

// Applies the ops in order. Where mappings of several domains overlap an unmapped range, the
// unmap cuts, at each address, a piece of the domain it is taken to be (that of the next op
// there if it maps, else `prefer[k]`; `label` gives each map op's domain), else the most
// recently mapped piece. An unmap whose domain `known` gives (a kprobe named it) cuts only
// pieces of that domain or of none known, and has no rivals.
Replay replay(const std::vector<GuestOp>& ops, const Domains& label, const Domains& prefer,
              const Domains& known = {});

// Each map op's domain from the translations of its pages to its physical pages, where those
// name one domain only (physical buffers are rarely shared between devices).
Domains static_labels(const std::vector<GuestOp>& ops, const std::vector<Point>& timeline);

struct Interval {
    uint32_t lo, hi, op;  // prefixes lo..hi; the map op
};

// The pieces that map one translated IOVA page to one GPA page, as prefix intervals.
struct Group {
    std::vector<Interval> iv;     // by lo
    std::vector<uint32_t> maxhi;  // running maximum of hi
};

struct Index {
    std::vector<Group> groups;
    std::vector<size_t> trans;       // timeline index of each translation
    std::vector<uint32_t> group_of;  // its group
};

// Only translated pages are looked at, so large identity maps stay cheap.
Index index(const std::vector<Piece>& pieces, const std::vector<Point>& timeline);

// First interval of `g` with lo > c.
size_t first_after(const Group& g, uint32_t c);

// The page-selective invalidations of the timeline by page (timeline indices, in order).
class InvalIndex {
public:
    static constexpr ptrdiff_t kMaxLook = 64;  // invalidations of a page looked at per search
    explicit InvalIndex(const std::vector<Point>& timeline);
    const std::vector<size_t>* page(Addr page) const;
    const std::vector<size_t>& large() const { return large_; }  // over 2 MiB: not by page
    // The one covering [a, b) whose time is nearest to `ns`.
    std::optional<size_t> nearest(Addr a, Addr b, int64_t ns) const;

private:
    const std::vector<Point>& tl_;
    std::unordered_map<Addr, std::vector<size_t>> by_page_;
    std::vector<size_t> large_;
};

}  // namespace iommusim::trace::align::detail
