// PCIe flow control (PCIe Base Specification, section 2.6.1): a transmitter may send a TLP
// only when the receiver at the other end of the link has advertised enough credits of the
// TLP's type — one header credit per TLP and one data credit per 16 bytes (4 DW) of payload,
// separately for Posted, Non-Posted and Completion TLPs. The receiver returns the credits
// (UpdateFC DLLPs) once it has moved the TLP out of its receive buffer. Plain C++ (unit-tested
// without SystemC).
#pragma once
#include <cstdint>
#include <vector>

#include "core/time.h"

namespace iommusim {

// Credits of one type at one receiver. A receive buffer drains in order (posted requests may
// not pass each other, section 2.4.1), so each TLP's credits come back no earlier than those
// of the TLP before it. With N credits, a TLP needing u credits can be sent once the credits
// of the TLPs that took all but N - u of them have come back. A limit of 0 is the spec's
// "infinite" advertisement: never a wait.
//
// Storage: one entry per TLP still holding credits, at most `limit` of them (each holds at
// least one), in a ring allocated once: nothing is allocated per TLP. Its size is a power of
// two, so that an index wraps with a mask rather than a division.
class CreditPool {
public:
    explicit CreditPool(uint32_t limit = 0)
        : limit_(limit), ring_(limit ? ring_size(limit) : 0), mask_(ring_.size() - 1) {}

    bool infinite() const { return limit_ == 0; }
    uint32_t limit() const { return limit_; }

    // The earliest time the next TLP can have `units` credits (0 when no wait: the caller
    // takes the max with its own ready time). `units` must be at most the limit (checked by
    // the link's parameters: MPS fits the data credits).
    Tick available(uint32_t units) const {
        if (limit_ == 0 || units == 0) return 0;
        // Credits handed out so far minus those the receiver can hold besides this TLP's:
        // the TLPs up to that cumulative count must have returned theirs.
        const uint64_t consumed = taken_ + units;
        if (consumed <= limit_) return 0;
        const uint64_t need = consumed - limit_;
        for (size_t i = 0, n = count_; i < n; ++i) {
            const Entry& e = ring_[(head_ + i) & mask_];
            if (e.cum >= need) return e.release;
        }
        return last_release_;  // not reached: the newest entry's cum is taken_ >= need
    }

    // The next TLP takes `units` credits, returned to the transmitter at `release`.
    void take(uint32_t units, Tick release) {
        if (limit_ == 0 || units == 0) return;
        if (release < last_release_) release = last_release_;  // the buffer drains in order
        last_release_ = release;
        taken_ += units;
        // Entries whose credits any later TLP cannot need any more: cum <= taken - limit.
        while (count_ && ring_[head_].cum + limit_ <= taken_) {
            head_ = (head_ + 1) & mask_;
            --count_;
        }
        ring_[(head_ + count_) & mask_] = {taken_, release};
        ++count_;
    }

private:
    struct Entry {
        uint64_t cum;  // credits taken up to and including this TLP
        Tick release;  // when they are back at the transmitter
    };
    static size_t ring_size(uint32_t limit) {
        size_t n = 1;
        while (n < size_t(limit) + 1) n *= 2;
        return n;
    }
    uint32_t limit_;
    std::vector<Entry> ring_;
    size_t mask_;
    size_t head_ = 0, count_ = 0;
    uint64_t taken_ = 0;
    Tick last_release_ = 0;
};

// Data credits of a payload: one per 16 bytes (4 DW), rounded up (section 2.6.1).
inline uint32_t data_credits(uint64_t payload_bytes) {
    return uint32_t((payload_bytes + 15) / 16);
}

}  // namespace iommusim
