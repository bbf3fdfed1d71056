// SystemC property bench: random SVA workloads on the accelerator, each world a VT-d unit in
// scalable mode with the host's SVA software (process address spaces, page request service)
// and one device whose processes (native or in a guest), buffers, unpopulated fraction, work
// queue, engines, operations and transfer sizes are drawn from the world's seed. Properties:
// every completed access's translation equals the process page table's final intent; no
// descriptor is lost (each submitted one writes its completion record); every page request
// is answered exactly once (the agent's responses equal its requests, none unexpected, the
// host's ledger balances with nothing pending); an access fails only when the queue
// overflowed (the unit's automatic responses). One seed run twice (each in a process of its
// own) gives the same statistics, byte for byte. >= 10^5 translated requests over eight seeds,
// scaled by IOMMUSIM_PROPERTY_SCALE.
#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <systemc>
#include <vector>

#include "arch/vtd/vtd_regs.h"
#include "bundles/vtd/vtd_sva.h"
#include "devices/sva_accel.h"
#include "host/dma_api.h"
#include "host/vtd_inv_queue.h"
#include "memory/fixed_memory.h"
#include "sc_harness.h"
#include "sc_vtd_scalable.h"
#include "support/property.h"

using namespace iommusim;
using namespace sc_core;

namespace {

const Requester kFn = Requester::bdf(0x21, 0, 0);

struct Drawn {
    SvaAccelParams accel;
    sva::PrqParams prq;
    std::string text;  // for failure messages
};

Drawn draw(uint64_t seed, uint64_t accesses) {
    test::Rng r(seed);
    Drawn d;
    SvaAccelParams& p = d.accel;
    p.bus = kFn.bus();
    p.seed = seed;
    p.processes = uint32_t(r.range(1, 6));
    p.pasid_base = uint32_t(r.range(1, 1000));
    p.guest = r.chance(30);
    p.buffer = r.range(4, 64) * 4096;
    p.unpopulated = double(r.below(101)) / 100.0;
    p.op = SvaOp(r.below(4));
    p.size = uint32_t(
        std::min<uint64_t>(p.buffer, r.chance(50) ? r.range(8, 512) : r.range(512, 16384)));
    p.inflight = uint32_t(r.range(1, 16));
    p.wq_size = uint32_t(r.range(2, 64));
    p.engines = uint32_t(r.range(1, 4));
    p.engine_gbps = double(r.range(1, 30));
    p.ats.atc_entries = uint32_t(1) << r.range(2, 7);
    p.ats.outstanding = uint32_t(r.range(1, 32));
    p.ats.pri_attempts = uint32_t(r.range(1, 3));
    // Accesses per descriptor: pieces of at most 256 bytes, two accesses each for copy and
    // compare, one for fill, and the completion record.
    const uint64_t pieces = (p.size + 255) / 256 + 1;
    const uint64_t per = p.op == SvaOp::Fill ? pieces + 1 : 2 * pieces + 1;
    p.descriptors = std::max<uint64_t>(1, accesses / per / p.processes);
    d.prq.prq_base = test::kPrqBase;
    d.prq.status_addr = test::kStatus;
    d.prq.workers = uint32_t(r.range(1, 4));
    d.prq.pqs = uint32_t(r.below(2));
    d.text = fmt::format(
        "seed {}: {} processes{} buffer {} unpopulated {:.2f} op {} size {} inflight {} wq {} "
        "engines {} atc {} outstanding {} attempts {} workers {} pqs {}",
        seed, p.processes, p.guest ? " (guest)" : "", p.buffer, p.unpopulated, to_string(p.op),
        p.size, p.inflight, p.wq_size, p.engines, p.ats.atc_entries, p.ats.outstanding,
        p.ats.pri_attempts, d.prq.workers, d.prq.pqs);
    return d;
}

struct World : sc_module, test::ScalableVtd {
    Drawn drawn;
    StatGroup stats;
    VtdIommu iommu;
    VtdQueueFeeder feeder{drv, iommu, queue};
    FixedMemory data{"data", store, sc_time(60, SC_NS)};
    FixedMemory tables{"tables", store, sc_time(90, SC_NS)};
    std::unique_ptr<VtdSvaHost> host;
    std::unique_ptr<SvaAccel> accel;
    std::vector<SvaAccess> accesses;

    World(sc_module_name n, uint64_t seed, uint64_t target)
        : sc_module(n),
          drawn(draw(seed, target)),
          stats("world"),  // one name: worlds of one seed compare byte for byte
          iommu("iommu", vtd::RegFileConfig::scalable_unit(), drv.hw(), UnitParams{},
                stats.child("iommu")) {
        wire(iommu, data, tables);
        host = std::make_unique<VtdSvaHost>("host", drv, iommu, store, queue, feeder, drawn.prq,
                                            stats.child("iommu").child("prq"));
        SvaSpaces* spaces = sva_spaces(*host, kFn);
        accel =
            std::make_unique<SvaAccel>("accel", drawn.accel, *spaces, 256, stats.child("accel"));
        accel->dma.bind(iommu.unit().upstream);
        accel->on_access([this](const SvaAccess& a) { accesses.push_back(a); });
        iommu.unit().attach_function(*accel->ats(),
                                     {[](Tick t, unsigned) { return t + 300 * kTicksPerNs; },
                                      [](Tick t, unsigned) { return t + 250 * kTicksPerNs; }},
                                     true);
    }

    void start_of_simulation() override {
        enable(iommu, 0);
        feeder.submit(0);
        host->enable(0);
    }

    uint64_t counter(const std::string& path) {
        StatGroup* g = &stats;
        std::string p = path;
        for (size_t dot; (dot = p.find('.')) != std::string::npos; p = p.substr(dot + 1))
            g = &g->child(p.substr(0, dot));
        return g->counter(p, "").value();
    }

    // The properties, once the device has finished and the service is idle.
    void verify(test::Checker& check) {
        const std::string& w = drawn.text;
        const SvaAccelParams& p = drawn.accel;
        check(accel->finished(), w + ": the device finished");
        const uint64_t all = p.descriptors * p.processes;
        check(counter("accel.submitted") == all && counter("accel.completed") == all,
              fmt::format("{}: every descriptor submitted and completed ({} of {})", w,
                          counter("accel.completed"), all));
        uint64_t wrong = 0, failed = 0;
        for (const SvaAccess& a : accesses) {
            if (!a.ok) {
                ++failed;
                continue;
            }
            const Expectation e = drv.expect(kFn.with_pasid(a.pasid), a.va);
            if (!e.mapped || e.pa != a.pa) {
                if (wrong++ < 3)
                    check(false, fmt::format("{}: PASID {} va {:#x} -> {:#x}, the table says {}", w,
                                             a.pasid, a.va, a.pa,
                                             e.mapped ? fmt::format("{:#x}", e.pa) : "unmapped"));
            }
        }
        check(wrong == 0, fmt::format("{}: {} completed accesses as the final tables say", w,
                                      accesses.size() - failed));
        const uint64_t requests = counter("accel.ats.pri.page_requests");
        const uint64_t answers = counter("accel.ats.pri.responses_success") +
                                 counter("accel.ats.pri.responses_invalid_request") +
                                 counter("accel.ats.pri.responses_failure");
        check(
            requests == answers && counter("accel.ats.pri.responses_unexpected") == 0,
            fmt::format("{}: {} page requests, {} answers, none unexpected", w, requests, answers));
        const sva::PrqLedger& l = host->service().ledger();
        check(l.pending() == 0 && l.balance().empty() && host->defects().empty(),
              fmt::format("{}: the ledger balances with nothing pending ({})", w, l.balance()));
        check(l.answered + l.refused_answered + l.answered_by_unit == requests,
              fmt::format("{}: each request answered once (software {}, unit {} + {})", w,
                          l.answered, l.refused_answered, l.answered_by_unit));
        const uint64_t auto_answers = l.refused_answered + l.answered_by_unit;
        check(failed == 0 || auto_answers > 0,
              fmt::format("{}: {} failed accesses, only after overflow ({} automatic answers)", w,
                          failed, auto_answers));
        check(counter("accel.translation_mismatches") == 0, w + ": no mismatch seen at run time");
        check(accel->ats()->pending_page_requests() == 0, w + ": the agent has nothing pending");
    }
};

// The output of this program run for one seed alone (`--dump SEED`): its statistics.
std::string run_alone(uint64_t seed) {
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return "";
    self[n] = 0;
    std::string out;
    if (FILE* f = popen(fmt::format("{} --dump {}", self, seed).c_str(), "r")) {
        char buf[4096];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, k);
        pclose(f);
    }
    return out;
}

struct Bench : sc_module {
    test::Checker check{test::Checker::Where::Thread};
    std::vector<std::unique_ptr<World>> worlds;
    uint64_t target = 0;
    bool dump = false;

    SC_HAS_PROCESS(Bench);
    // `dump`: one world of `seed`, its statistics printed at the end; otherwise eight seeds.
    Bench(sc_module_name n, bool dump_one, uint64_t seed) : sc_module(n), dump(dump_one) {
        target = test::scaled(20000);
        const std::vector<uint64_t> seeds =
            dump ? std::vector<uint64_t>{seed}
                 : std::vector<uint64_t>{11, 23, 37, 41, 53, 67, 79, 97};
        for (size_t i = 0; i < seeds.size(); ++i)
            worlds.push_back(
                std::make_unique<World>(fmt::format("world{}", i).c_str(), seeds[i], target));
        SC_THREAD(run);
    }

    void run() {
        for (auto& w : worlds)
            if (!w->accel->finished()) wait(w->accel->finished_event());
        wait(sc_time(1, SC_MS));  // the services' last steps
        if (dump) {
            fmt::print("{}\n", to_json(worlds[0]->stats));
            sc_stop();
            return;
        }
        uint64_t total = 0;
        for (auto& w : worlds) total += w->accesses.size();
        check(total >= test::scaled(100000),
              fmt::format("{} translated requests over {} seeds", total, worlds.size()));
        for (auto& w : worlds) w->verify(check);
        // Same seed, same bytes: the last seed run twice more, each in a process of its own.
        const std::string a = run_alone(41), b = run_alone(41);
        check(!a.empty() && a == b, "the same seed gives the same statistics, byte for byte");
        check.reached_end();
        sc_stop();
    }
};
}  // namespace

int sc_main(int argc, char* argv[]) {
    const bool dump = argc == 3 && std::string(argv[1]) == "--dump";
    Bench b("bench", dump, dump ? std::strtoull(argv[2], nullptr, 10) : 0);
    sc_start();
    return dump ? 0 : b.check.finish();
}
