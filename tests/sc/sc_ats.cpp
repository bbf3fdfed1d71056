// SystemC bench: ATS between a function's agent and a VT-d unit in scalable mode. A miss sends
// a Translation Request and fills the ATC, later requests hit it and go out translated; a
// device-TLB invalidation descriptor removes the entries (the function stops using them once
// the invalidation completed, and not before: a remap without it leaves the old page in use);
// a completion waits for the translated requests in flight; a function without ATS enabled in
// its context entry has its translated request rejected with fault 0x44; a function that
// never answers an invalidation leaves the queue with ITE.
#include <fmt/format.h>

#include <systemc>

#include "arch/vtd/vtd_fault.h"
#include "pcie/pcie_link.h"
#include "sc_ats_rig.h"

using namespace iommusim;
using namespace sc_core;
using namespace iommusim::test;

namespace {
const Requester kFn = Requester::bdf(0x3a, 0, 0);     // ATS enabled
const Requester kOther = Requester::bdf(0x3b, 0, 0);  // attached, ATS not enabled
const Requester kMute = Requester::bdf(0x3c, 0, 0);   // never answers invalidations

// A function that never completes an ATC invalidation.
struct Mute final : ats::Function {
    unsigned asked = 0;
    Requester requester() const override { return kMute; }
    Tick invalidate(const ats::Invalidation&, Tick) override { return ++asked, kNever; }
    void page_response(const ats::PrgResponse&, Tick) override {}
    void connect(ats::Host&) override {}
};

struct Bench : test::AtsRig {
    Mute mute;
    // The platform's message cost: PcieLink::message on a device link (its host side unused).
    StatGroup link_stats{"link"};
    PcieLink link{"link", PcieLinkParams{}, link_stats};
    FixedMemory sink{"sink", store, SC_ZERO_TIME};
    test::Initiator device{"device"};
    SC_HAS_PROCESS(Bench);
    explicit Bench(sc_module_name n)
        : AtsRig(n, kFn, [] {
              AtsParams p;
              p.enable = true;
              return p;
          }()) {
        link.host.bind(sink.target);
        device.socket.bind(link.device);
        SC_THREAD(run);
    }

    void fill(Addr pa, uint8_t v) {
        uint8_t b[64];
        std::fill(std::begin(b), std::end(b), v);
        store.write(pa, b, sizeof b);
    }

    void run() {
        bring_up();
        const uint16_t did = *drv.create_domain({});
        drv.attach(kFn.rid, did);
        drv.attach(kOther.rid, *drv.create_domain({}));
        drv.attach(kMute.rid, *drv.create_domain({}));
        check(submit(), "the attaches' invalidations completed");
        iommu.unit().attach_function(agent, fixed_path(), false);
        iommu.unit().attach_function(mute, fixed_path(), false);

        const Addr iova = 0x10'0000, pa1 = Addr(0x2) << 32, pa2 = Addr(0x3) << 32;
        check(drv.map(did, iova, pa1, 0x2000, kPermRW), "buffer mapped");
        fill(pa1, 0x11);
        fill(pa1 + 0x1000, 0x22);
        fill(pa2, 0x33);

        // A miss: Translation Request, ATC fill, translated read of the right bytes.
        uint8_t buf[64] = {};
        DmaResult r = dma(kFn, iova, false, buf, 64);
        check(r.faults == 0 && buf[0] == 0x11 && buf[63] == 0x11, "first DMA read pa1's bytes");
        check(agent.cached(kFn, iova), "the ATC holds the page");
        check(counter(dev_stats, "ats.atc.misses") == 1 && counter(dev_stats, "ats.atc.hits") == 0,
              "one ATC miss");
        check(counter(stats, "ats.translation_requests") == 1 &&
                  counter(stats, "ats.translated_requests") == 1,
              "the unit saw one Translation Request and one translated request");
        const uint64_t walks = counter(stats, "translations");
        r = dma(kFn, iova + 64, false, buf, 64);
        check(r.faults == 0 && counter(dev_stats, "ats.atc.hits") == 1, "second DMA hit the ATC");
        check(counter(stats, "translations") == walks &&
                  counter(stats, "ats.translation_requests") == 1,
              "a hit costs the unit no translation");
        dma(kFn, iova + 0x1000, false, buf, 64);
        check(buf[0] == 0x22 && agent.atc_size() == 2, "second page translated and cached");

        // The host moves the first page (strict unmap: IOTLB invalidated) but has not yet
        // invalidated the device-TLB: the function still uses its ATC entry, the old page.
        drv.unmap(did, iova, 0x1000);
        check(drv.map(did, iova, pa2, 0x1000, kPermRW), "page remapped to pa2");
        check(submit(), "the unmap's IOTLB invalidation completed");
        dma(kFn, iova, false, buf, 64);
        check(buf[0] == 0x11, "before the ATC invalidation the function reads the old page");

        // The device-TLB invalidation of that one page (S = 0): removed, completed.
        vtd::DeviceTlbInv inv;
        inv.sid = kFn.rid;
        inv.addr = iova;
        check(submit({vtd::encode(inv)}), "the device-TLB invalidation and its wait completed");
        check(!agent.cached(kFn, iova) && agent.cached(kFn, iova + 0x1000),
              "only the invalidated page left the ATC");
        check(counter(dev_stats, "ats.invalidations.requests") == 1 &&
                  counter(dev_stats, "ats.invalidations.entries") == 1,
              "the agent received one invalidation, removing one entry");
        check(counter(stats, "ats.invalidation_completions") == 1, "the unit got its completion");
        const uint64_t trs = counter(stats, "ats.translation_requests");
        dma(kFn, iova, false, buf, 64);
        check(buf[0] == 0x33, "after it completed the function reads the new page");
        check(counter(stats, "ats.translation_requests") == trs + 1,
              "through a new Translation Request");

        // A range invalidation (S = 1, 8 KiB) takes both pages.
        inv.addr = iova;  // bit 12 clear with S: 8 KiB
        inv.s = true;
        check(submit({vtd::encode(inv)}), "the 8 KiB invalidation completed");
        check(agent.atc_size() == 0, "both pages left the ATC");

        // Completion ordering: after the translated requests in flight when it arrived.
        agent.used(sim_now(), sim_now() + 5 * 1'000'000);
        ats::Invalidation all;
        all.req = kFn;
        all.all = true;
        const Tick arrive = sim_now() + 1000;
        check(agent.invalidate(all, arrive) == sim_now() + 5 * 1'000'000,
              "a completion waits for the in-flight use");
        check(agent.invalidate(all, sim_now() + 6 * 1'000'000) ==
                  sim_now() + 6 * 1'000'000 + 100 * kTicksPerNs,
              "with nothing in flight it leaves invalidation_ns after arrival");
        wait(6, SC_US);

        // The unit's round trip: down, the function's time, up.
        const Tick t0 = sim_now();
        check(iommu.unit().invalidate_atc(
                  [] {
                      InvalidationScope s;
                      s.kind = InvalidationScope::Kind::DeviceTlb;
                      s.rid = kFn.rid;
                      s.order = InvalidationScope::kWholeSpace;
                      return s;
                  }(),
                  t0) == t0 + kDown + 100 * kTicksPerNs + kUp,
              "invalidation round trip = down + invalidation_ns + up");

        // A message on a link: serialized on its direction, then the link latency; a second
        // one ready at the same time queues behind the first.
        const Tick m0 = sim_now() + 1000;
        const Tick m1 = link.message(true, ats::kInvalidationRequestBytes, m0);
        const Tick m2 = link.message(true, ats::kInvalidationRequestBytes, m0);
        const Tick ser = m2 - m1;
        const Tick lat = Tick(link.params().latency_ns) * kTicksPerNs;
        check(ser > 0 && m1 == m0 + ser + lat,
              fmt::format("message: {} ps serialization + {} ps latency", ser, lat));
        check(link_stats.child("downstream").counter("busy_ps", "").value() == 2 * ser &&
                  link_stats.child("downstream").counter("tlps", "").value() == 2,
              "both messages went down the link");
        check(link.message(false, 0, m0) < m1 &&
                  link_stats.child("upstream").counter("msg_tlps", "").value() == 1,
              "an upstream message (no data) is shorter and counted as a Msg");

        // A translated request from a function without ATS: UR, fault 0x44 recorded.
        {
            test::DmaPayload d(kOther, false, pa1, buf, 64);
            d.attr.at = PcieAttr::At::Translated;
            sc_time delay = SC_ZERO_TIME;
            raw.socket->b_transport(d.p, delay);
            check(d.p.get_response_status() == tlm::TLM_ADDRESS_ERROR_RESPONSE,
                  "translated request of a non-ATS function rejected");
        }
        const vtd::RegFileConfig cfg = vtd::RegFileConfig::scalable_unit();
        const uint32_t frcd = cfg.cap.frcd_offset(0);
        const auto rec =
            vtd::FaultRecord::decode(iommu.mmio_read(frcd, 8), iommu.mmio_read(frcd + 8, 8));
        check(rec.f && rec.sid == kOther.rid && rec.fr == vtd::kSmContextDteClear &&
                  rec.at == vtd::AddrType::Translated,
              fmt::format("fault record: sid {:#x} reason {:#x} AT {}", rec.sid, rec.fr,
                          unsigned(rec.at)));
        check(counter(stats, "ats.translated_rejected") == 1, "counted as rejected");
        {
            test::DmaPayload d(kOther, false, iova, buf, 8);
            d.attr.at = PcieAttr::At::TranslationRequest;
            sc_time delay = SC_ZERO_TIME;
            raw.socket->b_transport(d.p, delay);
            check(d.p.get_response_status() == tlm::TLM_ADDRESS_ERROR_RESPONSE,
                  "and so is its Translation Request");
        }

        // A non-recoverable fault of a Translation Request (beyond the address width): UR, and
        // a fault record whose AT says translation request; R = W = 0 would mean "try PRI".
        {
            test::DmaPayload d(kFn, false, Addr(1) << 60, buf, 8);
            d.attr.at = PcieAttr::At::TranslationRequest;
            sc_time delay = SC_ZERO_TIME;
            raw.socket->b_transport(d.p, delay);
            check(d.p.get_response_status() == tlm::TLM_ADDRESS_ERROR_RESPONSE,
                  "Translation Request beyond the address width: UR");
            const uint32_t f1 = cfg.cap.frcd_offset(2);
            const auto r1 =
                vtd::FaultRecord::decode(iommu.mmio_read(f1, 8), iommu.mmio_read(f1 + 8, 8));
            check(r1.f && r1.sid == kFn.rid && r1.at == vtd::AddrType::TranslationRequest,
                  fmt::format("its fault record: sid {:#x} reason {:#x} AT {}", r1.sid, r1.fr,
                              unsigned(r1.at)));
            check(counter(stats, "ats.translation_request_faults") == 2,
                  "two Translation Requests answered with UR");
        }

        // A function that never answers: ITE, with its RID in IQERCD; the queue stops.
        vtd::DeviceTlbInv m;
        m.sid = kMute.rid;
        check(!submit({vtd::encode(m)}),
              "the wait behind an unanswered invalidation never completes");
        check(mute.asked == 1, "the function was asked once");
        check(iommu.mmio_read(reg::FSTS, 4) & vtd::fsts::ITE, "ITE set");
        check(((iommu.mmio_read(reg::IQERCD, 8) >> 32) & 0xFFFF) == kMute.rid, "IQERCD names it");
        check(counter(stats, "ats.invalidations_unanswered") == 1, "counted as unanswered");
        check.reached_end();
        sc_stop();
    }
};
}  // namespace

int sc_main(int, char*[]) {
    return run_bench<Bench>();
}
