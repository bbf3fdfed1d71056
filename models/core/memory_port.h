// How a timed component reaches memory: timed reads and writes that return when they
// complete, and an untimed debug view (TLM's transport_dbg) for functional peeks.
#pragma once
#include <cstddef>

#include "sparse_memory.h"
#include "time.h"

namespace iommusim {

struct MemDone {
    Tick at = 0;     // completion time
    bool ok = true;  // false: the access failed (address beyond memory, bus error)
};

class MemoryPort {
public:
    virtual ~MemoryPort() = default;
    virtual MemDone read(Addr addr, void* dst, size_t len, Tick at) = 0;
    virtual MemDone write(Addr addr, const void* src, size_t len, Tick at) = 0;
    virtual bool peek(Addr addr, void* dst, size_t len) = 0;
};

// A memory that answers every access after a fixed latency, without contention: the
// reference against which timing tests compute exact expected cycles.
class FixedLatencyMemory final : public MemoryPort {
public:
    FixedLatencyMemory(SparseMemory& mem, Tick latency) : mem_(mem), latency_(latency) {}
    MemDone read(Addr a, void* d, size_t n, Tick at) override {
        ++reads_;
        return {at + latency_, mem_.read(a, d, n)};
    }
    MemDone write(Addr a, const void* s, size_t n, Tick at) override {
        ++writes_;
        return {at + latency_, mem_.write(a, s, n)};
    }
    bool peek(Addr a, void* d, size_t n) override { return mem_.read(a, d, n); }
    uint64_t reads() const { return reads_; }
    uint64_t writes() const { return writes_; }
    SparseMemory& store() { return mem_; }

private:
    SparseMemory& mem_;
    Tick latency_;
    uint64_t reads_ = 0, writes_ = 0;
};

}  // namespace iommusim
