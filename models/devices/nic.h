// An Ethernet NIC with `queues` RX/TX descriptor ring pairs in host memory, fed at line rate;
// frames belong to flows, steered to queues by RSS or by flow.
// RX: a frame arrives, the NIC writes it into the next posted buffer, then writes the RX
// descriptor back (posted writes, in order). TX: the NIC reads the descriptor the driver
// posted, then the packet, sends it on the line, then writes the descriptor back. Every DMA
// goes through the owned DmaEngine with the NIC's requester.
//
// The host side (the driver refilling RX buffers, posting TX packets, cleaning completions)
// is modelled inside the device as one serial CPU per queue (its driver context: NAPI and the
// IOVA allocator's per-CPU caches) with a software cost per packet: the
// mapping calls it makes through DmaMapper (per_packet policy) are on the packet's path, as
// with the Linux DMA API. See docs/devices.md, "NIC".
#pragma once
#include <deque>
#include <string>
#include <systemc>
#include <vector>

#include "core/dma_mapper.h"
#include "core/stats.h"
#include "ethernet.h"
#include "nic_params.h"
#include "per_io_device.h"

namespace iommusim {

struct NicResult {
    struct Dir {
        uint64_t offered = 0;     // frames that arrived (RX) or the application sent (TX)
        uint64_t packets = 0;     // frames delivered to the host (RX) or sent on the line (TX)
        uint64_t bytes = 0;       // their frame bytes (FCS included)
        uint64_t drops = 0;       // every cause
        Tick start = 0, end = 0;  // traffic start; last write-back, arrival or offer
        Tick elapsed() const { return end > start ? end - start : 0; }
        double packet_rate() const {  // packets/s
            return elapsed() ? double(packets) * 1e12 / double(elapsed()) : 0.0;
        }
        double throughput() const {  // frame bits/s
            return elapsed() ? double(bytes) * 8e12 / double(elapsed()) : 0.0;
        }
    };
    Dir rx, tx;
    uint64_t maps = 0, unmaps = 0, map_failures = 0;
    uint64_t faults = 0;  // requests with an error response
};

struct NicStats {
    StatGroup &rx, &tx, &drv;
    Counter &rx_offered, &rx_packets, &rx_bytes, &rx_no_buffer, &rx_fifo, &rx_fault;
    Counter &rx_acks, &rx_rate, &rx_tput;
    Histogram &rx_latency, &rx_host_latency;
    Counter &tx_offered, &tx_packets, &tx_bytes, &tx_map, &tx_fault, &tx_ring_full;
    Counter &tx_rate, &tx_tput;
    Histogram& tx_latency;
    DriverStats driver;
    Counter& faults;

    explicit NicStats(StatGroup& g);
};

class Nic : public PerIoDevice<NicParams, NicLayout, NicStats> {
public:
    // `mapper` is called by the driver model with per_packet buffers (required then; unused
    // with pool). Throws std::invalid_argument when a parameter is invalid. Statistics go to
    // `stats` (rx, tx, driver children), the engine's to stats.child("engine").
    Nic(sc_core::sc_module_name name, const NicParams& p, const DmaEngineParams& ep,
        const NicLayout& layout, DmaMapper* mapper, StatGroup& stats);
    ~Nic() override;

    NicResult result() const;
    // One line: configuration, per-direction rate, throughput, drops, latency percentiles.
    std::string summary() const;
    double progress() const;  // 0..1 of the packets to offer

private:
    // Events, in one queue ordered by time. The first kinds are line and host (driver) work;
    // the rest are the NIC's DMA transfers, handed to the engine.
    enum Kind : uint8_t {
        kRxArrive,   // a frame has arrived in full
        kRxRefill,   // the driver retries refilling the RX ring (missed-packet interrupt)
        kRxClean,    // the driver processes RX write-backs
        kTxOffer,    // the application hands the driver a frame
        kTxClean,    // the driver reclaims transmitted descriptors
        kRxRelease,  // striding: the driver unmaps the next page of a finished buffer
        kRxData,     // write the frame into its buffer
        kRxDesc,     // write the RX descriptor back
        kTxDesc,     // read the TX descriptor
        kTxData,     // read the frame from its buffer
        kTxDone,     // write the TX descriptor back
    };
    struct Slot {
        Addr iova = 0;
        uint32_t buf = 0;    // buffer index within its direction
        uint32_t frame = 0;  // frame bytes
        Tick avail = 0;      // RX: when the driver posted the buffer
        Tick start = 0;      // RX: the frame's arrival; TX: when the application offered it
        Tick done = kNever;  // descriptor write-back complete
        bool fault = false;
        // Striding RX: the frame's place in its multi-packet buffer, the writes it takes
        // (one per page it touches) and whether it is the buffer's last frame.
        uint32_t wqe = 0, offset = 0;
        uint8_t pieces = 1, pieces_done = 0;
        bool last = false;
    };
    // Striding RX: a multi-packet buffer (WQE) and the IOVA of each of its pages.
    struct Wqe {
        std::vector<Addr> iova;
        Tick avail = 0;     // when the driver posted it
        uint32_t used = 0;  // strides taken
    };
    void start() override;
    bool handle(const Ev& e, DmaTransfer& t) override;
    void completed(const DmaTransfer& t, const DmaResult& r) override;
    void finish() override;
    void rx_arrive(Tick at);
    void rx_schedule();
    bool rx_post(Tick& t, uint32_t q);
    bool rx_post_wqe(Tick& t, uint32_t q);
    // Striding: map the next page of queue q's buffer wqe_tail, posting the buffer with its
    // last page; false when the mapping failed (the pages it got are given back).
    bool rx_map_page(Tick& t, uint32_t q);
    void rx_release_page(Tick at, uint32_t q);
    // Striding RX: place a frame in queue q's current buffer, or false (none posted).
    bool rx_place(Slot& s, uint32_t q, uint32_t frame, Tick at);
    uint32_t strides(uint32_t frame) const;
    void rx_refill(Tick& t, uint32_t q);
    void rx_clean(Tick at, uint32_t q);
    // Post a frame on queue q's TX ring at t (the driver maps it, per_packet and striding),
    // its latency counted from `start`; false when the mapping failed (a drop).
    bool tx_post(Tick& t, uint32_t q, uint32_t frame, Tick start);
    void tx_offer(Tick at);
    void tx_schedule();
    void tx_clean(Tick at, uint32_t q);
    Addr buffer_addr(bool tx, uint32_t buf) const;
    // The queue of the k-th frame of a direction: its flow (flows take turns in bursts of
    // flow_burst frames), steered by RSS or by flow.
    uint32_t queue_of(uint64_t k) const;
    // Queue q's driver context (one CPU per queue): work triggered at `at` starts when the
    // CPU is free; cpu_end books [from, to) and frees it at `to`. The mapper is told the CPU.
    Tick cpu_start(uint32_t q, Tick at);
    bool defer(uint32_t q, Tick at, uint8_t kind, uint32_t slot);
    void cpu_end(uint32_t q, Tick from, Tick to);

    uint32_t nbuf_;
    Tick t0_ = 0, stop_at_ = kNever;

    // Per queue pair: RX buffers posted (tail), taken by the device (head), cleaned by the
    // driver; TX descriptors posted (tail) and cleaned. Slot i of queue q is entry
    // q * ring_size + i of rx_/tx_ and of the ring memory.
    struct Queue {
        uint64_t rx_tail = 0, rx_head = 0, rx_clean = 0;
        uint64_t tx_tail = 0, tx_clean = 0;
        uint64_t wqe_tail = 0, wqe_head = 0, wqe_clean = 0;  // striding RX buffers
        Tick cpu = 0;                                        // the driver context is free from then
        Tick tx_posted = 0;  // end of the last TX post (the sender runs on this CPU)
        bool refill_pending = false;
        bool releasing = false;     // striding: unmapping buffer wqe_clean's pages
        uint32_t release_next = 0;  // its next page to unmap
        uint32_t since_ack = 0;     // frames cleaned since the queue's last ACK
        uint32_t fill_page = 0;     // striding: pages of buffer wqe_tail mapped so far
    };
    std::vector<Queue> q_;
    std::vector<uint32_t> rss_;  // RSS indirection table: entry -> queue
    uint64_t rss_key_;           // seeds the flow hash (Linux draws a random RSS key at boot)
    Tick busy_ps_ = 0;           // all driver contexts (driver.busy_ns keeps sub-ns remainders)
    std::vector<Slot> rx_, tx_;
    std::vector<Wqe> wqe_;                    // striding: queue q's buffer i at q * wqes + i
    std::deque<uint32_t> rx_pool_, tx_pool_;  // free pool buffers
    BandwidthServer rx_line_;                 // the wire frames arrive on
    uint64_t rx_state_, rx_scheduled_ = 0;
    uint32_t rx_size_ = 0;  // frame of the scheduled arrival
    bool rx_on_ = false;
    // On-chip FIFO (shared by the queues): frames admitted, with when their last write
    // request issued (kNever until known; known for a prefix, `fifo_known_` entries).
    struct Held {
        Tick leave;
        uint32_t bytes;
    };
    std::deque<Held> fifo_;
    uint64_t fifo_bytes_ = 0, fifo_known_ = 0;

    BandwidthServer tx_app_, tx_wire_;  // the application's pacing, the line
    uint64_t tx_state_, tx_scheduled_ = 0;
    uint32_t tx_size_ = 0;  // frame of the scheduled offer
    Tick tx_offered_at_ = 0;
    bool tx_on_ = false, tx_blocked_ = false;
    Tick rx_end_ = 0, tx_end_ = 0;    // last write-back of each direction
    Tick rx_last_ = 0, tx_last_ = 0;  // last arrival, last offer
};

}  // namespace iommusim
