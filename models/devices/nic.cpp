#include "nic.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace iommusim {

namespace {

constexpr uint64_t kTxSalt = 0x5458'5458'5458'5458ull;   // TX sizes: a stream of their own
constexpr uint64_t kRssSalt = 0x5253'5352'5353'5253ull;  // the RSS key: a stream of its own

}  // namespace

NicStats::NicStats(StatGroup& g)
    : rx(g.child("rx")),
      tx(g.child("tx")),
      drv(g.child("driver")),
      rx_offered(rx.counter("offered", "frames that arrived from the line")),
      rx_packets(rx.counter("packets", "frames written to host buffers and reported")),
      rx_bytes(rx.counter("bytes", "frame bytes of those (FCS included)")),
      rx_no_buffer(rx.counter("drops_no_buffer", "frames dropped: no posted RX buffer")),
      rx_fifo(rx.counter("drops_fifo", "frames dropped: on-chip receive buffer full")),
      rx_fault(rx.counter("drops_fault", "frames whose DMA got an error response")),
      rx_acks(rx.counter("acks", "TCP ACK frames the driver posted for received frames")),
      rx_rate(rx.counter("packet_rate", "packets per second (set at the end)")),
      rx_tput(rx.counter("throughput", "frame bits per second (set at the end)")),
      rx_latency(rx.histogram("latency", "ns", "frame arrival until its descriptor is written")),
      rx_host_latency(
          rx.histogram("host_latency", "ns", "frame arrival until the driver has processed it")),
      tx_offered(tx.counter("offered", "frames the application handed to the driver")),
      tx_packets(tx.counter("packets", "frames sent on the line")),
      tx_bytes(tx.counter("bytes", "frame bytes of those (FCS included)")),
      tx_map(tx.counter("drops_map", "frames dropped: the DMA mapping failed")),
      tx_fault(tx.counter("drops_fault", "frames whose DMA got an error response")),
      tx_ring_full(tx.counter("ring_full", "times the application waited for a TX slot")),
      tx_rate(tx.counter("packet_rate", "packets per second (set at the end)")),
      tx_tput(tx.counter("throughput", "frame bits per second (set at the end)")),
      tx_latency(tx.histogram("latency", "ns", "frame offered until its descriptor write-back")),
      driver(drv),
      faults(g.counter("faults", "DMA requests that got an error response")) {}

Nic::Nic(sc_core::sc_module_name name, const NicParams& p, const DmaEngineParams& ep,
         const NicLayout& layout, DmaMapper* mapper, StatGroup& stats)
    : PerIoDevice(name, p, ep, layout, mapper, stats),
      nbuf_(p_.buffers_per_direction()),
      q_(p_.queues),
      rss_(kNicRssTable),
      rss_key_(p_.seed ^ kRssSalt),
      rx_(p_.slots()),
      tx_(p_.slots()),
      rx_line_(eth_line_rate(p_.line_rate)),
      rx_state_(p_.seed),
      tx_app_(eth_line_rate(p_.line_rate)),
      tx_wire_(eth_line_rate(p_.line_rate)),
      tx_state_(p_.seed ^ kTxSalt) {
    if (p_.buffers == NicBufferPolicy::Pool)
        for (uint32_t i = 0; i < nbuf_; ++i) rx_pool_.push_back(i), tx_pool_.push_back(i);
    if (p_.striding())
        wqe_.assign(size_t(p_.queues) * p_.wqes, Wqe{std::vector<Addr>(p_.wqe_pages)});
    // Linux's default indirection table (ethtool_rxfh_indir_default): entry i -> i mod queues.
    for (uint32_t i = 0; i < kNicRssTable; ++i) rss_[i] = i % p_.queues;
}

uint32_t Nic::queue_of(uint64_t k) const {
    if (p_.queues == 1) return 0;
    const uint64_t flow = (k / p_.flow_burst) % p_.flows;
    if (p_.steering == NicSteering::Flow) return uint32_t(flow % p_.queues);
    uint64_t h = rss_key_ ^ flow;  // stands in for the Toeplitz hash of the flow's 5-tuple
    return rss_[splitmix64(h) % kNicRssTable];
}

Tick Nic::cpu_start(uint32_t q, Tick at) {
    if (mapper_) mapper_->set_cpu(q);
    return at > q_[q].cpu ? at : q_[q].cpu;
}

void Nic::cpu_end(uint32_t q, Tick from, Tick to) {
    const Tick before = busy_ps_ / kTicksPerNs;
    busy_ps_ += to - from;
    s_->driver.busy_ns += busy_ps_ / kTicksPerNs - before;
    q_[q].cpu = to;
}

Nic::~Nic() = default;

void Nic::start() {
    rx_on_ = p_.direction != NicDirection::Tx;
    tx_on_ = p_.direction != NicDirection::Rx;
    const Tick now = engine_.now();
    t0_ = now;
    // Interface up: every queue's driver context fills its RX ring, all at once (Linux
    // triggers each channel's NAPI, which posts its whole ring on its own CPU), so their
    // mappings take IOVAs from the allocator in turn, a buffer (striding: a page) each.
    std::vector<Tick> t(p_.queues);
    std::vector<bool> filling(p_.queues, rx_on_);
    for (uint32_t q = 0; q < p_.queues; ++q) t[q] = cpu_start(q, now);
    for (bool more = rx_on_; more;) {
        more = false;
        for (uint32_t q = 0; q < p_.queues; ++q) {
            const Queue& Q = q_[q];
            if (!filling[q]) continue;
            cpu_start(q, t[q]);  // the mapper's CPU
            if (p_.striding())
                filling[q] = Q.wqe_tail - Q.wqe_clean < p_.wqes && rx_map_page(t[q], q);
            else
                filling[q] = Q.rx_tail - Q.rx_clean < p_.ring_size && rx_post(t[q], q);
            more |= filling[q];
        }
    }
    for (uint32_t q = 0; q < p_.queues; ++q) {
        cpu_end(q, now, t[q]);
        t0_ = std::max(t0_, t[q]);
    }
    if (p_.duration_ns) stop_at_ = t0_ + p_.duration_ns * kTicksPerNs;
    if (rx_on_) rx_schedule();
    if (tx_on_) {
        ++tx_scheduled_;
        tx_size_ = uint32_t(sizes_.draw(tx_state_));
        tx_offered_at_ = t0_;
        push(t0_, kTxOffer);
    }
}

bool Nic::handle(const Ev& e, DmaTransfer& t) {
    switch (e.kind) {
        case kRxArrive: rx_arrive(e.t); return false;
        case kRxRefill: {
            const uint32_t q = e.slot;
            if (defer(q, e.t, kRxRefill, q)) return false;
            q_[q].refill_pending = false;
            Tick x = cpu_start(q, e.t);
            const Tick from = x;
            rx_refill(x, q);
            cpu_end(q, from, x);
            return false;
        }
        case kRxClean: rx_clean(e.t, e.slot / p_.ring_size); return false;
        case kTxOffer: tx_offer(e.t); return false;
        case kTxClean: tx_clean(e.t, e.slot / p_.ring_size); return false;
        case kRxRelease: rx_release_page(e.t, e.slot); return false;
        default: break;
    }
    const bool rx = e.kind == kRxData || e.kind == kRxDesc;
    const bool data = e.kind == kRxData || e.kind == kTxData;
    const Slot& s = (rx ? rx_ : tx_)[e.slot];
    t = DmaTransfer{};
    if (e.kind == kRxData && p_.striding()) {
        // Piece e.idx: the part of the frame in the (offset / page + idx)-th page.
        const Wqe& w = wqe_[s.wqe];
        const uint64_t end = s.offset + uint64_t(s.frame - kEthFcsBytes);
        const uint64_t page = s.offset / kNicPageBytes + e.idx;
        const uint64_t from = std::max<uint64_t>(s.offset, page * kNicPageBytes);
        const uint64_t to = std::min<uint64_t>(end, (page + 1) * kNicPageBytes);
        t.req = req_;
        t.ready = e.t;
        t.id = (uint64_t(e.kind) << 32) | e.slot;
        t.write = true;
        t.iova = w.iova[page] + from % kNicPageBytes;
        t.length = to - from;
        return true;
    }
    t.req = req_;
    t.ready = e.t;
    t.id = (uint64_t(e.kind) << 32) | e.slot;
    t.write = rx || e.kind == kTxDone;
    t.iova = data ? s.iova : (rx ? lay_.rx_ring : lay_.tx_ring) + Addr(e.slot) * p_.desc_size;
    t.length = data ? s.frame - kEthFcsBytes : p_.desc_size;
    return true;
}

void Nic::rx_schedule() {
    const Tick begin = std::max(rx_line_.free_at(), t0_);  // the next frame's first bit
    if ((p_.count && rx_scheduled_ >= p_.count) || begin >= stop_at_) {
        rx_on_ = false;
        return;
    }
    ++rx_scheduled_;
    rx_size_ = uint32_t(sizes_.draw(rx_state_));
    push(rx_line_.serve(t0_, eth_wire_bits(rx_size_)).end, kRxArrive);
}

void Nic::rx_arrive(Tick at) {
    ++s_->rx_offered;
    rx_last_ = at;
    const uint32_t frame = rx_size_, ring = p_.ring_size, q = queue_of(rx_scheduled_ - 1);
    Queue& Q = q_[q];
    while (fifo_known_ && fifo_.front().leave <= at) {
        fifo_bytes_ -= fifo_.front().bytes;
        fifo_.pop_front();
        --fifo_known_;
    }
    if (fifo_bytes_ + frame > p_.rx_fifo) {
        ++s_->rx_fifo;
    } else if (p_.striding()
                   ? Q.rx_head - Q.rx_clean == ring ||
                         !rx_place(rx_[q * ring + Q.rx_head % ring], q, frame, at)
                   : Q.rx_head == Q.rx_tail || rx_[q * ring + Q.rx_head % ring].avail > at) {
        // No descriptor: drop at once (as with SRRCTL.DROP_EN). If slots wait for a refill
        // that failed, the missed-packet interrupt makes the driver try again.
        ++s_->rx_no_buffer;
        if (!Q.refill_pending &&
            (p_.striding() ? Q.wqe_tail - Q.wqe_clean < p_.wqes : Q.rx_tail - Q.rx_clean < ring)) {
            Q.refill_pending = true;
            push(at, kRxRefill, q);
        }
    } else {
        const uint32_t pos = q * ring + uint32_t(Q.rx_head++ % ring);
        Slot& s = rx_[pos];
        s.frame = frame, s.start = at, s.done = kNever, s.fault = false, s.pieces_done = 0;
        if (!p_.striding()) s.pieces = 1;
        fifo_.push_back({kNever, frame});
        fifo_bytes_ += frame;
        // Data then descriptor: posted writes stay in order, so no wait in between.
        for (uint32_t i = 0; i < s.pieces; ++i) push(at, kRxData, pos, i);
        push(at, kRxDesc, pos);
    }
    rx_schedule();
}

void Nic::completed(const DmaTransfer& t, const DmaResult& r) {
    const uint8_t kind = uint8_t(t.id >> 32);
    const uint32_t pos = uint32_t(t.id);
    s_->faults += r.faults;
    switch (kind) {
        case kRxData:
            // Posted writes: the frame leaves the FIFO once its last request has issued.
            if (r.faults) rx_[pos].fault = true;
            if (++rx_[pos].pieces_done < rx_[pos].pieces) break;
            fifo_[fifo_known_++].leave = engine_.now();
            break;
        case kTxDesc:
            // Without the descriptor there is no buffer address: write back an error.
            push(r.done, r.faults ? kTxDone : kTxData, pos);
            if (r.faults) tx_[pos].fault = true;
            break;
        case kTxData: {
            Slot& s = tx_[pos];
            if (r.faults) s.fault = true;
            // Sent in ring order when the line is free; the write-back follows the last bit.
            const Tick ready = std::max(r.done, tx_wire_.free_at());
            push(r.faults ? r.done : tx_wire_.serve(ready, eth_wire_bits(s.frame)).end, kTxDone,
                 pos);
            break;
        }
        case kRxDesc:
        case kTxDone: {
            const bool rx = kind == kRxDesc;
            Slot& s = (rx ? rx_ : tx_)[pos];
            s.done = r.done;
            if (r.faults) s.fault = true;
            if (s.fault) {
                ++(rx ? s_->rx_fault : s_->tx_fault);
            } else {
                ++(rx ? s_->rx_packets : s_->tx_packets);
                (rx ? s_->rx_bytes : s_->tx_bytes) += s.frame;
                (rx ? s_->rx_latency : s_->tx_latency).add((r.done - s.start) / kTicksPerNs);
            }
            Tick& end = rx ? rx_end_ : tx_end_;
            end = std::max(end, r.done);
            push(r.done, rx ? kRxClean : kTxClean, pos);
            break;
        }
        default: break;
    }
}

void Nic::finish() {
    const NicResult r = result();
    s_->rx_rate.set_rounded(r.rx.packet_rate());
    s_->rx_tput.set_rounded(r.rx.throughput());
    s_->tx_rate.set_rounded(r.tx.packet_rate());
    s_->tx_tput.set_rounded(r.tx.throughput());
    finished_at(std::max({rx_end_, tx_end_, rx_last_, tx_last_}));
}

NicResult Nic::result() const {
    NicResult r;
    const NicStats& s = *s_;
    r.rx = {s.rx_offered.value(),
            s.rx_packets.value(),
            s.rx_bytes.value(),
            s.rx_no_buffer.value() + s.rx_fifo.value() + s.rx_fault.value(),
            t0_,
            std::max(rx_end_, rx_last_)};
    r.tx = {s.tx_offered.value(),
            s.tx_packets.value(),
            s.tx_bytes.value(),
            s.tx_map.value() + s.tx_fault.value(),
            t0_,
            std::max(tx_end_, tx_last_)};
    r.maps = s.driver.maps.value();
    r.unmaps = s.driver.unmaps.value();
    r.map_failures = s.driver.map_failures.value();
    r.faults = s.faults.value();
    return r;
}

double Nic::progress() const {
    if (finished()) return 1.0;
    double f = 0.0;
    if (p_.count) {
        const uint64_t dirs = p_.direction == NicDirection::Both ? 2 : 1;
        f = double(rx_scheduled_ + tx_scheduled_) / double(p_.count * dirs);
    }
    const Tick now = engine_.now();
    if (stop_at_ != kNever && now > t0_)
        f = std::max(f, double(now - t0_) / double(stop_at_ - t0_));
    return std::min(f, 1.0);
}

std::string Nic::summary() const {
    const NicResult r = result();
    auto dir = [](const char* name, const NicResult::Dir& d, const Histogram& h) {
        return fmt::format(
            "{} {:.3f} Mpps {:.2f} Gb/s, {} of {} dropped, latency ns p50 {} p99 {} max {}", name,
            d.packet_rate() / 1e6, d.throughput() / 1e9, d.drops, d.offered, h.percentile(50),
            h.percentile(99), h.max());
    };
    std::string out = fmt::format("nic {} Gb/s {} sizes {} {}:", p_.line_rate,
                                  to_string(p_.direction), p_.sizes, to_string(p_.buffers));
    if (p_.direction != NicDirection::Tx) out += " " + dir("rx", r.rx, s_->rx_latency) + ";";
    if (p_.direction != NicDirection::Rx) out += " " + dir("tx", r.tx, s_->tx_latency) + ";";
    return out + fmt::format(" {} faults", r.faults);
}

}  // namespace iommusim
