// The NIC's parameters and its host-memory layout. Plain C++, header-only, so the unit
// tests check it without SystemC.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/types.h"
#include "ethernet.h"
#include "size_dist.h"

namespace iommusim {

enum class NicDirection : uint8_t { Rx, Tx, Both };
// per_packet: one buffer per descriptor, mapped and unmapped per packet; pool: pre-mapped
// buffers; striding: multi-packet RX buffers (mlx5 striding RQ), frames packed in strides,
// every page of a buffer mapped when it is posted and unmapped when its frames are done.
enum class NicBufferPolicy : uint8_t { PerPacket, Pool, Striding };
// How a flow picks its queue: rss hashes it through a 128-entry indirection table (Linux's
// default table spreads the entries round-robin over the queues); flow pins flow f to queue
// f mod queues (ntuple/aRFS steering, each flow on its consumer's CPU).
enum class NicSteering : uint8_t { Rss, Flow };

inline const char* to_string(NicDirection d) {
    return d == NicDirection::Rx ? "rx" : d == NicDirection::Tx ? "tx" : "both";
}
inline const char* to_string(NicBufferPolicy b) {
    return b == NicBufferPolicy::Pool       ? "pool"
           : b == NicBufferPolicy::Striding ? "striding"
                                            : "per_packet";
}
inline const char* to_string(NicSteering s) {
    return s == NicSteering::Flow ? "flow" : "rss";
}

template <>
struct EnumParam<NicDirection> {
    static std::optional<NicDirection> parse(std::string_view s) {
        if (s == "rx") return NicDirection::Rx;
        if (s == "tx") return NicDirection::Tx;
        if (s == "both") return NicDirection::Both;
        return std::nullopt;
    }
    static std::string name(NicDirection d) { return to_string(d); }
    static std::vector<NicDirection> values() {
        return {NicDirection::Rx, NicDirection::Tx, NicDirection::Both};
    }
};
template <>
struct EnumParam<NicBufferPolicy> {
    static std::optional<NicBufferPolicy> parse(std::string_view s) {
        if (s == "per_packet") return NicBufferPolicy::PerPacket;
        if (s == "pool") return NicBufferPolicy::Pool;
        if (s == "striding") return NicBufferPolicy::Striding;
        return std::nullopt;
    }
    static std::string name(NicBufferPolicy b) { return to_string(b); }
    static std::vector<NicBufferPolicy> values() {
        return {NicBufferPolicy::PerPacket, NicBufferPolicy::Pool, NicBufferPolicy::Striding};
    }
};

template <>
struct EnumParam<NicSteering> {
    static std::optional<NicSteering> parse(std::string_view s) {
        if (s == "rss") return NicSteering::Rss;
        if (s == "flow") return NicSteering::Flow;
        return std::nullopt;
    }
    static std::string name(NicSteering s) { return to_string(s); }
    static std::vector<NicSteering> values() { return {NicSteering::Rss, NicSteering::Flow}; }
};

constexpr uint32_t kNicRssTable = 128;    // RSS indirection-table entries (ethtool -x)
constexpr uint32_t kNicPageBytes = 4096;  // striding RX buffers are mapped page by page

struct NicParams {
    double line_rate = 100.0;    // Gb/s
    std::string sizes = "1500";  // frame sizes (SizeDist syntax, or "imix")
    NicDirection direction = NicDirection::Rx;
    uint64_t count = 100000;   // packets per direction; 0 = until duration_ns
    uint64_t duration_ns = 0;  // stop offering after this long; 0 = until count
    uint64_t seed = 1;
    uint32_t ring_size = 1024;     // descriptors per ring
    uint32_t desc_size = 16;       // bytes per descriptor (Intel's advanced: 16; mlx5 CQE: 64)
    uint32_t buffer_size = 2048;   // bytes per packet buffer
    uint64_t rx_fifo = 512 << 10;  // on-chip receive packet buffer
    NicBufferPolicy buffers = NicBufferPolicy::PerPacket;
    uint32_t pool_buffers = 0;  // pool policy: buffers per direction; 0 = ring_size
    // Striding RX buffers (Linux 6.0 mlx5e): 256 B strides (MLX5_MPWRQ_DEF_LOG_STRIDE_SZ =
    // log2(MLX5E_RX_MAX_HEAD = 256) for frames too large for a linear SKB), 256 KiB buffers
    // (MLX5_MPWRQ_LOG_WQE_SZ = 18: 64 pages), 8 buffers per queue.
    uint32_t stride_size = 256;
    uint32_t wqe_pages = 64;
    uint32_t wqes = 8;
    double sw_ns = 100.0;  // driver software cost per packet
    uint32_t queues = 1;   // RX/TX queue pairs, each with its own driver CPU
    uint32_t flows = 1;    // flows the traffic is spread over
    NicSteering steering = NicSteering::Rss;
    uint32_t flow_burst = 1;  // consecutive frames of one flow before the next flow's turn
    uint32_t ack_every = 0;   // RX frames per TCP ACK sent back on the queue's TX ring; 0 = none
    uint32_t bus = 2, device = 0, function = 0;

    template <typename V>
    void visit(V&& v) {
        v("line_rate", line_rate, "Gb/s", "Ethernet line rate", 0.001, 1e6);
        v("sizes", sizes, "",
          "frame sizes in bytes (64..9216, FCS included): one size, SIZE:WEIGHT list, or imix", 0,
          0);
        v("direction", direction, "", "traffic: rx (to host), tx (from host) or both", 0, 2);
        v("count", count, "packets", "packets offered per direction; 0 = until duration_ns", 0,
          uint64_t(1) << 48);
        v("duration_ns", duration_ns, "ns", "stop offering packets after this long; 0 = count", 0,
          uint64_t(1) << 48);
        v("seed", seed, "", "seed of the packet-size draws", 0, ~uint64_t(0));
        v("ring_size", ring_size, "descriptors", "entries of each descriptor ring", 2, 65536);
        v("desc_size", desc_size, "bytes",
          "bytes of a descriptor the NIC reads or writes back (a power of 2)", 8, 256);
        v("buffer_size", buffer_size, "bytes", "bytes per packet buffer (>= largest frame - FCS)",
          64, 65536);
        v("rx_fifo", rx_fifo, "bytes", "on-chip receive buffer; a frame that does not fit drops",
          64, uint64_t(1) << 32);
        v("buffers", buffers, "",
          "per_packet: map/unmap each buffer through the DMA API; pool: pre-mapped buffer pool; "
          "striding: multi-packet RX buffers mapped page by page (TX as per_packet)",
          0, 2);
        v("pool_buffers", pool_buffers, "buffers",
          "pool policy: buffers per direction (>= ring_size); 0 = ring_size", 0, 1u << 24);
        v("stride_size", stride_size, "bytes",
          "striding: bytes per stride (a frame takes whole strides); a power of 2", 64, 65536);
        v("wqe_pages", wqe_pages, "pages", "striding: 4 KiB pages per multi-packet buffer", 1,
          4096);
        v("wqes", wqes, "buffers", "striding: multi-packet buffers posted per RX queue", 2, 65536);
        v("sw_ns", sw_ns, "ns", "driver software cost per packet (besides map/unmap)", 0.0, 1e9);
        v("queues", queues, "queues",
          "RX/TX queue pairs, each with its own rings and driver CPU (IOVA cache context)", 1,
          1024);
        v("flows", flows, "flows", "flows the frames belong to, steered to queues", 1, 1u << 20);
        v("steering", steering, "",
          "rss: flows hashed through a 128-entry indirection table; flow: flow f on queue f mod "
          "queues",
          0, 1);
        v("flow_burst", flow_burst, "frames",
          "consecutive frames of one flow on the line before the next flow's (e.g. a TSO burst)", 1,
          1u << 20);
        v("ack_every", ack_every, "frames",
          "RX: the driver sends a TCP ACK (a mapped TX frame) every this many received frames of "
          "a queue; 0 = none",
          0, 1u << 20);
        v("requester.bus", bus, "", "requester bus number", 0, 255);
        v("requester.device", device, "", "requester device number", 0, 31);
        v("requester.function", function, "", "requester function number", 0, 7);
    }

    static constexpr const char* kName = "nic";  // in messages
    Requester requester() const { return Requester::bdf(bus, device, function); }
    bool maps_per_io() const { return buffers != NicBufferPolicy::Pool; }
    bool striding() const { return buffers == NicBufferPolicy::Striding; }
    uint64_t wqe_bytes() const { return uint64_t(wqe_pages) * kNicPageBytes; }
    uint32_t slots() const { return ring_size * queues; }  // descriptors per direction
    uint32_t buffers_per_direction() const {
        return buffers == NicBufferPolicy::Pool && pool_buffers ? pool_buffers : slots();
    }
    // Host memory the platform provides (NicLayout): each direction's rings (queue after
    // queue), and the buffer region (RX buffers, then TX buffers).
    uint64_t ring_bytes() const { return uint64_t(slots()) * desc_size; }
    uint64_t tx_buffer_bytes() const { return uint64_t(buffers_per_direction()) * buffer_size; }
    uint64_t rx_buffer_bytes() const {
        return striding() ? uint64_t(queues) * wqes * wqe_bytes() : tx_buffer_bytes();
    }
    uint64_t buffer_region_bytes() const { return rx_buffer_bytes() + tx_buffer_bytes(); }
    std::optional<SizeDist> size_dist(std::string* why = nullptr) const {
        return SizeDist::parse(sizes, kEthMinFrame, kEthMaxFrame, why);
    }

    // Ranges, a valid size list whose largest frame fits a buffer and the FIFO, a stop
    // condition; otherwise false with the reason in *why.
    bool valid(std::string* why = nullptr) const {
        std::string e;
        const auto d = size_dist(&e);
        if (e.empty() && !(line_rate >= 0.001 && line_rate <= 1e6)) e = "line_rate out of range";
        if (e.empty() && !count && !duration_ns) e = "count and duration_ns both 0";
        if (e.empty() && (ring_size < 2 || ring_size > 65536)) e = "ring_size out of 2..65536";
        if (e.empty() && (desc_size < 8 || desc_size > 256 || (desc_size & (desc_size - 1))))
            e = "desc_size " + std::to_string(desc_size) + " is not a power of 2 in 8..256";
        // Striding RX buffers are checked below; buffer_size is then TX's only.
        const bool sized = !(striding() && direction == NicDirection::Rx);
        if (e.empty() && (buffer_size < 64 || buffer_size > 65536 ||
                          (sized && d->max() - kEthFcsBytes > buffer_size)))
            e = "buffer_size out of 64..65536 or smaller than the largest frame - FCS";
        if (e.empty() && d->max() > rx_fifo) e = "rx_fifo smaller than the largest frame";
        if (e.empty() && (queues < 1 || queues > 1024)) e = "queues out of 1..1024";
        if (e.empty() && uint64_t(ring_size) * queues > (uint64_t(1) << 24))
            e = "ring_size x queues above 2^24 descriptors";
        if (e.empty() && (flows < 1 || flows > (1u << 20) || flow_burst < 1 ||
                          flow_burst > (1u << 20) || steering > NicSteering::Flow))
            e = "flows or flow_burst out of 1..2^20, or bad steering";
        if (e.empty() && buffers == NicBufferPolicy::Pool && pool_buffers && pool_buffers < slots())
            e = "pool_buffers below ring_size x queues";
        if (e.empty() && ack_every > (1u << 20)) e = "ack_every out of 0..2^20";
        if (e.empty() && !(sw_ns >= 0.0 && sw_ns <= 1e9)) e = "sw_ns out of range";
        if (e.empty() && (bus > 255 || device > 31 || function > 7)) e = "requester out of range";
        if (e.empty() && striding()) {
            if (stride_size < 64 || stride_size > 65536 || (stride_size & (stride_size - 1)) ||
                wqe_bytes() % stride_size)
                e = "striding: stride_size " + std::to_string(stride_size) +
                    " is not a power of 2 in 64..65536 dividing the buffer's " +
                    std::to_string(wqe_bytes()) + " bytes";
            else if (wqe_pages < 1 || wqe_pages > 4096 || wqes < 2 || wqes > 65536)
                e = "striding: wqe_pages out of 1..4096 or wqes out of 2..65536";
            else if (d->max() - kEthFcsBytes > wqe_bytes())
                e = "striding: the largest frame's " + std::to_string(d->max() - kEthFcsBytes) +
                    " B without FCS do not fit a buffer of wqe_pages x 4096 = " +
                    std::to_string(wqe_bytes()) + " B";
        }
        if (e.empty() && (direction > NicDirection::Both || buffers > NicBufferPolicy::Striding))
            e = "bad direction or buffers";
        if (!e.empty() && why) *why = "nic: " + e;
        return e.empty();
    }
};

// Where the NIC's structures are in the device's DMA address space. The rings are coherent
// allocations the platform maps once for the run (dma_alloc_coherent). `buffers` is, with
// per_packet, the physical base of the packet buffers (the driver maps each through the
// DmaMapper); with pool, the IOVA of the pool the platform mapped once.
struct NicLayout {
    Addr rx_ring = 0;  // IOVA, NicParams::ring_bytes(): queue q's ring at q * ring_size
    Addr tx_ring = 0;  // IOVA, NicParams::ring_bytes()
    Addr buffers = 0;  // NicParams::buffer_region_bytes(); RX buffers first
};

}  // namespace iommusim
