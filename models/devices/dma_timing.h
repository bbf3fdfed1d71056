// The plain-C++ core of the generic DMA engine: its parameters, how a transfer is cut into
// PCIe requests (MRRS for reads, MPS for writes, never across a 4 KiB boundary), and the
// issue scheduler that models tags (the outstanding limit) and the issue rate as resources.
// Header-only so that unit tests exercise it without SystemC.
#pragma once
#include <cstdint>
#include <string>

#include "core/resource.h"
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

// Tags and issue rate as resources (core/resource.h): the tags are a ServerPool, each tag
// busy from its request's issue to its completion; the issue rate is a BandwidthServer of one
// unit per request. Requests issue in order; request k issues at
//   max(ready, previous issue, next issue slot, earliest tag free)
// and its tag frees at its completion. One engine alone uses them, in order, so they keep no
// history behind the latest issue.
class DmaIssueScheduler {
public:
    DmaIssueScheduler(unsigned tags, double rate_mreq_s)
        : tags_(tags ? tags : 1, 0),
          slots_(Rate::ps_per_unit(rate_mreq_s > 0 ? 1e6 / rate_mreq_s : 0), 0),
          rated_(rate_mreq_s > 0) {}

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
        if (rated_) {
            const Tick slot = slots_.earliest(at, 1);
            if (slot > at) at = slot, limit = Limit::Rate;
        }
        const ServerPool::Slot tag = tags_.earliest(at);
        if (tag.start > at) at = tag.start, limit = Limit::Tag;
        if (rated_) slots_.serve(at, 1);
        last_ = at;
        tag_ = tag.server;
        return {uint16_t(tag_), at, limit, at - base};
    }
    // The request granted last completes at `done`: its tag is free from then on.
    void complete(Tick done) { tags_.occupy(tag_, last_, done); }

    unsigned tags() const { return tags_.size(); }
    Tick last_issue() const { return last_; }
    // Requests in flight at time t (t at or after the last issue).
    unsigned busy_at(Tick t) const { return tags_.busy_at(t); }

private:
    ServerPool tags_;
    BandwidthServer slots_;
    bool rated_;
    Tick last_ = 0;
    unsigned tag_ = 0;  // of the last grant
};

}  // namespace iommusim
