#include "nic.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace iommusim {

namespace {

// Events, in one queue ordered by time. The first kinds are line and host (driver) work; the
// rest are the NIC's DMA transfers, handed to the engine.
enum Kind : uint8_t {
    kRxArrive,  // a frame has arrived in full
    kRxRefill,  // the driver retries refilling the RX ring (missed-packet interrupt)
    kRxClean,   // the driver processes RX write-backs
    kTxOffer,   // the application hands the driver a frame
    kTxClean,   // the driver reclaims transmitted descriptors
    kRxData,    // write the frame into its buffer
    kRxDesc,    // write the RX descriptor back
    kTxDesc,    // read the TX descriptor
    kTxData,    // read the frame from its buffer
    kTxDone,    // write the TX descriptor back
};

constexpr uint64_t kTxSalt = 0x5458'5458'5458'5458ull;  // TX sizes: a stream of their own

const NicParams& checked(const NicParams& p, const DmaMapper* m) {
    std::string why;
    if (!p.valid(&why)) throw std::invalid_argument(why);
    if (p.buffers == NicBufferPolicy::PerPacket && !m)
        throw std::invalid_argument("nic: buffers = per_packet needs a DmaMapper");
    return p;
}

void set(Counter& c, double v) {
    c.reset();
    c += uint64_t(std::llround(v));
}

}  // namespace

struct Nic::Slot {
    Addr iova = 0;
    uint32_t buf = 0;    // buffer index within its direction
    uint32_t frame = 0;  // frame bytes
    Tick avail = 0;      // RX: when the driver posted the buffer
    Tick start = 0;      // RX: the frame's arrival; TX: when the application offered it
    Tick done = kNever;  // descriptor write-back complete
    bool fault = false;
};

struct Nic::Stats {
    StatGroup &rx, &tx, &drv;
    Counter &rx_offered, &rx_packets, &rx_bytes, &rx_no_buffer, &rx_fifo, &rx_fault;
    Counter &rx_rate, &rx_tput;
    Histogram &rx_latency, &rx_host_latency;
    Counter &tx_offered, &tx_packets, &tx_bytes, &tx_map, &tx_fault, &tx_ring_full;
    Counter &tx_rate, &tx_tput;
    Histogram& tx_latency;
    Counter &maps, &unmaps, &map_failures, &busy_ns, &faults;

    explicit Stats(StatGroup& g)
        : rx(g.child("rx")),
          tx(g.child("tx")),
          drv(g.child("driver")),
          rx_offered(rx.counter("offered", "frames that arrived from the line")),
          rx_packets(rx.counter("packets", "frames written to host buffers and reported")),
          rx_bytes(rx.counter("bytes", "frame bytes of those (FCS included)")),
          rx_no_buffer(rx.counter("drops_no_buffer", "frames dropped: no posted RX buffer")),
          rx_fifo(rx.counter("drops_fifo", "frames dropped: on-chip receive buffer full")),
          rx_fault(rx.counter("drops_fault", "frames whose DMA got an error response")),
          rx_rate(rx.counter("packet_rate", "packets per second (set at the end)")),
          rx_tput(rx.counter("throughput", "frame bits per second (set at the end)")),
          rx_latency(rx.histogram("latency", "ns", "frame arrival until its descriptor is written")),
          rx_host_latency(rx.histogram("host_latency", "ns",
                                       "frame arrival until the driver has processed it")),
          tx_offered(tx.counter("offered", "frames the application handed to the driver")),
          tx_packets(tx.counter("packets", "frames sent on the line")),
          tx_bytes(tx.counter("bytes", "frame bytes of those (FCS included)")),
          tx_map(tx.counter("drops_map", "frames dropped: the DMA mapping failed")),
          tx_fault(tx.counter("drops_fault", "frames whose DMA got an error response")),
          tx_ring_full(tx.counter("ring_full", "times the application waited for a TX slot")),
          tx_rate(tx.counter("packet_rate", "packets per second (set at the end)")),
          tx_tput(tx.counter("throughput", "frame bits per second (set at the end)")),
          tx_latency(tx.histogram("latency", "ns", "frame offered until its descriptor write-back")),
          maps(drv.counter("maps", "DmaMapper::map calls")),
          unmaps(drv.counter("unmaps", "DmaMapper::unmap calls")),
          map_failures(drv.counter("map_failures", "map calls that failed")),
          busy_ns(drv.counter("busy_ns", "time the driver CPU was busy")),
          faults(g.counter("faults", "DMA requests that got an error response")) {}
};

Nic::Nic(sc_core::sc_module_name name, const NicParams& p, const DmaEngineParams& ep,
         const NicLayout& layout, DmaMapper* mapper, StatGroup& stats)
    : sc_module(name),
      dma("dma"),
      p_(checked(p, mapper)),
      lay_(layout),
      mapper_(mapper),
      s_(std::make_unique<Stats>(stats)),
      engine_("engine", ep, stats.child("engine")),
      sizes_(*p_.size_dist()),
      req_(p_.requester()),
      sw_ps_(Tick(std::llround(p_.sw_ns * double(kTicksPerNs)))),
      nbuf_(p_.buffers_per_direction()),
      rx_(p_.ring_size),
      tx_(p_.ring_size),
      rx_line_(p_.line_rate),
      rx_state_(p_.seed),
      tx_app_(p_.line_rate),
      tx_wire_(p_.line_rate),
      tx_state_(p_.seed ^ kTxSalt) {
    engine_.dma.bind(dma);  // hierarchical: the platform binds the NIC's socket
    engine_.set_source([this](DmaTransfer& t) { return next(t); });
    engine_.on_complete([this](const DmaTransfer& t, const DmaResult& r) { completed(t, r); });
    if (p_.buffers == NicBufferPolicy::Pool)
        for (uint32_t i = 0; i < nbuf_; ++i) rx_pool_.push_back(i), tx_pool_.push_back(i);
}

Nic::~Nic() = default;

void Nic::push(Tick t, uint8_t kind, uint32_t slot) {
    evq_.push(Ev{t, seq_++, kind, slot});
}

Addr Nic::buffer_addr(bool tx, uint32_t buf) const {
    return lay_.buffers + (Addr(tx ? nbuf_ : 0) + buf) * p_.buffer_size;
}

void Nic::driver_end(Tick from, Tick to) {
    const Tick before = busy_ps_ / kTicksPerNs;
    busy_ps_ += to - from;
    s_->busy_ns += busy_ps_ / kTicksPerNs - before;
    drv_ = to;
}

// Events are taken in time order, so whatever an event decides only depends on events at or
// before its time; every DMA it creates is ready no earlier than that time.
bool Nic::next(DmaTransfer& t) {
    if (!started_) start();
    while (!evq_.empty()) {
        const Ev e = evq_.top();
        evq_.pop();
        if (handle(e, t)) return true;
    }
    if (!finished_) finish();
    return false;
}

void Nic::start() {
    started_ = true;
    rx_on_ = p_.direction != NicDirection::Tx;
    tx_on_ = p_.direction != NicDirection::Rx;
    const Tick now = engine_.now();
    Tick t = now;
    if (rx_on_) rx_refill(t);  // interface up: the driver fills the RX ring first
    driver_end(now, t);
    t0_ = t;
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
            refill_pending_ = false;
            Tick x = driver_start(e.t);
            const Tick from = x;
            rx_refill(x);
            driver_end(from, x);
            return false;
        }
        case kRxClean: rx_clean(e.t); return false;
        case kTxOffer: tx_offer(e.t); return false;
        case kTxClean: tx_clean(e.t); return false;
        default: break;
    }
    const bool rx = e.kind == kRxData || e.kind == kRxDesc;
    const bool data = e.kind == kRxData || e.kind == kTxData;
    const Slot& s = (rx ? rx_ : tx_)[e.slot];
    t = DmaTransfer{};
    t.req = req_;
    t.ready = e.t;
    t.id = (uint64_t(e.kind) << 32) | e.slot;
    t.write = rx || e.kind == kTxDone;
    t.iova = data ? s.iova : (rx ? lay_.rx_ring : lay_.tx_ring) + Addr(e.slot) * kNicDescBytes;
    t.length = data ? s.frame - kEthFcsBytes : kNicDescBytes;
    return true;
}

void Nic::rx_schedule() {
    const Tick begin = std::max(rx_line_.end(), t0_);  // the next frame's first bit
    if ((p_.count && rx_scheduled_ >= p_.count) || begin >= stop_at_) {
        rx_on_ = false;
        return;
    }
    ++rx_scheduled_;
    rx_size_ = uint32_t(sizes_.draw(rx_state_));
    push(rx_line_.take(t0_, eth_wire_bits(rx_size_)), kRxArrive);
}

void Nic::rx_arrive(Tick at) {
    ++s_->rx_offered;
    const uint32_t frame = rx_size_, ring = p_.ring_size;
    while (fifo_known_ && fifo_.front().leave <= at) {
        fifo_bytes_ -= fifo_.front().bytes;
        fifo_.pop_front();
        --fifo_known_;
    }
    if (fifo_bytes_ + frame > p_.rx_fifo) {
        ++s_->rx_fifo;
    } else if (rx_head_ == rx_tail_ || rx_[rx_head_ % ring].avail > at) {
        // No descriptor: drop at once (as with SRRCTL.DROP_EN). If slots wait for a refill
        // that failed, the missed-packet interrupt makes the driver try again.
        ++s_->rx_no_buffer;
        if (!refill_pending_ && rx_tail_ - rx_clean_ < ring) {
            refill_pending_ = true;
            push(at, kRxRefill);
        }
    } else {
        const uint32_t pos = uint32_t(rx_head_++ % ring);
        Slot& s = rx_[pos];
        s.frame = frame, s.start = at, s.done = kNever, s.fault = false;
        fifo_.push_back({kNever, frame});
        fifo_bytes_ += frame;
        // Data then descriptor: posted writes stay in order, so no wait in between.
        push(at, kRxData, pos);
        push(at, kRxDesc, pos);
    }
    rx_schedule();
}

bool Nic::rx_post(Tick& t) {
    const uint32_t pos = uint32_t(rx_tail_ % p_.ring_size);
    Slot& s = rx_[pos];
    if (p_.buffers == NicBufferPolicy::Pool) {
        s.buf = rx_pool_.front();  // never empty: the pool holds at least a ring of buffers
        rx_pool_.pop_front();
        s.iova = buffer_addr(false, s.buf);
    } else {
        s.buf = pos;
        ++s_->maps;
        // The device may write the whole buffer (DMA_FROM_DEVICE).
        const auto m = mapper_->map(buffer_addr(false, pos), p_.buffer_size, true, t);
        if (!m) {
            ++s_->map_failures;
            return false;
        }
        t = std::max(t, m->done);
        s.iova = m->iova;
    }
    s.avail = t;
    ++rx_tail_;
    return true;
}

void Nic::rx_refill(Tick& t) {
    // In ring order; stop at the first failure (the IOVA space is exhausted for now).
    while (rx_tail_ - rx_clean_ < p_.ring_size && rx_post(t)) {
    }
}

void Nic::rx_clean(Tick at) {
    Tick t = driver_start(at);
    const Tick from = t;
    // In ring order, as the driver follows the descriptor-done bits.
    while (rx_clean_ < rx_head_) {
        const Slot& s = rx_[rx_clean_ % p_.ring_size];
        if (s.done > at) break;
        t += sw_ps_;
        if (p_.buffers == NicBufferPolicy::Pool) {
            rx_pool_.push_back(s.buf);
        } else {
            ++s_->unmaps;
            t = std::max(t, mapper_->unmap(s.iova, p_.buffer_size, t));
        }
        if (!s.fault) s_->rx_host_latency.add((t - s.start) / kTicksPerNs);
        ++rx_clean_;
        rx_refill(t);
    }
    driver_end(from, t);
}

void Nic::tx_offer(Tick at) {
    const uint32_t ring = p_.ring_size;
    if (tx_tail_ - tx_clean_ == ring) {  // ring full: wait for the driver to reclaim a slot
        tx_blocked_ = true;
        ++s_->tx_ring_full;
        return;
    }
    ++s_->tx_offered;
    const uint32_t frame = tx_size_, pos = uint32_t(tx_tail_ % ring);
    tx_app_.take(at, eth_wire_bits(frame));
    Tick t = driver_start(at);
    const Tick from = t;
    t += sw_ps_;
    Slot& s = tx_[pos];
    bool ok = true;
    if (p_.buffers == NicBufferPolicy::Pool) {
        s.buf = tx_pool_.front();
        tx_pool_.pop_front();
        s.iova = buffer_addr(true, s.buf);
    } else {
        s.buf = pos;
        ++s_->maps;
        const auto m = mapper_->map(buffer_addr(true, pos), frame - kEthFcsBytes, false, t);
        if (m) {
            t = std::max(t, m->done);
            s.iova = m->iova;
        } else {
            ++s_->map_failures, ++s_->tx_map;  // the driver drops the frame
            ok = false;
        }
    }
    driver_end(from, t);
    if (ok) {
        s.frame = frame, s.start = tx_offered_at_, s.avail = t, s.done = kNever, s.fault = false;
        ++tx_tail_;
        push(t, kTxDesc, pos);  // the tail doorbell: the NIC fetches the descriptor
    }
    tx_schedule(t);
}

void Nic::tx_schedule(Tick posted) {
    // The sender (on the driver's CPU) offers the next frame once the line has had time for
    // this one and the driver has finished posting it.
    const Tick next = std::max(tx_app_.end(), posted);
    if ((p_.count && tx_scheduled_ >= p_.count) || next >= stop_at_) {
        tx_on_ = false;
        return;
    }
    ++tx_scheduled_;
    tx_size_ = uint32_t(sizes_.draw(tx_state_));
    tx_offered_at_ = next;
    push(next, kTxOffer);
}

void Nic::tx_clean(Tick at) {
    const uint32_t ring = p_.ring_size;
    Tick t = driver_start(at);
    const Tick from = t;
    while (tx_clean_ < tx_tail_) {
        const Slot& s = tx_[tx_clean_ % ring];
        if (s.done > at) break;
        if (p_.buffers == NicBufferPolicy::Pool) {
            tx_pool_.push_back(s.buf);
        } else {
            ++s_->unmaps;
            t = std::max(t, mapper_->unmap(s.iova, s.frame - kEthFcsBytes, t));
        }
        ++tx_clean_;
    }
    driver_end(from, t);
    if (tx_blocked_ && tx_tail_ - tx_clean_ < ring) {
        tx_blocked_ = false;
        push(t, kTxOffer);
    }
}

void Nic::completed(const DmaTransfer& t, const DmaResult& r) {
    const uint8_t kind = uint8_t(t.id >> 32);
    const uint32_t pos = uint32_t(t.id);
    s_->faults += r.faults;
    switch (kind) {
        case kRxData:
            // Posted writes: the frame leaves the FIFO once its last request has issued.
            fifo_[fifo_known_++].leave = engine_.now();
            if (r.faults) rx_[pos].fault = true;
            break;
        case kTxDesc:
            // Without the descriptor there is no buffer address: write back an error.
            push(r.done, r.faults ? kTxDone : kTxData, pos);
            if (r.faults) tx_[pos].fault = true;
            break;
        case kTxData: {
            Slot& s = tx_[pos];
            if (r.faults) s.fault = true;
            // Sent when the line is free; the write-back follows the last bit.
            push(r.faults ? r.done : tx_wire_.take(r.done, eth_wire_bits(s.frame)), kTxDone, pos);
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
    finished_ = true;
    const NicResult r = result();
    set(s_->rx_rate, r.rx.packet_rate());
    set(s_->rx_tput, r.rx.throughput());
    set(s_->tx_rate, r.tx.packet_rate());
    set(s_->tx_tput, r.tx.throughput());
    const Tick end = std::max(rx_end_, tx_end_);
    const Tick stamp = to_ticks(sc_core::sc_time_stamp());
    finished_ev_.notify(to_sc_time(end > stamp ? end - stamp : 0));
}

NicResult Nic::result() const {
    NicResult r;
    const Stats& s = *s_;
    r.rx = {s.rx_offered.value(),
            s.rx_packets.value(),
            s.rx_bytes.value(),
            s.rx_no_buffer.value() + s.rx_fifo.value() + s.rx_fault.value(),
            t0_,
            rx_end_};
    r.tx = {s.tx_offered.value(), s.tx_packets.value(),
            s.tx_bytes.value(),   s.tx_map.value() + s.tx_fault.value(),
            t0_,                  tx_end_};
    r.maps = s.maps.value();
    r.unmaps = s.unmaps.value();
    r.map_failures = s.map_failures.value();
    r.faults = s.faults.value();
    return r;
}

double Nic::progress() const {
    if (finished_) return 1.0;
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
