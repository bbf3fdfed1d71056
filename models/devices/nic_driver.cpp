// The host side of the NIC's rings, modelled inside the device: one serial driver CPU that
// fills and refills the RX ring, posts TX frames and reclaims completed descriptors, with a
// software cost per packet and, with per_packet buffers, the DMA API's map and unmap calls on
// the packet's path (Linux dma_map_single/dma_unmap_single). Its time is explicit: every
// call starts when both its trigger and the CPU are ready, so the mapper sees non-decreasing
// times.
#include <algorithm>

#include "nic.h"

namespace iommusim {

Addr Nic::buffer_addr(bool tx, uint32_t buf) const {
    return lay_.buffers + (Addr(tx ? nbuf_ : 0) + buf) * p_.buffer_size;
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
        ++s_->driver.maps;
        // The device may write the whole buffer (DMA_FROM_DEVICE).
        const auto m = mapper_->map(buffer_addr(false, pos), p_.buffer_size, true, t);
        if (!m) {
            ++s_->driver.map_failures;
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
            ++s_->driver.unmaps;
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
    tx_last_ = at;
    const uint32_t frame = tx_size_, pos = uint32_t(tx_tail_ % ring);
    tx_app_.serve(at, eth_wire_bits(frame));
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
        ++s_->driver.maps;
        const auto m = mapper_->map(buffer_addr(true, pos), frame - kEthFcsBytes, false, t);
        if (m) {
            t = std::max(t, m->done);
            s.iova = m->iova;
        } else {
            ++s_->driver.map_failures, ++s_->tx_map;  // the driver drops the frame
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
    const Tick next = std::max(tx_app_.free_at(), posted);
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
            ++s_->driver.unmaps;
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

}  // namespace iommusim
