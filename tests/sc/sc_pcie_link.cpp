// SystemC bench: a device streams back-to-back 4 KiB writes, then reads, through one PCIe
// link into memory. The bandwidth achieved in simulated time must be the link model's
// prediction (pcie-bench formulas) within 1%, the TLP counts must follow the MPS/MRRS/RCB
// splitting rules, data must arrive intact, and an idle link's latency must add up.
#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <systemc>
#include <vector>

#include "memory/fixed_memory.h"
#include "pcie/pcie_link.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;

namespace {

constexpr unsigned kXfer = 4096;
constexpr unsigned kCount = 256;  // transfers per phase
constexpr uint64_t kMemNs = 80;
const Requester kDev = Requester::bdf(1, 0, 0);

// A DMA of `len` bytes issued `delay` after the current time; returns the completion time.
Tick dma(tlm_utils::simple_initiator_socket<sc_module>& s, bool write, Addr a, uint8_t* buf,
         unsigned len, tlm::tlm_response_status* st = nullptr, bool byte_enables = false) {
    uint8_t be[4] = {0xff, 0xff, 0xff, 0xff};  // outlives the payload that points to it
    test::DmaPayload d(kDev, write, a, buf, len);
    if (byte_enables) d.p.set_byte_enable_ptr(be), d.p.set_byte_enable_length(4);
    sc_time delay = SC_ZERO_TIME;
    s->b_transport(d.p, delay);
    if (st) *st = d.p.get_response_status();
    return to_ticks(sc_time_stamp() + delay);
}

// One device -> link -> memory path with its own link configuration.
struct Path {
    std::string what;
    PcieLinkParams params;
    SparseMemory store;
    StatGroup stats;
    PcieLink link;
    FixedMemory mem;
    tlm_utils::simple_initiator_socket<sc_module> dev;

    Path(const std::string& name, const std::string& desc, const PcieLinkParams& p)
        : what(desc),
          params(p),
          stats(name),
          link((name + "_link").c_str(), p, stats),
          mem((name + "_mem").c_str(), store, sc_time(double(kMemNs), SC_NS)),
          dev((name + "_dev").c_str()) {
        dev.bind(link.device);
        link.host.bind(mem.target);
    }
    Counter& up(const char* n) { return stats.child("upstream").counter(n, ""); }
    Counter& down(const char* n) { return stats.child("downstream").counter(n, ""); }
    void drain() {  // wait until both directions are idle
        const Tick t = std::max(link.upstream_free_at(), link.downstream_free_at());
        const Tick now = to_ticks(sc_time_stamp());
        wait(to_sc_time((t > now ? t - now : 0) + 1'000'000));
    }
};

PcieLinkParams make(unsigned gen, unsigned lanes, unsigned mps, unsigned mrrs, bool rcb_chunks,
                    bool addr64, bool flit = false) {
    PcieLinkParams p;
    p.gen = gen;
    p.lanes = lanes;
    p.mps = mps;
    p.mrrs = mrrs;
    p.cpl_rcb_chunks = rcb_chunks;
    p.addr64 = addr64;
    p.flit_layout = flit;
    return p;
}

struct Bench : sc_module {
    std::vector<std::unique_ptr<Path>> paths;
    test::Checker check{test::Checker::Where::Thread};

    SC_HAS_PROCESS(Bench);
    explicit Bench(sc_module_name n) : sc_module(n) {
        paths.push_back(std::make_unique<Path>("gen3x8", "Gen3 x8, MPS 256, MRRS 512",
                                               make(3, 8, 256, 512, false, true)));
        paths.push_back(std::make_unique<Path>("gen3x8rcb", "Gen3 x8, completions at RCB 64",
                                               make(3, 8, 256, 512, true, true)));
        paths.push_back(std::make_unique<Path>("gen4x16", "Gen4 x16, MPS 512, MRRS 4096, 3-DW",
                                               make(4, 16, 512, 4096, false, false)));
        paths.push_back(std::make_unique<Path>("gen6x16", "Gen6 x16 flit, MPS 256, MRRS 512",
                                               make(6, 16, 256, 512, false, true, true)));
        SC_THREAD(run);
    }

    // Back-to-back transfers (all ready now: unlimited outstanding requests); the steady-state
    // rate is measured between the first and the last completion.
    double stream(Path& x, bool write, std::vector<uint8_t>& buf) {
        x.drain();
        Tick first = 0, last = 0;
        for (unsigned i = 0; i < kCount; ++i) {
            const Tick done = dma(x.dev, write, Addr(i) * kXfer, &buf[i * kXfer], kXfer);
            if (i == 0) first = done;
            last = done;
        }
        return double(kCount - 1) * kXfer * 8 * 1000.0 / double(last - first);  // Gb/s
    }

    void measure(Path& x) {
        const PcieLinkParams& p = x.params;
        std::vector<uint8_t> out(kCount * kXfer), in(kCount * kXfer);
        for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(i * 7 + i / 4096);

        const double w = stream(x, true, out), w_model = write_bandwidth_gbps(p, kXfer);
        const double r = stream(x, false, in), r_model = read_bandwidth_gbps(p, kXfer);
        fmt::print("{:36} write {:8.3f} Gb/s (model {:8.3f})  read {:8.3f} Gb/s (model {:8.3f})\n",
                   x.what, w, w_model, r, r_model);
        check(std::fabs(w / w_model - 1) < 0.01,
              fmt::format("{}: write {:.3f} within 1% of {:.3f}", x.what, w, w_model));
        check(std::fabs(r / r_model - 1) < 0.01,
              fmt::format("{}: read {:.3f} within 1% of {:.3f}", x.what, r, r_model));
        check(in == out, x.what + ": the reads return what the writes stored");

        const WireCost wc = write_cost(p, 0, kXfer), rc = read_cost(p, 0, kXfer);
        check(x.up("mwr_tlps").value() == uint64_t(kCount) * wc.up_tlps,
              fmt::format("{}: {} MWr TLPs = {} x {}", x.what, x.up("mwr_tlps").value(), kCount,
                          wc.up_tlps));
        check(x.up("mrd_tlps").value() == uint64_t(kCount) * rc.up_tlps,
              fmt::format("{}: {} MRd TLPs", x.what, x.up("mrd_tlps").value()));
        check(x.down("cpld_tlps").value() == uint64_t(kCount) * rc.down_tlps,
              fmt::format("{}: {} CplD TLPs", x.what, x.down("cpld_tlps").value()));
        check(x.up("wire_bytes").value() == uint64_t(kCount) * (wc.up_bytes + rc.up_bytes),
              x.what + ": upstream wire bytes");
        check(x.down("wire_bytes").value() == uint64_t(kCount) * rc.down_bytes,
              x.what + ": downstream wire bytes");
        check(x.up("payload_bytes").value() == uint64_t(kCount) * kXfer,
              x.what + ": upstream payload bytes");
    }

    void run() {
        for (auto& x : paths) measure(*x);
        Path& x = *paths[0];  // Gen3 x8, MPS 256, MRRS 512
        const PcieLinkParams& p = x.params;

        // The expected values of the Gen3 x8 path, as the link model derives them.
        check(p.mps == 256 && tlp_overhead_bytes(p, TlpType::MWr) == 24, "Gen3 x8 path setup");
        check(x.up("mwr_tlps").value() == kCount * 16, "16 MWr per 4 KiB at MPS 256");
        check(x.up("mrd_tlps").value() == kCount * 8, "8 MRd per 4 KiB at MRRS 512");
        check(x.down("cpld_tlps").value() == kCount * 16, "16 CplD per 4 KiB at MPS 256");
        check(paths[1]->down("cpld_tlps").value() == kCount * 64, "64 CplD per 4 KiB at RCB 64");

        // Idle link, one 64-byte read: MRd serialization, link, memory, CplD serialization,
        // link back.
        x.drain();
        uint8_t small[64];
        const Tick t = to_ticks(sc_time_stamp());
        const Tick done = dma(x.dev, false, 0x40, small, 64);
        const Tick expect = wire_time(p, 24) + wire_time(p, 20 + 64) +
                            2 * Tick(p.latency_ns) * kTicksPerNs + kMemNs * kTicksPerNs;
        check(done - t == expect,
              fmt::format("idle 64 B read latency {} ps == {} ps", done - t, expect));

        // Small reads near the boundaries of the single-request path: within the completion
        // unit (one MRd, one CplD), across a completion boundary only (one MRd, two CplD:
        // RCB 64 on the second path, MPS 256 on the first), across an MRRS boundary (two of
        // each). Counts and wire bytes as the link model splits them, and the data intact.
        struct SmallRead {
            Path* path;
            Addr addr;
            unsigned mrd, cpld;
        };
        const SmallRead reads[] = {{&x, 0x1'0040, 1, 1},
                                   {paths[1].get(), 0x1'0040, 1, 1},
                                   {paths[1].get(), 0x1'0060, 1, 2},
                                   {&x, 0x1'02e0, 1, 2},
                                   {&x, 0x1'03e0, 2, 2}};
        for (const SmallRead& r : reads) {
            Path& y = *r.path;
            y.drain();
            std::vector<uint8_t> want(64), got(64);
            for (size_t i = 0; i < want.size(); ++i) want[i] = uint8_t(r.addr + 3 * i);
            y.store.write(r.addr, want.data(), want.size());
            const uint64_t mrd0 = y.up("mrd_tlps").value(), cpld0 = y.down("cpld_tlps").value();
            const uint64_t up0 = y.up("wire_bytes").value(), down0 = y.down("wire_bytes").value();
            const uint64_t tlps0 = y.up("tlps").value() + y.down("tlps").value();
            dma(y.dev, false, r.addr, got.data(), 64);
            const WireCost c = read_cost(y.params, r.addr, 64);
            const std::string what = fmt::format("{}: 64 B read at {:#x}", y.what, r.addr);
            check(c.up_tlps == r.mrd && c.down_tlps == r.cpld, what + ": the model's split");
            check(y.up("mrd_tlps").value() - mrd0 == r.mrd, what + ": MRd TLPs");
            check(y.down("cpld_tlps").value() - cpld0 == r.cpld, what + ": CplD TLPs");
            check(y.up("tlps").value() + y.down("tlps").value() - tlps0 == r.mrd + r.cpld,
                  what + ": TLPs");
            check(y.up("wire_bytes").value() - up0 == c.up_bytes, what + ": upstream wire bytes");
            check(y.down("wire_bytes").value() - down0 == c.down_bytes,
                  what + ": downstream wire bytes");
            check(got == want, what + ": the data read");
        }

        // An unaligned write is cut at MPS boundaries: 0x1f0..0x410 is 4 MWr TLPs.
        x.drain();
        const uint64_t mwr0 = x.up("mwr_tlps").value();
        std::vector<uint8_t> data(0x220), got(0x220);
        for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(0xa5 ^ i);
        tlm::tlm_response_status st;
        dma(x.dev, true, 0x10'01f0, data.data(), 0x220, &st);
        check(st == tlm::TLM_OK_RESPONSE, "unaligned write succeeds");
        check(x.up("mwr_tlps").value() - mwr0 == 4, "unaligned write makes 4 MWr TLPs");
        x.store.read(0x10'01f0, got.data(), got.size());
        check(got == data, "unaligned write data lands in place");

        // Byte enables are rejected (TLPs carry contiguous data) and counted as errors.
        const uint64_t err0 = x.stats.counter("errors", "").value();
        dma(x.dev, true, 0, data.data(), 4, &st, true);
        check(st == tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE, "byte enables are rejected");
        check(x.stats.counter("errors", "").value() == err0 + 1, "the rejection is counted");

        // An access the memory refuses comes back as an error; the read's completion is a
        // Cpl without data.
        const uint64_t cpl0 = x.down("cpl_tlps").value();
        dma(x.dev, false, Addr(1) << 60, small, 64, &st);
        check(st != tlm::TLM_OK_RESPONSE, "a read the memory refuses fails");
        check(x.down("cpl_tlps").value() == cpl0 + 1, "its completion is a Cpl without data");

        // Queueing delays were recorded: back-to-back streams wait for the link.
        const Histogram& q = x.stats.child("upstream").histogram("queueing", "ns", "");
        check(q.count() > 0 && q.max() > 0, "upstream queueing histogram filled");
        check.reached_end();
    }
};

}  // namespace

int sc_main(int, char*[]) {
    Bench b("bench");
    sc_start();
    return b.check.finish();
}
