// In-memory circular queues shared by software and an IOMMU, arch-neutral: a queue the
// hardware consumes (VT-d invalidation queue, AMD-Vi command buffer, SMMUv3/RISC-V command
// queue) and a queue the hardware produces into (VT-d page request queue, AMD-Vi event and
// PPR logs, SMMUv3/RISC-V fault and page-request queues). Both follow the convention all of
// these share: indices count entries, the queue is empty when head == tail and full when
// advancing the tail would reach the head, so at most N-1 of N entries are in use.
// Every entry access goes through a MemoryPort and pays its latency.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/memory_port.h"
#include "core/time.h"
#include "core/types.h"

namespace iommusim {

// Base, size and entry width of a queue; an unconfigured queue (0 entries) holds nothing.
struct RingGeometry {
    Addr base = 0;
    uint32_t entries = 0;
    uint32_t entry_bytes = 0;

    Addr entry_addr(uint32_t index) const { return base + Addr(index) * entry_bytes; }
    uint32_t next(uint32_t index) const { return entries ? (index + 1) % entries : 0; }
    bool contains(uint32_t index) const { return index < entries; }
};

// A queue software fills and hardware drains: software owns the tail, hardware the head.
class RingConsumer {
public:
    RingConsumer() = default;
    explicit RingConsumer(const RingGeometry& g) { configure(g); }

    // New geometry; head and tail restart at 0.
    void configure(const RingGeometry& g);
    const RingGeometry& geometry() const { return g_; }

    uint32_t head() const { return head_; }
    uint32_t tail() const { return tail_; }
    // Both return false (and change nothing) for an index outside the queue.
    bool set_head(uint32_t index);
    bool set_tail(uint32_t index);

    bool empty() const { return head_ == tail_; }
    uint32_t pending() const;  // entries between head and tail
    Addr head_addr() const { return g_.entry_addr(head_); }

    // Read the entry at the head into dst (entry_bytes bytes) without consuming it: hardware
    // that validates an entry before consuming it (VT-d 6.5.2) advances separately.
    MemDone fetch(void* dst, MemoryPort& mem, Tick at) const;
    void advance() { head_ = g_.next(head_); }
    // fetch() and, if the read succeeded, advance().
    MemDone pop(void* dst, MemoryPort& mem, Tick at);

private:
    RingGeometry g_;
    uint32_t head_ = 0, tail_ = 0;
};

// A queue hardware fills and software drains: hardware owns the tail, software the head.
class RingProducer {
public:
    RingProducer() = default;
    explicit RingProducer(const RingGeometry& g) { configure(g); }

    void configure(const RingGeometry& g);
    const RingGeometry& geometry() const { return g_; }

    uint32_t head() const { return head_; }
    uint32_t tail() const { return tail_; }
    bool set_head(uint32_t index);  // software consumed up to here
    bool set_tail(uint32_t index);  // software initialisation (VT-d PQT is writable)

    bool empty() const { return head_ == tail_; }
    bool full() const { return g_.entries == 0 || g_.next(tail_) == head_; }
    uint32_t used() const;

    struct Push {
        bool written = false;   // the entry is in the queue and the tail advanced
        bool overflow = false;  // the queue was full; nothing was written
        bool error = false;     // the memory write failed; the tail did not move
        Tick done = 0;          // when the entry is visible (or the attempt ended)
    };
    // Write one entry (entry_bytes bytes from `entry`) at the tail and advance it.
    Push push(const void* entry, MemoryPort& mem, Tick at);

private:
    RingGeometry g_;
    uint32_t head_ = 0, tail_ = 0;
};

}  // namespace iommusim
