// An Ethernet NIC with one RX and one TX descriptor ring in host memory, fed at line rate.
// RX: a frame arrives, the NIC writes it into the next posted buffer, then writes the RX
// descriptor back (posted writes, in order). TX: the NIC reads the descriptor the driver
// posted, then the packet, sends it on the line, then writes the descriptor back. Every DMA
// goes through the owned DmaEngine with the NIC's requester.
//
// The host side (the driver refilling RX buffers, posting TX packets, cleaning completions)
// is modelled inside the device as one serial CPU with a software cost per packet: the
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
    Counter &rx_rate, &rx_tput;
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
    struct Slot {
        Addr iova = 0;
        uint32_t buf = 0;    // buffer index within its direction
        uint32_t frame = 0;  // frame bytes
        Tick avail = 0;      // RX: when the driver posted the buffer
        Tick start = 0;      // RX: the frame's arrival; TX: when the application offered it
        Tick done = kNever;  // descriptor write-back complete
        bool fault = false;
    };
    void start() override;
    bool handle(const Ev& e, DmaTransfer& t) override;
    void completed(const DmaTransfer& t, const DmaResult& r) override;
    void finish() override;
    void rx_arrive(Tick at);
    void rx_schedule();
    bool rx_post(Tick& t);
    void rx_refill(Tick& t);
    void rx_clean(Tick at);
    void tx_offer(Tick at);
    void tx_schedule(Tick posted);
    void tx_clean(Tick at);
    Addr buffer_addr(bool tx, uint32_t buf) const;

    uint32_t nbuf_;
    Tick t0_ = 0, stop_at_ = kNever;

    // RX ring: buffers posted (tail), taken by the device (head), cleaned by the driver.
    std::vector<Slot> rx_, tx_;
    uint64_t rx_tail_ = 0, rx_head_ = 0, rx_clean_ = 0;
    std::deque<uint32_t> rx_pool_, tx_pool_;  // free pool buffers
    BandwidthServer rx_line_;                 // the wire frames arrive on
    uint64_t rx_state_, rx_scheduled_ = 0;
    uint32_t rx_size_ = 0;  // frame of the scheduled arrival
    bool rx_on_ = false, refill_pending_ = false;
    // On-chip FIFO: frames admitted, with when their last write request issued (kNever
    // until known; known for a prefix, `fifo_known_` entries).
    struct Held {
        Tick leave;
        uint32_t bytes;
    };
    std::deque<Held> fifo_;
    uint64_t fifo_bytes_ = 0, fifo_known_ = 0;

    // TX ring: descriptors posted (tail), cleaned by the driver.
    uint64_t tx_tail_ = 0, tx_clean_ = 0;
    BandwidthServer tx_app_, tx_wire_;  // the application's pacing, the line
    uint64_t tx_state_, tx_scheduled_ = 0;
    uint32_t tx_size_ = 0;  // frame of the scheduled offer
    Tick tx_offered_at_ = 0;
    bool tx_on_ = false, tx_blocked_ = false;
    Tick rx_end_ = 0, tx_end_ = 0;    // last write-back of each direction
    Tick rx_last_ = 0, tx_last_ = 0;  // last arrival, last offer
};

}  // namespace iommusim
