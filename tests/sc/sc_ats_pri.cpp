// SystemC bench: PRI between a function's agent and a VT-d unit in scalable mode. A DMA with a
// PASID to a page the process has not populated gets a completion without rights; the agent
// sends a page request, the unit writes it to the page request queue and interrupts; a
// software model (the bench's PRQ handler) maps the page after a fixed service time and
// answers with a page group response through the invalidation queue; the agent retries and
// the DMA completes. Its latency is predicted to the picosecond as the sum of the modelled
// pieces (the unit's own translation latencies taken from its translate hook). Then the PRQ
// is made full: the unit's automatic Success response reaches the agent, whose retry still
// finds no rights, and the DMA fails; with PRO set the same happens without a queue write.
// The handler's Invalid Request fails the DMA at once; five faults at once with an Outstanding
// Page Request Allocation of four make the fifth wait for a response.
#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn
#include <fmt/format.h>

#include <systemc>
#include <vector>

#include "sc_ats_rig.h"

using namespace iommusim;
using namespace iommusim::test;
using namespace sc_core;

namespace {
const Requester kFn = Requester::bdf(0x3a, 0, 0);
constexpr uint32_t kPasid = 5;
const Requester kProc = kFn.with_pasid(kPasid);
constexpr Tick kService = 3 * 1'000'000;  // the handler's software time: 3 us
constexpr Tick kCycle = 1000;             // register file clock: 1 GHz
constexpr Addr kPages = 0x40'0000, kPhys = Addr(0x5) << 32;

struct Bench : AtsRig {
    sc_event irq;
    Tick irq_at = 0, responded_at = 0;
    bool serve = true;
    Addr refuse = 0;  // the handler answers Invalid Request for this page
    uint16_t fl = 0;
    std::vector<vtd::PageRequest> seen;
    struct Translation {
        Tick arrival, done;
    };
    std::vector<Translation> trs;

    SC_HAS_PROCESS(Bench);
    explicit Bench(sc_module_name n)
        : AtsRig(n, kFn, [] {
              AtsParams p;
              p.enable = p.pri = true;
              p.outstanding = 4;
              return p;
          }()) {
        iommu.on_interrupt([this](vtd::Interrupt i, Tick at) {
            if (i != vtd::Interrupt::PageRequest) return;
            irq_at = at;
            irq.notify(to_sc_time(at - sim_now()));
        });
        iommu.unit().on_translate(
            [this](const Requester&, Addr, Tick a, const TranslateOutcome& o) {
                trs.push_back({a, o.done});
            });
        SC_THREAD(run);
        SC_THREAD(handler);
    }

    // The host's PRQ service routine: every request in [PQH, PQT) is read, its page mapped
    // (populated) and answered with a page group response; then PQH = PQT and PPR cleared.
    void handler() {
        for (;;) {
            wait(irq);
            if (!serve) continue;
            wait(to_sc_time(kService));
            const uint32_t head = vtd::pq_index(iommu.mmio_read(reg::PQH, 8));
            const uint32_t tail = vtd::pq_index(iommu.mmio_read(reg::PQT, 8));
            std::vector<vtd::InvDesc> out;
            for (uint32_t i = head; i != tail; i = (i + 1) % 128) {
                uint64_t qw[4];
                store.read(kPrqBase + Addr(i) * 32, qw, 32);
                const auto d = vtd::decode_page_request(qw);
                const auto* pr = std::get_if<vtd::PageRequest>(&d);
                check(pr != nullptr, "the page request descriptor decodes");
                if (!pr) continue;
                seen.push_back(*pr);
                const bool ok = pr->addr != refuse;
                if (ok) drv.map(fl, pr->addr, kPhys + (pr->addr - kPages), 0x1000, kPermRW);
                vtd::PageGroupResponse r;
                r.pp = pr->pp, r.rid = pr->rid, r.pasid = pr->pasid, r.prgi = pr->prgi;
                r.rc = uint8_t(ok ? vtd::PageResponseCode::Success
                                  : vtd::PageResponseCode::InvalidRequest);
                out.push_back(vtd::encode(r));
            }
            responded_at = sim_now();
            const auto iqt = queue.append(out, iommu.mmio_read(reg::IQH, 8));
            check(bool(iqt), "responses fit in the invalidation queue");
            if (iqt) iommu.mmio_write(reg::IQT, 8, *iqt, responded_at);
            iommu.mmio_write(reg::PQH, 8, vtd::pq_reg(tail), responded_at);
            iommu.mmio_write(reg::PRS, 4, vtd::prs::PPR, responded_at);
        }
    }

    void run() {
        bring_up();
        iommu.mmio_write(reg::PQA, 8, vtd::Pqa{kPrqBase, 0}.encode(), sim_now());
        iommu.mmio_write(reg::PECTL, 4, 0, sim_now());
        const uint16_t did = *drv.create_domain({});
        drv.attach(kFn.rid, did);
        vtd::DomainOptions o;
        o.stage = vtd::Stage::FirstLevel;
        fl = *drv.create_domain(o);
        check(drv.attach_pasid(kFn.rid, kPasid, fl), "the process's PASID attached");
        check(submit(), "the attaches' invalidations completed");
        iommu.unit().attach_function(agent, fixed_path(), true);
        check(drv.map(fl, kPages, kPhys, 0x1000, kPermRW), "first page populated");

        uint8_t buf[64] = {};
        DmaResult r = dma(kProc, kPages, false, buf, 64);
        check(r.faults == 0 && counter(dev_stats, "ats.pri.page_requests") == 0,
              "a populated page needs no page request");

        // The second page is not populated: fault, page request, service, response, retry.
        const Addr page = kPages + 0x1000;
        store.write64(kPhys + 0x1000, 0x4242);
        trs.clear();
        r = dma(kProc, page, false, buf, 64);
        check(r.faults == 0 && buf[0] == 0x42, "the DMA completed after the page request");
        check(seen.size() == 1 && seen[0].pp && seen[0].pasid == kPasid && seen[0].rid == kFn.rid &&
                  seen[0].addr == page && seen[0].lpig && seen[0].rdr && !seen[0].wrr,
              "the PRQ got one read page request, last of its group, for the page");
        check(trs.size() == 2, fmt::format("two translations by the unit ({})", trs.size()));
        if (trs.size() == 2) {
            const Tick t0 = r.submitted;
            // Pieces: first Translation Request in the unit; page request up; accepted
            // (page_request_cycles) and written to the PRQ (tables memory); interrupt; the
            // handler's service; descriptor fetch (tables memory) and dispatch (desc_cycles);
            // response down; retried Translation Request; translated read (data memory).
            const Tick irq_pred = trs[0].done + kUp + 2 * kCycle + kTablesNs * kTicksPerNs;
            check(trs[0].arrival == t0, "the Translation Request reached the unit at once");
            check(irq_at == irq_pred,
                  fmt::format("interrupt at {} ps, predicted {} ps", irq_at, irq_pred));
            const Tick retry = irq_at + kService + kTablesNs * kTicksPerNs + 4 * kCycle + kDown;
            check(trs[1].arrival == retry,
                  fmt::format("retry at {} ps, predicted {} ps", trs[1].arrival, retry));
            const Tick predicted = (trs[0].done - trs[0].arrival) + kUp + 2 * kCycle +
                                   kTablesNs * kTicksPerNs + kService + kTablesNs * kTicksPerNs +
                                   4 * kCycle + kDown + (trs[1].done - trs[1].arrival) +
                                   kDataNs * kTicksPerNs;
            check(r.latency() == predicted,
                  fmt::format("fault-and-retry latency {} ps, predicted {} ps", r.latency(),
                              predicted));
        }
        check(counter(dev_stats, "ats.pri.page_requests") == 1 &&
                  counter(dev_stats, "ats.pri.responses_success") == 1,
              "one page request, one Success response");
        check(agent.pending_page_requests() == 0, "every page request answered");
        check(agent.cached(kProc, page), "the retried translation is in the ATC");

        // PRQ full (tail + 1 == head): no queue write, PRO, and the unit answers Success.
        serve = false;
        const uint32_t tail = vtd::pq_index(iommu.mmio_read(reg::PQT, 8));
        iommu.mmio_write(reg::PQH, 8, vtd::pq_reg((tail + 1) % 128), sim_now());
        trs.clear();
        r = dma(kProc, kPages + 0x2000, false, buf, 64);
        check(r.faults == 1, "the DMA failed: the retry after Success still had no rights");
        check(iommu.mmio_read(reg::PRS, 4) & vtd::prs::PRO, "PRO set");
        check(vtd::pq_index(iommu.mmio_read(reg::PQT, 8)) == tail, "nothing written to the PRQ");
        check(counter(stats, "regs.page_responses_auto") == 1, "the unit answered by itself");
        check(counter(dev_stats, "ats.pri.responses_success") == 2 &&
                  counter(dev_stats, "ats.pri.failures") == 1,
              "the automatic Success reached the agent, whose retry failed");
        if (trs.size() == 2) {
            const Tick predicted = (trs[0].done - trs[0].arrival) + kUp + 2 * kCycle + kDown +
                                   (trs[1].done - trs[1].arrival);
            check(
                r.latency() == predicted,
                fmt::format("overflow round trip {} ps, predicted {} ps", r.latency(), predicted));
        } else {
            check(false, fmt::format("two translations by the unit ({})", trs.size()));
        }
        // PRO already set: discarded without event, answered the same way.
        r = dma(kProc, kPages + 0x3000, false, buf, 64);
        check(r.faults == 1 && counter(stats, "regs.page_responses_auto") == 2 &&
                  counter(dev_stats, "ats.pri.responses_success") == 3,
              "with PRO set the request is answered again");
        check(agent.pending_page_requests() == 0, "every page request answered");

        // The host refuses a page: Invalid Request, the DMA fails without a retry.
        iommu.mmio_write(reg::PRS, 4, vtd::prs::PRO | vtd::prs::PPR, sim_now());
        iommu.mmio_write(reg::PQH, 8, iommu.mmio_read(reg::PQT, 8), sim_now());
        serve = true;
        refuse = kPages + 0x4000;
        const uint64_t trs_before = counter(dev_stats, "ats.translation_requests");
        r = dma(kProc, refuse, true, buf, 64);
        check(r.faults == 1 && counter(dev_stats, "ats.pri.responses_invalid_request") == 1,
              "Invalid Request reached the agent and failed the DMA");
        check(counter(dev_stats, "ats.translation_requests") == trs_before + 1,
              "no retry after Invalid Request");
        check(seen.back().addr == refuse && seen.back().wrr && !seen.back().rdr,
              "the page request asked for write");

        // Five faults at once, an allocation of four: the fifth waits for a response.
        const uint64_t waits = counter(dev_stats, "ats.pri.credit_waits");
        const uint64_t asked = counter(dev_stats, "ats.pri.page_requests");
        int finished = 0, ok = 0;
        for (int i = 0; i < 5; ++i)
            sc_spawn([this, i, &finished, &ok] {
                const AtsAgent::Result x = agent.translate(
                    kProc, kPages + 0x10000 + Addr(i) * 0x1000, Access::Read, sim_now());
                ok += x.ok && x.paged;
                ++finished;
            });
        for (int spins = 0; spins < 100 && finished < 5; ++spins) wait(1, SC_US);
        check(finished == 5 && ok == 5, fmt::format("{} of 5 faults resolved", ok));
        check(counter(dev_stats, "ats.pri.credit_waits") == waits + 1,
              "one page request waited for the allocation");
        check(counter(dev_stats, "ats.pri.page_requests") == asked + 5, "five page requests");
        check(agent.pending_page_requests() == 0, "every page request answered");
        check.reached_end();
        sc_stop();
    }
};
}  // namespace

int sc_main(int, char*[]) {
    return run_bench<Bench>();
}
