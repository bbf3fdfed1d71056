// The plain-C++ core of the generic DMA engine: its parameters, how a transfer is cut into
// PCIe requests (MRRS for reads, MPS for writes, never across a 4 KiB boundary), and the
// issue scheduler that models tags (the outstanding limit) and the issue rate as resources.
// Header-only so that unit tests exercise it without SystemC.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/time.h"
#include "core/types.h"

namespace iommusim {

struct DmaEngineParams {
    uint32_t tags = 32;       // outstanding non-posted requests the device can track
    double issue_rate = 0.0;  // Mreq/s; 0 = only tags limit the rate
    uint32_t mps = 256;       // Max_Payload_Size, bytes
    uint32_t mrrs = 512;      // Max_Read_Request_Size, bytes

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("tags", tags, "tags", "outstanding requests (tags) the engine can have in flight", 1,
          16384);
        v("issue_rate", issue_rate, "Mreq/s",
          "maximum request issue rate; 0 = unlimited (tags only)", 0.0, 1e6);
        v("mps", mps, "bytes", "Max_Payload_Size: largest write request (power of two)", 128, 4096);
        v("mrrs", mrrs, "bytes", "Max_Read_Request_Size: largest read request (power of two)", 128,
          4096);
    }
    // Every field within its range and MPS/MRRS powers of two; otherwise false with the
    // offending parameter named in *why.
    bool valid(std::string* why = nullptr) const {
        auto pow2 = [](uint32_t x) { return x && !(x & (x - 1)); };
        const char* bad = tags < 1 || tags > 16384                    ? "tags"
                          : !(issue_rate >= 0.0 && issue_rate <= 1e6) ? "issue_rate"
                          : mps < 128 || mps > 4096 || !pow2(mps)     ? "mps"
                          : mrrs < 128 || mrrs > 4096 || !pow2(mrrs)  ? "mrrs"
                                                                      : nullptr;
        if (bad && why)
            *why = std::string("dma engine parameter ") + bad +
                   " out of range (tags 1..16384, issue_rate 0..1e6 Mreq/s, mps and mrrs "
                   "powers of two in 128..4096)";
        return !bad;
    }
};

constexpr uint64_t kDmaBoundary = 4096;  // PCIe: a request never crosses a 4 KiB boundary

// Length of the request starting at `a` with `remaining` bytes left: greedy up to
// `max_payload`, cut at the next 4 KiB boundary.
constexpr uint32_t dma_piece_len(Addr a, uint64_t remaining, uint32_t max_payload) {
    const uint64_t to_boundary = kDmaBoundary - (a & (kDmaBoundary - 1));
    uint64_t n = remaining < max_payload ? remaining : max_payload;
    return uint32_t(n < to_boundary ? n : to_boundary);
}

// Requests a transfer of `len` bytes at `a` becomes (0 for an empty transfer).
constexpr uint64_t dma_piece_count(Addr a, uint64_t len, uint32_t max_payload) {
    uint64_t n = 0;
    while (len) {
        const uint32_t p = dma_piece_len(a, len, max_payload);
        a += p, len -= p, ++n;
    }
    return n;
}

// Tags and issue rate as resources. Requests issue in order; request k issues at
//   max(ready, previous issue, previous issue + 1/rate, earliest tag free)
// and its tag frees at its completion. The tags are a min-heap on free time so a grant costs
// O(log tags) with no allocation, however many tags a device has.
class DmaIssueScheduler {
public:
    DmaIssueScheduler(unsigned tags, double rate_mreq_s) : heap_(tags ? tags : 1) {
        for (unsigned i = 0; i < heap_.size(); ++i) heap_[i] = {0, uint16_t(i)};
        // The period in 1/65536 ps so rates like 300 Mreq/s keep their exact average.
        period_fp_ = rate_mreq_s > 0 ? uint64_t(1e6 * 65536.0 / rate_mreq_s + 0.5) : 0;
    }

    enum class Limit : uint8_t { None, Tag, Rate };
    struct Grant {
        uint16_t tag;
        Tick at;
        Limit limit;   // what delayed the request beyond `ready` and the previous issue
        Tick stalled;  // by how much
    };

    // When and with which tag the next request, ready at `ready`, issues. Follow each grant
    // with complete() before the next grant.
    Grant grant(Tick ready) {
        Tick at = ready > last_ ? ready : last_;
        const Tick base = at;
        Limit limit = Limit::None;
        const Tick slot = slot_ + (frac_ != 0);
        if (period_fp_ && issued_ && slot > at) at = slot, limit = Limit::Rate;
        if (heap_[0].free > at) at = heap_[0].free, limit = Limit::Tag;
        if (period_fp_) {
            // Continue the exact slot sequence when issuing on it, restart it otherwise.
            if (!issued_ || at > slot) slot_ = at, frac_ = 0;
            const uint64_t f = frac_ + period_fp_;
            slot_ += f >> 16;
            frac_ = uint32_t(f & 0xffff);
        }
        last_ = at;
        issued_ = true;
        return {heap_[0].tag, at, limit, at - base};
    }
    // The request granted last completes at `done`: its tag is free from then on.
    void complete(Tick done) {
        heap_[0].free = done;
        sift_down();
    }

    unsigned tags() const { return unsigned(heap_.size()); }
    Tick last_issue() const { return last_; }
    // Requests still in flight at time t.
    unsigned busy_at(Tick t) const {
        unsigned n = 0;
        for (const Entry& e : heap_) n += e.free > t;
        return n;
    }

private:
    struct Entry {
        Tick free;
        uint16_t tag;
        bool operator<(const Entry& o) const {
            return free != o.free ? free < o.free : tag < o.tag;
        }
    };
    void sift_down() {
        const size_t n = heap_.size();
        size_t i = 0;
        const Entry e = heap_[0];
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && heap_[c + 1] < heap_[c]) ++c;
            if (!(heap_[c] < e)) break;
            heap_[i] = heap_[c];
            i = c;
        }
        heap_[i] = e;
    }

    std::vector<Entry> heap_;
    uint64_t period_fp_ = 0;
    Tick last_ = 0, slot_ = 0;
    uint32_t frac_ = 0;
    bool issued_ = false;
};

}  // namespace iommusim
