// SystemC bench of dma-bench at quantum 0: bandwidth equals the analytic value for a
// fixed-latency memory (T tags, latency L, R requests per transfer of S bytes: S*T/(R*L)),
// latency runs (one transfer in flight) report the memory latency, writes move the bytes,
// the random and sequential patterns stay in the window on unit boundaries, runs bounded by
// a duration stop on time, and faults are counted while the run goes on.
#include <tlm_utils/simple_target_socket.h>
#include <cmath>
#include <set>
#include <systemc>
#include <vector>

#include "devices/dma_bench.h"
#include "memory/fixed_memory.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;

namespace {

constexpr Addr kBase = 0x4000'0000;
constexpr Tick kNs = kTicksPerNs;

// Records request addresses; [fail_lo, fail_hi) answers with an address error.
struct Recorder : sc_module {
    tlm_utils::simple_target_socket<Recorder> target{"target"};
    std::vector<Addr> addrs;
    Addr fail_lo = 0, fail_hi = 0;
    explicit Recorder(sc_module_name n) : sc_module(n) {
        target.register_b_transport(this, &Recorder::b_transport);
    }
    void b_transport(tlm::tlm_generic_payload& p, sc_time& d) {
        addrs.push_back(p.get_address());
        const bool bad = p.get_address() >= fail_lo && p.get_address() < fail_hi;
        p.set_response_status(bad ? tlm::TLM_ADDRESS_ERROR_RESPONSE : tlm::TLM_OK_RESPONSE);
        d += sc_time(100, SC_NS);
    }
};

DmaBenchParams bench(DmaOp op, uint32_t size, uint64_t window, DmaPattern pat, uint64_t count) {
    DmaBenchParams p;
    p.op = op;
    p.size = size;
    p.window = window;
    p.pattern = pat;
    p.count = count;
    return p;
}

DmaEngineParams engine(uint32_t tags, uint32_t mps = 256, uint32_t mrrs = 512) {
    DmaEngineParams e;
    e.tags = tags;
    e.mps = mps;
    e.mrrs = mrrs;
    return e;
}

// A bench on a fixed-latency memory.
struct OnMemory {
    StatGroup stats;
    FixedMemory mem;
    DmaBench dev;
    OnMemory(const char* name, SparseMemory& store, Tick latency, const DmaBenchParams& p,
             const DmaEngineParams& e)
        : stats(name),
          mem(fmt::format("{}_mem", name).c_str(), store, to_sc_time(latency)),
          dev(name, p, e, kBase, stats) {
        dev.dma.bind(mem.target);
    }
};

struct OnRecorder {
    StatGroup stats;
    Recorder rec;
    DmaBench dev;
    OnRecorder(const char* name, const DmaBenchParams& p, const DmaEngineParams& e)
        : stats(name), rec(fmt::format("{}_rec", name).c_str()), dev(name, p, e, kBase, stats) {
        dev.dma.bind(rec.target);
    }
};

struct Watcher : sc_module {
    const sc_event& ev;
    Tick seen = 0;
    SC_HAS_PROCESS(Watcher);
    Watcher(sc_module_name n, const sc_event& e) : sc_module(n), ev(e) { SC_THREAD(run); }
    void run() {
        wait(ev);
        seen = to_ticks(sc_time_stamp());
    }
};

bool close(double a, double b) {
    return std::abs(a - b) <= 1e-9 * std::abs(b);
}

}  // namespace

int sc_main(int, char*[]) {
    tlm_utils::tlm_quantumkeeper::set_global_quantum(SC_ZERO_TIME);
    test::Checker check;
    SparseMemory store;
    const auto R = DmaOp::Read, W = DmaOp::Write;
    const auto Seq = DmaPattern::Sequential, Rnd = DmaPattern::Random;

    OnMemory bw("bw", store, 500 * kNs, bench(R, 256, 1 << 16, Seq, 1000), engine(8));
    OnMemory split("split", store, 400 * kNs, bench(R, 1024, 1 << 16, Rnd, 100),
                   engine(8, 256, 256));
    DmaBenchParams lp = bench(R, 2048, 1 << 20, Rnd, 50);
    lp.outstanding = 1;
    OnMemory lat("lat", store, 300 * kNs, lp, engine(8));
    OnMemory wr("wr", store, 200 * kNs, bench(W, 512, 1 << 16, Seq, 64), engine(16));
    DmaBenchParams dp = bench(R, 64, 1 << 12, Seq, 0);
    dp.duration_ns = 10'000;
    OnMemory dur("dur", store, 1000 * kNs, dp, engine(4));
    Watcher watch("watch", dur.dev.finished_event());

    DmaBenchParams rp = bench(R, 100, 2048, Rnd, 1000);
    rp.offset = 8;  // unit = 108 rounded up to 128: 16 units
    OnRecorder rnd1("rnd1", rp, engine(32));
    OnRecorder rnd2("rnd2", rp, engine(32));
    rp.seed = 2;
    OnRecorder rnd3("rnd3", rp, engine(32));
    OnRecorder seq("seq", bench(W, 64, 256, Seq, 10), engine(4));
    OnRecorder flt("flt", bench(R, 64, 1024, Seq, 100), engine(4));
    flt.rec.fail_lo = kBase + 128, flt.rec.fail_hi = kBase + 192;  // unit 2 of 16

    sc_start();

    // 1000 transfers of 256 B, one request each, 8 tags at 500 ns: 125 rounds.
    auto r = bw.dev.result();
    check(r.transfers == 1000 && r.start == 0 && r.end == 125 * 500 * kNs,
          fmt::format("bandwidth run ends at 62.5 us ({} ps)", r.end));
    check(close(r.bandwidth(), 256.0 * 8 / 500e-9),
          fmt::format("bandwidth {} == S*T/L = 4.096 GB/s", r.bandwidth()));
    check(bw.stats.counter("bandwidth", "").value() == 4'096'000'000, "bandwidth statistic");
    check(bw.dev.finished() && bw.dev.summary().find("4.096 GB/s") != std::string::npos,
          "summary: " + bw.dev.summary());

    // 1024 B at MRRS 256: 4 requests per transfer -> S*T/(4*L) = 1024*8/(4*400 ns).
    r = split.dev.result();
    check(r.end == 50 * 400 * kNs && close(r.bandwidth(), 1024.0 * 8 / (4 * 400e-9)),
          fmt::format("split transfers: bandwidth {} == 5.12 GB/s", r.bandwidth()));
    check(split.stats.child("engine").counter("pieces", "").value() == 400,
          "engine statistics under <bench>.engine");

    // Latency run: one transfer at a time; its 4 requests fly together on 8 tags.
    r = lat.dev.result();
    check(r.latency->count() == 50 && r.latency->min() == 300 && r.latency->max() == 300 &&
              r.latency->percentile(50) == 300 && r.latency->percentile(99) == 300,
          "latency run: every transfer takes the memory latency (300 ns)");
    check(r.end == 50 * 300 * kNs && close(r.bandwidth(), 2048.0 / 300e-9),
          "latency run bandwidth = S / L");

    // Writes: 512 B at MPS 256 is two write requests that land in memory.
    r = wr.dev.result();
    check(wr.mem.writes() == 128 && r.bytes == 64 * 512 &&
              wr.stats.child("engine").counter("bytes_written", "").value() == 64 * 512,
          "write run: two MPS-sized writes per transfer, bytes counted");

    // Duration: 4 tags at 1 us issue 4 transfers per us. The transfer offered at 9 us (ready
    // then, waiting for a tag) is the last one before the 10 us deadline; it ends at 11 us.
    r = dur.dev.result();
    check(r.transfers == 41 && r.end == 11'000 * kNs,
          fmt::format("duration run: {} transfers (41), end {} ps", r.transfers, r.end));
    check(watch.seen == 11'000 * kNs, "finished event at the last completion");

    // Random: in the window, on unit boundaries plus the offset, every unit reached,
    // reproducible for a seed and different for another.
    {
        std::set<Addr> units;
        bool in = rnd1.rec.addrs.size() == 1000;
        for (Addr a : rnd1.rec.addrs) {
            in &= a >= kBase && a + 100 <= kBase + 2048 && (a - kBase - 8) % 128 == 0;
            units.insert(a);
        }
        check(in, "random addresses inside the window at unit + offset");
        check(units.size() == 16, fmt::format("all 16 units reached ({})", units.size()));
        check(rnd1.rec.addrs == rnd2.rec.addrs, "same seed, same addresses");
        check(rnd1.rec.addrs != rnd3.rec.addrs, "another seed, other addresses");
    }
    {
        std::vector<Addr> want;
        for (int i = 0; i < 10; ++i) want.push_back(kBase + Addr(i % 4) * 64);
        check(seq.rec.addrs == want, "sequential: units in order, wrapping at the window");
    }

    // Faults: every 16th transfer hits the failing unit; all 100 run.
    r = flt.dev.result();
    check(r.transfers == 100 && r.faults == 7 && r.faulted_transfers == 7 && r.bytes == 93 * 64 &&
              flt.stats.counter("faults", "").value() == 7,
          fmt::format("faults counted ({}), the run goes on", r.faults));
    return check.finish();
}
