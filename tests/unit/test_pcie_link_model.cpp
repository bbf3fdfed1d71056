// The PCIe link bandwidth model against hand-computed values of the pcie-bench model
// (pcie-bench/pcie-model model/pcie.py and model/mem_bw.py), the splitting rules, and
// properties that must hold for every configuration.
#include <catch2/catch.hpp>

#include <random>

#include "pcie/link_model.h"

using namespace iommusim;

namespace {

PcieLinkParams link(unsigned gen, unsigned lanes, unsigned mps = 256, unsigned mrrs = 512) {
    PcieLinkParams p;
    p.gen = gen;
    p.lanes = lanes;
    p.mps = mps;
    p.mrrs = mrrs;
    return p;
}

constexpr unsigned kLanes[] = {1, 2, 4, 8, 16, 32};
constexpr unsigned kSizes[] = {128, 256, 512, 1024, 2048, 4096};

}  // namespace

TEST_CASE("pcie: Gen3 x8 matches the hand-computed pcie-bench values", "[pcie]") {
    const PcieLinkParams p = link(3, 8);  // MPS 256, MRRS 512, RCB 64, 64-bit, no ECRC
    // raw = 8 GT/s * 128/130 * 8 lanes = 63.015385 Gb/s
    CHECK(raw_gbps(p) == Approx(63.015385).epsilon(1e-7));
    // Ack limit and UpdateFC interval (Gen3, x8, MPS 256) are both 203:
    // DLLP overhead = 8/203 + 8/203 = 0.0788177; SKIP = 4/1538 = 0.0026008
    CHECK(ack_limit(3, 8, 256) == 203);
    CHECK(fc_update_interval(3, 8, 256) == 203);
    CHECK(dllp_overhead(p) == Approx(16.0 / 203));
    CHECK(skip_overhead(p) == Approx(4.0 / 1538));
    // TLP rate = 63.015385 * (1 - 0.0788177 - 0.0026008) = 57.884766 Gb/s
    CHECK(tlp_gbps(p) == Approx(57.884766).epsilon(1e-7));
    // MWr/MRd: 8 (framing, sequence, LCRC) + 16 (4-DW header) = 24; CplD: 8 + 12 = 20
    CHECK(tlp_overhead_bytes(p, TlpType::MWr) == 24);
    CHECK(tlp_overhead_bytes(p, TlpType::MRd) == 24);
    CHECK(tlp_overhead_bytes(p, TlpType::CplD) == 20);
    // 4 KiB write: 16 MWr -> 4096 + 16*24 = 4480 bytes; 57.884766 * 4096/4480 = 52.923214
    CHECK(write_bandwidth_gbps(p, 4096) == Approx(52.923214).epsilon(1e-7));
    // 4 KiB read: 8 MRd = 192 bytes up; 16 CplD = 4096 + 16*20 = 4416 bytes down (busier)
    // 57.884766 * 4096/4416 = 53.690217
    CHECK(read_bandwidth_gbps(p, 4096) == Approx(53.690217).epsilon(1e-7));
    // 64 B: write 64/(64+24) * 57.884766 = 42.098011; read 64/(64+20) * ... = 44.102679
    CHECK(write_bandwidth_gbps(p, 64) == Approx(42.098011).epsilon(1e-7));
    CHECK(read_bandwidth_gbps(p, 64) == Approx(44.102679).epsilon(1e-7));
    // One 280-byte MWr (256 payload) takes 280 * 8 / 57.884766 ns = 38.698 ns
    CHECK(wire_time(p, 280) == 38698);
}

TEST_CASE("pcie: Gen4 x16 matches the hand-computed pcie-bench values", "[pcie]") {
    const PcieLinkParams p = link(4, 16);
    // raw = 16 GT/s * 128/130 * 16 lanes = 252.061538 Gb/s
    CHECK(raw_gbps(p) == Approx(252.061538).epsilon(1e-7));
    // Ack limit = UpdateFC interval = 168 (Gen4, x16, MPS 256):
    // overheads = 16/168 + 4/1538 = 0.0952381 + 0.0026008 = 0.0978389
    CHECK(ack_limit(4, 16, 256) == 168);
    CHECK(fc_update_interval(4, 16, 256) == 168);
    // TLP rate = 252.061538 * (1 - 0.0978389) = 227.400121 Gb/s
    CHECK(tlp_gbps(p) == Approx(227.400121).epsilon(1e-7));
    // 4 KiB write: 227.400121 * 4096/4480 = 207.908682
    CHECK(write_bandwidth_gbps(p, 4096) == Approx(207.908682).epsilon(1e-7));
    // 4 KiB read: 227.400121 * 4096/4416 = 210.921851
    CHECK(read_bandwidth_gbps(p, 4096) == Approx(210.921851).epsilon(1e-7));
    // 64 B: write 227.400121 * 64/88 = 165.381906; read 227.400121 * 64/84 = 173.257235
    CHECK(write_bandwidth_gbps(p, 64) == Approx(165.381906).epsilon(1e-7));
    CHECK(read_bandwidth_gbps(p, 64) == Approx(173.257235).epsilon(1e-7));
}

TEST_CASE("pcie: generations, encodings and the Gen6 flit", "[pcie]") {
    CHECK(transfer_rate_gts(1) == 2.5);
    CHECK(transfer_rate_gts(2) == 5.0);
    CHECK(transfer_rate_gts(3) == 8.0);
    CHECK(transfer_rate_gts(4) == 16.0);
    CHECK(transfer_rate_gts(5) == 32.0);
    CHECK(transfer_rate_gts(6) == 64.0);
    CHECK(encoding_efficiency(link(2, 1)) == Approx(0.8));
    CHECK(encoding_efficiency(link(5, 1)) == Approx(128.0 / 130));
    CHECK(encoding_efficiency(link(6, 1)) == Approx(242.0 / 256));
    // Gen1 x1, MPS 128: raw 2.5 * 0.8 = 2.0; limits 237: 2.0 * (1 - 16/237 - 4/1538) = 1.859777
    CHECK(tlp_gbps(link(1, 1, 128)) == Approx(1.859777).epsilon(1e-6));
    // Gen6 x16 as pcie-bench: raw 64 * 242/256 * 16 = 968; Gen5 tables (168):
    // 968 * (1 - 16/168 - 4/1538) = 873.291969
    CHECK(tlp_gbps(link(6, 16)) == Approx(873.291969).epsilon(1e-7));
    // With the exact flit: 236 TLP bytes of 256, DLLPs in the DLP bytes, no per-TLP
    // framing/LCRC: raw 64 * 236/256 * 16 = 944; 944 * (1 - 4/1538) = 941.544863
    PcieLinkParams f = link(6, 16);
    f.flit_layout = true;
    CHECK(raw_gbps(f) == Approx(944.0));
    CHECK(dllp_overhead(f) == 0.0);
    CHECK(tlp_gbps(f) == Approx(941.544863).epsilon(1e-7));
    CHECK(tlp_overhead_bytes(f, TlpType::MWr) == 16);
    CHECK(tlp_overhead_bytes(f, TlpType::CplD) == 12);
    // flit_layout means nothing below Gen6
    PcieLinkParams g5 = link(5, 16);
    g5.flit_layout = true;
    CHECK(tlp_gbps(g5) == Approx(tlp_gbps(link(5, 16))));
}

TEST_CASE("pcie: header sizes follow addressing, ECRC and TLP type", "[pcie]") {
    PcieLinkParams p = link(3, 8);
    p.addr64 = false;  // 3-DW headers: 8 + 12
    CHECK(tlp_overhead_bytes(p, TlpType::MWr) == 20);
    CHECK(tlp_overhead_bytes(p, TlpType::MRd) == 20);
    CHECK(tlp_overhead_bytes(p, TlpType::AtomicOp) == 20);
    p.ecrc = true;  // + 4-byte digest on every TLP
    CHECK(tlp_overhead_bytes(p, TlpType::MWr) == 24);
    CHECK(tlp_overhead_bytes(p, TlpType::CplD) == 24);
    CHECK(tlp_overhead_bytes(p, TlpType::Cpl) == 24);
    CHECK(tlp_overhead_bytes(p, TlpType::Msg) == 28);  // messages always have 4-DW headers
    // 32-bit addressing, ECRC, 4 KiB write: 4096 + 16 * 24 = 4480, as 64-bit without ECRC
    CHECK(write_bandwidth_gbps(p, 4096) == Approx(write_bandwidth_gbps(link(3, 8), 4096)));
}

TEST_CASE("pcie: MPS, MRRS and RCB splitting counts", "[pcie]") {
    const PcieLinkParams p = link(3, 8);  // MPS 256, MRRS 512
    CHECK(count_pieces(0, 4096, 256) == 16);
    CHECK(count_pieces(0, 1, 256) == 1);
    CHECK(count_pieces(0, 0, 256) == 1);  // a zero-length request is still a TLP
    CHECK(count_pieces(0, 257, 256) == 2);
    // 0x1f0 + 0x220: 0x1f0-0x200, 0x200-0x300, 0x300-0x400, 0x400-0x410
    CHECK(count_pieces(0x1f0, 0x220, 256) == 4);
    CHECK(piece_bytes(0x1f0, 0x220, 256) == 0x10);

    WireCost w = write_cost(p, 0, 4096);
    CHECK(w.up_tlps == 16);
    CHECK(w.up_bytes == 4096 + 16 * 24);
    CHECK(w.down_tlps == 0);

    WireCost r = read_cost(p, 0, 4096);
    CHECK(r.up_tlps == 8);  // 4096 / MRRS 512
    CHECK(r.up_bytes == 8 * 24);
    CHECK(r.down_tlps == 16);  // 4096 / MPS 256
    CHECK(r.down_bytes == 4096 + 16 * 20);

    PcieLinkParams rcb = p;
    rcb.cpl_rcb_chunks = true;  // completions cut at every 64-byte RCB
    CHECK(read_cost(rcb, 0, 4096).down_tlps == 64);
    rcb.rcb = 128;
    CHECK(read_cost(rcb, 0, 4096).down_tlps == 32);

    // Unaligned: requests 0x40-0x200 (448 B) and 0x200-0x240 (64 B); completions of the first
    // 0x40-0x100 and 0x100-0x200, of the second one: 3 CplD.
    r = read_cost(p, 0x40, 512);
    CHECK(r.up_tlps == 2);
    CHECK(r.down_tlps == 3);

    // MRRS below MPS: a completion never exceeds its request, so 32 requests get 32 CplD
    // (pcie-bench's ceil(4096 / MPS) = 16 assumes MRRS >= MPS).
    r = read_cost(link(3, 8, 256, 128), 0, 4096);
    CHECK(r.up_tlps == 32);
    CHECK(r.down_tlps == 32);

    // With MRRS >= MPS the count equals pcie-bench's ceil(S / MPS) for every aligned size.
    for (unsigned mps : kSizes)
        for (unsigned mrrs : kSizes) {
            if (mrrs < mps) continue;
            const PcieLinkParams q = link(3, 8, mps, mrrs);
            for (uint64_t s = 1; s <= 9000; s += 37) {
                const WireCost c = read_cost(q, 0, s);
                REQUIRE(c.up_tlps == (s + mrrs - 1) / mrrs);
                REQUIRE(c.down_tlps == (s + mps - 1) / mps);
                REQUIRE(write_cost(q, 0, s).up_tlps == (s + mps - 1) / mps);
            }
        }
}

TEST_CASE("pcie: pieces cover the transfer and never cross the unit or 4 KiB", "[pcie]") {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; ++i) {
        const unsigned unit = kSizes[rng() % 6];
        const Addr a = rng() % (1 << 20);
        const uint64_t len = 1 + rng() % 20000;
        uint64_t done = 0;
        uint32_t n = 0;
        while (done < len) {
            const uint32_t b = piece_bytes(a + done, len - done, unit);
            REQUIRE(b >= 1);
            REQUIRE(b <= unit);
            REQUIRE((a + done) / 4096 == (a + done + b - 1) / 4096);
            REQUIRE((a + done) / unit == (a + done + b - 1) / unit);
            done += b;
            ++n;
        }
        REQUIRE(done == len);
        REQUIRE(n == count_pieces(a, len, unit));
        // An unaligned start costs at most one piece more than ceil(len / unit).
        REQUIRE(n <= (len + unit - 1) / unit + 1);
    }
}

TEST_CASE("pcie: monotonicity", "[pcie]") {
    for (unsigned mps : kSizes) {
        // Faster generations and wider links never lower the TLP rate.
        for (unsigned lanes : kLanes)
            for (unsigned gen = 2; gen <= 6; ++gen)
                REQUIRE(tlp_gbps(link(gen, lanes, mps)) > tlp_gbps(link(gen - 1, lanes, mps)));
        for (unsigned gen = 1; gen <= 6; ++gen)
            for (unsigned i = 1; i < 6; ++i)
                REQUIRE(tlp_gbps(link(gen, kLanes[i], mps)) >
                        tlp_gbps(link(gen, kLanes[i - 1], mps)));
    }
    for (unsigned gen = 1; gen <= 6; ++gen)
        for (unsigned lanes : kLanes) {
            const PcieLinkParams p = link(gen, lanes);
            const double tlp = tlp_gbps(p);
            // Up to one TLP, bigger payloads amortize the fixed per-TLP bytes better.
            for (uint64_t s = 2; s <= p.mps; ++s) {
                REQUIRE(write_bandwidth_gbps(p, s) > write_bandwidth_gbps(p, s - 1));
                REQUIRE(read_bandwidth_gbps(p, s) > read_bandwidth_gbps(p, s - 1));
            }
            for (uint64_t s = 1; s <= 9000; s += 13) {
                REQUIRE(write_bandwidth_gbps(p, s) < tlp);
                REQUIRE(read_bandwidth_gbps(p, s) < tlp);
                // Overheads only take bandwidth away.
                PcieLinkParams q = p;
                q.ecrc = true;
                REQUIRE(write_bandwidth_gbps(q, s) < write_bandwidth_gbps(p, s));
                q = p;
                q.addr64 = false;
                REQUIRE(write_bandwidth_gbps(q, s) > write_bandwidth_gbps(p, s));
                q = p;
                q.cpl_rcb_chunks = true;
                REQUIRE(read_bandwidth_gbps(q, s) <= read_bandwidth_gbps(p, s));
            }
            // A larger MPS never puts more bytes on the wire for the same write. (The rate
            // itself is not monotonic in MPS: the spec's Gen1 x8 ACK limits dip at 512.)
            for (unsigned i = 1; i < 6; ++i)
                REQUIRE(write_cost(link(gen, lanes, kSizes[i]), 0, 4096).up_bytes <
                        write_cost(link(gen, lanes, kSizes[i - 1]), 0, 4096).up_bytes);
        }
}

TEST_CASE("pcie: parameter validation names the parameter", "[pcie]") {
    std::string why;
    CHECK(link(3, 8).valid(&why));
    CHECK_FALSE(link(7, 8).valid(&why));
    CHECK(why.find("gen") != std::string::npos);
    CHECK_FALSE(link(3, 12).valid(&why));
    CHECK(why.find("lanes") != std::string::npos);
    CHECK_FALSE(link(3, 8, 384).valid(&why));
    CHECK(why.find("mps") != std::string::npos);
    CHECK_FALSE(link(3, 8, 256, 8192).valid(&why));
    CHECK(why.find("mrrs") != std::string::npos);
    PcieLinkParams p = link(3, 8);
    p.rcb = 256;
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("rcb") != std::string::npos);
    // visit() declares every field once, with a range that holds the default.
    unsigned n = 0;
    PcieLinkParams d;
    d.visit([&](const char* name, auto& field, const char*, const char* doc, auto lo, auto hi) {
        INFO(name);
        CHECK(std::string(doc).size() > 10);
        CHECK(double(field) >= double(lo));
        CHECK(double(field) <= double(hi));
        ++n;
    });
    CHECK(n == 16);
}
