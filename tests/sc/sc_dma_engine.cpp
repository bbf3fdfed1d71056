// SystemC bench of the generic DMA engine against a fixed-latency target that records every
// request: splitting at MRRS/MPS and 4 KiB boundaries, attributes on every request, the tag
// limit bounding throughput exactly (Little's law: T tags at latency L give T/L requests/s),
// the issue-rate limit, faults counted per transfer while the engine carries on, latency
// histograms, a target that synchronises inside b_transport, and queued submission.
#include <tlm_utils/simple_target_socket.h>
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <systemc>
#include <vector>

#include "devices/dma_engine.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;

namespace {

constexpr Tick kNs = kTicksPerNs;

// Latency per request: fixed, or a function of the address. Requests in [fail_lo, fail_hi)
// get TLM_ADDRESS_ERROR_RESPONSE, as an IOMMU fault does.
struct Target : sc_module {
    struct Rec {
        Addr a;
        unsigned len;
        Tick issue, done;
        PcieAttr attr;
        bool write;
    };
    tlm_utils::simple_target_socket<Target> target{"target"};
    std::function<Tick(Addr)> latency;
    Addr fail_lo = 0, fail_hi = 0;
    bool waits = false;  // synchronise inside b_transport, as some LT targets do
    std::vector<Rec> log;

    Target(sc_module_name n, Tick lat) : sc_module(n), latency([lat](Addr) { return lat; }) {
        target.register_b_transport(this, &Target::b_transport);
    }
    void b_transport(tlm::tlm_generic_payload& p, sc_time& d) {
        const PcieAttr* attr = p.get_extension<PcieAttr>();
        const Tick issue = to_ticks(sc_time_stamp() + d);
        if (waits) {
            wait(d);
            d = SC_ZERO_TIME;
        }
        d += to_sc_time(latency(p.get_address()));
        const bool bad = p.get_address() >= fail_lo && p.get_address() < fail_hi;
        p.set_response_status(bad ? tlm::TLM_ADDRESS_ERROR_RESPONSE : tlm::TLM_OK_RESPONSE);
        log.push_back({p.get_address(), p.get_data_length(), issue, to_ticks(sc_time_stamp() + d),
                       attr ? *attr : PcieAttr{}, p.is_write()});
    }
    Tick last_done() const {
        Tick t = 0;
        for (const Rec& r : log) t = std::max(t, r.done);
        return t;
    }
    // Most requests in flight at once, and whether a tag was reused before its completion.
    std::pair<unsigned, bool> occupancy() const {
        unsigned most = 0;
        for (const Rec& r : log) {
            unsigned n = 0;
            for (const Rec& o : log) n += o.issue <= r.issue && r.issue < o.done;
            most = std::max(most, n);
        }
        std::map<uint16_t, Tick> free;
        bool reused = false;
        for (const Rec& r : log) {
            auto it = free.find(r.attr.tag);
            if (it != free.end() && r.issue < it->second) reused = true;
            free[r.attr.tag] = r.done;
        }
        return {most, reused};
    }
};

// An engine, its target, and a list of transfers fed through the engine's source.
struct Rig {
    StatGroup stats;
    Target tgt;
    DmaEngine eng;
    std::vector<DmaTransfer> todo;
    size_t next = 0;
    std::vector<DmaResult> results;

    Rig(const char* name, const DmaEngineParams& p, Tick latency)
        : stats(name),
          tgt(fmt::format("{}_tgt", name).c_str(), latency),
          eng(fmt::format("{}_eng", name).c_str(), p, stats) {
        eng.dma.bind(tgt.target);
        eng.set_source([this](DmaTransfer& t) {
            if (next == todo.size()) return false;
            t = todo[next++];
            return true;
        });
        eng.on_complete([this](const DmaTransfer&, const DmaResult& r) { results.push_back(r); });
    }
    void add(Addr iova, uint64_t len, bool write, Tick ready = 0) {
        DmaTransfer t;
        t.req = Requester::bdf(2, 3, 1).with_pasid(7);
        t.iova = iova;
        t.length = len;
        t.write = write;
        t.ready = ready;
        t.id = todo.size();
        todo.push_back(t);
    }
    uint64_t stat(const char* name) { return stats.counter(name, "").value(); }
};

DmaEngineParams params(uint32_t tags, double rate = 0, uint32_t mps = 256, uint32_t mrrs = 512) {
    DmaEngineParams p;
    p.tags = tags;
    p.issue_rate = rate;
    p.mps = mps;
    p.mrrs = mrrs;
    return p;
}

// Transfers submitted by another process at their own times.
struct Submitter : sc_module {
    DmaEngine& eng;
    SC_HAS_PROCESS(Submitter);
    Submitter(sc_module_name n, DmaEngine& e) : sc_module(n), eng(e) { SC_THREAD(run); }
    void run() {
        for (int i = 0; i < 3; ++i) {
            wait(1, SC_US);
            DmaTransfer t;
            t.iova = 0x10000 + Addr(i) * 64;
            t.length = 64;
            eng.submit(t);
        }
    }
};

// A transfer submitted while the engine is synchronising after its last issue: the engine
// issued a transfer ready at 500 ns and syncs to it; the second submission comes at 200 ns,
// during that sync, and must not be lost.
struct LateSubmitter : sc_module {
    DmaEngine& eng;
    SC_HAS_PROCESS(LateSubmitter);
    LateSubmitter(sc_module_name n, DmaEngine& e) : sc_module(n), eng(e) { SC_THREAD(run); }
    void run() {
        wait(1, SC_NS);  // the engine is asleep, waiting for work
        DmaTransfer t;
        t.iova = 0x1000, t.length = 64, t.ready = 500 * kNs;
        eng.submit(t);
        wait(199, SC_NS);
        t.iova = 0x2000, t.ready = 0;
        eng.submit(t);
    }
};

}  // namespace

int sc_main(int, char*[]) {
    tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_time(1, SC_US));
    test::Checker check;

    bool threw = false;
    try {
        DmaEngineParams bad = params(4, 0, 300);
        StatGroup s("bad");
        DmaEngine e("bad_engine", bad, s);
    } catch (const std::invalid_argument& e) {
        threw = std::string(e.what()).find("mps") != std::string::npos;
    }
    check(threw, "an MPS that is not a power of two is rejected, naming the parameter");

    Rig split("split", params(8, 0, 256, 512), 100 * kNs);
    split.add(0x1f00, 10000, false);
    split.add(0xff0, 1000, true);
    split.add(0x40000, 0, false);  // empty: completes at once, no request

    Rig little("little", params(4), 500 * kNs);
    for (int i = 0; i < 400; ++i) little.add(0x100000 + Addr(i) * 64, 64, false);

    Rig rate("rate", params(64, 250), 100 * kNs);
    for (int i = 0; i < 1000; ++i) rate.add(Addr(i) * 64, 64, true);
    Rig frac("frac", params(64, 300), 100 * kNs);
    for (int i = 0; i < 3001; ++i) frac.add(Addr(i) * 64, 64, false);
    Rig both("both", params(4, 100), 100 * kNs);  // tag-bound: 4/100 ns < 100 Mreq/s
    for (int i = 0; i < 400; ++i) both.add(Addr(i) * 64, 64, false);

    Rig fault("fault", params(8), 100 * kNs);
    fault.tgt.fail_lo = 0x5000, fault.tgt.fail_hi = 0x6000;
    fault.add(0x3000, 16384, false);
    fault.add(0x8000, 1024, false);
    fault.add(0x5800, 64, true);
    fault.add(0x9000, 64, true);

    Rig hist("hist", params(1), 200 * kNs);
    for (int i = 0; i < 5; ++i) hist.add(0x2000 + Addr(i) * 2048, 2048, false, Tick(i) * 800 * kNs);
    Rig spread("spread", params(16), 0);
    spread.tgt.latency = [](Addr a) { return (a / 4096 + 1) * 10 * kNs; };
    for (int i = 0; i < 10; ++i) spread.add(Addr(i) * 4096, 64, false);

    Rig sync("sync", params(2), 100 * kNs);
    sync.tgt.waits = true;
    for (int i = 0; i < 10; ++i) sync.add(Addr(i) * 64, 64, false);

    Rig queued("queued", params(4), 250 * kNs);
    queued.eng.set_source(nullptr);
    Submitter sub("sub", queued.eng);
    Rig late("late", params(4), 100 * kNs);
    late.eng.set_source(nullptr);
    LateSubmitter late_sub("late_sub", late.eng);

    sc_start();

    // Splitting: 10000 B read at 0x1f00, MRRS 512 -> 256 to the boundary, then 512s, 16 last.
    {
        std::vector<unsigned> lens;
        bool ok = true;
        Addr expect = 0x1f00;
        size_t i = 0;
        for (; i < split.tgt.log.size() && !split.tgt.log[i].write; ++i) {
            const auto& r = split.tgt.log[i];
            ok &= r.a == expect && r.len <= 512 && (r.a >> 12) == ((r.a + r.len - 1) >> 12);
            ok &= r.attr.tlp == PcieAttr::Tlp::MemRead && r.attr.req.rid == 0x0219 &&
                  r.attr.req.pasid == 7 && r.attr.at == PcieAttr::At::Untranslated &&
                  r.attr.tag < 8;
            expect += r.len;
        }
        check(i == 21 && i == dma_piece_count(0x1f00, 10000, 512) && expect == 0x1f00 + 10000,
              fmt::format("read split into {} contiguous requests (21)", i));
        check(ok, "read requests: at most MRRS, within 4 KiB, attributes of the requester");
        check(split.tgt.log[0].len == 256 && split.tgt.log[20].len == 16, "first/last read sizes");
        std::vector<unsigned> wl;
        for (; i < split.tgt.log.size(); ++i) {
            ok &= split.tgt.log[i].write && split.tgt.log[i].attr.tlp == PcieAttr::Tlp::MemWrite;
            wl.push_back(split.tgt.log[i].len);
        }
        check(ok && wl == std::vector<unsigned>{16, 256, 256, 256, 216},
              "write split at MPS and the 4 KiB boundary: 16, 256, 256, 256, 216");
        check(split.results.size() == 3 && split.results[2].pieces == 0 &&
                  split.results[2].latency() == 0,
              "an empty transfer completes at once without a request");
        check(split.stat("pieces") == 26 && split.stat("transfers") == 3 &&
                  split.stat("bytes_read") == 10000 && split.stat("bytes_written") == 1000,
              "piece and byte counters");
    }

    // Little's law: 4 tags, 500 ns each -> 8 M requests/s; 400 requests end at 100 x 500 ns.
    {
        const auto [most, reused] = little.tgt.occupancy();
        check(most == 4 && !reused,
              fmt::format("at most 4 in flight ({}), no tag reused early", most));
        check(little.tgt.last_done() == 100 * 500 * kNs,
              fmt::format("400 requests at T=4, L=500 ns end at 50 us ({} ps)",
                          little.tgt.last_done()));
        const double tput = 400.0 / (double(little.tgt.last_done()) * 1e-12);
        check(std::abs(tput - 4 / 500e-9) < 1, fmt::format("throughput {} == T/L", tput));
        // The engine stalls once per round (the rest of the round issues at the same time),
        // and is tag-bound for all but the first round.
        check(little.stat("tag_stalls") == 99 && little.stat("tag_stall_ns") == 99 * 500,
              "tag-stall count and time");
    }

    // Issue rate: 250 Mreq/s is one request per 4 ns; 300 Mreq/s keeps its fractional period.
    {
        bool spaced = true;
        for (size_t i = 0; i < rate.tgt.log.size(); ++i)
            spaced &= rate.tgt.log[i].issue == i * 4 * kNs;
        check(spaced && rate.tgt.log.size() == 1000, "250 Mreq/s: request i issues at 4i ns");
        check(rate.tgt.last_done() == (999 * 4 + 100) * kNs, "rate-bound run ends at 4096 ns");
        check(rate.stat("rate_stalls") == 999 && rate.stat("tag_stalls") == 0 &&
                  rate.stat("rate_stall_ns") == 999 * 4,
              "stalls by rate");
        check(frac.stat("rate_stall_ns") == 10'000, "fractional rate-stall time kept exactly");
        check(frac.tgt.log.back().issue == 10'000'000,
              fmt::format("300 Mreq/s: request 3000 issues at 10 us ({} ps)",
                          frac.tgt.log.back().issue));
        check(both.tgt.log[399].issue == (99 * 100 + 30) * kNs,
              "tags and rate together: the tighter bound rules (4 tags per 100 ns)");
    }

    // Faults: 8 requests of the first transfer hit the failing page; the engine carries on.
    {
        check(fault.results.size() == 4, "all transfers completed despite faults");
        const DmaResult& r = fault.results[0];
        check(r.faults == 8 && r.fault_iova == 0x5000 &&
                  r.status == tlm::TLM_ADDRESS_ERROR_RESPONSE && r.bytes_ok == 16384 - 4096,
              "faults counted per transfer with the first faulting address");
        check(fault.results[1].faults == 0 && fault.results[1].bytes_ok == 1024,
              "the next transfer succeeds");
        check(fault.results[2].faults == 1 && fault.results[3].faults == 0, "write faults too");
        check(fault.stat("faults") == 9 && fault.stat("faulted_transfers") == 2 &&
                  fault.stat("bytes_read") == 12288 + 1024 && fault.stat("bytes_written") == 64,
              "fault counters; failed requests move no bytes");
    }

    // Histograms: one tag, 4 requests of 200 ns per transfer -> 800 ns transfers.
    {
        const Histogram& t = hist.stats.histogram("transfer_latency", "ns", "");
        const Histogram& p = hist.stats.histogram("piece_latency", "ns", "");
        check(t.count() == 5 && t.min() == 800 && t.max() == 800 && t.percentile(99) == 800,
              "transfer latency = 4 serial requests of 200 ns");
        check(p.count() == 20 && p.min() == 200 && p.max() == 200, "piece latency 200 ns");
        const Histogram& s = spread.stats.histogram("piece_latency", "ns", "");
        check(s.percentile(50) == 50 && s.percentile(90) == 90 && s.max() == 100 && s.min() == 10,
              "piece-latency percentiles of 10..100 ns");
    }

    // A target that waits inside b_transport sees the same timing.
    check(sync.tgt.last_done() == 500 * kNs && sync.results.size() == 10,
          fmt::format("synchronising target: 10 requests on 2 tags end at 500 ns ({})",
                      sync.tgt.last_done()));

    check(late.results.size() == 2 && late.results[1].submitted == 200 * kNs &&
              late.results[1].first_issue == 500 * kNs,
          "a submission during the engine's sync is kept (issued after the engine's 500 ns)");

    // Queued submission: each transfer is ready when submitted, done 250 ns later.
    {
        bool ok = queued.results.size() == 3;
        for (size_t i = 0; ok && i < 3; ++i)
            ok &= queued.results[i].submitted == (i + 1) * 1000 * kNs &&
                  queued.results[i].latency() == 250 * kNs;
        check(ok, "submit(): ready at the submitting process's time, latency 250 ns");
    }
    return check.finish();
}
