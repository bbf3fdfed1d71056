// The queued-invalidation engine of the VT-d register file (specification 6.5.2). Descriptors
// are fetched one at a time from IQH towards IQT; each costs its fetch plus desc_cycles, then
// starts once the descriptors it must follow have completed (6.5.2.12) and is handed to the
// hooks. A wait completes after everything ahead of it; with FN the fetches behind it wait
// too. An invalid descriptor stops the queue with IQE and IQH left at it (6.5.2.11).
#include <fmt/format.h>

#include <algorithm>
#include <variant>

#include "vtd_regfile.h"

namespace iommusim::vtd {

namespace {

DescError queue_fault(Iqei e, const char* what) {
    return DescError{e, 0, 0, 0, what};
}

// A valid descriptor for the log: what it names, or its type.
std::string describe(const DecodedInvDesc& d, unsigned type) {
    const std::string s = to_string(InvDescType(type));
    if (auto w = std::get_if<InvWait>(&d))
        return s +
               (w->sw ? fmt::format(" SW {:#x} to {:#x}", w->status_data, w->status_addr)
                      : std::string()) +
               (w->iflag ? " IF" : "") + (w->fn ? " FN" : "") + (w->pd ? " PD" : "");
    const std::optional<InvalidationScope> sc = scope_of(d);
    return sc ? to_string(*sc) : s;
}

}  // namespace

Tick RegisterFile::process_queue(Tick at) {
    // Fetching needs QIES and no pending IQE or ITE (6.5.2).
    if (!(gsts_ & gsts::QIES) || (fsts_ & (fsts::IQE | fsts::ITE))) return at;
    const Iqa q = Iqa::decode(iqa_);
    if (iqt_misaligned(iqt_, q.dw)) {
        queue_error(queue_fault(Iqei::TailMisaligned, "IQT"), at);
        return at;
    }
    if ((iqt_ & kIqOffsetMask) >= q.bytes()) {
        queue_error(queue_fault(Iqei::InvalidTail, "IQT"), at);
        return at;
    }
    const uint32_t n = q.entries(), tail = iq_index(iqt_, q.dw);
    uint32_t head = iq_index(iqh_, q.dw) % n;
    if (head == tail) return at;
    // Table 26 and IQEI 5/7: the descriptor width must suit the translation table mode.
    if (root_.ttm == Ttm::Reserved) {
        queue_error(queue_fault(Iqei::InvalidTtm, "TTM"), at);
        return at;
    }
    const bool width_ok = q.dw ? (cfg_.ecap.smts || cfg_.ecap.adms) : root_.ttm == Ttm::Legacy;
    if (!width_ok) {
        queue_error(queue_fault(Iqei::InvalidWidth, "DW"), at);
        return at;
    }

    // The ring engine (core/command_ring.h) fetches and paces; what each descriptor means,
    // when it may start and what stops the queue is the specification's, here.
    const unsigned bytes = q.desc_bytes();
    Tick end = at;
    const Tick fetched_to = ring_.process(
        mem_, q.iqa, n, bytes, head, tail, at,
        [&](const CommandRing::Entry& e) -> CommandRing::Step {
            uint64_t qw[4] = {0, 0, 0, 0};
            for (unsigned i = 0; i < bytes / 8; ++i) qw[i] = load_le64(e.bytes + 8 * i);
            const DecodedInvDesc d = decode(qw, q.dw);
            if (auto err = check(d, qw)) {
                queue_error(*err, e.fetched);
                return {e.fetched, true, false};
            }
            // IQH moves past a descriptor only once it is known to be valid.
            iqh_ = iq_reg((e.index + 1) % n, q.dw);
            ++n_.descriptors[desc_type(qw[0]) & 15];
            if (IOMMUSIM_LOG_ON(log_, Debug)) {
                const std::optional<InvalidationScope> sc = scope_of(d);
                IOMMUSIM_LOG_IF(log_, Debug, !sc || log::wants(*sc), e.fetched,
                                "invalidation queue: descriptor {} fetched from {:#x}: {}", e.index,
                                q.iqa + Addr(e.index) * bytes, describe(d, desc_type(qw[0])));
            }
            const Tick next = execute(d, e.dispatched, end);
            return {next, (fsts_ & fsts::ITE) != 0};
        },
        [&](Tick when) { queue_error(queue_fault(Iqei::FetchError, "fetch"), when); });
    return std::max(end, fetched_to);
}

std::optional<DescError> RegisterFile::check(const DecodedInvDesc& d, const uint64_t* qw) const {
    if (auto e = std::get_if<DescError>(&d)) return *e;
    const unsigned type = desc_type(qw[0]);
    // Legacy mode knows types 1-5 only (Table 26).
    if (root_.ttm == Ttm::Legacy && type > unsigned(InvDescType::Wait))
        return DescError{Iqei::InvalidType, uint8_t(type), 0,
                         qw[0] & (TYPE_LO.mask() | TYPE_HI.mask()), "Type"};
    // Page-selective IOTLB invalidation without CAP.PSI is invalid (6.5.2.3).
    if (auto x = std::get_if<IotlbInv>(&d); x && x->g == IotlbGranularity::Page && !cfg_.cap.psi)
        return DescError{Iqei::ReservedField, uint8_t(type), 0, qw[0] & iotlb_inv_dsc::G.mask(),
                         "G"};
    // PD is reserved without ECAP.PDS (6.5.2.9).
    if (auto w = std::get_if<InvWait>(&d); w && w->pd && !cfg_.ecap.pds)
        return DescError{Iqei::ReservedField, uint8_t(type), 0, qw[0] & inv_wait_dsc::PD.mask(),
                         "PD"};
    return std::nullopt;
}

Tick RegisterFile::execute(const DecodedInvDesc& d, Tick start, Tick& end) {
    using K = InvalidationScope::Kind;
    Tick other = 0;
    // A descriptor starting at `begin` and completing at `done`; the next fetch follows its
    // dispatch, so the engine executes in order.
    auto ran = [&](Tick begin, Tick done, Tick& cls) {
        cls = std::max(cls, done);
        done_all_ = std::max(done_all_, done);
        end = std::max(end, done);
        return begin;
    };
    if (auto c = std::get_if<ContextCacheInv>(&d)) {
        InvalidationScope s = scope_of(*c);
        // The scalable-mode context-cache is not tagged by domain: domain-selective
        // invalidation is processed as global (6.5.2.1).
        if (root_.ttm == Ttm::Scalable && s.kind == K::ContextDomain) s.kind = K::ContextGlobal;
        return ran(start, hooks_.invalidate(s, start), done_cc_);
    }
    if (auto c = std::get_if<PasidCacheInv>(&d)) {
        const Tick b = std::max(start, done_cc_);
        return ran(b, hooks_.invalidate(scope_of(*c), b), done_pc_);
    }
    const Tick after_ctx = std::max({start, done_cc_, done_pc_});
    if (auto c = std::get_if<IotlbInv>(&d))
        return ran(after_ctx, hooks_.invalidate(scope_of(*c), after_ctx), done_iotlb_);
    if (auto c = std::get_if<PasidIotlbInv>(&d))
        return ran(after_ctx, hooks_.invalidate(scope_of(*c), after_ctx), done_iotlb_);
    if (auto c = std::get_if<IecInv>(&d))
        return ran(start, hooks_.interrupt_entry_cache(*c, start), done_iec_);
    if (std::holds_alternative<DeviceTlbInv>(d) || std::holds_alternative<PasidDeviceTlbInv>(d)) {
        const InvalidationScope s = *scope_of(d);
        const Tick b = std::max({start, done_iotlb_, done_iec_});
        const Tick c = hooks_.device_tlb(s, b);
        if (c != kNever) return ran(b, c, other);
        // No completion: time-out, ITE with the requester; no fetches until ITE is cleared
        // and the waits behind it never complete (6.5.2.11).
        const Tick when = b + p_.devtlb_timeout_us * 1'000'000;
        const uint32_t pre = fsts();
        if (!(fsts_ & fsts::ITE)) iqercd_ = set_bits(iqercd_, 47, 32, s.rid);
        fsts_ |= fsts::ITE;
        ++n_.devtlb_timeouts;
        IOMMUSIM_LOG(log_, Warn, when,
                     "device-TLB invalidation of {:02x}:{:02x}.{:x} not completed: ITE, the queue "
                     "stops",
                     s.rid >> 8, (s.rid >> 3) & 0x1f, s.rid & 7);
        fault_event(pre, when);
        end = std::max(end, when);
        return b;
    }
    if (auto c = std::get_if<PageGroupResponse>(&d))
        return ran(start, hooks_.page_response(*c, start), other);
    if (auto w = std::get_if<InvWait>(&d)) return run_wait(*w, start, end);
    return start;
}

Tick RegisterFile::run_wait(const InvWait& w, Tick start, Tick& end) {
    ++n_.waits;
    // Completion follows everything ahead of it (6.5.2.12) and, with PD, the page request
    // descriptor writes already accepted (6.5.2.9).
    Tick t = std::max(start, done_all_);
    if (w.pd) t = std::max(t, prq_done_);
    if (w.sw) {
        uint8_t data[4];
        for (int i = 0; i < 4; ++i) data[i] = uint8_t(w.status_data >> (8 * i));
        t = mem_.write(w.status_addr, data, sizeof data, t).at;
        ++n_.status_writes;
    }
    if (w.iflag) completion_event(t);
    IOMMUSIM_LOG(log_, Debug, t, "invalidation wait completes{}",
                 w.sw ? fmt::format(": status {:#x} written to {:#x}", w.status_data, w.status_addr)
                      : std::string());
    done_all_ = std::max(done_all_, t);
    end = std::max(end, t);
    // FN: the descriptors behind it are processed only after it completes.
    return w.fn ? t : start;
}

void RegisterFile::completion_event(Tick at) {
    if (ics_ & ics::IWC) return;  // the previous completion is not serviced yet (6.5.2.10)
    ics_ |= ics::IWC;
    signal(Interrupt::InvalidationCompletion, iectl_, at);
}

void RegisterFile::queue_error(const DescError& e, Tick at) {
    const uint32_t pre = fsts();
    fsts_ |= fsts::IQE;
    iqercd_ = set_bits(iqercd_, 3, 0, uint64_t(e.iqei));
    last_error_ = e;
    ++n_.queue_errors;
    IOMMUSIM_LOG(log_, Warn, at, "invalidation queue error: {} (IQE set, the queue stops)",
                 to_string(e));
    fault_event(pre, at);
}

}  // namespace iommusim::vtd
