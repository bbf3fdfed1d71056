// SystemC bench of the NVMe controller at quantum 0 on a fixed-latency memory (no IOMMU) with
// an identity DmaMapper: exact command latencies (driver, SQ entry, media, data, CQ entry),
// IOPS at a queue depth, PRP-list reads exactly for commands over more than two pages, bytes
// moved equal to the I/O, per-command map/unmap calls, failed mappings and DMA faults
// counted while the device carries on, the requester on every request, duration-bounded
// runs and reproducible draws for a seed.
#include <cmath>
#include <cstdlib>
#include <memory>
#include <systemc>

#include "devices/nvme.h"
#include "sc_device_rig.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;

namespace {

constexpr Tick kNs = kTicksPerNs;
const NvmeLayout kLayout{0x3000'0000, 0x3010'0000, 0x3020'0000, 0x4000'0000};

// An NVMe controller on a tap on a memory of 100 ns.
struct Rig : test::DeviceRig<Nvme> {
    Rig(const char* name, SparseMemory& store, const NvmeParams& p, Tick map_cost = 0,
        Tick unmap_cost = 0)
        : DeviceRig(name, store, 100 * kNs, p, kLayout, 64, map_cost, unmap_cost) {}
    const Histogram& hist(const char* n) { return stats.histogram(n, "ns", ""); }
};

NvmeParams nvme(const char* sizes, uint32_t qd, uint32_t read_pct, uint64_t count,
                NvmeBufferPolicy b = NvmeBufferPolicy::Pool) {
    NvmeParams p;
    p.sizes = sizes;
    p.queue_depth = qd;
    p.read_percent = read_pct;
    p.count = count;
    p.buffers = b;
    p.media_read_ns = 10'000;
    p.media_write_ns = 20'000;
    p.sw_ns = 1000;
    return p;
}

// The (size, read) sequence the device draws for a seed: size, then the read/write choice.
std::vector<std::pair<uint64_t, bool>> draws(const NvmeParams& p, uint64_t n) {
    const SizeDist d = *p.size_dist();
    uint64_t state = p.seed;
    std::vector<std::pair<uint64_t, bool>> out;
    for (uint64_t i = 0; i < n; ++i) {
        const uint64_t size = d.draw(state);
        out.push_back({size, draw_below(state, 100) < p.read_percent});
    }
    return out;
}

}  // namespace

int sc_main(int, char*[]) {
    tlm_utils::tlm_quantumkeeper::set_global_quantum(SC_ZERO_TIME);
    test::Checker check;
    SparseMemory store;
    const auto PerIo = NvmeBufferPolicy::PerIo;

    Rig rd("rd", store, nvme("4K", 1, 100, 100));
    Rig wr("wr", store, nvme("4K", 1, 0, 100));
    Rig mapped("mapped", store, nvme("4K", 1, 100, 100, PerIo), 500 * kNs, 700 * kNs);
    NvmeParams qp = nvme("4K", 32, 100, 3200);
    qp.sw_ns = 100;
    Rig qd32("qd32", store, qp);

    const NvmeParams mixp = nvme("4K:1,8K:1,12K:1,1M:1", 4, 50, 200, PerIo);
    Rig mix("mix", store, mixp);
    mix.tap->record = true;
    Rig mix2("mix2", store, mixp);
    NvmeParams seed2 = mixp;
    seed2.seed = 7;
    Rig mix3("mix3", store, seed2);
    NvmeParams offp = nvme("4K:1,8K:1", 2, 100, 100);
    offp.offset = 512;
    offp.bus = 7, offp.device = 3, offp.function = 1;
    Rig off("off", store, offp);

    Rig mapfail("mapfail", store, nvme("4K", 2, 100, 100, PerIo));
    mapfail.mapper.fail_every = 4;
    NvmeParams fp = nvme("4K", 1, 100, 40);
    Rig datafault("datafault", store, fp);
    datafault.tap->fail_lo = kLayout.buffers;  // slot 0's buffer: every read faults
    datafault.tap->fail_hi = kLayout.buffers + 4096;
    NvmeParams sp = nvme("4K", 4, 100, 64);
    sp.queue_entries = 16;
    Rig sqfault("sqfault", store, sp);
    sqfault.tap->fail_lo = kLayout.sq + 5 * 64;  // SQ entry 5: every 16th command
    sqfault.tap->fail_hi = kLayout.sq + 6 * 64;

    NvmeParams dp = nvme("4K", 1, 100, 0);
    dp.duration_ns = 50'000;
    Rig dur("dur", store, dp);
    test::Watcher watch("watch", rd.dev->finished_event());

    sc_start();

    // QD 1 read: sw 1 us, SQ entry 100 ns, media 10 us, data and CQ entry 100 ns together.
    {
        const NvmeResult r = rd.r();
        const Histogram& h = rd.hist("latency");
        check(r.completed == 100 && r.reads == 100 && h.min() == 11'200 && h.max() == 11'200,
              fmt::format("qd1 read latency {}..{} ns (11200)", h.min(), h.max()));
        check(watch.seen == r.end, "finished event at the last completion");
        check(r.end == 100 * 11'200 * kNs && std::abs(r.iops() - 1e9 / 11'200) < 1e-6,
              fmt::format("qd1 read: {:.1f} IOPS", r.iops()));
        check(rd.engine("bytes_written") == 100 * (4096 + 16) &&
                  rd.engine("bytes_read") == 100 * 64 && r.prp_list_reads == 0,
              "read: data and CQ entries written, SQ entries read, no PRP list");
    }
    // QD 1 write: data read (100 ns) before the media (20 us), then the CQ entry.
    {
        const Histogram& h = wr.hist("write_latency");
        check(wr.r().writes == 100 && h.min() == 21'300 && h.max() == 21'300,
              fmt::format("qd1 write latency {} ns (21300)", h.max()));
        check(wr.engine("bytes_read") == 100 * (64 + 4096), "write: data read");
    }
    // Per-I/O mapping: map (500 ns) on submission, unmap (700 ns) on completion.
    {
        const NvmeResult r = mapped.r();
        const Histogram& h = mapped.hist("latency");
        check(h.min() == 12'400 && h.max() == 12'400, "per_io latency adds map and unmap");
        check(r.maps == 100 && r.unmaps == 100 && mapped.mapper.consistent &&
                  mapped.mapper.live.empty(),
              "one map and one unmap per command, each unmap of a live mapping");
    }
    // QD 32: each slot cycles in 100 + 100 + 10000 + 100 ns.
    {
        const NvmeResult r = qd32.r();
        const double want = 32 / 10.3e-6;
        check(r.completed == 3200 && std::abs(r.iops() / want - 1) < 0.01,
              fmt::format("qd32: {:.0f} IOPS (~{:.0f})", r.iops(), want));
    }
    // Mixed sizes: PRP lists exactly for the 12 KiB and 1 MiB commands (more than 2 pages).
    {
        const NvmeResult r = mix.r();
        uint64_t lists = 0, list_bytes = 0, rd_bytes = 0, wr_bytes = 0;
        for (auto [size, read] : draws(mixp, 200)) {
            const uint64_t pages = size / 4096;
            if (pages > 2) ++lists, list_bytes += (pages - 1) * 8;
            (read ? rd_bytes : wr_bytes) += size;
        }
        uint64_t seen = 0;
        for (const auto& q : mix.tap->log)
            if (q.addr >= kLayout.prp_lists && q.addr < kLayout.prp_lists + mixp.prp_list_bytes())
                seen += q.write ? 1u << 30 : q.len;
        check(r.completed == 200 && r.prp_list_reads == lists && seen == list_bytes,
              fmt::format("PRP lists: {} read ({}), {} bytes ({})", r.prp_list_reads, lists, seen,
                          list_bytes));
        check(r.read_bytes == rd_bytes && r.write_bytes == wr_bytes &&
                  mix.engine("bytes_written") == rd_bytes + 16 * 200 &&
                  mix.engine("bytes_read") == wr_bytes + 64 * 200 + list_bytes,
              "bytes moved = the I/O plus queue entries and PRP lists");
        check(r.maps == 200 && r.unmaps == 200 && mix.mapper.consistent, "per_io maps");
        check(mix.tap->rid_ok && off.tap->rid_ok, "every request carries the requester");
        const NvmeResult r2 = mix2.r(), r3 = mix3.r();
        check(r2.read_bytes == r.read_bytes && r2.end == r.end &&
                  mix2.hist("latency").percentile(99) == mix.hist("latency").percentile(99),
              "same seed, same run");
        check(r3.read_bytes + r3.write_bytes != r.read_bytes + r.write_bytes,
              "another seed, other draws");
    }
    // Offset 512: 4 KiB spans 2 pages (PRP2 = page), 8 KiB spans 3 (a PRP list).
    {
        uint64_t eights = 0;
        for (auto [size, read] : draws(offp, 100)) eights += size == 8192;
        check(off.r().prp_list_reads == eights && eights > 0,
              fmt::format("offset 512: {} PRP lists for {} 8 KiB commands", off.r().prp_list_reads,
                          eights));
    }
    // Failures: every 4th map fails; faults on a buffer or an SQ entry fail the command.
    {
        const NvmeResult r = mapfail.r();
        check(r.submitted == 100 && r.failed == 25 && r.completed == 75 && r.map_failures == 25 &&
                  r.unmaps == 75 && mapfail.mapper.consistent && mapfail.dev->finished(),
              fmt::format("map failures: {} failed, {} completed", r.failed, r.completed));
    }
    {
        const NvmeResult r = datafault.r();
        check(r.submitted == 40 && r.failed == 40 && r.faults == 40 * 16 &&
                  datafault.engine("bytes_written") == 40 * 16,
              fmt::format("data faults: {} failed, {} faults", r.failed, r.faults));
    }
    {
        const NvmeResult r = sqfault.r();
        check(r.submitted == 64 && r.failed == 4 && r.completed == 60 && r.faults == 4,
              fmt::format("SQ entry faults: {} failed, {} completed", r.failed, r.completed));
    }
    // Duration: QD 1 at 11.2 us a command; submissions at 0, 11.2, ... 44.8 us.
    check(dur.r().submitted == 5 && dur.r().completed == 5, "duration-bounded run");
    check(rd.dev->summary().find("89.3 kIOPS") != std::string::npos, rd.dev->summary());
    if (std::getenv("NVME_VERBOSE"))
        for (Rig* g : {&rd, &wr, &mapped, &qd32, &mix, &off, &mapfail, &datafault, &sqfault, &dur})
            fmt::print("{}\n", g->dev->summary());
    return check.finish();
}
