#include "link_model.h"

#include <fmt/format.h>

#include <cmath>

namespace iommusim {

namespace {

using namespace pcie_const;

// PCIe Base Specification 5.0 Tables 3-7..3-9 (Ack/Nak latency limits) and 2-46..2-48
// (UpdateFC transmission latency guidelines), in symbol times, as pcie-bench tabulates them:
// [generation group: Gen1, Gen2, Gen3 and later][width x1..x32][MPS 128..4096]. The model
// reads a limit as "one 8-byte DLLP per that many bytes"; pcie-bench uses the Gen5 values
// for Gen6. The two tables differ only at x32.
constexpr unsigned kAckLimit[3][6][6] = {
    {{237, 416, 559, 1071, 2095, 4143},
     {128, 217, 289, 545, 1057, 2081},
     {73, 118, 154, 282, 538, 1050},
     {67, 107, 86, 150, 278, 534},
     {48, 72, 86, 150, 278, 534},
     {33, 45, 52, 84, 148, 276}},
    {{288, 467, 610, 1122, 2146, 4194},
     {179, 268, 340, 596, 1108, 2132},
     {124, 169, 205, 333, 589, 1101},
     {118, 158, 137, 201, 329, 585},
     {99, 123, 137, 201, 329, 585},
     {84, 96, 103, 135, 199, 237}},
    {{333, 512, 655, 1167, 2191, 4239},
     {224, 313, 385, 641, 1153, 2177},
     {169, 214, 250, 378, 634, 1146},
     {163, 203, 182, 246, 374, 630},
     {144, 168, 182, 246, 374, 630},
     {129, 141, 148, 180, 244, 372}},
};
constexpr unsigned kFcGuide[3][6][6] = {
    {{237, 416, 559, 1071, 2095, 4143},
     {128, 217, 289, 545, 1057, 2081},
     {73, 118, 154, 282, 538, 1050},
     {67, 107, 86, 150, 278, 534},
     {48, 72, 86, 150, 278, 534},
     {33, 45, 52, 84, 248, 276}},
    {{288, 467, 610, 1122, 2146, 4194},
     {179, 268, 340, 596, 1108, 2132},
     {124, 169, 205, 333, 589, 1101},
     {118, 158, 137, 201, 329, 585},
     {99, 123, 137, 201, 329, 585},
     {84, 96, 103, 135, 199, 327}},
    {{333, 512, 655, 1167, 2191, 4239},
     {224, 313, 385, 641, 1153, 2177},
     {169, 214, 250, 378, 634, 1146},
     {163, 203, 182, 246, 374, 630},
     {144, 168, 182, 246, 374, 630},
     {129, 141, 148, 180, 244, 372}},
};

bool pow2(uint32_t v) {
    return v && !(v & (v - 1));
}
unsigned log2u(uint32_t v) {
    return unsigned(31 - __builtin_clz(v));
}
// Table indices; out-of-range inputs clamp (valid() rejects them before any model uses them).
unsigned gen_row(unsigned gen) {
    return gen <= 1 ? 0 : gen == 2 ? 1 : 2;
}
unsigned lanes_row(unsigned lanes) {
    const unsigned i = lanes ? log2u(lanes) : 0;
    return i > 5 ? 5 : i;
}
unsigned mps_col(unsigned mps) {
    const unsigned i = mps >= 128 ? log2u(mps) - 7 : 0;
    return i > 5 ? 5 : i;
}
bool flit(const PcieLinkParams& p) {
    return p.gen == 6 && p.flit_layout;
}

}  // namespace

bool PcieLinkParams::valid(std::string* why) const {
    std::string bad;
    if (gen < 1 || gen > 6)
        bad = fmt::format("pcie gen = {} is not a generation 1..6", gen);
    else if (!pow2(lanes) || lanes > 32)
        bad = fmt::format("pcie lanes = {} is not a width 1, 2, 4, 8, 16 or 32", lanes);
    else if (!pow2(mps) || mps < 128 || mps > 4096)
        bad = fmt::format("pcie mps = {} is not a Max_Payload_Size 128, 256, .. 4096", mps);
    else if (!pow2(mrrs) || mrrs < 128 || mrrs > 4096)
        bad = fmt::format("pcie mrrs = {} is not a Max_Read_Request_Size 128, 256, .. 4096", mrrs);
    else if (rcb != 64 && rcb != 128)
        bad = fmt::format("pcie rcb = {} is not a Read Completion Boundary 64 or 128", rcb);
    else if (latency_ns > 1000000)
        bad = fmt::format("pcie latency_ns = {} is outside [0, 1000000]", latency_ns);
    else if (fc_ph > 255 || fc_nph > 255 || fc_cplh > 255)
        bad = fmt::format("pcie fc.ph/nph/cplh = {}/{}/{}: header credits are 8-bit (0..255)",
                          fc_ph, fc_nph, fc_cplh);
    else if (fc_pd > 4095 || fc_npd > 4095 || fc_cpld > 4095)
        bad = fmt::format("pcie fc.pd/npd/cpld = {}/{}/{}: data credits are 12-bit (0..4095)",
                          fc_pd, fc_npd, fc_cpld);
    // A TLP can never be sent if one alone needs more credits than advertised (2.6.1).
    else if (fc_pd && fc_pd * 16 < mps)
        bad = fmt::format("pcie fc.pd = {} ({} bytes) cannot hold one MWr of mps = {}", fc_pd,
                          fc_pd * 16, mps);
    else if (fc_npd && fc_npd < 2)
        bad = fmt::format("pcie fc.npd = {} cannot hold one AtomicOp (up to 32 bytes: 2)", fc_npd);
    else if (fc_cpld && fc_cpld * 16 < (cpl_rcb_chunks ? rcb : mps))
        bad = fmt::format("pcie fc.cpld = {} ({} bytes) cannot hold one CplD of {} bytes", fc_cpld,
                          fc_cpld * 16, cpl_rcb_chunks ? rcb : mps);
    if (bad.empty()) return true;
    if (why) *why = bad;
    return false;
}

const char* to_string(TlpType t) {
    switch (t) {
        case TlpType::MWr: return "MWr";
        case TlpType::MRd: return "MRd";
        case TlpType::CplD: return "CplD";
        case TlpType::Cpl: return "Cpl";
        case TlpType::Msg: return "Msg";
        case TlpType::AtomicOp: return "AtomicOp";
    }
    return "?";
}

double transfer_rate_gts(unsigned gen) {
    static constexpr double kGts[] = {2.5, 5.0, 8.0, 16.0, 32.0, 64.0};
    return kGts[(gen < 1 ? 1 : gen > 6 ? 6 : gen) - 1];
}

double encoding_efficiency(const PcieLinkParams& p) {
    if (p.gen <= 2) return 8.0 / 10.0;
    if (p.gen <= 5) return 128.0 / 130.0;
    // A 256-byte flit holds 236 TLP bytes, 6 DLP bytes, 8 CRC and 6 FEC bytes; pcie-bench
    // counts TLP + DLP bytes as data (242/256).
    return flit(p) ? double(kFlitTlpBytes) / kFlitBytes
                   : double(kFlitTlpBytes + kFlitDlpBytes) / kFlitBytes;
}

double raw_gbps(const PcieLinkParams& p) {
    return transfer_rate_gts(p.gen) * encoding_efficiency(p) * p.lanes;
}

unsigned ack_limit(unsigned gen, unsigned lanes, unsigned mps) {
    return kAckLimit[gen_row(gen)][lanes_row(lanes)][mps_col(mps)];
}
unsigned fc_update_interval(unsigned gen, unsigned lanes, unsigned mps) {
    return kFcGuide[gen_row(gen)][lanes_row(lanes)][mps_col(mps)];
}

double dllp_overhead(const PcieLinkParams& p) {
    if (flit(p)) return 0.0;  // ACKs and flow-control updates ride in the flits' DLP bytes
    return double(kDllpBytes) / ack_limit(p.gen, p.lanes, p.mps) +
           double(kDllpBytes) / fc_update_interval(p.gen, p.lanes, p.mps);
}

double skip_overhead(const PcieLinkParams&) {
    return double(kSkipLength) / kSkipInterval;
}

double tlp_gbps(const PcieLinkParams& p) {
    return raw_gbps(p) * (1.0 - dllp_overhead(p) - skip_overhead(p));
}

double symbol_ns(const PcieLinkParams& p) {
    return 8.0 / (transfer_rate_gts(p.gen) * encoding_efficiency(p));
}

Tick credit_return_ticks(const PcieLinkParams& p) {
    // UpdateFCs go out every guideline interval on a busy link, so a freed credit waits half
    // an interval on average before it is announced.
    const double wait_ns = 0.5 * fc_update_interval(p.gen, p.lanes, p.mps) * symbol_ns(p);
    return Tick(wait_ns * kTicksPerNs + 0.5) + Tick(p.latency_ns) * kTicksPerNs;
}

unsigned tlp_overhead_bytes(const PcieLinkParams& p, TlpType t) {
    unsigned hdr = 0;
    switch (t) {
        case TlpType::MWr:
        case TlpType::MRd:
        case TlpType::AtomicOp: hdr = p.addr64 ? kHdr4Dw : kHdr3Dw; break;
        case TlpType::CplD:
        case TlpType::Cpl: hdr = kHdr3Dw; break;
        case TlpType::Msg: hdr = kHdr4Dw; break;
    }
    return (flit(p) ? 0 : kTlpFraming) + hdr + (p.ecrc ? kDigest : 0);
}

Rate tlp_rate(const PcieLinkParams& p) {
    // Gb/s is bits per ns: a byte takes 8 / gbps ns = 8000 / gbps ps.
    return Rate::ps_per_unit(8000.0 / tlp_gbps(p));
}

Tick wire_time(const PcieLinkParams& p, uint64_t bytes) {
    return tlp_rate(p).time(bytes);
}

uint32_t count_pieces(Addr addr, uint64_t len, uint32_t unit) {
    if (len == 0) return 1;
    const uint64_t first = piece_bytes(addr, len, unit);
    return uint32_t(1 + (len - first + unit - 1) / unit);
}

uint32_t completion_unit(const PcieLinkParams& p) {
    return p.cpl_rcb_chunks ? p.rcb : p.mps;
}

WireCost write_cost(const PcieLinkParams& p, Addr addr, uint64_t len) {
    WireCost c;
    c.up_tlps = count_pieces(addr, len, p.mps);
    c.up_bytes = uint64_t(c.up_tlps) * tlp_overhead_bytes(p, TlpType::MWr) + len;
    return c;
}

WireCost read_cost(const PcieLinkParams& p, Addr addr, uint64_t len) {
    WireCost c;
    const uint32_t cu = completion_unit(p);
    uint64_t done = 0;
    do {  // a completion never spans two read requests, so count them request by request
        const uint32_t n = piece_bytes(addr + done, len - done, p.mrrs);
        ++c.up_tlps;
        c.down_tlps += count_pieces(addr + done, n, cu);
        done += n;
    } while (done < len);
    c.up_bytes = uint64_t(c.up_tlps) * tlp_overhead_bytes(p, TlpType::MRd);
    c.down_bytes = uint64_t(c.down_tlps) * tlp_overhead_bytes(p, TlpType::CplD) + len;
    return c;
}

double write_bandwidth_gbps(const PcieLinkParams& p, uint64_t size, Addr addr) {
    const WireCost c = write_cost(p, addr, size);
    return tlp_gbps(p) * double(size) / double(c.up_bytes);
}

double read_bandwidth_gbps(const PcieLinkParams& p, uint64_t size, Addr addr) {
    const WireCost c = read_cost(p, addr, size);
    const uint64_t busiest = c.up_bytes > c.down_bytes ? c.up_bytes : c.down_bytes;
    return tlp_gbps(p) * double(size) / double(busiest);
}

}  // namespace iommusim
