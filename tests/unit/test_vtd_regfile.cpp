// VT-d register file, queued invalidation: the Linux submission sequence with exact timing,
// routing of every descriptor type, ordering and fences, queue errors and time-outs, and the
// descriptors the driver model writes.
#include <string>

#include "host/vtd_driver.h"
#include "vtd_regfile_test_util.h"

using namespace iommusim;
using namespace iommusim::test;
using K = InvalidationScope::Kind;
using W = RecordingHooks::What;

TEST_CASE("Linux queued-invalidation sequence completes with exact timing", "[vtd-regfile]") {
    Rig r;
    r.set_root(Ttm::Legacy);
    r.enable_qi(false);
    const Tick t0 = 1'000'000, c = 4 * kCycle;  // default desc_cycles = 4
    r.put(iotlb_page(5, 0x1234'5000, 0, true));
    r.put(cc_domain(5));
    r.put(inv_wait(kStatus, 0xC0FFEE));
    const Tick done = r.submit(t0);

    // Each descriptor: its fetch, then desc_cycles; the wait then writes its status.
    REQUIRE(r.hooks.calls.size() == 2);
    CHECK(r.hooks.calls[0].at == t0 + kLat + c);
    CHECK(r.hooks.calls[0].scope.kind == K::Page);
    CHECK(r.hooks.calls[0].scope.domain == 5);
    CHECK(r.hooks.calls[0].scope.addr == 0x1234'5000);
    CHECK(r.hooks.calls[0].scope.leaf_only);
    CHECK(r.hooks.calls[1].at == t0 + 2 * (kLat + c));
    CHECK(r.hooks.calls[1].scope.kind == K::ContextDomain);
    CHECK(done == t0 + 3 * (kLat + c) + kLat);
    CHECK(r.status_word() == 0xC0FFEE);  // the driver's poll sees QI_DONE
    CHECK(r.rd64(reg::IQH) == r.rd64(reg::IQT));
    CHECK(r.rd64(reg::IQH) == 3 * 16);
    CHECK(r.mem.reads() == 3);
    CHECK(r.mem.writes() == 1);
    CHECK(r.rf.counters().descriptors[2] == 1);
    CHECK(r.rf.counters().descriptors[1] == 1);
    CHECK(r.rf.counters().waits == 1);
    CHECK(r.rf.counters().descriptors_total() == 3);

    // The next submission starts when it arrives; the queue wraps at its end.
    const Tick t1 = done + 5'000;
    r.put(inv_wait(kStatus, 2));
    CHECK(r.submit(t1) == t1 + kLat + c + kLat);
    CHECK(r.status_word() == 2);
}

TEST_CASE("waits follow slow invalidations; FN holds later fetches", "[vtd-regfile]") {
    Rig r;
    r.set_root(Ttm::Legacy);
    r.enable_qi(false);
    r.hooks.latency = 1'000'000;  // the IOTLB takes 1 us
    const Tick t0 = 0, c = 4 * kCycle;
    r.put(iotlb_domain(3));
    r.put(inv_wait(kStatus, 1, false, /*fence=*/true));
    r.put(iotlb_global());
    const Tick done = r.submit(t0);
    const Tick first = t0 + kLat + c;
    REQUIRE(r.hooks.calls.size() == 2);
    CHECK(r.hooks.calls[0].at == first);
    // The wait's status write starts when the invalidation ahead completes.
    const Tick wait_done = first + r.hooks.latency + kLat;
    // FN: the third descriptor is fetched only after the wait completed.
    CHECK(r.hooks.calls[1].at == wait_done + kLat + c);
    CHECK(done == wait_done + kLat + c + r.hooks.latency);

    // Without FN the engine runs ahead of the pending wait.
    Rig s;
    s.set_root(Ttm::Legacy);
    s.enable_qi(false);
    s.hooks.latency = 1'000'000;
    s.put(iotlb_domain(3));
    s.put(inv_wait(kStatus, 1));
    s.put(iotlb_global());
    s.submit(t0);
    REQUIRE(s.hooks.calls.size() == 2);
    CHECK(s.hooks.calls[1].at == t0 + 3 * (kLat + c));
}

TEST_CASE("IOTLB invalidations start after context-cache invalidations ahead complete",
          "[vtd-regfile]") {
    Rig r;
    r.set_root(Ttm::Legacy);
    r.enable_qi(false);
    r.hooks.latency = 500'000;
    r.put(cc_global());
    r.put(iotlb_global());
    r.submit(0);
    REQUIRE(r.hooks.calls.size() == 2);
    const Tick cc_start = kLat + 4 * kCycle;
    CHECK(r.hooks.calls[1].at == cc_start + r.hooks.latency);
}

TEST_CASE("every descriptor type reaches the right hook with the right scope", "[vtd-regfile]") {
    Rig r;
    r.set_root(Ttm::Scalable);
    r.enable_qi(true);
    r.put(cc_device(7, 0x0210, 1));
    r.put(cc_domain(7));  // scalable mode: processed as global
    r.put(pc_pasid(7, 0x42));
    r.put(pc_global());
    r.put(piotlb_page(7, 0x42, 0x7000'0000, 9, false));
    r.put(piotlb_pasid(7, 0x42));
    r.put(iotlb_page(7, 0xABD000, 2, false));
    r.put(encode(DeviceTlbInv{0x0210, 0x0210, 0, ats_encode(0x40'0000, 4), true}));
    r.put(encode(PasidDeviceTlbInv{0x0210, 0x0210, 0, 0x42, true, false, 0x9000}));
    r.put(encode(IecInv{true, 2, 0x30}));
    r.put(encode(PageGroupResponse{true, 0, 0x0210, 0x42, 0x1F}));
    r.put(inv_wait(kStatus, 0x77, /*interrupt=*/true));
    r.rf.write(reg::IECTL, 4, 0, 0);  // unmask the completion interrupt
    r.submit(0);

    auto inv = r.calls(W::Invalidate);
    REQUIRE(inv.size() == 7);
    CHECK(inv[0].scope.kind == K::ContextDevice);
    CHECK(inv[0].scope.rid == 0x0210);
    CHECK(inv[0].scope.rid_ignore == 0x4);  // FM=1 masks function bit 2
    CHECK(inv[1].scope.kind == K::ContextGlobal);
    CHECK(inv[2].scope.kind == K::PasidCache);
    CHECK(inv[2].scope.pasid == 0x42);
    CHECK(inv[3].scope.kind == K::PasidCache);
    CHECK(inv[3].scope.domain == InvalidationScope::kAllDomains);
    CHECK(inv[4].scope.kind == K::PasidPage);
    CHECK(inv[4].scope.addr == 0x7000'0000);
    CHECK(inv[4].scope.order == 9);
    CHECK(inv[5].scope.kind == K::Pasid);
    CHECK(inv[6].scope.kind == K::Page);
    CHECK(inv[6].scope.addr == 0xAB'C000);  // ADDR aligned down to 2^AM pages
    CHECK(inv[6].scope.order == 2);

    auto dev = r.calls(W::DeviceTlb);
    REQUIRE(dev.size() == 2);
    CHECK(dev[0].scope.kind == K::DeviceTlb);
    CHECK(dev[0].scope.rid == 0x0210);
    CHECK(dev[0].scope.addr == 0x40'0000);
    CHECK(dev[0].scope.order == 4);
    CHECK(dev[1].scope.pasid == 0x42);
    CHECK(dev[1].scope.global);
    auto iec = r.calls(W::Iec);
    REQUIRE(iec.size() == 1);
    CHECK(iec[0].iec.iidx == 0x30);
    auto resp = r.calls(W::PageResponse);
    REQUIRE(resp.size() == 1);
    CHECK(resp[0].resp.prgi == 0x1F);
    CHECK(resp[0].resp.pasid == 0x42);

    CHECK(r.status_word() == 0x77);
    CHECK((r.rd32(reg::ICS) & ics::IWC));
    REQUIRE(r.hooks.interrupts.size() == 1);
    CHECK(r.hooks.interrupts[0].first == Interrupt::InvalidationCompletion);
    CHECK(r.rf.counters().invalidation_interrupts == 1);
    for (unsigned t = 1; t <= 9; ++t) CHECK(r.rf.counters().descriptors[t] >= 1);
}

TEST_CASE("invalidation completion events follow IWC and IECTL.IM", "[vtd-regfile]") {
    Rig r;
    r.set_root(Ttm::Legacy);
    r.enable_qi(false);
    r.put(inv_wait(kStatus, 1, true));
    r.submit(0);
    // Masked at reset: IP holds the interrupt.
    CHECK((r.rd32(reg::ICS) & ics::IWC));
    CHECK((r.rd32(reg::IECTL) & ectl::IP));
    CHECK(r.hooks.interrupts.empty());
    r.rf.write(reg::IECTL, 4, 0, 10);  // unmask: the held interrupt goes out
    REQUIRE(r.hooks.interrupts.size() == 1);
    CHECK_FALSE((r.rd32(reg::IECTL) & ectl::IP));
    // IWC still Set: a second completion is no new condition.
    r.put(inv_wait(kStatus, 2, true));
    r.submit(100);
    CHECK(r.hooks.interrupts.size() == 1);
    r.rf.write(reg::ICS, 4, ics::IWC, 200);  // RW1C
    CHECK_FALSE((r.rd32(reg::ICS) & ics::IWC));
    r.put(inv_wait(kStatus, 3, true));
    r.submit(300);
    CHECK(r.hooks.interrupts.size() == 2);
}

TEST_CASE("an invalid descriptor stops the queue with IQE and IQH left at it", "[vtd-regfile]") {
    Rig r;
    r.set_root(Ttm::Legacy);
    r.enable_qi(false);
    r.rf.write(reg::FECTL, 4, 0, 0);  // fault events unmasked, as Linux runs
    r.put(iotlb_global());
    InvDesc bad = iotlb_domain(2);
    bad.qw[0] |= 1ULL << 40;  // a reserved bit
    const uint32_t bad_slot = r.put(bad);
    r.put(inv_wait(kStatus, 9));
    r.submit(0);

    CHECK(r.calls(W::Invalidate).size() == 1);  // the one ahead of it ran
    CHECK((r.rd32(reg::FSTS) & fsts::IQE));
    CHECK(bits(r.rd64(reg::IQERCD), 3, 0) == uint64_t(Iqei::ReservedField));
    CHECK(r.rd64(reg::IQH) == iq_reg(bad_slot, false));
    CHECK(r.status_word() == 0);
    CHECK(r.rf.last_queue_error().qw == 0);
    CHECK(r.rf.counters().queue_errors == 1);
    REQUIRE(r.hooks.interrupts.size() == 1);
    CHECK(r.hooks.interrupts[0].first == Interrupt::Fault);

    // A tail update while IQE is Set fetches nothing.
    r.put(iotlb_global());
    r.submit(1000);
    CHECK(r.calls(W::Invalidate).size() == 1);

    // qi_check_fault(): overwrite the bad descriptor with the wait, clear IQE; the queue
    // restarts at IQH.
    r.sw_tail = bad_slot;
    r.put(inv_wait(kStatus, 9));
    r.sw_tail = bad_slot + 3;
    r.rf.write(reg::FSTS, 4, fsts::IQE, 2000);
    CHECK_FALSE((r.rd32(reg::FSTS) & fsts::IQE));
    CHECK(r.status_word() == 9);
    CHECK(r.calls(W::Invalidate).size() == 2);
    CHECK(r.rd64(reg::IQH) == r.rd64(reg::IQT));
}

TEST_CASE("queue errors report the specification's IQEI", "[vtd-regfile]") {
    auto iqei = [](Rig& r) { return Iqei(bits(r.rd64(reg::IQERCD), 3, 0)); };
    SECTION("invalid type") {
        Rig r;
        r.set_root(Ttm::Legacy);
        r.enable_qi(false);
        r.put(InvDesc{});  // type 0
        r.submit(0);
        CHECK(iqei(r) == Iqei::InvalidType);
    }
    SECTION("a PASID descriptor in legacy mode (Table 26)") {
        Rig r;
        r.set_root(Ttm::Legacy);
        r.enable_qi(false);
        r.put(pc_global());
        r.submit(0);
        CHECK(iqei(r) == Iqei::InvalidType);
        CHECK(r.rd64(reg::IQH) == 0);
    }
    SECTION("128-bit descriptors in scalable mode") {
        Rig r;
        r.set_root(Ttm::Scalable);
        r.enable_qi(false);
        r.put(iotlb_global());
        r.submit(0);
        CHECK(iqei(r) == Iqei::InvalidWidth);
        CHECK(r.hooks.calls.empty());
    }
    SECTION("256-bit descriptors without SMTS or ADMS") {
        RegFileConfig c = RegFileConfig::scalable_unit();
        c.ecap.smts = c.ecap.adms = false;
        Rig r(c);
        r.set_root(Ttm::Legacy);
        r.enable_qi(true);
        r.put(iotlb_global());
        r.submit(0);
        CHECK(iqei(r) == Iqei::InvalidWidth);
    }
    SECTION("reserved TTM") {
        Rig r;
        r.set_root(Ttm::Reserved);
        r.enable_qi(true);
        r.put(iotlb_global());
        r.submit(0);
        CHECK(iqei(r) == Iqei::InvalidTtm);
    }
    SECTION("tail not aligned to 256-bit descriptors") {
        Rig r;
        r.set_root(Ttm::Scalable);
        r.enable_qi(true);
        r.put(iotlb_global());
        r.rf.write(reg::IQT, 8, 0x10, 0);
        CHECK(iqei(r) == Iqei::TailMisaligned);
    }
    SECTION("tail beyond the queue") {
        Rig r;
        r.set_root(Ttm::Legacy);
        r.enable_qi(false, 0);  // 4 KiB
        r.rf.write(reg::IQT, 8, 0x1000, 0);
        CHECK(iqei(r) == Iqei::InvalidTail);
    }
    SECTION("descriptor fetch fails") {
        Rig r;
        r.set_root(Ttm::Legacy);
        r.enable_qi(false, 0, Addr(1) << 60);  // beyond the address space
        r.rf.write(reg::IQT, 8, 0x10, 0);
        CHECK(iqei(r) == Iqei::FetchError);
        CHECK(r.rd64(reg::IQH) == 0);
    }
    SECTION("128-bit descriptor in a 256-bit queue") {
        Rig r;
        r.set_root(Ttm::Scalable);
        r.enable_qi(true);
        InvDesc d = iotlb_global();
        d.qw[2] = inv_wait(kStatus, 1).qw[0];  // the next descriptor packed behind it
        r.put(d);
        r.submit(0);
        CHECK(iqei(r) == Iqei::ReservedField);
    }
    SECTION("page-selective IOTLB without PSI; PD without PDS") {
        RegFileConfig c = RegFileConfig::scalable_unit();
        c.cap.psi = false;
        c.ecap.pds = false;
        Rig r(c);
        r.set_root(Ttm::Legacy);
        r.enable_qi(false);
        r.put(iotlb_page(1, 0x1000, 0, false));
        r.submit(0);
        CHECK(iqei(r) == Iqei::ReservedField);
        CHECK(std::string(r.rf.last_queue_error().field) == "G");
        Rig s(c);
        s.set_root(Ttm::Legacy);
        s.enable_qi(false);
        s.put(inv_wait(kStatus, 1, false, false, /*page_drain=*/true));
        s.submit(0);
        CHECK(std::string(s.rf.last_queue_error().field) == "PD");
    }
}

TEST_CASE("a device-TLB invalidation that never completes sets ITE", "[vtd-regfile]") {
    Rig r;
    r.set_root(Ttm::Legacy);
    r.enable_qi(false);
    r.hooks.devtlb_never = true;
    r.put(iotlb_domain(1));
    r.put(encode(DeviceTlbInv{0x0300, 0x0300, 0, 0x5000, false}));
    r.put(inv_wait(kStatus, 5));
    const Tick done = r.submit(0);
    const Tick dev_start = 2 * (kLat + 4 * kCycle);
    CHECK((r.rd32(reg::FSTS) & fsts::ITE));
    CHECK(bits(r.rd64(reg::IQERCD), 47, 32) == 0x0300);
    CHECK(done == dev_start + RegFileParams{}.devtlb_timeout_us * 1'000'000);
    CHECK(r.status_word() == 0);  // the wait behind it is not completed
    CHECK(r.rd64(reg::IQH) == 2 * 16);
    CHECK(r.rf.counters().devtlb_timeouts == 1);

    // Clearing ITE fetches again from IQH.
    r.hooks.devtlb_never = false;
    r.rf.write(reg::FSTS, 4, fsts::ITE, done);
    CHECK(r.status_word() == 5);
    CHECK(r.rd64(reg::IQH) == r.rd64(reg::IQT));
}

TEST_CASE("a page-drain wait completes behind accepted page request writes", "[vtd-regfile]") {
    Rig r;
    r.set_root(Ttm::Scalable);
    r.enable_qi(true);
    r.rf.write(reg::PQA, 8, Pqa{kPrq, 0}.encode(), 0);
    const Tick accepted = 5'000'000;
    const PageRequestResult pr = r.rf.page_request(PageRequest{true, 0x10, 1}, accepted);
    REQUIRE(pr.outcome == PageRequestResult::Outcome::Written);
    r.put(inv_wait(kStatus, 1, false, false, /*page_drain=*/true));
    const Tick done = r.submit(0);
    CHECK(done == pr.done + kLat);
}

TEST_CASE("hooks receive exactly the invalidations the driver model wrote", "[vtd-regfile]") {
    for (bool scalable : {false, true}) {
        Rig r;
        DriverConfig dc;
        dc.hw.scalable = scalable;
        Driver drv(r.store, dc);
        const uint16_t rid = Requester::bdf(0, 3, 0).rid;
        const uint16_t did = *drv.create_domain({});
        REQUIRE(drv.attach(rid, did));
        REQUIRE(drv.map(did, 0x10'0000, 0x9'0000'0000, 0x8000, kPermRW));
        drv.unmap(did, 0x10'1000, 0x3000);
        drv.unmap(did, 0x10'6000, 0x1000);
        if (scalable) {
            DomainOptions fl;
            fl.stage = Stage::FirstLevel;
            const uint16_t d2 = *drv.create_domain(fl);
            REQUIRE(drv.attach_pasid(rid, 5, d2));
            REQUIRE(drv.map(d2, 0x4000'0000, 0xA'0000'0000, 0x2000, kPermRW));
            drv.unmap(d2, 0x4000'0000, 0x2000);
            drv.detach_pasid(rid, 5);
        }
        drv.detach(rid);

        r.set_root(scalable ? Ttm::Scalable : Ttm::Legacy, drv.hw().rtaddr);
        r.enable_qi(scalable, 2);
        for (const InvDesc& d : drv.descriptors()) r.put(d);
        r.submit(0);

        std::vector<std::string> want, got;
        size_t waits = 0;
        for (const auto& s : drv.invalidations()) {
            if (s.kind == K::Wait)
                ++waits;
            else
                want.push_back(to_string(s));
        }
        for (const auto& c : r.hooks.calls) got.push_back(to_string(c.scope));
        CHECK(want.size() >= (scalable ? 10u : 5u));
        CHECK(got == want);
        CHECK(r.rf.counters().waits == waits);
        CHECK(r.status_word(drv.wait_status()) == waits);  // the last sequence number
        CHECK_FALSE((r.rd32(reg::FSTS) & fsts::IQE));
        CHECK(r.rf.walker_config().rtaddr == drv.hw().rtaddr);
        CHECK(r.rf.walker_config().scalable == scalable);
    }
}
