#include "intent_map.h"

#include <iterator>

namespace iommusim {

namespace {

Addr last_of(const Mapping& m) {
    return m.iova + (m.size - 1);
}

// Inclusive end of [iova, iova+size), saturating at the top of the 64-bit space.
Addr range_last(Addr iova, Addr size) {
    return size - 1 > ~Addr(0) - iova ? ~Addr(0) : iova + (size - 1);
}

}  // namespace

bool IntentMap::overlaps(Addr iova, Addr size) const {
    if (size == 0) return false;
    const Addr last = range_last(iova, size);
    auto it = by_start_.upper_bound(last);  // first mapping starting beyond the range
    if (it == by_start_.begin()) return false;
    // Mappings do not overlap, so only the last one starting inside or before can reach in.
    return last_of(std::prev(it)->second) >= iova;
}

void IntentMap::insert(const Mapping& m) {
    by_start_.emplace(m.iova, m);
    bytes_ += m.size;
}

Addr IntentMap::erase(Addr iova, Addr size) {
    if (size == 0) return 0;
    const Addr last = range_last(iova, size);
    auto it = by_start_.upper_bound(iova);
    if (it != by_start_.begin() && last_of(std::prev(it)->second) >= iova) --it;

    last_ = Mapping{};
    Addr removed = 0;
    while (it != by_start_.end() && it->first <= last) {
        const Mapping m = it->second;
        it = by_start_.erase(it);
        const Addr m_last = last_of(m);
        if (m.iova < iova) by_start_.emplace(m.iova, Mapping{m.iova, iova - m.iova, m.pa, m.perm});
        if (m_last > last) {
            const Addr off = last + 1 - m.iova;
            it = by_start_.emplace(last + 1, Mapping{last + 1, m.size - off, m.pa + off, m.perm})
                     .first;
        }
        const Addr lo = m.iova < iova ? iova : m.iova;
        const Addr hi = m_last > last ? last : m_last;
        removed += hi - lo + 1;
    }
    bytes_ -= removed;
    return removed;
}

const Mapping* IntentMap::find(Addr iova) const {
    auto it = by_start_.upper_bound(iova);
    if (it == by_start_.begin()) return nullptr;
    const Mapping& m = std::prev(it)->second;
    return last_of(m) >= iova ? &m : nullptr;
}

// translate() outside the last mapping (or with none kept).
std::optional<IntentHit> IntentMap::translate_new(Addr iova) const {
    const Mapping* m = find(iova);
    if (!m) return std::nullopt;
    last_ = *m;
    return IntentHit{last_.pa + (iova - last_.iova), last_.perm};
}

}  // namespace iommusim
