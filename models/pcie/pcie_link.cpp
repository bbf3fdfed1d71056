#include "pcie_link.h"

#include <algorithm>
#include <stdexcept>

#include "core/timeline.h"

namespace iommusim {

namespace {

const PcieLinkParams& checked(const PcieLinkParams& p) {
    std::string why;
    if (!p.valid(&why)) throw std::invalid_argument(why);
    return p;
}

uint64_t ns(Tick t) {
    return t / kTicksPerNs;
}

// A queueing wait, in ns. Most TLPs find their direction free: a wait under 1 ns needs no
// division, and adding the constant 0 folds most of the histogram's update away.
inline void add_wait(Histogram& h, Tick wait) {
    if (wait < kTicksPerNs)
        h.add(0);
    else
        h.add(wait / kTicksPerNs);
}

}  // namespace

void PcieLink::Direction::init(const PcieLinkParams& p, StatGroup& g, const char* toward) {
    server = BandwidthServer(tlp_rate(p));
    tlps = &g.counter("tlps", std::string("TLPs sent toward the ") + toward);
    payload_bytes = &g.counter("payload_bytes", "data payload bytes of those TLPs");
    wire_bytes = &g.counter(
        "wire_bytes", "bytes on the wire: payload, framing, sequence number, LCRC, header, ECRC");
    busy_ps = &g.counter("busy_ps", "time spent serializing TLPs (ps); / simulated time = load");
    queueing = &g.histogram("queueing", "ns",
                            "wait of a transaction's first TLP for the direction to be free");
    credit_stalls =
        &g.counter("credit_stalls", "TLPs that waited for the receiver's flow-control credits");
    credit_stall_ns = &g.counter("credit_stall_ns", "time those TLPs waited for credits (ns)");
}

Tick PcieLink::Direction::credit_wait(Tick ready, CreditPool& hdr, CreditPool& data,
                                      uint32_t data_units) {
    const Tick h = hdr.available(1), d = data.available(data_units);
    const Tick at = h > d ? h : d;
    if (at <= ready) return ready;
    ++*credit_stalls;
    *credit_stall_ns += ns(at - ready);
    return at;
}

PcieLink::PcieLink(sc_core::sc_module_name name, const PcieLinkParams& p, StatGroup& stats)
    : sc_module(name),
      device("device", this),
      host("host"),
      p_(checked(p)),
      latency_(Tick(p.latency_ns) * kTicksPerNs),
      oh_mwr_(tlp_overhead_bytes(p, TlpType::MWr)),
      oh_mrd_(tlp_overhead_bytes(p, TlpType::MRd)),
      oh_cpld_(tlp_overhead_bytes(p, TlpType::CplD)),
      oh_cpl_(tlp_overhead_bytes(p, TlpType::Cpl)),
      oh_msg_(tlp_overhead_bytes(p, TlpType::Msg)),
      oh_atomic_(tlp_overhead_bytes(p, TlpType::AtomicOp)),
      cpl_unit_(completion_unit(p)),
      one_read_unit_(std::min(p.mrrs, cpl_unit_)),
      fc_ph_(p.fc_ph),
      fc_pd_(p.fc_pd),
      fc_nph_(p.fc_nph),
      fc_npd_(p.fc_npd),
      fc_cplh_(p.fc_cplh),
      fc_cpld_(p.fc_cpld),
      credit_return_(credit_return_ticks(p)),
      fc_infinite_(fc_ph_.infinite() && fc_pd_.infinite() && fc_nph_.infinite() &&
                   fc_npd_.infinite() && fc_cplh_.infinite() && fc_cpld_.infinite()) {
    if (sc_core::sc_get_time_resolution() != sc_core::sc_time(1, sc_core::SC_PS))
        SC_REPORT_FATAL(basename(), "iommusim needs a time resolution of 1 ps");
    transactions_ = &stats.counter("transactions", "transactions received from the device");
    errors_ = &stats.counter("errors", "transactions that ended with an error response");
    StatGroup& up = stats.child("upstream");
    up_.init(p_, up, "host");
    mwr_ = &up.counter("mwr_tlps", "Memory Write requests (MWr)");
    mrd_ = &up.counter("mrd_tlps", "Memory Read requests (MRd)");
    atomic_ = &up.counter("atomic_tlps", "AtomicOp requests (FetchAdd, Swap, CAS)");
    msg_ = &up.counter("msg_tlps", "Messages (Msg, MsgD)");
    StatGroup& down = stats.child("downstream");
    down_.init(p_, down, "device");
    cpld_ = &down.counter("cpld_tlps", "Completions with Data (CplD)");
    cpl_ = &down.counter("cpl_tlps", "Completions without data (error status)");
    // A direction's TLPs and wire bytes follow from its per-kind counts (each kind has a fixed
    // overhead) and its payload bytes, summed when read rather than counted per TLP.
    up_.tlps->include({{mwr_, 1}, {mrd_, 1}, {atomic_, 1}, {msg_, 1}});
    up_.wire_bytes->include({{mwr_, oh_mwr_},
                             {mrd_, oh_mrd_},
                             {atomic_, oh_atomic_},
                             {msg_, oh_msg_},
                             {up_.payload_bytes, 1}});
    down_.tlps->include({{cpld_, 1}, {cpl_, 1}});
    down_.wire_bytes->include({{cpld_, oh_cpld_}, {cpl_, oh_cpl_}, {down_.payload_bytes, 1}});
}

inline PcieLink::Slot PcieLink::send(Direction& d, Tick ready, unsigned overhead,
                                     unsigned payload) {
    const unsigned bytes = overhead + payload;
    const Slot s = d.server.serve(ready, bytes);
    *d.payload_bytes += payload;  // the caller counts the TLP's kind (tlps, wire_bytes)
    *d.busy_ps += s.end - s.start;
    if (Timeline* tl = timeline(); tl && tl->near(s.start, s.end))
        record(*tl, d, s, payload, bytes);
    return s;
}

void PcieLink::record(Timeline& tl, const Direction& d, Slot s, unsigned payload, unsigned bytes) {
    // The kind from direction and payload: AtomicOp and MsgD show as MWr, Msg as MRd.
    const bool up = &d == &up_;
    tl.span(tl.track(name(), up ? "upstream" : "downstream"),
            up ? (payload ? "MWr" : "MRd") : (payload ? "CplD" : "Cpl"), s.start, s.end,
            {{"payload", std::to_string(payload)}, {"wire_bytes", std::to_string(bytes)}});
}

inline Tick PcieLink::forward(tlm::tlm_generic_payload& p, const PayloadExtent& x, unsigned offset,
                              unsigned n, Tick at, const PcieAttr* a) {
    x.narrow(p, offset, n);
    const Tick arrive = at + latency_;
    const Tick now = now_ticks();
    sc_core::sc_time d = to_sc_time(arrive > now ? arrive - now : 0);
    if (fan_in_)
        fan_in_->transport(fan_in_port_, p, d, a);
    else
        host->b_transport(p, d);
    return now_ticks() + to_ticks(d);  // the host side may have waited
}

Tick PcieLink::write(tlm::tlm_generic_payload& p, Tick t0, const PcieAttr* a) {
    const PayloadExtent x(p);
    Tick left = t0, ready = t0;
    unsigned off = 0;
    do {  // the device has the whole buffer: each MWr follows the one before it
        const unsigned n = piece_bytes(x.addr + off, x.len - off, p_.mps);
        const uint32_t units = data_credits(n);
        const Slot s =
            send(up_, up_.credits(fc_infinite_, ready, fc_ph_, fc_pd_, units), oh_mwr_, n);
        ready = left = s.end;
        if (off == 0) add_wait(*up_.queueing, s.start - t0);
        ++*mwr_;
        // The root complex holds the write in its posted buffer (its credits) until the host
        // side has taken it: translated, its miss walked, committed to memory.
        const Tick taken = forward(p, x, off, n, s.end, a) + credit_return_;
        take(fc_ph_, 1, taken);
        take(fc_pd_, units, taken);
        off += n;
    } while (off < x.len && p.is_response_ok());
    x.restore(p);
    return left;  // posted: the device is done with a write once its last MWr has left
}

inline PcieLink::Slot PcieLink::send_mrd(Tick ready) {
    const Slot s = send(up_, up_.credits(fc_infinite_, ready, fc_nph_, fc_npd_, 0), oh_mrd_, 0);
    ++*mrd_;
    // The root port moves a read request out of its receive buffer as it arrives (into the
    // host's read tracking; the device's tags bound reads in flight), unlike a write, which
    // stays there until translated.
    take(fc_nph_, 1, s.end + latency_ + credit_return_);
    return s;
}

inline PcieLink::Slot PcieLink::send_cpld(Tick ready, unsigned payload) {
    const uint32_t units = data_credits(payload);
    const Slot s = send(down_, down_.credits(fc_infinite_, ready, fc_cplh_, fc_cpld_, units),
                        oh_cpld_, payload);
    ++*cpld_;
    // The device takes a completion as it arrives.
    take(fc_cplh_, 1, s.end + credit_return_);
    take(fc_cpld_, units, s.end + credit_return_);
    return s;
}

// The completer's error status comes back as a Cpl without data.
inline PcieLink::Slot PcieLink::send_cpl(Tick ready) {
    const Slot s =
        send(down_, down_.credits(fc_infinite_, ready, fc_cplh_, fc_cpld_, 0), oh_cpl_, 0);
    ++*cpl_;
    take(fc_cplh_, 1, s.end + credit_return_);
    return s;
}

inline Tick PcieLink::read(tlm::tlm_generic_payload& p, Tick t0, const PcieAttr* a) {
    const PayloadExtent x(p);
    if (piece_bytes(x.addr, x.len, one_read_unit_) != x.len) return read_pieces(p, t0, a);
    const Slot s = send_mrd(t0);
    add_wait(*up_.queueing, s.start - t0);
    const Tick ret = forward(p, x, 0, x.len, s.end, a);
    const Slot cs = p.is_response_ok() ? send_cpld(ret, x.len) : send_cpl(ret);
    add_wait(*down_.queueing, cs.start - ret);
    x.restore(p);
    return std::max(t0, cs.end + latency_);
}

Tick PcieLink::read_pieces(tlm::tlm_generic_payload& p, Tick t0, const PcieAttr* a) {
    const PayloadExtent x(p);
    Tick done = t0, ready = t0;
    unsigned off = 0;
    do {  // requests go out back to back; each one's completions follow its return
        const unsigned n = piece_bytes(x.addr + off, x.len - off, p_.mrrs);
        const Slot s = send_mrd(ready);
        ready = s.end;
        if (off == 0) add_wait(*up_.queueing, s.start - t0);
        const Tick ret = forward(p, x, off, n, s.end, a);
        Tick last = ret;
        if (p.is_response_ok()) {
            unsigned c_off = 0;
            Tick c_ready = ret;
            do {
                const unsigned c = piece_bytes(x.addr + off + c_off, n - c_off, cpl_unit_);
                const Slot cs = send_cpld(c_ready, c);
                c_ready = cs.end;
                if (c_off == 0) add_wait(*down_.queueing, cs.start - ret);
                last = cs.end;
                c_off += c;
            } while (c_off < n);
        } else {
            const Slot cs = send_cpl(ret);
            add_wait(*down_.queueing, cs.start - ret);
            last = cs.end;
        }
        done = std::max(done, last + latency_);
        off += n;
    } while (off < x.len && p.is_response_ok());
    x.restore(p);
    return done;
}

Tick PcieLink::single(tlm::tlm_generic_payload& p, unsigned overhead, Counter& kind,
                      bool completion, Tick t0, const PcieAttr* a) {
    const PayloadExtent x(p);
    const uint32_t units = data_credits(x.len);
    CreditPool& hdr = completion ? fc_nph_ : fc_ph_;
    CreditPool& data = completion ? fc_npd_ : fc_pd_;
    const Slot s = send(up_, up_.credits(fc_infinite_, t0, hdr, data, units), overhead, x.len);
    add_wait(*up_.queueing, s.start - t0);
    ++kind;
    const Tick ret = forward(p, x, 0, x.len, s.end, a);
    x.restore(p);
    // As in read() and write(): a non-posted request leaves the buffer on arrival, a posted
    // one when the host side has taken it.
    const Tick freed = completion ? s.end + latency_ : ret;
    take(hdr, 1, freed + credit_return_);
    take(data, units, freed + credit_return_);
    if (!completion) return s.end;  // posted: done once it has left
    const bool ok = p.is_response_ok();
    const uint32_t c_units = ok ? data_credits(x.len) : 0;
    const Slot cs = send(down_, down_.credits(fc_infinite_, ret, fc_cplh_, fc_cpld_, c_units),
                         ok ? oh_cpld_ : oh_cpl_, ok ? x.len : 0);
    take(fc_cplh_, 1, cs.end + credit_return_);
    take(fc_cpld_, c_units, cs.end + credit_return_);
    add_wait(*down_.queueing, cs.start - ret);
    ++*(ok ? cpld_ : cpl_);
    return cs.end + latency_;
}

Tick PcieLink::message(bool downstream, unsigned payload, Tick at) {
    Direction& d = downstream ? down_ : up_;
    const Slot s = send(d, at, oh_msg_, payload);
    add_wait(*d.queueing, s.start - at);
    if (downstream) {  // no per-kind count downstream: counted in the direction's own
        ++*d.tlps;
        *d.wire_bytes += oh_msg_;
    } else {
        ++*msg_;
    }
    return s.end + latency_;
}

void PcieLink::b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    ++*transactions_;
    const unsigned width = p.get_streaming_width();
    if (p.get_byte_enable_ptr() || (width && width < p.get_data_length())) {
        p.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);  // TLPs are contiguous
        ++*errors_;
        return;
    }
    const Tick now = now_ticks();
    up_.server.forget_before(now);  // every initiator's local time is at or after it
    down_.server.forget_before(now);
    const Tick t0 = now + to_ticks(delay);
    Tick done = t0;
    const PcieAttr* a = p.get_extension<PcieAttr>();  // a library call: read once
    switch (a ? a->tlp : tlp_kind(p)) {
        case PcieAttr::Tlp::MemWrite: done = write(p, t0, a); break;
        case PcieAttr::Tlp::MemRead: done = read(p, t0, a); break;
        case PcieAttr::Tlp::AtomicOp: done = single(p, oh_atomic_, *atomic_, true, t0, a); break;
        case PcieAttr::Tlp::Message: done = single(p, oh_msg_, *msg_, false, t0, a); break;
    }
    if (!p.is_response_ok()) ++*errors_;
    const Tick after = now_ticks();  // the host side may have waited
    delay = to_sc_time(done > after ? done - after : 0);
}

void PcieLink::end_of_elaboration() {
    fan_in_ = PortFanIn::behind(host.operator->(), fan_in_port_);
}

unsigned int PcieLink::transport_dbg(tlm::tlm_generic_payload& p) {
    return host->transport_dbg(p);
}

}  // namespace iommusim
