// The driver's intent: which IOVA ranges map to which physical addresses with which rights,
// exactly as the software asked. Translation correctness is judged against this, never
// against the page tables (which the walker reads) nor the encoder (which wrote them).
#pragma once
#include <cstdint>
#include <map>
#include <optional>

#include "core/types.h"

namespace iommusim {

struct Mapping {
    Addr iova = 0;
    Addr size = 0;
    Addr pa = 0;
    Perm perm = kPermNone;
};

struct IntentHit {
    Addr pa;  // translated address of the queried IOVA (offset included)
    Perm perm;
};

class IntentMap {
public:
    bool overlaps(Addr iova, Addr size) const;
    void insert(const Mapping& m);  // precondition: !overlaps(m.iova, m.size), size > 0
    // Remove [iova, iova+size); mappings partly inside are trimmed to what lies outside.
    // Returns the number of bytes that were mapped inside the range.
    Addr erase(Addr iova, Addr size);
    const Mapping* find(Addr iova) const;  // the mapping containing iova, if any
    // Inline when the last mapping holds `iova`: checking mode asks for every request.
    std::optional<IntentHit> translate(Addr iova) const {
        if (iova - last_.iova < last_.size)
            return IntentHit{last_.pa + (iova - last_.iova), last_.perm};
        return translate_new(iova);
    }

    size_t size() const { return by_start_.size(); }
    Addr bytes_mapped() const { return bytes_; }
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (const auto& [start, m] : by_start_) fn(m);
    }

private:
    std::optional<IntentHit> translate_new(Addr iova) const;
    std::map<Addr, Mapping> by_start_;  // non-overlapping, keyed by iova
    Addr bytes_ = 0;
    // translate()'s last mapping (size 0: none), a copy: checking mode asks for every
    // request, and requests come in runs on the same mapping. erase() forgets it; insert()
    // cannot change it (mappings never overlap).
    mutable Mapping last_;
};

}  // namespace iommusim
