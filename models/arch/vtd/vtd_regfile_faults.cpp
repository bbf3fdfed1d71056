// Fault status and events (7.3), primary fault logging (7.2.1) and the page request queue
// (7.4.1, 7.5) of the VT-d register file.
#include <fmt/format.h>

#include <algorithm>

#include "vtd_fault.h"
#include "vtd_regfile.h"

namespace iommusim::vtd {

namespace {

// FSTS fields whose being Set means an interrupt condition is still unserviced (7.3).
constexpr uint32_t kPendingFault = fsts::PPF | fsts::PFO | fsts::IQE | fsts::ICE | fsts::ITE;

FaultReqType request_type(Access a) {
    switch (a) {
        case Access::Read: return FaultReqType::Read;
        case Access::Write: return FaultReqType::Write;
        case Access::ReadWrite: return FaultReqType::AtomicOp;
    }
    return FaultReqType::Read;
}

}  // namespace

const char* to_string(FaultLog l) {
    switch (l) {
        case FaultLog::Recorded: return "recorded";
        case FaultLog::Suppressed: return "suppressed";
        case FaultLog::Collapsed: return "collapsed";
        case FaultLog::Overflow: return "overflow";
    }
    return "?";
}

const char* to_string(PageRequestResult::Outcome o) {
    using O = PageRequestResult::Outcome;
    switch (o) {
        case O::Written: return "written";
        case O::Full: return "full";
        case O::Overflow: return "overflow";
        case O::WriteError: return "write-error";
        case O::Unsupported: return "unsupported";
    }
    return "?";
}

// ---- Fault status and events (7.3) ----

uint32_t RegisterFile::fsts() const {
    bool ppf = false;
    for (const auto& r : frcd_) ppf |= frcd::F.get(r.data()) != 0;
    return (fsts_ & ~fsts::PPF) | (ppf ? fsts::PPF : 0);
}

void RegisterFile::clear_status(uint32_t rw1c, Tick at, Tick& done) {
    const bool stalled = fsts_ & (fsts::IQE | fsts::ITE);
    fsts_ &= ~rw1c;
    if (!(fsts() & kPendingFault)) fectl_ &= ~ectl::IP;
    // Clearing IQE/ITE lets the queue fetch again from IQH (6.5.2.11).
    if (stalled && !(fsts_ & (fsts::IQE | fsts::ITE))) done = std::max(done, process_queue(at));
}

void RegisterFile::signal(Interrupt which, uint32_t& ctl, Tick at) {
    ctl |= ectl::IP;
    if (ctl & ectl::IM) return;
    ctl &= ~ectl::IP;
    switch (which) {
        case Interrupt::Fault: ++n_.fault_interrupts; break;
        case Interrupt::InvalidationCompletion: ++n_.invalidation_interrupts; break;
        case Interrupt::PageRequest: ++n_.page_request_interrupts; break;
    }
    hooks_.interrupt(which, at);
}

void RegisterFile::fault_event(uint32_t pre, Tick at) {
    if (pre & kPendingFault) return;  // an earlier condition is still unserviced
    signal(Interrupt::Fault, fectl_, at);
}

// ---- Primary fault logging (7.2.1) ----

FaultReport RegisterFile::record_fault(const Fault& f, const Requester& req, Addr iova, Access a,
                                       Tick at, AddrType at_field) {
    IOMMUSIM_LOG_IF(log_, Debug, log::wants(req), at, "{} {} {:#x}: {} fault, reason {:#x} ({}){}",
                    to_string(req), to_string(a), iova, to_string(f.kind), f.reason,
                    fault_reason_text(f.reason),
                    f.suppressed ? ", fault processing disabled: not recorded" : "");
    if (f.suppressed) {
        ++n_.faults_suppressed;
        return {FaultLog::Suppressed, 0, at};
    }
    FaultRecord r;
    // FI holds the page address; bits above the widest supported AGAW are reserved.
    unsigned width = 64;
    for (unsigned aw = 0; aw < 5; ++aw)
        if (cfg_.cap.supports_aw(aw)) width = 30 + 9 * aw;
    r.fi = iova & ~Addr(0xfff) & (width >= 64 ? ~0ULL : (1ULL << width) - 1);
    r.sid = req.rid;
    r.type = request_type(a);
    r.fr = uint8_t(f.reason);
    // PASID fields are RsvdZ without ECAP.PASID; AT without ECAP.DT (11.4.7.6).
    r.pp = cfg_.ecap.pasid && req.has_pasid();
    r.pv = r.pp ? req.pasid : 0;
    r.priv = r.pp && req.priv;
    r.exe = r.pp && req.exec && a == Access::Read;
    r.at = cfg_.ecap.dt ? at_field : AddrType::Untranslated;
    return record(r, at);
}

FaultReport RegisterFile::record(FaultRecord rec, Tick at) {
    const Tick t = at + clk_.cycles(p_.fault_record_cycles);
    if (fsts_ & fsts::PFO) {
        ++n_.faults_dropped;
        IOMMUSIM_LOG(log_, Debug, t, "fault of SID {:#06x} dropped: PFO is set", rec.sid);
        return {FaultLog::Overflow, 0, t};
    }
    if (p_.collapse_faults) {
        for (const auto& r : frcd_) {
            if (frcd::F.get(r.data()) && frcd::SID.get(r.data()) == rec.sid) {
                ++n_.faults_collapsed;
                IOMMUSIM_LOG(log_, Debug, t, "fault of SID {:#06x} collapsed onto a pending record",
                             rec.sid);
                return {FaultLog::Collapsed, 0, t};
            }
        }
    }
    const unsigned i = next_fault_ % unsigned(frcd_.size());
    if (frcd::F.get(frcd_[i].data())) {
        fsts_ |= fsts::PFO;
        ++n_.faults_dropped;
        IOMMUSIM_LOG(log_, Debug, t, "fault of SID {:#06x} dropped: FRCD{} still held, PFO set",
                     rec.sid, i);
        return {FaultLog::Overflow, 0, t};
    }
    const uint32_t pre = fsts();
    rec.f = true;
    frcd_[i] = rec.encode();
    next_fault_ = (i + 1) % unsigned(frcd_.size());
    ++n_.faults_recorded;
    IOMMUSIM_LOG(log_, Debug, t, "fault recorded in FRCD{}: SID {:#06x} FI {:#x} FR {:#x}", i,
                 rec.sid, rec.fi, rec.fr);
    if (!(pre & fsts::PPF)) {
        fsts_ = fsts::with_fri(fsts_, i);  // FRI names the first pending record
        fault_event(pre, t);
    }
    return {FaultLog::Recorded, i, t};
}

FaultRecord RegisterFile::fault_record(unsigned index) const {
    if (index >= frcd_.size()) return {};
    return FaultRecord::decode(frcd_[index][0], frcd_[index][1]);
}

// ---- Page request queue (7.4.1, 7.5) ----

PageRequestResult RegisterFile::page_request(const PageRequest& pr, Tick at) {
    using O = PageRequestResult::Outcome;
    PageRequestResult res;
    res.done = at + clk_.cycles(p_.page_request_cycles);
    // A Stop Marker (LPIG with neither read nor write) never gets a response.
    const bool needs_response = pr.lpig && (pr.rdr || pr.wrr);
    // Table 31: a refused request that was last in its group is answered by the hardware.
    auto refuse = [&](O o, PageResponseCode code) {
        res.outcome = o;
        res.respond = needs_response;
        res.code = code;
        if (res.respond) ++n_.page_responses_auto;
        return res;
    };
    if (!cfg_.ecap.prs) return refuse(O::Unsupported, PageResponseCode::InvalidRequest);
    if (prs_ & prs::PRO) {
        ++n_.page_requests_overflowed;  // no fault, no event (7.4.1)
        return refuse(O::Overflow, PageResponseCode::Success);
    }
    const Pqa q = Pqa::decode(pqa_);
    const uint32_t n = q.entries(), head = pq_index(pqh_) % n, tail = pq_index(pqt_) % n;
    if ((tail + 1) % n == head) {
        const uint32_t pre = prs_;
        prs_ |= prs::PRO;
        ++n_.page_requests_overflowed;
        if (!(pre & (prs::PPR | prs::PRO))) signal(Interrupt::PageRequest, pectl_, res.done);
        return refuse(O::Full, PageResponseCode::Success);
    }
    uint8_t bytes[32];
    const auto qw = encode(pr);
    for (int i = 0; i < 4; ++i) store_le64(bytes + 8 * i, qw[i]);
    const MemDone w = mem_.write(q.pqa + Addr(tail) * 32, bytes, sizeof bytes, res.done);
    res.done = w.at;
    if (!w.ok) {
        ++n_.page_request_errors;
        return refuse(O::WriteError, PageResponseCode::InvalidRequest);
    }
    // PQT moves once the descriptor is visible; PPR and the event follow (7.5).
    pqt_ = pq_reg((tail + 1) % n);
    prq_done_ = std::max(prq_done_, w.at);
    ++n_.page_requests;
    if (!(prs_ & prs::PPR)) {
        const uint32_t pre = prs_;
        prs_ |= prs::PPR;
        if (!(pre & (prs::PPR | prs::PRO))) signal(Interrupt::PageRequest, pectl_, w.at);
    }
    res.outcome = O::Written;
    return res;
}

}  // namespace iommusim::vtd
