#include "ring.h"

namespace iommusim {

void RingConsumer::configure(const RingGeometry& g) {
    g_ = g;
    head_ = tail_ = 0;
}

bool RingConsumer::set_head(uint32_t index) {
    if (!g_.contains(index)) return false;
    head_ = index;
    return true;
}

bool RingConsumer::set_tail(uint32_t index) {
    if (!g_.contains(index)) return false;
    tail_ = index;
    return true;
}

uint32_t RingConsumer::pending() const {
    return g_.entries ? (tail_ + g_.entries - head_) % g_.entries : 0;
}

MemDone RingConsumer::fetch(void* dst, MemoryPort& mem, Tick at) const {
    if (g_.entries == 0) return {at, false};
    return mem.read(head_addr(), dst, g_.entry_bytes, at);
}

MemDone RingConsumer::pop(void* dst, MemoryPort& mem, Tick at) {
    MemDone d = fetch(dst, mem, at);
    if (d.ok) advance();
    return d;
}

void RingProducer::configure(const RingGeometry& g) {
    g_ = g;
    head_ = tail_ = 0;
}

bool RingProducer::set_head(uint32_t index) {
    if (!g_.contains(index)) return false;
    head_ = index;
    return true;
}

bool RingProducer::set_tail(uint32_t index) {
    if (!g_.contains(index)) return false;
    tail_ = index;
    return true;
}

uint32_t RingProducer::used() const {
    return g_.entries ? (tail_ + g_.entries - head_) % g_.entries : 0;
}

RingProducer::Push RingProducer::push(const void* entry, MemoryPort& mem, Tick at) {
    Push r;
    r.done = at;
    if (full()) {
        r.overflow = true;
        return r;
    }
    const MemDone d = mem.write(g_.entry_addr(tail_), entry, g_.entry_bytes, at);
    r.done = d.at;
    // The tail moves only once the entry is visible, so software never reads a torn entry.
    if (!d.ok) {
        r.error = true;
        return r;
    }
    tail_ = g_.next(tail_);
    r.written = true;
    return r;
}

}  // namespace iommusim
