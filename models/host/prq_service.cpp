#include "prq_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <variant>

#include "arch/vtd/vtd_regs.h"

namespace iommusim::sva {

using vtd::PageRequest;
using vtd::PageResponseCode;

namespace {

// Two requests are the same PRQ entry when their descriptors are bit-identical (the unit
// drops what the descriptor cannot hold: the page offset, bits beyond PRGI's 9).
bool same(const PageRequest& a, const PageRequest& b) {
    return vtd::encode(a) == vtd::encode(b);
}

// `r` as the handler will read it back from the queue.
PageRequest as_written(const PageRequest& r) {
    const auto qw = vtd::encode(r);
    const auto back = vtd::decode_page_request(qw.data());
    return std::holds_alternative<PageRequest>(back) ? std::get<PageRequest>(back) : r;
}

bool stop_marker(const PageRequest& r) {
    return r.lpig && !r.rdr && !r.wrr;
}

std::string who(const PageRequest& r) {
    return fmt::format("{:02x}:{:02x}.{:x}{} PRGI {}", r.rid >> 8, (r.rid >> 3) & 0x1f, r.rid & 7,
                       r.pp ? fmt::format(" PASID {:#x}", r.pasid) : std::string(" no PASID"),
                       r.prgi);
}

std::string when(Tick t) {
    return t == kNever ? std::string("-") : fmt::format("{} ns", t / kTicksPerNs);
}

}  // namespace

PrqStats::PrqStats(StatGroup& g)
    : requests(g.counter("requests", "page request descriptors read from the PRQ")),
      groups(g.counter("groups", "complete page request groups handled")),
      stop_markers(g.counter("stop_markers", "stop markers read (no response due)")),
      bad_requests(g.counter("bad_requests",
                             "requests refused before handling (no PASID, privileged, execute, "
                             "non-canonical, no SVA binding, malformed)")),
      guest_groups(g.counter("guest_groups", "groups forwarded to a guest's handler (nested)")),
      resp_success(g.child("responses").counter("success", "page group responses: Success")),
      resp_invalid(
          g.child("responses").counter("invalid", "page group responses: Invalid Request")),
      resp_failure(
          g.child("responses").counter("failure", "page group responses: Response Failure")),
      response_errors(
          g.counter("response_errors", "responses the unit did not take (queue stopped or full)")),
      auto_responses(
          g.counter("auto_responses", "responses the unit sent itself for refused last requests")),
      overflows_seen(g.counter("overflows_seen", "handler runs that found PRS.PRO set")),
      overflow_clears(g.counter("overflow_clears", "PRS.PRO cleared after draining the queue")),
      partial_discarded(g.counter("partial_groups_discarded",
                                  "incomplete groups dropped when an overflow was cleared")),
      populated(g.child("faults").counter("populated", "pages made present")),
      present(g.child("faults").counter("present", "requests for pages already present")),
      no_vma(g.child("faults").counter("no_vma", "requests outside every VMA")),
      no_permission(g.child("faults").counter("no_permission", "requests the VMA forbids")),
      no_memory(g.child("faults").counter("no_memory", "requests with no frame left")),
      handler_runs(g.counter("handler_runs", "runs of the threaded PRQ handler")),
      service_latency(g.histogram("service_latency_ns", "ns",
                                  "request written to the PRQ until its group's response is "
                                  "executed by the unit")),
      occupancy(g.histogram("occupancy", "entries", "PRQ entries pending at each handler run")),
      group_size(g.histogram("group_requests", "requests", "requests per page request group")) {}

std::string PrqParams::error() const {
    if (prq_base % 4096)
        return fmt::format("prq_base {:#x} is not 4 KiB aligned (PQA holds bits 63:12)", prq_base);
    if (pqs > 7) return fmt::format("pqs {} (expected 0 to 7, PQA.PQS is 3 bits)", pqs);
    if (status_addr % 4)
        return fmt::format(
            "status_addr {:#x} is not 4-byte aligned (a wait descriptor's status "
            "address holds bits 63:2)",
            status_addr);
    return "";
}

// ---- Ledger ----

PrqLedger::Key PrqLedger::key_of(const PageRequest& r) {
    return {r.rid, r.pp ? r.pasid : Requester::kNoPasid, r.prgi};
}

PrqLedger::Entry& PrqLedger::on_written(const PageRequest& r, Tick at) {
    ++written;
    unread_.push_back(Entry{next_seq_++, r, at, kNever});
    return unread_.back();
}

PrqLedger::Entry PrqLedger::on_read(const PageRequest& r, Tick at) {
    ++read;
    Entry e;
    if (!unread_.empty() && same(unread_.front().req, r)) {
        e = unread_.front();
        unread_.pop_front();
    } else {
        // Not noted as written (or out of order): followed from here; a noted entry left
        // behind shows up as unanswered.
        e = Entry{next_seq_++, r, kNever, kNever};
        ++unnoted;
    }
    e.read = at;
    return e;
}

void PrqLedger::open(const Entry& e) {
    open_[key_of(e.req)].push_back(e);
    ++open_count_;
}

std::vector<PrqLedger::Entry> PrqLedger::close(const Key& k) {
    auto it = open_.find(k);
    if (it == open_.end()) return {};
    std::vector<Entry> out = std::move(it->second);
    open_.erase(it);
    open_count_ -= out.size();
    return out;
}

std::vector<PrqLedger::Entry> PrqLedger::unanswered() const {
    std::vector<Entry> out(unread_.begin(), unread_.end());
    for (const auto& [k, v] : open_) out.insert(out.end(), v.begin(), v.end());
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.seq < b.seq; });
    return out;
}

std::vector<std::string> PrqLedger::report() const {
    std::vector<std::string> lines;
    for (const Entry& e : unanswered())
        lines.push_back(
            fmt::format("page request {} addr {:#x}{}{}{} written {} read {}: never "
                        "answered",
                        who(e.req), e.req.addr, e.req.rdr ? " R" : "", e.req.wrr ? " W" : "",
                        e.req.lpig ? " LPIG" : "", when(e.sent), when(e.read)));
    return lines;
}

std::string PrqLedger::balance() const {
    const uint64_t in = written + unnoted;
    const uint64_t out = answered + answered_by_unit + discarded + stop_markers + pending();
    if (in == out) return "";
    return fmt::format(
        "ledger does not balance: {} written + {} read without a note != {} "
        "answered + {} answered by the unit + {} discarded + {} stop markers + {} "
        "pending",
        written, unnoted, answered, answered_by_unit, discarded, stop_markers, pending());
}

// ---- Service ----

PrqService::PrqService(ProcessTable& procs, RegisterAccess& unit, SparseMemory& mem,
                       vtd::InvQueueWriter& iq, VtdQueueFeeder& feeder, const PrqParams& p,
                       StatGroup& stats)
    : procs_(procs), unit_(unit), mem_(mem), iq_(iq), feeder_(feeder), p_(p), st_(stats) {
    if (const std::string e = p_.error(); !e.empty())
        throw std::invalid_argument("page request service: " + e);
    if (p_.workers == 0) p_.workers = 1;
    if (p_.guest_vcpus == 0) p_.guest_vcpus = 1;
}

Tick PrqService::enable(Tick at) {
    const vtd::Pqa q{p_.prq_base, uint8_t(p_.pqs & 7)};
    entries_ = q.entries();
    Tick t = unit_.mmio_write(vtd::reg::PQH, 8, 0, at);
    t = unit_.mmio_write(vtd::reg::PQT, 8, 0, t);
    t = unit_.mmio_write(vtd::reg::PQA, 8, q.encode(), t);
    return unit_.mmio_write(vtd::reg::PECTL, 4, 0, t);  // unmask: the interrupt is delivered
}

void PrqService::schedule(Tick t, Ev kind, uint64_t group) {
    events_.push(Event{t, event_seq_++, kind, group});
}

void PrqService::interrupt(Tick at) {
    if (stopped_) return;
    // A threaded handler that is running is marked to run again (IRQTF_RUNTHREAD).
    if (handler_busy_) {
        handler_again_ = true;
        return;
    }
    handler_busy_ = true;
    schedule(at + ticks_from_ns(p_.irq_ns), Ev::Handler);
}

void PrqService::note_sent(const PageRequest& sent, const vtd::PageRequestResult& res) {
    using O = vtd::PageRequestResult::Outcome;
    const PageRequest pr = as_written(sent);
    if (res.outcome == O::Written) {
        ledger_.on_written(pr, res.done);
        return;
    }
    if (res.respond) {
        // The unit answered the group for software: it covers what was read of it, too.
        ++st_.auto_responses;
        ++ledger_.refused_answered;
        ledger_.answered_by_unit += ledger_.close(PrqLedger::key_of(pr)).size();
    } else {
        ++ledger_.refused_dropped;
    }
}

Tick PrqService::next_event() const {
    return stopped_ || events_.empty() ? kNever : events_.top().t;
}

Tick PrqService::run_until(Tick now) {
    while (!stopped_ && !events_.empty() && events_.top().t <= now) {
        const Event e = events_.top();
        events_.pop();
        switch (e.kind) {
            case Ev::Handler: run_handler(e.t); break;
            case Ev::HandlerDone: handler_done(e.t, uint32_t(e.group)); break;
            case Ev::WorkerDone: {
                Group& g = groups_.at(e.group);
                const PageResponseCode code = handle(g);
                const Tick done = respond(g.last, code, e.t + ticks_from_ns(p_.respond_ns));
                groups_.erase(e.group);
                // qi_submit_sync spins until the unit has executed the response.
                schedule(done, Ev::WorkerFree);
                break;
            }
            case Ev::WorkerFree:
                --native_busy_;
                start_native(e.t);
                break;
            case Ev::GuestArrive:
                guest_q_.push_back(e.group);
                start_guest(e.t);
                break;
            case Ev::GuestDone: {
                Group& g = groups_.at(e.group);
                const PageResponseCode code = handle(g);  // the guest maps its own first level
                const Tick exit = e.t + ticks_from_ns(p_.guest_exit_ns);
                respond(g.last, code,
                        exit + ticks_from_ns(p_.guest_passdown_ns) + ticks_from_ns(p_.respond_ns));
                groups_.erase(e.group);
                schedule(exit, Ev::GuestFree);  // the vCPU is back once the exit returns
                break;
            }
            case Ev::GuestFree:
                --guest_busy_;
                start_guest(e.t);
                break;
        }
    }
    return next_event();
}

bool PrqService::bad(const PageRequest& r, const char** why) const {
    // prq_event_thread's checks, in its order.
    const int64_t sa = int64_t(r.addr) >> 47;  // 4-level first level: bits 63:47 all equal
    if (sa != 0 && sa != -1) return *why = "address not canonical", true;
    if (!r.pp) return *why = "no PASID", true;
    if (r.pmr && (r.rdr || r.wrr)) return *why = "privileged mode request", true;
    if (r.exe && r.rdr) return *why = "execute request", true;
    if (stop_marker(r)) return false;
    if (!procs_.find(r.rid, r.pasid)) return *why = "no SVA binding", true;
    return false;
}

void PrqService::run_handler(Tick t) {
    ++st_.handler_runs;
    // PPR is cleared before the pointers are read, so a request written later raises a new
    // interrupt.
    t = unit_.mmio_write(vtd::reg::PRS, 4, vtd::prs::PPR, t);
    const uint32_t n = entries_;
    const uint32_t tail = vtd::pq_index(unit_.mmio_read(vtd::reg::PQT, 8)) % n;
    uint32_t head = vtd::pq_index(unit_.mmio_read(vtd::reg::PQH, 8)) % n;
    st_.occupancy.add((tail + n - head) % n);
    for (; head != tail; head = (head + 1) % n) {
        uint64_t qw[4];
        for (unsigned i = 0; i < 4; ++i) qw[i] = mem_.read64(p_.prq_base + Addr(head) * 32 + 8 * i);
        t += ticks_from_ns(p_.desc_ns);
        const auto dec = vtd::decode_page_request(qw);
        if (auto err = std::get_if<vtd::DescError>(&dec)) {
            ++st_.bad_requests;
            IOMMUSIM_LOG(log_, Warn, t, "PRQ entry {} malformed: {}", head, vtd::to_string(*err));
            continue;
        }
        const PageRequest& r = std::get<PageRequest>(dec);
        ++st_.requests;
        const PrqLedger::Entry e = ledger_.on_read(r, t);
        const char* why = "";
        if (bad(r, &why)) {
            ++st_.bad_requests;
            ledger_.open(e);
            IOMMUSIM_LOG(log_, Info, t, "page request {} addr {:#x} refused: {}", who(r), r.addr,
                         why);
            // handle_bad_prq_event answers only a last request; the partial group goes too.
            if (r.lpig) {
                partial_.erase(PrqLedger::key_of(r));
                t = respond(r, PageResponseCode::InvalidRequest, t + ticks_from_ns(p_.respond_ns));
            }
            continue;
        }
        if (stop_marker(r)) {  // dropped, no response due
            ++st_.stop_markers;
            ++ledger_.stop_markers;
            continue;
        }
        ledger_.open(e);
        const PrqLedger::Key k = PrqLedger::key_of(r);
        partial_[k].push_back(r);
        if (!r.lpig) continue;
        const uint64_t id = next_group_++;
        Group& g = groups_[id];
        g.key = k;
        g.last = r;
        g.reqs = std::move(partial_[k]);
        partial_.erase(k);
        g.proc = procs_.find(r.rid, r.pasid);
        g.guest = g.proc->in_guest();
        dispatch(id, t);
    }
    schedule(t, Ev::HandlerDone, tail);
}

void PrqService::handler_done(Tick t, uint32_t tail) {
    t = unit_.mmio_write(vtd::reg::PQH, 8, vtd::pq_reg(tail), t);
    if (unit_.mmio_read(vtd::reg::PRS, 4) & vtd::prs::PRO) {
        ++st_.overflows_seen;
        const uint32_t head = vtd::pq_index(unit_.mmio_read(vtd::reg::PQH, 8));
        if (head == vtd::pq_index(unit_.mmio_read(vtd::reg::PQT, 8))) {
            // iopf_queue_discard_partial: groups whose last request the unit refused (and
            // answered itself) would never complete.
            for (const auto& [k, reqs] : partial_) {
                ++st_.partial_discarded;
                ledger_.discarded += ledger_.close(k).size();
            }
            partial_.clear();
            t = unit_.mmio_write(vtd::reg::PRS, 4, vtd::prs::PRO, t);
            ++st_.overflow_clears;
            IOMMUSIM_LOG(log_, Info, t, "PRQ overflow cleared");
        }
    }
    handler_busy_ = false;
    if (handler_again_) {
        handler_again_ = false;
        handler_busy_ = true;
        schedule(t, Ev::Handler);
    }
}

Tick PrqService::service_ns(const Group& g, bool guest) const {
    const double n = double(g.reqs.size());
    double ns = p_.group_ns + n * p_.fault_ns;
    if (guest) ns += p_.guest_irq_ns + n * p_.desc_ns;  // the guest's handler reads its vPRQ
    return ticks_from_ns(ns);
}

void PrqService::dispatch(uint64_t id, Tick t) {
    Group& g = groups_.at(id);
    g.ready = t;
    ++st_.groups;
    st_.group_size.add(g.reqs.size());
    if (g.guest) {
        ++st_.guest_groups;
        schedule(t + ticks_from_ns(p_.guest_inject_ns), Ev::GuestArrive, id);
        return;
    }
    native_q_.push_back(id);
    start_native(t);
}

void PrqService::start_native(Tick t) {
    while (native_busy_ < p_.workers && !native_q_.empty()) {
        const uint64_t id = native_q_.front();
        native_q_.pop_front();
        ++native_busy_;
        schedule(t + service_ns(groups_.at(id), false), Ev::WorkerDone, id);
    }
}

void PrqService::start_guest(Tick t) {
    while (guest_busy_ < p_.guest_vcpus && !guest_q_.empty()) {
        const uint64_t id = guest_q_.front();
        guest_q_.pop_front();
        ++guest_busy_;
        schedule(t + service_ns(groups_.at(id), true), Ev::GuestDone, id);
    }
}

PageResponseCode PrqService::handle(Group& g) {
    // iopf_handler: the group's faults in order; the first failure answers the whole group.
    for (const PageRequest& r : g.reqs) {
        const Perm need = Perm((r.rdr ? kPermR : 0) | (r.wrr ? kPermW : 0) | (r.exe ? kPermX : 0));
        switch (g.proc->fault(r.addr, need)) {
            case FaultOutcome::Populated: ++st_.populated; break;
            case FaultOutcome::Present: ++st_.present; break;
            case FaultOutcome::NoVma: ++st_.no_vma; return PageResponseCode::InvalidRequest;
            case FaultOutcome::NoPermission:
                ++st_.no_permission;
                return PageResponseCode::InvalidRequest;
            case FaultOutcome::NoMemory: ++st_.no_memory; return PageResponseCode::InvalidRequest;
        }
    }
    return PageResponseCode::Success;
}

Tick PrqService::respond(const PageRequest& last, PageResponseCode code, Tick at) {
    // Invalidations the population made the driver issue go first (none for a 4 KiB page
    // under present tables: not-present entries are not cached).
    Tick t = feeder_.submit(at);
    vtd::PageGroupResponse resp;
    resp.pp = last.pp;
    resp.rc = uint8_t(code);
    resp.rid = last.rid;
    resp.pasid = last.pp ? last.pasid : 0;
    resp.prgi = last.prgi;
    // qi_submit_sync: the descriptor, then a fenced wait with a status write.
    const std::vector<vtd::InvDesc> descs{vtd::encode(resp),
                                          vtd::inv_wait(p_.status_addr, ++wait_seq_, false, true)};
    auto iqt = iq_.append(descs, unit_.mmio_read(vtd::reg::IQH, 8));
    if (!iqt) {
        ++st_.response_errors;
        IOMMUSIM_LOG(log_, Warn, t, "page group response for {}: invalidation queue full",
                     who(last));
        return t;
    }
    const Tick done = unit_.mmio_write(vtd::reg::IQT, 8, *iqt, t);
    if (unit_.mmio_read(vtd::reg::IQH, 8) != *iqt) {
        ++st_.response_errors;  // the queue stopped (IQE/ITE): the response did not go out
        IOMMUSIM_LOG(log_, Warn, done,
                     "page group response for {}: the invalidation queue "
                     "stopped before it",
                     who(last));
        return done;
    }
    switch (code) {
        case PageResponseCode::Success: ++st_.resp_success; break;
        case PageResponseCode::InvalidRequest: ++st_.resp_invalid; break;
        case PageResponseCode::Failure: ++st_.resp_failure; break;
    }
    const auto covered = ledger_.close(PrqLedger::key_of(last));
    if (covered.empty()) ++ledger_.stray_responses;
    ledger_.answered += covered.size();
    for (const auto& e : covered) {
        const Tick from = e.sent != kNever ? e.sent : e.read;
        st_.service_latency.add(done > from ? (done - from) / kTicksPerNs : 0);
    }
    IOMMUSIM_LOG(log_, Debug, done, "page group response {} for {} ({} requests)", unsigned(code),
                 who(last), covered.size());
    return done;
}

}  // namespace iommusim::sva
