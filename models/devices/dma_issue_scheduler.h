// When the DMA engine's requests issue: tags (the outstanding limit) and the issue rate as
// resources. Plain C++, header-only (unit-tested without SystemC).
#pragma once
#include <cstdint>

#include "core/resource.h"
#include "core/time.h"

namespace iommusim {

// Tags and issue rate as resources (core/resource.h): the tags are a server pool, each tag
// busy from its request's issue to its completion; the issue rate is a BandwidthServer of one
// unit per request. Requests issue in order; request k issues at
//   max(ready, previous issue, next issue slot, earliest tag free)
// and its tag frees at its completion. One engine alone uses them, in order, so they keep no
// history behind the latest issue: the tags are an OrderedServerPool (ServerPool's answers
// for in-order use, one time per tag; a request takes the tag free first, as good as any
// other free one since tags are alike and nothing reads which tag a request carries).
class DmaIssueScheduler {
public:
    DmaIssueScheduler(unsigned tags, double rate_mreq_s)
        : tags_(tags ? tags : 1),
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
        const OrderedServerPool::Slot tag = tags_.earliest(at);
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
    OrderedServerPool tags_;
    BandwidthServer slots_;
    bool rated_;
    Tick last_ = 0;
    unsigned tag_ = 0;  // of the last grant
};

}  // namespace iommusim
