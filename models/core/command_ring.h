// The engine of a command ring in memory that hardware consumes from head to tail: VT-d's
// invalidation queue, and equally AMD-Vi's command buffer, SMMUv3's command queue and the
// RISC-V IOMMU's command queue. It fetches one entry at a time through the unit's memory
// port, spends `dispatch_cycles` decoding it, and hands it to the architecture, which says
// what it does and when the next one may start; fetching is in order and never begins
// before the previous dispatch (one engine per unit). What a command means, its ordering
// rules and its errors are the architecture's.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>

#include "memory_port.h"
#include "time.h"

namespace iommusim {

class CommandRing {
public:
    struct Entry {
        const uint8_t* bytes;  // the entry as fetched (entry_bytes of it)
        uint32_t index;        // its slot
        Tick fetched;          // when its fetch completed
        Tick dispatched;       // fetched + the dispatch cycles: when it may start
    };
    // What the architecture did with an entry: when the engine may fetch the next one, and
    // whether it stops (an invalid entry, a time-out); `consumed`: the head moves past it.
    struct Step {
        Tick next;
        bool stop = false;
        bool consumed = true;
    };
    using Run = std::function<Step(const Entry&)>;

    CommandRing(Clock clock, uint32_t dispatch_cycles) : clk_(clock), cycles_(dispatch_cycles) {}

    // Consume the entries from `head` to `tail` (slot numbers, modulo `entries`) of the ring
    // at `base`, starting at `at`: `head` is left at the first entry not consumed. A fetch
    // that fails stops the ring at that entry and calls `fetch_error` with its time.
    // Returns when the last fetch or step ended (the caller adds the commands' completions).
    Tick process(MemoryPort& mem, Addr base, uint32_t entries, unsigned entry_bytes, uint32_t& head,
                 uint32_t tail, Tick at, const Run& run,
                 const std::function<void(Tick)>& fetch_error) {
        Tick t = std::max(at, free_), end = at;
        uint8_t raw[64] = {};
        while (head != tail && entry_bytes <= sizeof raw) {
            const MemDone f = mem.read(base + Addr(head) * entry_bytes, raw, entry_bytes, t);
            end = std::max(end, f.at);
            if (!f.ok) {
                fetch_error(f.at);
                t = f.at;
                break;
            }
            const Step s = run({raw, head, f.at, f.at + clk_.cycles(cycles_)});
            if (s.consumed) head = (head + 1) % entries;
            t = s.next;
            end = std::max(end, t);
            if (s.stop) break;
        }
        free_ = std::max(free_, t);
        return end;
    }
    // When the engine can next fetch.
    Tick free_at() const { return free_; }

private:
    Clock clk_;
    uint32_t cycles_;
    Tick free_ = 0;
};

}  // namespace iommusim
