// SystemC bench: the SVA accelerator on a VT-d unit in scalable mode with the host's SVA
// software (bundles/vtd/vtd_sva.h: process address spaces, the page request service). One
// process, one page of destination buffer not present: its first fill descriptor's write gets
// a translation completion without rights, the device's agent sends a page request, the unit
// writes it to the PRQ and interrupts, the service's handler reads it, a worker faults the
// page in and answers through the invalidation queue, the agent retries and the write and the
// completion record follow. The descriptor's end is predicted to the picosecond as the sum of
// the modelled pieces (the unit's translation latencies from its translate hook, the
// service's costs from its parameters, fixed memory and message latencies). The second
// descriptor to the same page hits the ATC: no unit translation, no page request. Then the
// service hangs: a page request stays unanswered and the host reports it as a defect.
#include <fmt/format.h>

#include <memory>
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

using namespace iommusim;
using namespace sc_core;

namespace {

constexpr Tick kNs = kTicksPerNs;
constexpr Tick kDown = 200 * kNs, kUp = 150 * kNs;  // unit <-> function messages
constexpr Tick kDataNs = 50, kTablesNs = 90;
constexpr Tick kCycle = 1000;  // register file clock: 1 GHz
const Requester kFn = Requester::bdf(0x3a, 0, 0);
constexpr uint32_t kPasid = 7;

SvaAccelParams accel_params() {
    SvaAccelParams p;
    p.bus = kFn.bus();
    p.processes = 1;
    p.pasid_base = kPasid;
    p.buffer = 4096;  // one page: both descriptors write to it
    p.unpopulated = 1.0;
    p.descriptors = 2;
    p.size = 64;
    p.op = SvaOp::Fill;
    p.inflight = 1;
    p.engines = 1;
    p.engine_gbps = 1.0;  // 64 bytes: 64 ns
    p.submit_ns = 100;
    p.descriptor_ns = 100;
    return p;
}

sva::PrqParams prq_params() {
    sva::PrqParams p;
    p.prq_base = test::kPrqBase;
    p.status_addr = test::kStatus;
    // Distinct values so that a piece counted twice or missed shows.
    p.irq_ns = 5000, p.desc_ns = 110, p.group_ns = 3000, p.fault_ns = 1300, p.respond_ns = 230;
    return p;
}

struct Bench : sc_module, test::ScalableVtd {
    StatGroup stats{"iommu0"}, dev_stats{"accel"};
    VtdIommu iommu;
    VtdQueueFeeder feeder{drv, iommu, queue};
    FixedMemory data{"data", store, sc_time(double(kDataNs), SC_NS)};
    FixedMemory tables{"tables", store, sc_time(double(kTablesNs), SC_NS)};
    std::unique_ptr<VtdSvaHost> host;
    std::unique_ptr<SvaAccel> accel;
    test::Checker check{test::Checker::Where::Thread};
    struct Translation {
        Tick arrival, done;
    };
    std::vector<Translation> trs;
    std::vector<SvaAccess> accesses;

    SC_HAS_PROCESS(Bench);
    explicit Bench(sc_module_name n)
        : sc_module(n),
          iommu("iommu", vtd::RegFileConfig::scalable_unit(), drv.hw(), UnitParams{}, stats) {
        wire(iommu, data, tables);
        iommu.unit().on_translate(
            [this](const Requester&, Addr, Tick a, const TranslateOutcome& o) {
                trs.push_back({a, o.done});
            });
        host = std::make_unique<VtdSvaHost>("host", drv, iommu, store, queue, feeder, prq_params(),
                                            stats.child("prq"));
        SvaSpaces* spaces = sva_spaces(*host, kFn);
        accel = std::make_unique<SvaAccel>("accel", accel_params(), *spaces, 256, dev_stats);
        accel->dma.bind(iommu.unit().upstream);
        accel->on_access([this](const SvaAccess& a) { accesses.push_back(a); });
        iommu.unit().attach_function(
            *accel->ats(),
            {[](Tick t, unsigned) { return t + kDown; }, [](Tick t, unsigned) { return t + kUp; }},
            true);
        // The completion records' page is present: only the buffer faults.
        sva::Process* p = host->processes().processes().at(0).get();
        check(p->fault(accel->processes()[0]->comp, kPermRW) == sva::FaultOutcome::Populated,
              "completion page populated");
        SC_THREAD(run);
    }

    // As the bundle does at time 0: root table, queued invalidation, translation, the
    // attaches' invalidations, then the page request queue.
    void start_of_simulation() override {
        enable(iommu, 0);
        feeder.submit(0);
        host->enable(0);
    }

    void run() {
        wait(accel->finished_event());
        wait(sc_time(100, SC_US));  // the service's last steps
        const sva::PrqParams pp = prq_params();
        const SvaAccelParams ap = accel_params();
        check(accel->finished(), "both descriptors completed");
        check(accesses.size() == 4,
              fmt::format("four accesses: two writes, two records ({})", accesses.size()));
        check(trs.size() == 3, fmt::format("three translations by the unit ({})", trs.size()));
        if (accesses.size() == 4 && trs.size() == 3) {
            const SvaAccess& w = accesses[0];
            const SvaAccess& rec = accesses[1];
            check(w.write && w.paged && w.ok && !rec.paged && rec.ok,
                  "the first write went through PRI, its record did not");
            // Pieces: submission (ENQCMD), the engine's descriptor work; Translation Request
            // 1 in the unit; page request up, accepted (page_request_cycles) and written to
            // the PRQ (tables memory); the interrupt; the handler (irq_ns; its PRS write takes
            // no unit time) and one descriptor (desc_ns); the worker (group_ns,
            // fault_ns, respond_ns); the unit fetches the response (tables memory) and
            // dispatches it (desc_cycles); the response down; Translation Request 2; the
            // write (data memory); Translation Request 3 for the record; the record's write.
            const Tick start = ticks_from_ns(ap.submit_ns + ap.descriptor_ns);
            check(trs[0].arrival == start,
                  fmt::format("TR 1 at {} ps, predicted {} ps", trs[0].arrival, start));
            const Tick irq = trs[0].done + kUp + 2 * kCycle + kTablesNs * kNs;
            const Tick response =
                irq + ticks_from_ns(pp.irq_ns) +
                ticks_from_ns(pp.desc_ns + pp.group_ns + pp.fault_ns + pp.respond_ns) +
                kTablesNs * kNs + 4 * kCycle + kDown;
            check(trs[1].arrival == response,
                  fmt::format("retried TR at {} ps, predicted {} ps (difference {})",
                              trs[1].arrival, response, int64_t(trs[1].arrival - response)));
            const Tick write_done = trs[1].done + kDataNs * kNs;
            check(w.done == write_done,
                  fmt::format("write done at {} ps, predicted {} ps", w.done, write_done));
            check(trs[2].arrival == write_done, "the record's translation follows the write");
            const Tick predicted = trs[2].done + kDataNs * kNs;
            check(rec.done == predicted,
                  fmt::format("fault-and-retry descriptor ends at {} ps, predicted {} ps", rec.done,
                              predicted));
            const SvaAccess& w2 = accesses[2];
            check(!w2.paged && w2.ok && w2.pa == w.pa - (w.va - w2.va),
                  "the second write hits the ATC: same page, no fault");
        }
        for (const SvaAccess& a : accesses) {
            const Expectation e = drv.expect(kFn.with_pasid(kPasid), a.va);
            check(e.mapped && e.pa == a.pa,
                  fmt::format("va {:#x} -> {:#x} as the process table says", a.va, a.pa));
        }
        const std::vector<std::string> defects = host->defects();
        check(defects.empty(), fmt::format("no unanswered page request ({})", defects.size()));
        check(host->service().ledger().answered == 1, "one page request answered");
        check(accel->ats()->pending_page_requests() == 0, "the agent has nothing outstanding");

        // A hung service: a page request for the (never touched) source page stays
        // unanswered, and the host reports it as a defect naming it.
        host->service().stop();
        const Addr src = accel->processes()[0]->src;
        sc_spawn([this, src] {
            accel->ats()->translate(kFn.with_pasid(kPasid), src, Access::Read, sim_now());
        });
        wait(sc_time(100, SC_US));
        const std::vector<std::string> hung = host->defects();
        check(hung.size() == 1 && hung[0].find(fmt::format("{:#x}", src)) != std::string::npos &&
                  hung[0].find("never answered") != std::string::npos,
              fmt::format("the unanswered request is reported: {}",
                          hung.empty() ? std::string("nothing") : hung[0]));
        check(accel->ats()->pending_page_requests() == 1, "the agent still waits for it");
        if (getenv("SC_SVA_DUMP")) {
            for (const auto* g : {&stats, &dev_stats})
                for (const auto& c : g->children())
                    for (const auto& e : c->entries())
                        if (e.counter && e.counter->value())
                            fmt::print("{}.{} = {}\n", c->path(), e.name, e.counter->value());
            for (const auto& e : dev_stats.entries())
                if (e.counter) fmt::print("accel.{} = {}\n", e.name, e.counter->value());
        }
        check.reached_end();
        sc_stop();
    }
};
}  // namespace

int sc_main(int, char*[]) {
    return test::run_bench<Bench>();
}
