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
#include <memory>
#include <queue>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/stats.h"
#include "dma_engine.h"
#include "core/dma_mapper.h"
#include "nic_params.h"

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

class Nic : public sc_core::sc_module {
public:
    tlm::tlm_initiator_socket<> dma;  // the engine's requests (bound through to it)

    // `mapper` is called by the driver model with per_packet buffers (required then; unused
    // with pool). Throws std::invalid_argument when a parameter is invalid. Statistics go to
    // `stats` (rx, tx, driver children), the engine's to stats.child("engine").
    Nic(sc_core::sc_module_name name, const NicParams& p, const DmaEngineParams& ep,
        const NicLayout& layout, DmaMapper* mapper, StatGroup& stats);
    ~Nic() override;

    DmaEngine& engine() { return engine_; }
    const NicParams& params() const { return p_; }
    // Every offered packet done; notified at the last completion.
    bool finished() const { return finished_; }
    const sc_core::sc_event& finished_event() const { return finished_ev_; }
    NicResult result() const;
    // One line: configuration, per-direction rate, throughput, drops, latency percentiles.
    std::string summary() const;
    double progress() const;  // 0..1 of the packets to offer

private:
    struct Ev {
        Tick t;
        uint64_t seq;  // ties in time keep their order of creation
        uint8_t kind;
        uint32_t slot;
        bool operator>(const Ev& o) const { return t != o.t ? t > o.t : seq > o.seq; }
    };
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
    struct Slot {
        Addr iova = 0;
        uint32_t buf = 0;    // buffer index within its direction
        uint32_t frame = 0;  // frame bytes
        Tick avail = 0;      // RX: when the driver posted the buffer
        Tick start = 0;      // RX: the frame's arrival; TX: when the application offered it
        Tick done = kNever;  // descriptor write-back complete
        bool fault = false;
    };
    struct Stats {
        StatGroup &rx, &tx, &drv;
        Counter &rx_offered, &rx_packets, &rx_bytes, &rx_no_buffer, &rx_fifo, &rx_fault;
        Counter &rx_rate, &rx_tput;
        Histogram &rx_latency, &rx_host_latency;
        Counter &tx_offered, &tx_packets, &tx_bytes, &tx_map, &tx_fault, &tx_ring_full;
        Counter &tx_rate, &tx_tput;
        Histogram& tx_latency;
        DriverStats driver;
        Counter& faults;

        explicit Stats(StatGroup& g);
    };
    bool next(DmaTransfer& t);
    void completed(const DmaTransfer& t, const DmaResult& r);
    void start();
    void finish();
    void push(Tick t, uint8_t kind, uint32_t slot = 0);
    // Internal events (arrivals, driver work); DMA events fill `t` and return true.
    bool handle(const Ev& e, DmaTransfer& t);
    void rx_arrive(Tick at);
    void rx_schedule();
    bool rx_post(Tick& t);
    void rx_refill(Tick& t);
    void rx_clean(Tick at);
    void tx_offer(Tick at);
    void tx_schedule(Tick posted);
    void tx_clean(Tick at);
    Tick driver_start(Tick at) const { return at > drv_ ? at : drv_; }
    void driver_end(Tick from, Tick to);
    Addr buffer_addr(bool tx, uint32_t buf) const;

    NicParams p_;
    NicLayout lay_;
    DmaMapper* mapper_;
    std::unique_ptr<Stats> s_;
    DmaEngine engine_;
    SizeDist sizes_;
    Requester req_;
    Tick sw_ps_;
    uint32_t nbuf_;
    std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> evq_;
    uint64_t seq_ = 0;
    Tick drv_ = 0, t0_ = 0, stop_at_ = kNever;
    bool started_ = false, finished_ = false;
    sc_core::sc_event finished_ev_;

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
    Tick busy_ps_ = 0;                // driver busy time, sub-ns remainders kept
};

}  // namespace iommusim
