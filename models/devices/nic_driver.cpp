// The host side of the NIC's rings, modelled inside the device: one serial driver CPU per
// queue pair that fills and refills its RX ring, posts TX frames and reclaims completed
// descriptors, with a
// software cost per packet and, with per_packet buffers, the DMA API's map and unmap calls on
// the packet's path (Linux dma_map_single/dma_unmap_single). Its time is explicit: every
// call starts when both its trigger and the CPU are ready, so the mapper sees non-decreasing
// times.
#include <algorithm>

#include "nic.h"

namespace iommusim {

Addr Nic::buffer_addr(bool tx, uint32_t buf) const {
    return lay_.buffers + (tx ? p_.rx_buffer_bytes() : 0) + Addr(buf) * p_.buffer_size;
}

uint32_t Nic::strides(uint32_t frame) const {
    return uint32_t((frame - kEthFcsBytes + p_.stride_size - 1) / p_.stride_size);
}

bool Nic::rx_place(Slot& s, uint32_t q, uint32_t frame, Tick at) {
    Queue& Q = q_[q];
    if (Q.wqe_head == Q.wqe_tail) return false;
    const uint32_t i = q * p_.wqes + uint32_t(Q.wqe_head % p_.wqes);
    Wqe& w = wqe_[i];
    if (w.avail > at) return false;
    const uint32_t total = uint32_t(p_.wqe_bytes() / p_.stride_size), n = strides(frame);
    s.wqe = i;
    s.offset = w.used * p_.stride_size;
    const uint64_t end = s.offset + uint64_t(frame - kEthFcsBytes);
    s.pieces = uint8_t((end - 1) / kNicPageBytes - s.offset / kNicPageBytes + 1);
    w.used += n;
    // The device moves to the next buffer when this one cannot take the largest frame (mlx5
    // completes a WQE whose strides are used up); the driver releases it with this frame.
    s.last = total - w.used < strides(uint32_t(sizes_.max()));
    if (s.last) ++Q.wqe_head;
    return true;
}

bool Nic::rx_map_page(Tick& t, uint32_t q) {
    Queue& Q = q_[q];
    const uint32_t i = uint32_t(Q.wqe_tail % p_.wqes), k = Q.fill_page;
    Wqe& w = wqe_[q * p_.wqes + i];
    const Addr pa = lay_.buffers + (Addr(q) * p_.wqes + i) * p_.wqe_bytes();
    // mlx5e_alloc_rx_mpwqe: every page mapped on its own (dma_map_page, DMA_FROM_DEVICE).
    ++s_->driver.maps;
    const auto m = mapper_->map(pa + Addr(k) * kNicPageBytes, kNicPageBytes, true, t);
    if (!m) {
        ++s_->driver.map_failures;
        for (uint32_t j = 0; j < k; ++j) {  // give back what this buffer got
            ++s_->driver.unmaps;
            t = std::max(t, mapper_->unmap(w.iova[j], kNicPageBytes, t));
        }
        Q.fill_page = 0;
        return false;
    }
    t = std::max(t, m->done);
    w.iova[k] = m->iova;
    if (++Q.fill_page == p_.wqe_pages) {
        Q.fill_page = 0;
        w.avail = t;
        w.used = 0;
        ++Q.wqe_tail;
    }
    return true;
}

bool Nic::rx_post_wqe(Tick& t, uint32_t q) {
    do {
        if (!rx_map_page(t, q)) return false;
    } while (q_[q].fill_page);
    return true;
}

void Nic::rx_release_page(Tick at, uint32_t q) {
    // mlx5e_free_rx_mpwqe unmaps a finished buffer's pages back to back on its CPU. One page
    // per event, at its own time: each unmap's page-selective invalidation then reaches the
    // unit when it happens, between the other queues' DMA, instead of all at the burst's start.
    if (defer(q, at, kRxRelease, q)) return;
    Queue& Q = q_[q];
    Tick t = cpu_start(q, at);
    const Tick from = t;
    const Wqe& w = wqe_[q * p_.wqes + uint32_t(Q.wqe_clean % p_.wqes)];
    ++s_->driver.unmaps;
    t = std::max(t, mapper_->unmap(w.iova[Q.release_next], kNicPageBytes, t));
    if (++Q.release_next < p_.wqe_pages) {
        push(t, kRxRelease, q);
    } else {
        Q.releasing = false;
        ++Q.wqe_clean;
        rx_refill(t, q);
        push(t, kRxClean, q * p_.ring_size);  // the frames that completed meanwhile
    }
    cpu_end(q, from, t);
}

bool Nic::rx_post(Tick& t, uint32_t q) {
    Queue& Q = q_[q];
    const uint32_t pos = q * p_.ring_size + uint32_t(Q.rx_tail % p_.ring_size);
    Slot& s = rx_[pos];
    if (p_.buffers == NicBufferPolicy::Pool) {
        s.buf = rx_pool_.front();  // never empty: the pool holds at least every ring's buffers
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
    ++Q.rx_tail;
    return true;
}

void Nic::rx_refill(Tick& t, uint32_t q) {
    // In ring order; stop at the first failure (the IOVA space is exhausted for now).
    const Queue& Q = q_[q];
    if (p_.striding()) {
        while (Q.wqe_tail - Q.wqe_clean < p_.wqes && rx_post_wqe(t, q)) {
        }
        return;
    }
    while (Q.rx_tail - Q.rx_clean < p_.ring_size && rx_post(t, q)) {
    }
}

bool Nic::defer(uint32_t q, Tick at, uint8_t kind, uint32_t slot) {
    // Several driver contexts share the DMA API (the IOVA allocator, the IOMMU's invalidation
    // queue), which takes calls in time order: a context does its work when it is free, one
    // packet per event, rather than running ahead of the others. One context keeps its
    // batches (the single-queue model's behaviour).
    if (p_.queues == 1 || q_[q].cpu <= at) return false;
    push(q_[q].cpu, kind, slot);
    return true;
}

void Nic::rx_clean(Tick at, uint32_t q) {
    Queue& Q = q_[q];
    if (Q.releasing) return;  // the release's last page resumes cleaning
    if (defer(q, at, kRxClean, q * p_.ring_size)) return;
    Tick t = cpu_start(q, at);
    const Tick from = t;
    // In ring order, as the driver follows the descriptor-done bits.
    while (Q.rx_clean < Q.rx_head) {
        const Slot& s = rx_[q * p_.ring_size + Q.rx_clean % p_.ring_size];
        if (s.done > at) break;
        t += sw_ps_;
        if (p_.buffers == NicBufferPolicy::Pool) {
            rx_pool_.push_back(s.buf);
        } else if (p_.striding()) {
            if (s.last) Q.releasing = true, Q.release_next = 0;
        } else {
            ++s_->driver.unmaps;
            t = std::max(t, mapper_->unmap(s.iova, p_.buffer_size, t));
        }
        if (!s.fault) s_->rx_host_latency.add((t - s.start) / kTicksPerNs);
        // TCP acknowledges what it received (not a frame whose DMA failed): an ACK frame on
        // this queue's TX ring, mapped and unmapped like any sent frame (a fresh socket buffer).
        if (p_.ack_every && !s.fault && ++Q.since_ack >= p_.ack_every &&
            Q.tx_tail - Q.tx_clean < p_.ring_size) {
            Q.since_ack = 0;
            if (tx_post(t, q, kEthAckFrame, t)) ++s_->rx_acks;
        }
        ++Q.rx_clean;
        if (Q.releasing) {
            push(t, kRxRelease, q);
            break;
        }
        rx_refill(t, q);
        if (p_.queues > 1) break;  // one packet per event: the others have events of their own
    }
    cpu_end(q, from, t);
}

bool Nic::tx_post(Tick& t, uint32_t q, uint32_t frame, Tick start) {
    Queue& Q = q_[q];
    const uint32_t pos = q * p_.ring_size + uint32_t(Q.tx_tail % p_.ring_size);
    Slot& s = tx_[pos];
    if (p_.buffers == NicBufferPolicy::Pool) {
        s.buf = tx_pool_.front();
        tx_pool_.pop_front();
        s.iova = buffer_addr(true, s.buf);
    } else {
        s.buf = pos;
        ++s_->driver.maps;
        const auto m = mapper_->map(buffer_addr(true, pos), frame - kEthFcsBytes, false, t);
        if (!m) {
            ++s_->driver.map_failures, ++s_->tx_map;  // the driver drops the frame
            return false;
        }
        t = std::max(t, m->done);
        s.iova = m->iova;
    }
    s.frame = frame, s.start = start, s.avail = t, s.done = kNever, s.fault = false;
    ++Q.tx_tail;
    push(t, kTxDesc, pos);  // the tail doorbell: the NIC fetches the descriptor
    return true;
}

void Nic::tx_offer(Tick at) {
    const uint32_t ring = p_.ring_size, q = queue_of(tx_scheduled_ - 1);
    Queue& Q = q_[q];
    if (defer(q, at, kTxOffer, 0)) return;
    if (Q.tx_tail - Q.tx_clean == ring) {  // ring full: wait for the driver to reclaim a slot
        tx_blocked_ = true;
        ++s_->tx_ring_full;
        return;
    }
    ++s_->tx_offered;
    tx_last_ = at;
    tx_app_.serve(at, eth_wire_bits(tx_size_));
    Tick t = cpu_start(q, at);
    const Tick from = t;
    t += sw_ps_;
    tx_post(t, q, tx_size_, tx_offered_at_);
    cpu_end(q, from, t);
    Q.tx_posted = t;
    tx_schedule();
}

void Nic::tx_schedule() {
    // The sender (on the driver CPU of its flow's queue) offers the next frame once the line
    // has had time for this one and that CPU has finished posting its previous frame.
    if (p_.count && tx_scheduled_ >= p_.count) {
        tx_on_ = false;
        return;
    }
    const Tick next = std::max(tx_app_.free_at(), q_[queue_of(tx_scheduled_)].tx_posted);
    if (next >= stop_at_) {
        tx_on_ = false;
        return;
    }
    ++tx_scheduled_;
    tx_size_ = uint32_t(sizes_.draw(tx_state_));
    tx_offered_at_ = next;
    push(next, kTxOffer);
}

void Nic::tx_clean(Tick at, uint32_t q) {
    const uint32_t ring = p_.ring_size;
    Queue& Q = q_[q];
    if (defer(q, at, kTxClean, q * ring)) return;
    Tick t = cpu_start(q, at);
    const Tick from = t;
    while (Q.tx_clean < Q.tx_tail) {
        const Slot& s = tx_[q * ring + Q.tx_clean % ring];
        if (s.done > at) break;
        if (p_.buffers == NicBufferPolicy::Pool) {
            tx_pool_.push_back(s.buf);
        } else {
            ++s_->driver.unmaps;
            t = std::max(t, mapper_->unmap(s.iova, s.frame - kEthFcsBytes, t));
        }
        ++Q.tx_clean;
        if (p_.queues > 1) break;
    }
    cpu_end(q, from, t);
    // The held offer is the next frame, for its own queue.
    if (tx_blocked_ && q == queue_of(tx_scheduled_ - 1) && Q.tx_tail - Q.tx_clean < ring) {
        tx_blocked_ = false;
        push(t, kTxOffer);
    }
}

}  // namespace iommusim
