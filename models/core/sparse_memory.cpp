#include "sparse_memory.h"

#include <algorithm>
#include <cstring>

#include "bits.h"

namespace iommusim {

const uint8_t* SparseMemory::find(uint64_t pfn) const {
    Memo& m = recent_[pfn % kRecent];
    if (m.pfn == pfn) return m.page;
    auto it = pages_.find(pfn);
    if (it == pages_.end()) return nullptr;  // absent pages are not memoised: a write may add them
    m = {pfn, it->second->data()};
    return m.page;
}

uint8_t* SparseMemory::touch(uint64_t pfn) {
    if (const uint8_t* p = find(pfn)) return const_cast<uint8_t*>(p);
    auto& slot = pages_[pfn];
    slot = std::make_unique<Page>();
    slot->fill(0);
    recent_[pfn % kRecent] = {pfn, slot->data()};
    return slot->data();
}

bool SparseMemory::read(Addr addr, void* dst, size_t len) const {
    if (!in_range(addr, len)) return false;
    auto* out = static_cast<uint8_t*>(dst);
    while (len) {
        size_t off = addr & (kPageSize - 1);
        size_t n = std::min(len, kPageSize - off);
        if (const uint8_t* p = find(addr >> kPageShift))
            std::memcpy(out, p + off, n);
        else
            std::memset(out, 0, n);
        out += n, addr += n, len -= n;
    }
    return true;
}

bool SparseMemory::write(Addr addr, const void* src, size_t len) {
    if (!in_range(addr, len)) return false;
    auto* in = static_cast<const uint8_t*>(src);
    while (len) {
        size_t off = addr & (kPageSize - 1);
        size_t n = std::min(len, kPageSize - off);
        std::memcpy(touch(addr >> kPageShift) + off, in, n);
        in += n, addr += n, len -= n;
    }
    return true;
}

uint64_t SparseMemory::read64(Addr addr) const {
    uint8_t b[8];
    return read(addr, b, 8) ? load_le64(b) : 0;
}

void SparseMemory::write64(Addr addr, uint64_t v) {
    uint8_t b[8];
    store_le64(b, v);
    write(addr, b, 8);
}

}  // namespace iommusim
