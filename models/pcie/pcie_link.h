// One PCIe link between a device (or a switch's Downstream Port) and the port above it.
// Transactions from the device arrive on `device` and leave on `host`. Each direction is a
// BandwidthServer at the link's TLP rate (link_model.h, core/resource.h): a TLP ready at t is
// serialized for its wire bytes in the first gap from t on that holds it, and the wait is
// queueing delay. Gap filling makes a shared link (a switch uplink) independent of the order
// in which initiators running ahead under a quantum reach it. The TLPs of one transaction stay
// in order: each is ready when the one before it has been serialized.
//
// A memory write is cut into MWr TLPs at MPS boundaries; a memory read into MRd requests at
// MRRS boundaries, each request's completions (CplD) cut at MPS (or RCB) boundaries. Every
// write TLP and every read request is forwarded on `host` as its own transaction (the same
// payload object narrowed to the piece's address, data and length), after its serialization
// plus the link latency; completions are serialized downstream when the host side returns,
// and cross the link latency again. The returned delay is when the last piece was done at
// the device side: for reads, its last completion arrived; for writes, the host side
// accepted its last TLP.
#pragma once
#include <tlm_utils/simple_initiator_socket.h>
#include <systemc>
#include <tlm>

#include "core/direct_target_socket.h"
#include "core/resource.h"
#include "core/stats.h"
#include "flow_control.h"
#include "link_model.h"
#include "port_fan_in.h"
#include "tlp.h"

namespace iommusim {

class Timeline;

class PcieLink : public sc_core::sc_module {
    // Declared before `device`, whose type names them.
    void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    unsigned int transport_dbg(tlm::tlm_generic_payload& p);

public:
    DirectTargetSocket<PcieLink, &PcieLink::b_transport, &PcieLink::transport_dbg> device;
    tlm_utils::simple_initiator_socket<PcieLink> host;

    // Throws std::invalid_argument (naming the parameter) when `p` is not valid.
    PcieLink(sc_core::sc_module_name name, const PcieLinkParams& p, StatGroup& stats);

    const PcieLinkParams& params() const { return p_; }
    // Tick at which each direction finishes what it has been given so far.
    Tick upstream_free_at() const { return up_.server.free_at(); }
    Tick downstream_free_at() const { return down_.server.free_at(); }
    // A Message TLP of `payload` bytes that no transaction carries (ATS invalidations, PRI),
    // ready at `at`, serialized on one direction (`downstream`: toward the device); returns
    // when it reaches the other end. Posted and small: costed without flow-control credits.
    Tick message(bool downstream, unsigned payload, Tick at);

private:
    // One direction of the link: a server whose service time is wire bytes at the TLP rate.
    struct Direction {
        BandwidthServer server{Rate()};
        // tlps and wire_bytes include the per-kind TLP counts (see the constructor).
        Counter *tlps, *payload_bytes, *wire_bytes, *busy_ps, *credit_stalls, *credit_stall_ns;
        Histogram* queueing;
        // The later of `ready` and when the receiver has credits for the TLP (header and
        // data pools of its type), counting the wait.
        // Inline for the common infinite advertisement (no wait).
        Tick credits(bool infinite, Tick ready, CreditPool& hdr, CreditPool& data,
                     uint32_t data_units) {
            if (infinite || (hdr.infinite() && data.infinite())) return ready;
            return credit_wait(ready, hdr, data, data_units);
        }
        Tick credit_wait(Tick ready, CreditPool& hdr, CreditPool& data, uint32_t data_units);
        void init(const PcieLinkParams& p, StatGroup& g, const char* toward);
    };
    // The SystemC time, read inline (sc_time_stamp() is a library call, and
    // sc_get_curr_simcontext() checks a global): several per TLP.
    Tick now_ticks() const { return to_ticks(simcontext()->time_stamp()); }
    using Slot = BandwidthServer::Span;
    // Serialize one TLP on `d`. Small enough to inline into the per-TLP loops: the timeline's
    // span, off the common path, is record()'s.
    Slot send(Direction& d, Tick ready, unsigned overhead, unsigned payload);
    [[gnu::cold]] void record(Timeline& tl, const Direction& d, Slot s, unsigned payload,
                              unsigned bytes);
    // Forward the piece [offset, offset + n) of `p` whose TLP left the link at `at`; returns
    // when the host side was done with it (absolute ticks). Inline in the per-TLP loops too.
    // `a` is the transaction's PCIe attributes (null: none), handed to a fan-in port bound
    // straight to `host` so that it need not look them up again.
    Tick forward(tlm::tlm_generic_payload& p, const PayloadExtent& x, unsigned offset, unsigned n,
                 Tick at, const PcieAttr* a);
    Tick write(tlm::tlm_generic_payload& p, Tick t0, const PcieAttr* a);
    // A read that is one MRd and one completion (within one MRRS and one completion unit: a
    // cache line, most reads) is served inline, without the piece loops of read_pieces().
    Tick read(tlm::tlm_generic_payload& p, Tick t0, const PcieAttr* a);
    [[gnu::noinline]] Tick read_pieces(tlm::tlm_generic_payload& p, Tick t0, const PcieAttr* a);
    // A read's TLPs, each sent at `ready`, counted and holding its credits.
    Slot send_mrd(Tick ready);
    Slot send_cpld(Tick ready, unsigned payload);
    Slot send_cpl(Tick ready);
    // One unsplit request TLP (AtomicOp, Msg) and, if non-posted, its one completion.
    Tick single(tlm::tlm_generic_payload& p, unsigned overhead, Counter& kind, bool completion,
                Tick t0, const PcieAttr* a);
    void end_of_elaboration() override;

    const PcieLinkParams p_;
    const Tick latency_;
    const unsigned oh_mwr_, oh_mrd_, oh_cpld_, oh_cpl_, oh_msg_, oh_atomic_;
    const uint32_t cpl_unit_;
    const uint32_t one_read_unit_;  // the smaller of MRRS and cpl_unit_: a read within it is
                                    // one MRd and one completion (both powers of two)
    Direction up_, down_;
    // Credits of the receivers: at the host end for posted and non-posted requests, at the
    // device end for completions; and how long a freed credit takes to come back.
    CreditPool fc_ph_, fc_pd_, fc_nph_, fc_npd_, fc_cplh_, fc_cpld_;
    const Tick credit_return_;
    // Every pool infinite (the default): one test per TLP instead of one per pool and use.
    const bool fc_infinite_;
    void take(CreditPool& c, uint32_t units, Tick release) {
        if (!fc_infinite_) c.take(units, release);
    }
    // The Root Port or switch Downstream Port that `host` is bound to, called directly (one
    // virtual call and one extension lookup fewer per TLP); null: `host` leads elsewhere.
    PortFanIn* fan_in_ = nullptr;
    int fan_in_port_ = 0;
    Counter *transactions_, *errors_;
    Counter *mwr_, *mrd_, *atomic_, *msg_, *cpld_, *cpl_;
};

}  // namespace iommusim
