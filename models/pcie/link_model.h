// The bandwidth model of one PCIe link, as plain C++: how many bytes a TLP puts on the wire,
// how fast the wire carries them, and how memory writes, reads and their completions are
// split into TLPs. Constants and formulas follow the pcie-bench model (github
// pcie-bench/pcie-model, model/pcie.py and model/mem_bw.py; Neugebauer et al., "Understanding
// PCIe performance for end host networking", SIGCOMM 2018), which takes them from the PCIe
// Base Specification. docs/pcie.md derives every number.
#pragma once
#include <cstdint>
#include <string>

#include "core/resource.h"
#include "core/time.h"
#include "core/types.h"

namespace iommusim {

struct PcieLinkParams {
    uint32_t gen = 3;             // 1..6: 2.5, 5, 8, 16, 32, 64 GT/s per lane
    uint32_t lanes = 8;           // negotiated width
    uint32_t mps = 256;           // Max_Payload_Size, bytes
    uint32_t mrrs = 512;          // Max_Read_Request_Size, bytes
    uint32_t rcb = 64;            // Read Completion Boundary, bytes
    bool cpl_rcb_chunks = false;  // completions cut at every RCB (a cache line each), not at MPS
    bool ecrc = false;            // TLP Digest (ECRC) on every TLP
    bool addr64 = true;           // memory requests use the 4-DW header (64-bit address)
    bool flit_layout = false;     // Gen6: account the 256-byte flit exactly
    uint32_t latency_ns = 100;    // one traversal, excluding serialization
    // Flow-control credits the receivers advertise (PCIe Base Spec section 2.6.1), 0 =
    // infinite: at the host end for the device's requests (posted and non-posted, header and
    // 16-byte data credits), at the device end for completions (an Endpoint must advertise
    // infinite completion credits).
    uint32_t fc_ph = 0, fc_pd = 0, fc_nph = 0, fc_npd = 0, fc_cplh = 0, fc_cpld = 0;

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("gen", gen, "", "PCIe generation: 1..6 = 2.5, 5, 8, 16, 32, 64 GT/s per lane", 1, 6);
        v("lanes", lanes, "lanes", "link width: 1, 2, 4, 8, 16 or 32", 1, 32);
        v("mps", mps, "bytes", "Max_Payload_Size: 128, 256, .. 4096", 128, 4096);
        v("mrrs", mrrs, "bytes", "Max_Read_Request_Size: 128, 256, .. 4096", 128, 4096);
        v("rcb", rcb, "bytes", "Read Completion Boundary: 64 or 128", 64, 128);
        v("cpl_rcb_chunks", cpl_rcb_chunks, "",
          "read completions cut at every RCB (hosts returning a cache line each) instead of at MPS", 0, 1);
        v("ecrc", ecrc, "", "every TLP carries a 4-byte TLP Digest (ECRC)", 0, 1);
        v("addr64", addr64, "", "memory requests use 4-DW headers (64-bit addresses), else 3-DW", 0,
          1);
        v("flit_layout", flit_layout, "",
          "Gen6 only: exact 256-byte flit accounting instead of pcie-bench's 242/256", 0, 1);
        v("latency_ns", latency_ns, "ns",
          "one traversal of the link (PHY and data-link pipelines, flight), not serialization", 0,
          1000000);
        v("fc.ph", fc_ph, "credits",
          "posted header credits advertised at the host end (one per MWr/Msg); 0 = infinite", 0,
          255);
        v("fc.pd", fc_pd, "credits",
          "posted data credits at the host end (one per 16 bytes); 0 = infinite", 0, 4095);
        v("fc.nph", fc_nph, "credits",
          "non-posted header credits at the host end (one per MRd/AtomicOp); 0 = infinite", 0, 255);
        v("fc.npd", fc_npd, "credits",
          "non-posted data credits at the host end (AtomicOp operands); 0 = infinite", 0, 4095);
        v("fc.cplh", fc_cplh, "credits",
          "completion header credits at the device end; 0 = infinite (Endpoints must)", 0, 255);
        v("fc.cpld", fc_cpld, "credits",
          "completion data credits at the device end (one per 16 bytes); 0 = infinite", 0, 4095);
    }
    // Every field valid (ranges and powers of two); otherwise false with the reason in *why.
    bool valid(std::string* why = nullptr) const;
};

// TLP types by their size on the wire (PCIe Base Specification, section 2.1 and 2.2).
enum class TlpType : uint8_t {
    MWr,       // Memory Write request: header + payload
    MRd,       // Memory Read request: header only
    CplD,      // Completion with Data: 3-DW header + payload
    Cpl,       // Completion without data (e.g. an Unsupported Request status)
    Msg,       // Message (Msg/MsgD): 4-DW header (+ payload)
    AtomicOp,  // FetchAdd/Swap/CAS request: memory-request header + operands
};
const char* to_string(TlpType t);

// The pcie-bench constants (PCIe Base Specification 5.0 for the tables).
namespace pcie_const {
constexpr unsigned kDllpBytes = 8;        // ACK or UpdateFC DLLP: 2 B framing + 4 B + 2 B CRC
constexpr unsigned kSkipLength = 4;       // SKIP ordered set, per lane
constexpr unsigned kSkipInterval = 1538;  // symbols between SKIP ordered sets
constexpr unsigned kTlpFraming = 8;       // per TLP: framing (STP/END) + sequence number + LCRC
constexpr unsigned kHdr3Dw = 12, kHdr4Dw = 16;
constexpr unsigned kDigest = 4;  // ECRC
constexpr unsigned kFlitBytes = 256, kFlitTlpBytes = 236, kFlitDlpBytes = 6;
}  // namespace pcie_const

// Per lane, in GT/s (giga-transfers per second).
double transfer_rate_gts(unsigned gen);
// Data bits per transferred bit: 8b/10b (Gen1-2), 128b/130b (Gen3-5), Gen6 flit 242/256
// (pcie-bench) or, with flit_layout, 236/256 (only TLP bytes count; DLP bytes carry DLLPs).
double encoding_efficiency(const PcieLinkParams& p);
// Gb/s of encoded data over all lanes: GT/s x encoding x lanes.
double raw_gbps(const PcieLinkParams& p);
// PCIe spec tables (pcie-bench Ack_Limits, FC_Guide): bytes of TLP traffic per ACK DLLP and
// per UpdateFC DLLP for the generation, width and MPS.
unsigned ack_limit(unsigned gen, unsigned lanes, unsigned mps);
unsigned fc_update_interval(unsigned gen, unsigned lanes, unsigned mps);
// Fractions of the raw rate taken by ACK + UpdateFC DLLPs, and by SKIP ordered sets.
double dllp_overhead(const PcieLinkParams& p);
double skip_overhead(const PcieLinkParams& p);
// The rate left for TLPs, per direction: raw x (1 - DLLP - SKIP overheads).
double tlp_gbps(const PcieLinkParams& p);
// One symbol time (8 data bits on a lane), in ns: 4 at Gen1, 2 at Gen2, 1.016 at Gen3.
double symbol_ns(const PcieLinkParams& p);
// How long after a receiver frees buffer space the transmitter has the credits back: half
// the spec's UpdateFC transmission latency guideline (Tables 2-46..2-48, in symbol times,
// the table behind fc_update_interval: UpdateFCs go out that often on a busy link, so a
// freed credit waits half of it on average) plus one traversal of the link.
Tick credit_return_ticks(const PcieLinkParams& p);

// Bytes a TLP puts on the wire besides its payload: framing + sequence + LCRC (none with
// flit_layout: the flit carries them), header, optional digest.
unsigned tlp_overhead_bytes(const PcieLinkParams& p, TlpType t);
// Time per wire byte at the TLP rate (the rate of a link direction's server).
Rate tlp_rate(const PcieLinkParams& p);
// Serialization time of `bytes` alone at the TLP rate, rounded up to whole picoseconds (as
// a link serializes one TLP on an idle direction).
Tick wire_time(const PcieLinkParams& p, uint64_t bytes);

// Splitting. Pieces end at naturally aligned boundaries of the unit (MPS for write TLPs,
// MRRS for read requests, MPS or RCB for completions), so no piece crosses a 4 KiB boundary
// and an aligned transfer of S bytes takes ceil(S / unit) pieces. A zero-length transfer is
// one piece (a zero-length read still makes a TLP).
inline uint32_t piece_bytes(Addr addr, uint64_t left, uint32_t unit) {
    const uint64_t to_boundary = unit - (addr & (unit - 1));
    return uint32_t(left < to_boundary ? left : to_boundary);
}
uint32_t count_pieces(Addr addr, uint64_t len, uint32_t unit);
uint32_t completion_unit(const PcieLinkParams& p);  // MPS, or RCB with cpl_rcb_chunks

// TLPs and wire bytes of one transfer in each direction. Upstream carries requests (and
// write data) from the device toward the root; downstream carries the completions.
struct WireCost {
    uint32_t up_tlps = 0, down_tlps = 0;
    uint64_t up_bytes = 0, down_bytes = 0;
};
WireCost write_cost(const PcieLinkParams& p, Addr addr, uint64_t len);
// Read requests split at MRRS; the completions of each request split at MPS (or RCB).
WireCost read_cost(const PcieLinkParams& p, Addr addr, uint64_t len);

// Achievable payload bandwidth in Gb/s for back-to-back transfers of `size` bytes (pcie-bench
// mem_bw.write / mem_bw.read with the TLP rate available in both directions). A read is
// limited by whichever direction its bytes fill first.
double write_bandwidth_gbps(const PcieLinkParams& p, uint64_t size, Addr addr = 0);
double read_bandwidth_gbps(const PcieLinkParams& p, uint64_t size, Addr addr = 0);

}  // namespace iommusim
