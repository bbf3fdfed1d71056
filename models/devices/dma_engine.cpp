#include "dma_engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/timeline.h"

namespace iommusim {

// The requests' payload and its extension, set up once and reused for every request: the
// issue loop allocates nothing. One serves every tag: b_transport is blocking, and no target
// keeps the payload (or anything in it) once it has returned. (A payload per tag cycled each
// engine through 64 payloads' cache lines, and the payload's address waited for the tag.)
struct DmaEngine::Slot {
    tlm::tlm_generic_payload p;
    PcieAttr attr;
    Slot() { p.set_extension(&attr); }
    ~Slot() { p.clear_extension(&attr); }  // not the payload's to free
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
};

namespace {
DmaEngineParams checked(const DmaEngineParams& p) {
    std::string why;
    if (!p.valid(&why)) throw std::invalid_argument(why);
    return p;
}
}  // namespace

DmaEngine::DmaEngine(sc_core::sc_module_name name, const DmaEngineParams& p, StatGroup& stats)
    : sc_module(name),
      dma("dma"),
      p_(checked(p)),
      sched_(p_.tags, p_.issue_rate),
      scratch_(std::max(p_.mps, p_.mrrs)),
      transfers_(stats.counter("transfers", "transfers completed (issued in full)")),
      pieces_(stats.counter("pieces", "PCIe requests (TLPs) issued")),
      bytes_read_(stats.counter("bytes_read", "bytes read by requests that completed")),
      bytes_written_(stats.counter("bytes_written", "bytes written by requests that completed")),
      faults_(stats.counter("faults", "requests that got an error response")),
      faulted_transfers_(stats.counter("faulted_transfers", "transfers with an error response")),
      tag_stalls_(stats.counter("tag_stalls", "requests that waited for a free tag")),
      rate_stalls_(stats.counter("rate_stalls", "requests that waited for the issue rate")),
      tag_stall_ns_{stats.counter("tag_stall_ns", "time requests waited for a free tag")},
      rate_stall_ns_{stats.counter("rate_stall_ns", "time requests waited for the issue rate")},
      transfer_latency_(
          stats.histogram("transfer_latency", "ns", "ready until the last request's completion")),
      piece_latency_(stats.histogram("piece_latency", "ns", "issue until completion of a request")),
      log_(stats.path()) {
    slot_ = std::make_unique<Slot>();
    dirs_[0] = {p_.mrrs, tlm::TLM_READ_COMMAND, PcieAttr::Tlp::MemRead, &bytes_read_};
    dirs_[1] = {p_.mps, tlm::TLM_WRITE_COMMAND, PcieAttr::Tlp::MemWrite, &bytes_written_};
    set_client(hooks_);
    SC_HAS_PROCESS(DmaEngine);
    SC_THREAD(run);
}

DmaEngine::~DmaEngine() = default;

void DmaEngine::set_ats(AtsAgent* agent) {
    ats_ = agent;
    if (agent)
        agent->set_fabric(
            [this](tlm::tlm_generic_payload& p, sc_core::sc_time& d) { dma->b_transport(p, d); });
}

void DmaEngine::submit(const DmaTransfer& t) {
    queue_.push_back(t);
    if (!queue_.back().ready) queue_.back().ready = to_ticks(sc_core::sc_time_stamp());
    wake_.notify(sc_core::SC_ZERO_TIME);
}

void DmaEngine::run() {
    qk_.reset();
    DmaTransfer t;
    for (;;) {
        if (!queue_.empty()) {
            t = queue_.front();
            queue_.pop_front();
        } else if (!next_(client_, t)) {
            // Idle: let SystemC time catch up with the last issue, then look again (work may
            // have been submitted meanwhile: a wake-up sent during the sync is not kept), and
            // sleep only when nothing came.
            if (qk_.get_local_time() != sc_core::SC_ZERO_TIME) {
                qk_.sync();
                continue;
            }
            sc_core::wait(wake_);
            qk_.reset();
            continue;
        }
        issue(t);
    }
}

Tick DmaEngine::advance(Tick at) {
    Tick stamp = to_ticks(qk_.stamp());
    qk_.set(to_sc_time(at - stamp));
    if (qk_.need_sync()) {
        // With a zero quantum need_sync() is always true; skip the delta cycle when the
        // request issues at the current time anyway.
        if (at == stamp) {
            qk_.reset();
        } else {
            qk_.sync();
            stamp = at;
        }
    }
    return stamp;
}

void DmaEngine::issue(DmaTransfer& t) {
    if (!t.ready) t.ready = now();
    DmaResult r;
    r.id = t.id;
    r.submitted = r.done = r.first_issue = t.ready;
    const Direction& dir = dirs_[t.write];
    Addr a = t.iova;
    uint64_t left = t.length, offset = 0;
    while (left) {
        const uint32_t len = dma_piece_len(a, left, dir.max_payload);
        const Tick floor = now();
        const DmaIssueScheduler::Grant g = sched_.grant(std::max(t.ready, floor));
        if (g.limit == DmaIssueScheduler::Limit::Tag) ++tag_stalls_, tag_stall_ns_.add(g.stalled);
        if (g.limit == DmaIssueScheduler::Limit::Rate)
            ++rate_stalls_, rate_stall_ns_.add(g.stalled);
        Tick stamp = advance(g.at);
        Tick issue_at = g.at;
        Addr target = a;
        PcieAttr::At at_field = t.at;
        if (ats_) {
            const AtsAgent::Result x =
                ats_->translate(t.req, a, t.write ? Access::Write : Access::Read, g.at);
            // The agent may have waited (a page request): the time moved under the keeper.
            if (const Tick after = to_ticks(qk_.stamp()); after != stamp) {
                qk_.reset();
                stamp = after;
            }
            if (!x.ok) {  // no usable translation: the request is not sent
                sched_.complete(std::max(x.done, stamp));
                if (r.pieces == 0) r.first_issue = g.at;
                ++r.pieces;
                r.done = std::max(r.done, x.done);
                if (r.faults++ == 0) r.fault_iova = a, r.status = tlm::TLM_ADDRESS_ERROR_RESPONSE;
                ++faults_;
                a += len, offset += len, left -= len;
                continue;
            }
            issue_at = std::max(x.done, stamp);
            target = x.out;
            at_field = PcieAttr::At::Translated;
            qk_.set(to_sc_time(issue_at - stamp));
        }

        Slot& s = *slot_;
        s.attr.req = t.req;
        s.attr.at = at_field;
        s.attr.tlp = dir.tlp;
        s.attr.tag = g.tag;
        s.attr.contents = t.data != nullptr;
        s.p.set_command(dir.cmd);
        s.p.set_address(target);
        s.p.set_data_ptr(t.data ? t.data + offset : scratch_.data());
        s.p.set_data_length(len);
        s.p.set_streaming_width(len);
        s.p.set_byte_enable_ptr(nullptr);
        s.p.set_dmi_allowed(false);
        s.p.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
        sc_core::sc_time delay = qk_.get_local_time();
        dma->b_transport(s.p, delay);

        // A target may have waited inside b_transport: the delay is then relative to the
        // new time, and the engine's own time is the later of the two.
        const Tick after = to_ticks(qk_.stamp());
        const Tick done = std::max(after + to_ticks(delay), issue_at);
        if (after != stamp) {
            qk_.reset();
            qk_.set(to_sc_time(issue_at > after ? issue_at - after : 0));
        }
        sched_.complete(done);
        if (ats_) ats_->used(issue_at, done);

        if (r.pieces == 0) r.first_issue = g.at;
        ++r.pieces;
        if (done > r.done) r.done = done;
        piece_latency_.add((done - issue_at) / kTicksPerNs);
        if (s.p.is_response_ok()) {
            r.bytes_ok += len;
            *dir.bytes += len;
        } else {
            if (r.faults++ == 0) r.fault_iova = a, r.status = s.p.get_response_status();
            ++faults_;
        }
        a += len, offset += len, left -= len;
    }
    ++transfers_;
    pieces_ += r.pieces;
    if (r.faults) ++faulted_transfers_;
    transfer_latency_.add(r.latency() / kTicksPerNs);
    IOMMUSIM_LOG_IF(log_, Trace, log::wants(t.req), r.first_issue,
                    "{} DMA {} iova {:#x}+{}: {} TLPs, ready at {} ns, done at {} ns ({} ns)",
                    to_string(t.req), t.write ? "write" : "read", t.iova, t.length, r.pieces,
                    t.ready / kTicksPerNs, r.done / kTicksPerNs, r.latency() / kTicksPerNs);
    IOMMUSIM_LOG_IF(log_, Debug, r.faults && log::wants(t.req), r.done,
                    "{} DMA {} iova {:#x}+{}: {} of {} requests failed, the first at {:#x} ({})",
                    to_string(t.req), t.write ? "write" : "read", t.iova, t.length, r.faults,
                    r.pieces, r.fault_iova,
                    r.status == tlm::TLM_ADDRESS_ERROR_RESPONSE ? "address error: translation fault"
                                                                : "error response");
    if (Timeline* tl = timeline(); tl && tl->near(r.first_issue, r.done)) {
        tl->span(tl->track(name(), "transfers"), t.write ? "DMA write" : "DMA read", r.first_issue,
                 r.done,
                 {{"iova", fmt::format("\"{:#x}\"", t.iova)},
                  {"bytes", std::to_string(t.length)},
                  {"pieces", std::to_string(r.pieces)},
                  {"faults", std::to_string(r.faults)}});
        tl->counter(name(), "queued transfers", now(), double(queue_.size()));
    }
    done_(client_, t, r);
}

}  // namespace iommusim
