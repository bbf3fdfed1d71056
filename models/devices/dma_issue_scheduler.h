// When the DMA engine's requests issue: tags (the outstanding limit) and the issue rate as
// resources. Plain C++, header-only (unit-tested without SystemC).
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>

#include "core/resource.h"
#include "core/time.h"

namespace iommusim {

// Tags and issue rate as resources (core/resource.h): each tag is busy from its request's
// issue to its completion; the issue rate is a BandwidthServer of one unit per request.
// Requests issue in order; request k issues at
//   max(ready, previous issue, next issue slot, earliest tag free)
// and its tag frees at its completion. One engine alone uses them, in order, so they keep no
// history behind the latest issue: a request takes the tag free first (as good as any other
// free one, since tags are alike), so the tags answer as a ServerPool would for in-order use.
class DmaIssueScheduler {
public:
    DmaIssueScheduler(unsigned tags, double rate_mreq_s)
        : n_(tags ? tags : 1),
          // The sentinel, the window, and room for it to slide max(n, 32) times.
          buf_(new TagFree[1 + n_ + std::max(n_, 32u)]()),
          front_(buf_.get() + 1),
          slide_at_(front_ + std::max(n_, 32u)),
          slots_(Rate::ps_per_unit(rate_mreq_s > 0 ? 1e6 / rate_mreq_s : 0), 0),
          rated_(rate_mreq_s > 0) {
        for (unsigned i = 0; i < n_; ++i) front_[i] = {0, i};
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
        if (rated_) {
            const Tick slot = slots_.earliest(at, 1);
            if (slot > at) at = slot, limit = Limit::Rate;
        }
        if (front_->free > at) at = front_->free, limit = Limit::Tag;
        if (rated_) slots_.serve(at, 1);
        last_ = at;
        return {uint16_t(front_->tag), at, limit, at - base};
    }
    // The request granted last completes at `done`: its tag is free from then on. (Done at
    // its issue, it occupied nothing: the tag stays at the front.)
    void complete(Tick done) {
        if (done <= last_) return;
        const uint32_t tag = front_->tag;
        // The front leaves; its entry, free by the last issue and so before `done`, stays
        // behind the window as the sentinel that ends the search below.
        if (++front_ == slide_at_) slide_back();
        // Into its place from the back (completions come nearly in issue order), after the
        // tags free at the same time.
        TagFree* p = front_ + n_ - 1;
        for (; p[-1].free > done; --p) *p = p[-1];
        *p = {done, tag};
    }

    unsigned tags() const { return n_; }
    Tick last_issue() const { return last_; }
    // Requests in flight at time t (t at or after the last issue).
    unsigned busy_at(Tick t) const {
        unsigned busy = 0;
        for (const TagFree* p = front_; p != front_ + n_; ++p) busy += p->free > t;
        return busy;
    }

private:
    struct TagFree {
        Tick free;
        uint32_t tag;
    };
    // The window (with the sentinel before it) back to the start of the buffer.
    void slide_back() {
        std::copy(front_ - 1, front_ + n_ - 1, buf_.get());
        front_ = buf_.get() + 1;
    }

    unsigned n_;
    std::unique_ptr<TagFree[]> buf_;
    // The tags by free time (ties: the one freed first) in [front_, front_ + n_); the entries
    // before front_ are ones that left the front.
    TagFree* front_;
    TagFree* slide_at_;  // front_ slides back to the start on reaching this
    BandwidthServer slots_;
    bool rated_;
    Tick last_ = 0;
};

}  // namespace iommusim
