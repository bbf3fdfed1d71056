// SystemC bench: a PCIe fabric of links, a switch and two root complexes.
//
//   devA - linkA --+
//                  switch0 - linkU - rc0.root_port[0] --+
//   devB - linkB --+                                      rc0.host -> memory
//   devC - linkC ----------------- rc0.root_port[1] ----+
//   devD - linkD ----------------- rc1.root_port[0] --- rc1.host -> memory (same store)
//
// Latencies of idle paths add up hop by hop; two devices sharing the switch's upstream link
// together get that link's bandwidth; per-port statistics count what each port carried; ACS
// Source Validation rejects a requester from outside the port's bus range; the two root
// complexes keep separate statistics.
#include <fmt/format.h>

#include <cmath>
#include <systemc>
#include <vector>

#include "memory/fixed_memory.h"
#include "pcie/pcie_link.h"
#include "pcie/pcie_switch.h"
#include "pcie/root_complex.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;

namespace {

constexpr uint64_t kMemNs = 80;
constexpr unsigned kXfer = 4096;
constexpr unsigned kCount = 128;

using Socket = tlm_utils::simple_initiator_socket<sc_module>;

// A DMA issued at absolute time `at` (not before now); returns its completion time.
Tick dma(Socket& s, Requester req, bool write, Addr a, uint8_t* buf, unsigned len, Tick at,
         tlm::tlm_response_status* st = nullptr) {
    test::DmaPayload d(req, write, a, buf, len);
    const Tick now = to_ticks(sc_time_stamp());
    sc_time delay = to_sc_time(at > now ? at - now : 0);
    s->b_transport(d.p, delay);
    if (st) *st = d.p.get_response_status();
    return to_ticks(sc_time_stamp() + delay);
}

Tick ns(uint64_t n) {
    return n * kTicksPerNs;
}

struct Bench : sc_module {
    const Requester rid_a = Requester::bdf(3, 0, 0), rid_b = Requester::bdf(4, 0, 0);
    const Requester rid_c = Requester::bdf(6, 0, 0), rid_d = Requester::bdf(0x41, 0, 0);
    PcieLinkParams lp;  // Gen3 x8 defaults everywhere
    PcieSwitchParams sp;
    RootComplexParams rp;
    StatGroup system{"system"};
    SparseMemory store;
    Socket dev_a{"dev_a"}, dev_b{"dev_b"}, dev_c{"dev_c"}, dev_d{"dev_d"};
    PcieLink link_a{"link_a", lp, system.child("link_a")};
    PcieLink link_b{"link_b", lp, system.child("link_b")};
    PcieLink link_c{"link_c", lp, system.child("link_c")};
    PcieLink link_d{"link_d", lp, system.child("link_d")};
    PcieLink link_u{"link_u", lp, system.child("link_u")};
    PcieSwitch sw{"switch0", sp, system.child("switch0")};
    RootComplex rc0{"rc0", rp, system.child("rc0")};
    RootComplex rc1{"rc1", rp, system.child("rc1")};
    FixedMemory mem0{"mem0", store, sc_time(double(kMemNs), SC_NS)};
    FixedMemory mem1{"mem1", store, sc_time(double(kMemNs), SC_NS)};
    test::Checker check{test::Checker::Where::Thread};

    SC_HAS_PROCESS(Bench);
    explicit Bench(sc_module_name n) : sc_module(n) {
        dev_a.bind(link_a.device);
        dev_b.bind(link_b.device);
        dev_c.bind(link_c.device);
        dev_d.bind(link_d.device);
        link_a.host.bind(sw.downstream_port);  // port 0
        link_b.host.bind(sw.downstream_port);  // port 1
        sw.upstream_port.bind(link_u.device);
        link_u.host.bind(rc0.root_port);  // port 0
        link_c.host.bind(rc0.root_port);  // port 1
        link_d.host.bind(rc1.root_port);  // port 0
        rc0.host.bind(mem0.target);
        rc1.host.bind(mem1.target);
        rc0.set_bus_range(0, 2, 4);  // the switch's buses
        rc1.set_bus_range(0, 0x41, 0x41);
        SC_THREAD(run);
    }

    uint64_t counter(const std::string& group, const char* name) {
        StatGroup* g = &system;
        size_t from = 0;
        for (size_t dot; (dot = group.find('.', from)) != std::string::npos; from = dot + 1)
            g = &g->child(group.substr(from, dot - from));
        return g->child(group.substr(from)).counter(name, "").value();
    }

    void run() {
        const Tick link = ns(lp.latency_ns), swl = ns(sp.latency_ns), rcl = ns(rp.latency_ns);
        const Tick mem = ns(kMemNs);
        const Tick mrd = wire_time(lp, 24), cpl64 = wire_time(lp, 20 + 64);
        const Tick mwr64 = wire_time(lp, 24 + 64);
        uint8_t buf[64] = {};

        // Idle 64-byte read through link, switch, link, root port: every hop twice.
        Tick t = to_ticks(sc_time_stamp());
        Tick lat = dma(dev_a, rid_a, false, 0x1000, buf, 64, t) - t;
        // MRd on link_a, switch, MRd on link_u, root port, memory, root port, CplD on link_u,
        // switch, CplD on link_a.
        Tick expect = (mrd + link) + swl + (mrd + link) + rcl + mem + rcl + (cpl64 + link) + swl +
                      (cpl64 + link);
        check(lat == expect, fmt::format("read through the switch: {} ps == {} ps", lat, expect));
        // Idle 64-byte write straight to a root port: posted, so the device is done when its
        // MWr has left (the root port's buffer takes it: credits are infinite here).
        lat = dma(dev_c, rid_c, true, 0x2000, buf, 64, t) - t;
        expect = mwr64;
        check(lat == expect,
              fmt::format("posted write to a root port: {} ps == {} ps", lat, expect));

        // Two devices stream 4 KiB writes as fast as their own links allow; the switch's
        // upstream link is the bottleneck and runs at its predicted bandwidth.
        const Tick start = to_ticks(sc_time_stamp()) + ns(10'000);
        const Tick gap = Tick(std::llround(kXfer * 8 * 1000.0 / write_bandwidth_gbps(lp, kXfer)));
        std::vector<uint8_t> a(kCount * kXfer), b(kCount * kXfer);
        for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i * 3), b[i] = uint8_t(i * 5 + 1);
        for (unsigned i = 0; i < kCount; ++i) {
            const Tick at = start + i * gap;
            for (int d = 0; d < 2; ++d) {
                Socket& s = d ? dev_b : dev_a;
                uint8_t* data = (d ? b : a).data() + i * kXfer;
                dma(s, d ? rid_b : rid_a, true, 0x100'0000 * (d + 1) + Addr(i) * kXfer, data, kXfer,
                    at);
            }
        }
        // Posted writes leave the devices at their own links' rate; the uplink's busy span
        // (its first MWr starts after one MWr on link_a, the link and the switch) shows
        // what it carried.
        const Tick first = start + wire_time(lp, 24 + lp.mps) + link + swl;
        const double bw =
            2.0 * kCount * kXfer * 8 * 1000.0 / double(link_u.upstream_free_at() - first);
        const double model = write_bandwidth_gbps(lp, kXfer);
        fmt::print("two devices through one Gen3 x8 upstream link: {:.3f} Gb/s (model {:.3f})\n",
                   bw, model);
        check(std::fabs(bw / model - 1) < 0.01,
              fmt::format("shared upstream link {:.3f} within 1% of {:.3f}", bw, model));

        // What each port carried: every TLP a device link sent arrives as one request.
        check(counter("switch0.port0", "requests") == counter("link_a.upstream", "tlps"),
              "switch port 0 carried link_a's TLPs");
        check(counter("switch0.port1", "requests") == counter("link_b.upstream", "tlps"),
              "switch port 1 carried link_b's TLPs");
        check(counter("rc0.port0", "requests") == counter("link_u.upstream", "tlps"),
              "root port 0 carried the switch link's TLPs");
        check(counter("rc0.port1", "requests") == 1, "root port 1 carried devC's write");
        check(counter("rc0.port0", "payload_bytes") == 2 * kCount * kXfer + 64,
              "root port 0 payload bytes");

        // Data: devB reads back what devA wrote, across both links and the switch.
        std::vector<uint8_t> got(kXfer);
        const Tick now = std::max(link_u.upstream_free_at(), link_u.downstream_free_at());
        dma(dev_b, rid_b, false, 0x100'0000 + 5 * kXfer, got.data(), kXfer, now);
        check(std::equal(got.begin(), got.end(), a.begin() + 5 * kXfer),
              "data written by one device reads back through another");

        // ACS Source Validation at rc1's root port: bus 0x41 only.
        tlm::tlm_response_status st;
        uint8_t pattern[8] = {1, 2, 3, 4, 5, 6, 7, 8}, mem_now[8];
        dma(dev_d, rid_d, true, 0x3000, pattern, 8, now, &st);
        check(st == tlm::TLM_OK_RESPONSE, "requester inside the bus range is accepted");
        uint8_t other[8] = {9, 9, 9, 9, 9, 9, 9, 9};
        dma(dev_d, Requester::bdf(0x42, 0, 0), true, 0x3000, other, 8, now, &st);
        check(st == tlm::TLM_GENERIC_ERROR_RESPONSE, "spoofed requester is a Completer Abort");
        store.read(0x3000, mem_now, 8);
        check(std::equal(mem_now, mem_now + 8, pattern), "the rejected write changed nothing");
        check(counter("rc1.port0", "acs_violations") == 1, "the violation is counted");
        check(counter("rc1.port0", "requests") == 2, "rc1 saw only devD's requests");
        check(counter("rc0.port0", "acs_violations") == 0, "rc0 saw no violation");
        check(counter("link_d", "errors") == 1, "the link counted the error response");
        check.reached_end();
    }
};

}  // namespace

int sc_main(int, char*[]) {
    Bench b("bench");
    sc_start();
    return b.check.finish();
}
