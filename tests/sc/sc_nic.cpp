// SystemC bench of the NIC at quantum 0 on a fixed-latency memory (no IOMMU) with an
// identity DmaMapper: line-rate arrivals and transmissions (never above the line, equal to
// it when the DMA path keeps up), bytes moved equal to the frames, per-packet map/unmap
// calls, drops when mappings fail, when the driver is too slow and when the DMA path is too
// slow, DMA faults counted while the NIC carries on, the requester on every request,
// duration-bounded runs and reproducible sizes for a seed.
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <systemc>

#include "devices/nic.h"
#include "host/iova_space.h"
#include "sc_device_rig.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;

namespace {

constexpr Tick kNs = kTicksPerNs;
const NicLayout kLayout{0x1000'0000, 0x1010'0000, 0x2000'0000};

// A NIC on a tap on a fixed-latency memory.
struct Rig : test::DeviceRig<Nic> {
    Rig(const char* name, SparseMemory& store, Tick latency, const NicParams& p, uint32_t tags = 64,
        Tick map_cost = 0, Tick unmap_cost = 0)
        : DeviceRig(name, store, latency, p, kLayout, tags, map_cost, unmap_cost) {}
};

NicParams nic(NicDirection d, const char* sizes, double gbps, uint64_t count,
              NicBufferPolicy b = NicBufferPolicy::Pool, double sw_ns = 2) {
    NicParams p;
    p.direction = d;
    p.sizes = sizes;
    p.line_rate = gbps;
    p.count = count;
    p.buffers = b;
    p.sw_ns = sw_ns;
    p.ring_size = 512;
    return p;
}

// A strict-mode DMA API in miniature: IOVAs from an allocator with Linux's per-CPU range
// caches (the CPU named by set_cpu), a software cost per call and an invalidation wait per
// unmap. Checks that no live IOVA is handed out twice and that every unmap names a live
// mapping; keeps every range it mapped so DMAs can be checked against them.
struct StrictMapper : DmaMapper {
    Tick map_cost, unmap_cost;
    IovaSpace iova;
    std::map<Addr, std::pair<Addr, uint64_t>> live;  // iova -> (pa, len)
    std::map<Addr, Addr> mapped;                     // every iova ever mapped -> its pa
    std::set<unsigned> cpus;
    bool consistent = true;
    unsigned cpu = 0;
    std::vector<unsigned> map_cpu;                       // the CPU of each map call, in order
    std::map<unsigned, std::vector<Tick>> unmap_at;      // each CPU's unmaps' times
    std::map<unsigned, std::vector<size_t>> unmap_seen;  // the DMA requests issued before each
    const std::vector<test::Tap::Req>* issued = nullptr;
    StrictMapper(Tick m, Tick u) : map_cost(m), unmap_cost(u) {
        iova.add_window({Addr(1) << 32, Addr(1) << 32, "dma"});
        iova.enable_rcache({});
    }
    void set_cpu(unsigned c) override {
        iova.set_cpu(c);
        cpus.insert(c);
        cpu = c;
    }
    std::optional<Mapped> map(Addr pa, uint64_t len, bool, Tick at) override {
        map_cpu.push_back(cpu);
        const auto a = iova.alloc(len);
        if (!a) return std::nullopt;
        consistent &= live.count(*a) == 0;
        live[*a] = {pa, len};
        mapped[*a] = pa;
        return Mapped{*a, at + map_cost};
    }
    Tick unmap(Addr a, uint64_t len, Tick at) override {
        unmap_at[cpu].push_back(at);
        unmap_seen[cpu].push_back(issued ? issued->size() : 0);
        auto it = live.find(a);
        consistent &= it != live.end() && it->second.second == len;
        if (it != live.end()) live.erase(it);
        iova.free(a);
        return at + unmap_cost;
    }
};

// A NIC on a tap on memory with a StrictMapper: F&S-like RX (4 KB MTU at 100 Gb/s).
struct StrictRig {
    StatGroup stats;
    StrictMapper mapper;
    FixedMemory mem;
    test::Tap tap;
    Nic nic;
    StrictRig(const char* name, SparseMemory& store, const NicParams& p)
        : stats(name),
          mapper(150 * kTicksPerNs, 600 * kTicksPerNs),  // unmap: 150 ns + the wait
          mem(fmt::format("{}_mem", name).c_str(), store, to_sc_time(200 * kTicksPerNs)),
          tap(fmt::format("{}_tap", name).c_str(), p.requester().rid),
          nic(name, p, engine(), kLayout, &mapper, stats) {
        nic.dma.bind(tap.target);
        tap.down.bind(mem.target);
        tap.record = true;
        mapper.issued = &tap.log;
    }
    static DmaEngineParams engine() {
        DmaEngineParams e;
        e.tags = 256;
        return e;
    }
};

NicParams fs_like(uint32_t queues, uint32_t flows, NicSteering steering) {
    NicParams p;
    p.direction = NicDirection::Rx;
    p.sizes = "4114";
    p.buffer_size = 8192;
    p.line_rate = 100;
    p.count = 6000;
    p.buffers = NicBufferPolicy::PerPacket;
    p.sw_ns = 780;
    p.ring_size = 256;
    p.queues = queues;
    p.flows = flows;
    p.steering = steering;
    p.flow_burst = 16;
    return p;
}

// Line utilisation of a direction: frame bits plus preamble, SFD and gap over the run.
double utilisation(const NicResult::Dir& d, double gbps) {
    const double bits = double(d.bytes + kEthWireOverhead * d.packets) * 8;
    return bits * 1e12 / double(d.elapsed()) / (gbps * 1e9);
}

}  // namespace

int sc_main(int, char*[]) {
    tlm_utils::tlm_quantumkeeper::set_global_quantum(SC_ZERO_TIME);
    test::Checker check;
    SparseMemory store;
    const auto Rx = NicDirection::Rx, Tx = NicDirection::Tx, Both = NicDirection::Both;
    const auto PerPacket = NicBufferPolicy::PerPacket;

    Rig rx64("rx64", store, 100 * kNs, nic(Rx, "64", 100, 20000));
    Rig rximix("rximix", store, 100 * kNs, nic(Rx, "imix", 100, 20000));
    Rig tximix("tximix", store, 100 * kNs, nic(Tx, "imix", 100, 5000));
    Rig both("both", store, 100 * kNs, nic(Both, "imix", 100, 5000));
    Rig both2("both2", store, 100 * kNs, nic(Both, "imix", 100, 5000));
    NicParams seed2 = nic(Both, "imix", 100, 5000);
    seed2.seed = 2;
    Rig both3("both3", store, 100 * kNs, seed2);

    NicParams pp = nic(Rx, "1500", 10, 1000, PerPacket, 10);
    pp.ring_size = 64;
    pp.bus = 5, pp.device = 1, pp.function = 2;
    Rig rxmap("rxmap", store, 100 * kNs, pp, 64, 20 * kNs, 30 * kNs);
    rxmap.tap->record = true;
    Rig txmap("txmap", store, 100 * kNs, nic(Tx, "64:1,1500:1", 10, 1000, PerPacket, 10), 64,
              20 * kNs, 30 * kNs);

    NicParams fp = nic(Rx, "1500", 10, 200, PerPacket);
    fp.ring_size = 8;
    Rig rxfail("rxfail", store, 100 * kNs, fp);
    rxfail.mapper.ok_limit = 16;
    Rig txfail("txfail", store, 100 * kNs, nic(Tx, "1500", 10, 300, PerPacket));
    txfail.mapper.fail_every = 3;

    NicParams faultp = nic(Rx, "1500", 10, 80);
    faultp.ring_size = 8;
    Rig rxfault("rxfault", store, 100 * kNs, faultp);
    rxfault.tap->fail_lo = kLayout.buffers + 3 * 2048;  // pool buffer 3 of 8
    rxfault.tap->fail_hi = kLayout.buffers + 4 * 2048;

    NicParams slow = nic(Rx, "1500", 100, 2000);
    slow.rx_fifo = 64 << 10;
    Rig rxslow("rxslow", store, 2000 * kNs, slow, 8);
    NicParams busy = nic(Rx, "64", 100, 50000, NicBufferPolicy::Pool, 20);
    busy.ring_size = 256;
    Rig rxbusy("rxbusy", store, 100 * kNs, busy);

    NicParams dp = nic(Rx, "1500", 10, 0);
    dp.duration_ns = 10'000;
    Rig dur("dur", store, 100 * kNs, dp);
    test::Watcher watch("watch", rx64.dev->finished_event());
    // Strict mode, 1.53 us of driver work per 4 KB frame against 0.33 us frames: one queue
    // cannot keep up; five queues (one per flow) and RSS over eight queues can.
    StrictRig mq1("mq1", store, fs_like(1, 5, NicSteering::Flow));
    StrictRig mq5("mq5", store, fs_like(5, 5, NicSteering::Flow));
    StrictRig mqrss("mqrss", store, fs_like(8, 64, NicSteering::Rss));
    NicParams sp = fs_like(2, 2, NicSteering::Flow);
    sp.buffers = NicBufferPolicy::Striding;
    sp.wqe_pages = 8;  // 32 KiB buffers: 7 frames of 17 strides each, then the next buffer
    sp.wqes = 4;
    sp.count = 700;
    sp.line_rate = 10;  // the driver keeps up: no drops
    sp.flow_burst = 1;  // the queues take turns: 350 frames each
    StrictRig strided("strided", store, sp);
    NicParams ap = sp;  // the same with a TCP ACK every 7 frames of a queue
    ap.ack_every = 7;
    StrictRig acked("acked", store, ap);

    sc_start();

    // 64-byte frames at 100 Gb/s arrive every 6.72 ns; each becomes a data and a descriptor
    // write issued together, done 100 ns later.
    {
        const NicResult r = rx64.r();
        const uint64_t n = 20000;
        check(r.rx.offered == n && r.rx.packets == n && r.rx.drops == 0,
              fmt::format("rx 64 B: {} of {} delivered", r.rx.packets, r.rx.offered));
        check(watch.seen == r.rx.end, "finished event at the last write-back");
        check(r.rx.start == 0 && r.rx.end == n * 6720 + 100 * kNs,
              fmt::format("rx 64 B: last write-back at N * 6.72 ns + 100 ns ({})", r.rx.end));
        const double line = 100e9 / 672;
        check(
            r.rx.packet_rate() <= line && r.rx.packet_rate() > 0.999 * line,
            fmt::format("rx 64 B: {:.4f} Mpps at the line rate 148.81", r.rx.packet_rate() / 1e6));
        check(rx64.engine("bytes_written") == n * (60 + 16) && r.rx.bytes == n * 64,
              "rx 64 B: frames (less FCS) and descriptors written");
        const Histogram& h = rx64.stats.child("rx").histogram("latency", "ns", "");
        check(h.min() == 100 && h.max() == 100, "rx latency = the memory latency");
        check(rx64.stats.child("driver").counter("busy_ns", "").value() == 2 * n,
              "driver busy sw_ns per packet");
    }
    // IMIX both ways: never above the line, at it when the DMA path keeps up.
    for (auto [name, d] : {std::pair{"rx imix", rximix.r().rx}, std::pair{"tx imix", tximix.r().tx},
                           std::pair{"both rx", both.r().rx}, std::pair{"both tx", both.r().tx}}) {
        const double u = utilisation(d, 100);
        check(d.packets == d.offered && d.drops == 0 && u <= 1.0 && u > 0.995,
              fmt::format("{}: {} of {} sent, line utilisation {:.5f}", name, d.packets, d.offered,
                          u));
    }
    {
        const NicResult r = tximix.r();
        // Reads: a descriptor and the frame less its FCS per packet.
        check(tximix.engine("bytes_read") == r.tx.bytes - 4 * r.tx.packets + 16 * r.tx.packets &&
                  tximix.engine("bytes_written") == 16 * r.tx.packets,
              "tx: bytes read = frames less FCS + descriptors; write-backs written");
        check(r.tx.offered == 5000 && r.maps == 0, "tx pool: no mapping calls");
    }
    // Same seed, same sizes; another seed, other sizes. RX and TX draw separate streams.
    check(both.r().rx.bytes == both2.r().rx.bytes && both.r().tx.bytes == both2.r().tx.bytes &&
              both.r().rx.end == both2.r().rx.end,
          "same seed, same run");
    check(both.r().rx.bytes != both3.r().rx.bytes, "another seed, other sizes");
    check(both.r().rx.bytes != both.r().tx.bytes, "rx and tx draw separate size streams");

    // Per-packet mapping: the ring is filled (64 maps of 20 ns) before traffic starts; each
    // packet is unmapped (30 ns) after sw_ns and its slot refilled.
    {
        const NicResult r = rxmap.r();
        check(r.rx.start == 64 * 20 * kNs, "rx traffic starts once the ring is filled");
        check(r.rx.packets == 1000 && r.maps == 64 + 1000 && r.unmaps == 1000 &&
                  rxmap.mapper.maps == r.maps && rxmap.mapper.unmaps == r.unmaps,
              fmt::format("rx per_packet: {} maps, {} unmaps", r.maps, r.unmaps));
        check(rxmap.mapper.consistent && rxmap.mapper.live.size() == 64,
              "every unmap names a live mapping; the ring's buffers stay mapped");
        const Histogram& h = rxmap.stats.child("rx").histogram("host_latency", "ns", "");
        check(h.min() == 140 && h.max() == 140, "host latency = memory + sw_ns + unmap");
        check(rxmap.tap->rid_ok, "every request carries the NIC's requester 05:01.2");
        bool rings = true;
        uint64_t desc = 0;
        for (const auto& q : rxmap.tap->log)
            if (q.addr >= kLayout.rx_ring && q.addr < kLayout.rx_ring + 64 * 16)
                rings &= q.write && q.len == 16 && q.addr == kLayout.rx_ring + (desc++ % 64) * 16;
        check(rings && desc == 1000, "rx descriptors written in ring order");
    }
    {
        const NicResult r = txmap.r();
        check(r.tx.packets == 1000 && r.maps == 1000 && r.unmaps == 1000 &&
                  txmap.mapper.consistent && txmap.mapper.live.empty(),
              fmt::format("tx per_packet: {} maps, {} unmaps", r.maps, r.unmaps));
    }
    // Failing mappings: the ring gets 8 + 8 buffers, then every refill fails and the NIC
    // drops for want of buffers, on to the last frame.
    {
        const NicResult r = rxfail.r();
        check(r.rx.offered == 200 && r.rx.packets == 16 && r.rx.drops == 184 &&
                  rxfail.stats.child("rx").counter("drops_no_buffer", "").value() == 184,
              fmt::format("rx map failures: {} delivered, {} dropped", r.rx.packets, r.rx.drops));
        check(r.map_failures == rxfail.mapper.failures && r.map_failures > 0 &&
                  rxfail.dev->finished(),
              "map failures counted, the run finished");
    }
    {
        const NicResult r = txfail.r();
        check(r.tx.offered == 300 && r.tx.packets == 200 && r.tx.drops == 100 &&
                  r.map_failures == 100 && r.unmaps == 200 && txfail.mapper.consistent,
              fmt::format("tx map failures: {} sent, {} dropped", r.tx.packets, r.tx.drops));
    }
    // DMA faults: pool buffer 3 of 8 is unreachable; every 8th frame's 6 writes fault.
    {
        const NicResult r = rxfault.r();
        check(r.rx.offered == 80 && r.rx.packets == 70 &&
                  rxfault.stats.child("rx").counter("drops_fault", "").value() == 10 &&
                  r.faults == 60,
              fmt::format("rx faults: {} delivered, {} faults", r.rx.packets, r.faults));
    }
    // DMA path too slow (8 tags, 2 us, 7 requests a frame): the on-chip buffer overflows.
    {
        const NicResult r = rxslow.r();
        const uint64_t fifo = rxslow.stats.child("rx").counter("drops_fifo", "").value();
        const double want = 8 / (7 * 2e-6);
        check(fifo > 0 && r.rx.packets + r.rx.drops == r.rx.offered &&
                  std::abs(r.rx.packet_rate() / want - 1) < 0.05,
              fmt::format("slow DMA: {} fifo drops, {:.0f} pps (~{:.0f})", fifo, r.rx.packet_rate(),
                          want));
    }
    // Driver too slow (20 ns a packet against 6.72 ns frames): the ring runs dry.
    {
        const NicResult r = rxbusy.r();
        const uint64_t nobuf = rxbusy.stats.child("rx").counter("drops_no_buffer", "").value();
        check(nobuf > 0 && r.rx.packets + nobuf == r.rx.offered &&
                  std::abs(r.rx.packet_rate() / 50e6 - 1) < 0.05,
              fmt::format("slow driver: {} no-buffer drops, {:.2f} Mpps (~50)", nobuf,
                          r.rx.packet_rate() / 1e6));
    }
    // Duration: 1500-byte frames at 10 Gb/s start every 1216 ns; 9 start before 10 us.
    {
        const NicResult r = dur.r();
        check(r.rx.offered == 9 && r.rx.packets == 9 && dur.dev->finished(),
              fmt::format("duration run: {} frames", r.rx.offered));
        check(dur.dev->summary().find("rx 0.") != std::string::npos, dur.dev->summary());
    }
    // Multi-queue strict mode: each queue's driver context maps and unmaps on its own CPU.
    {
        auto drops = [](StrictRig& g) {
            const NicResult r = g.nic.result();
            return double(r.rx.drops) / double(r.rx.offered);
        };
        check(drops(mq1) > 0.5, fmt::format("1 queue, strict: {:.0f} % dropped (the driver "
                                            "context is the bottleneck)",
                                            100 * drops(mq1)));
        check(drops(mq5) == 0.0 && drops(mqrss) < 0.02,
              fmt::format("5 queues: {:.1f} % dropped; RSS over 8 queues: {:.1f} %",
                          100 * drops(mq5), 100 * drops(mqrss)));
        check(mq5.mapper.cpus == std::set<unsigned>{0, 1, 2, 3, 4} && mqrss.mapper.cpus.size() == 8,
              "every queue's driver context maps on its own CPU");
        for (StrictRig* g : {&mq1, &mq5, &mqrss}) {
            const NicResult r = g->nic.result();
            check(g->mapper.consistent && r.maps == r.unmaps + g->mapper.live.size() &&
                      g->mapper.iova.live() == g->mapper.live.size(),
                  fmt::format("{}: no live IOVA handed out twice, every unmap of a live mapping",
                              g->nic.name()));
            // Every frame write lands in an IOVA range the driver mapped, at its buffer; every
            // descriptor write in its queue's ring.
            uint64_t data = 0, bad = 0;
            const Addr ring_end = kLayout.rx_ring + g->nic.params().ring_bytes();
            for (const auto& q : g->tap.log) {
                if (q.addr >= kLayout.rx_ring && q.addr + q.len <= ring_end) continue;
                auto it = g->mapper.mapped.upper_bound(q.addr);
                const bool in =
                    it != g->mapper.mapped.begin() && q.addr + q.len <= std::prev(it)->first + 8192;
                bad += !in || !q.write;
                ++data;
            }
            check(bad == 0 && data >= r.rx.packets,
                  fmt::format("{}: {} data writes, {} outside a mapped buffer", g->nic.name(), data,
                              bad));
            check(g->mapper.iova.rcache_counts().hits > r.maps / 2,
                  fmt::format("{}: IOVAs reused through the per-CPU caches ({} of {} maps)",
                              g->nic.name(), g->mapper.iova.rcache_counts().hits, r.maps));
        }
    }
    // Striding RX (mlx5 multi-packet buffers): 4110 B written per frame take 17 strides of 256 B;
    // a 32 KiB buffer holds 7 (the 8th would overrun it), so frame k of a queue is at offset
    // (k mod 7) x 4352 in buffer k / 7, written page by page to the pages' own IOVAs; a
    // buffer's 8 pages are unmapped once its 7th frame is processed, then it is posted again.
    {
        const NicResult r = strided.nic.result();
        const uint64_t buffers_done = 2 * (350 / 7);  // per queue: 350 frames, 7 per buffer
        check(r.rx.packets == 700 && r.rx.drops == 0 && r.faults == 0,
              fmt::format("striding: {} of 700 frames, {} drops", r.rx.packets, r.rx.drops));
        check(r.unmaps == buffers_done * 8 && r.maps == (2 * 4 + buffers_done) * 8 &&
                  strided.mapper.consistent,
              fmt::format("striding: {} maps, {} unmaps of single pages", r.maps, r.unmaps));
        uint64_t bytes = 0, bad = 0;
        const Addr ring_end = kLayout.rx_ring + sp.ring_bytes();
        for (const auto& q : strided.tap.log) {
            if (q.addr >= kLayout.rx_ring && q.addr + q.len <= ring_end) continue;
            auto it = strided.mapper.mapped.upper_bound(q.addr);
            // Each write stays inside one mapped page.
            bad +=
                it == strided.mapper.mapped.begin() || q.addr + q.len > std::prev(it)->first + 4096;
            bytes += q.len;
        }
        check(bad == 0 && bytes == 700 * 4110,
              fmt::format("striding: {} bytes written ({} writes outside a mapped page)", bytes,
                          bad));
    }
    // Interface up: the queues fill their rings at once, so their mappings take IOVAs in
    // turn: a buffer each (per_packet), a page each (striding).
    {
        auto in_turn = [](const StrictMapper& m, unsigned queues, size_t n) {
            bool ok = m.map_cpu.size() >= n;
            for (size_t i = 0; ok && i < n; ++i) ok = m.map_cpu[i] == i % queues;
            return ok;
        };
        check(in_turn(mq5.mapper, 5, 5 * 64) && in_turn(strided.mapper, 2, 2 * 8 * 4),
              "ring fill: the queues' first mappings alternate between their CPUs");
    }
    // A finished buffer's pages are unmapped one per event, each when its CPU gets to it, 600
    // ns after the previous: the NIC's DMA goes on between them (at 10 Gb/s a frame every
    // 3.3 us), so each unmap's invalidation falls among the DMAs of its own time rather than
    // all of a buffer's at once.
    {
        uint64_t bursts = 0, spaced = 0, interleaved = 0;
        for (const auto& [cpu, at] : strided.mapper.unmap_at) {
            const auto& seen = strided.mapper.unmap_seen.at(cpu);
            for (size_t b = 0; b + 8 <= at.size(); b += 8) {  // a buffer's 8 pages
                ++bursts;
                bool even = true;
                for (size_t i = b + 1; i < b + 8; ++i) even &= at[i] - at[i - 1] == 600 * kNs;
                spaced += even;
                interleaved += seen[b + 7] > seen[b];
            }
        }
        check(bursts == 100 && spaced == bursts && interleaved >= bursts / 2,
              fmt::format("striding: {} buffers released, {} with unmaps 600 ns apart, {} with "
                          "DMA issued during the release",
                          bursts, spaced, interleaved));
    }
    // ACKs: every 7th frame a queue cleans, a 70 B ACK frame goes out on that queue's TX ring:
    // 50 per queue; each mapped (66 B, without FCS), read from its mapped buffer, unmapped.
    {
        const NicResult r = acked.nic.result();
        const uint64_t acks = acked.stats.child("rx").counter("acks", "").value();
        check(r.rx.packets == 700 && acks == 100 && r.tx.packets == 100 &&
                  r.tx.bytes == 100 * kEthAckFrame && r.faults == 0,
              fmt::format("acks: {} of 700 frames, {} ACKs, {} sent, {} B", r.rx.packets, acks,
                          r.tx.packets, r.tx.bytes));
        uint64_t reads = 0, bad = 0;
        const Addr tx_ring = kLayout.tx_ring, tx_ring_end = tx_ring + ap.ring_bytes();
        for (const auto& q : acked.tap.log) {
            if (q.write || (q.addr >= tx_ring && q.addr + q.len <= tx_ring_end)) continue;
            auto it = acked.mapper.mapped.upper_bound(q.addr);
            bad += it == acked.mapper.mapped.begin() || q.addr != std::prev(it)->first ||
                   q.len != kEthAckFrame - kEthFcsBytes;
            ++reads;
        }
        check(reads == 100 && bad == 0 && acked.mapper.consistent &&
                  r.maps == r.unmaps + acked.mapper.live.size() &&
                  r.maps == strided.nic.result().maps + 100,
              fmt::format("acks: {} data reads ({} not a whole mapped ACK), {} maps, {} unmaps",
                          reads, bad, r.maps, r.unmaps));
    }
    if (std::getenv("NIC_VERBOSE"))
        for (Rig* g : {&rx64, &rximix, &tximix, &both, &rxmap, &txmap, &rxfail, &txfail, &rxfault,
                       &rxslow, &rxbusy, &dur})
            fmt::print("{}\n", g->dev->summary());
    return check.finish();
}
