// VT-d register file: register access rules, global command/status handshakes,
// register-based invalidation, fault recording (7.2, 7.3) and the page request queue (7.4).
#include "vtd_regfile_test_util.h"

using namespace iommusim;
using namespace iommusim::test;
using K = InvalidationScope::Kind;
using O = PageRequestResult::Outcome;

TEST_CASE("capability registers, widths and unknown offsets", "[vtd-regfile]") {
    Rig r;
    CHECK(r.rd32(reg::VER) == make_ver(1, 0));
    CHECK(r.rd64(reg::CAP) == r.cfg.cap.encode());
    CHECK(r.rd64(reg::ECAP) == r.cfg.ecap.encode());
    CHECK((uint64_t(r.rd32(reg::CAP + 4)) << 32 | r.rd32(reg::CAP)) == r.cfg.cap.encode());
    r.rf.write(reg::CAP, 8, 0, 0);  // read-only
    CHECK(r.rd64(reg::CAP) == r.cfg.cap.encode());
    CHECK(r.rf.counters().unknown_accesses == 0);

    CHECK(r.rd32(0x004) == 0);  // reserved
    CHECK(r.rf.write(0x030, 4, ~0u, 77) == 77);
    CHECK(r.rd32(0x030) == 0);
    CHECK(r.rf.counters().unknown_accesses == 3);
    CHECK(r.rf.read(reg::GSTS + 1, 4) == 0);  // unaligned
    CHECK(r.rf.read(reg::GSTS, 2) == 0);      // unsupported size
    r.rf.write(reg::GCMD + 2, 4, gcmd::TE, 0);
    CHECK(r.rf.counters().bad_accesses == 3);
    CHECK(r.rd32(reg::GSTS) == 0);

    // Registers of absent features read as zero.
    RegFileConfig c = RegFileConfig::scalable_unit();
    c.ecap.prs = false;
    Rig s(c);
    s.rf.write(reg::PQA, 8, 0x1000, 0);
    CHECK(s.rd64(reg::PQA) == 0);
    CHECK(r.cfg.layout_error().empty());
    CHECK(r.rf.mmio_bytes() == 0x1000);
    RegFileConfig bad = c;
    bad.cap.fro = 0x10;  // records at 0x100, over the MTRRs
    CHECK_FALSE(bad.layout_error().empty());
}

TEST_CASE("GCMD commands are reflected in GSTS", "[vtd-regfile]") {
    Rig r;
    CHECK(r.rd32(reg::GSTS) == 0);
    r.rf.write(reg::RTADDR, 8, Rtaddr{0x12'3000, Ttm::Scalable}.encode(), 0);
    CHECK(r.rf.root_table().rta == 0);  // not before SRTP
    const Tick t = r.command(gcmd::SRTP, true, 1000);
    CHECK(t == 1000 + 10 * kCycle);
    CHECK((r.rd32(reg::GSTS) & gsts::RTPS));
    CHECK(r.rf.root_table().rta == 0x12'3000);
    CHECK(r.rf.walker_config().scalable);
    CHECK(r.rd32(reg::GCMD) == 0);  // write-only
    r.rf.write(reg::RTADDR, 8, 0x99'9000, 0);
    CHECK(r.rf.root_table().rta == 0x12'3000);

    r.command(gcmd::TE, true);
    CHECK(r.rf.translation_enabled());
    CHECK((r.rd32(reg::GSTS) & gsts::RTPS));  // kept by the read-modify-write recipe
    r.command(gcmd::WBF, true);
    CHECK_FALSE((r.rd32(reg::GSTS) & gsts::WBFS));  // flushed at once
    CHECK(r.rf.translation_enabled());
    r.command(gcmd::IRE, true);
    CHECK((r.rd32(reg::GSTS) & gsts::IRES));

    // Translation Disable on scalable-mode hardware invalidates every DMA remapping cache.
    r.command(gcmd::TE, false);
    CHECK_FALSE(r.rf.translation_enabled());
    REQUIRE(r.hooks.calls.size() == 3);
    CHECK(r.hooks.calls[0].scope.kind == K::ContextGlobal);
    CHECK(r.hooks.calls[1].scope.kind == K::PasidCache);
    CHECK(r.hooks.calls[2].scope.kind == K::Global);

    // Queued invalidation: enabling resets nothing but IQH; disabling resets IQH.
    r.enable_qi(true);
    r.put(iotlb_global());
    r.submit(0);
    CHECK(r.rd64(reg::IQH) == 32);
    r.command(gcmd::QIE, false);
    CHECK_FALSE((r.rd32(reg::GSTS) & gsts::QIES));
    CHECK(r.rd64(reg::IQH) == 0);
}

TEST_CASE("register-based invalidation reports the actual granularity", "[vtd-regfile]") {
    const uint32_t iva = RegFileConfig::scalable_unit().ecap.iva_offset();
    SECTION("legacy mode, context and page-selective IOTLB") {
        Rig r;
        r.set_root(Ttm::Legacy);
        const Tick done =
            r.rf.write(reg::CCMD, 8, encode_ccmd({CcGranularity::Domain, 9, 0, 0}), 100);
        CHECK(done == 100 + 4 * kCycle);
        CHECK(bits(r.rd64(reg::CCMD), 63, 63) == 0);  // ICC clear
        CHECK(bits(r.rd64(reg::CCMD), 60, 59) == 2);
        REQUIRE(r.hooks.calls.size() == 1);
        CHECK(r.hooks.calls[0].scope.kind == K::ContextDomain);
        CHECK(r.hooks.calls[0].scope.domain == 9);

        // __iommu_flush_iotlb(): IVA, then IOTLB_REG; the upper doubleword triggers.
        const IotlbRegs regs =
            encode_iotlb_reg({IotlbGranularity::Page, true, true, 9, 0x4000'0000, false, 9});
        r.rf.write(iva, 8, regs.iva, 0);
        r.rf.write(iva + 8, 4, uint32_t(regs.iotlb), 0);
        CHECK(r.hooks.calls.size() == 1);
        r.rf.write(iva + 12, 4, uint32_t(regs.iotlb >> 32), 0);
        REQUIRE(r.hooks.calls.size() == 2);
        CHECK(r.hooks.calls[1].scope.kind == K::Page);
        CHECK(r.hooks.calls[1].scope.order == 9);
        CHECK(bits(r.rd64(iva + 8), 63, 63) == 0);  // IVT clear
        CHECK(bits(r.rd64(iva + 8), 58, 57) == 3);  // IAIG: page-selective

        r.rf.write(iva, 8, (0x4000'0000ULL) | 30, 0);  // AM above MAMV
        r.rf.write(iva + 8, 8, regs.iotlb, 0);
        CHECK(bits(r.rd64(iva + 8), 58, 57) == 0);
        CHECK(r.hooks.calls.size() == 2);
        CHECK(r.rf.counters().register_invalidation_errors == 1);
    }
    SECTION("no PSI: performed domain-selective") {
        RegFileConfig c = RegFileConfig::scalable_unit();
        c.cap.psi = false;
        Rig r(c);
        r.set_root(Ttm::Legacy);
        const IotlbRegs regs =
            encode_iotlb_reg({IotlbGranularity::Page, false, false, 4, 0x1000, false, 0});
        r.rf.write(iva, 8, regs.iva, 0);
        r.rf.write(iva + 8, 8, regs.iotlb, 0);
        CHECK(bits(r.rd64(iva + 8), 58, 57) == 2);
        REQUIRE(r.hooks.calls.size() == 1);
        CHECK(r.hooks.calls[0].scope.kind == K::Domain);
    }
    SECTION("scalable mode or queued invalidation enabled: incorrect request") {
        Rig r;
        r.set_root(Ttm::Scalable);
        r.rf.write(reg::CCMD, 8, encode_ccmd({CcGranularity::Global, 0, 0, 0}), 0);
        CHECK(bits(r.rd64(reg::CCMD), 60, 59) == 0);
        Rig s;
        s.set_root(Ttm::Legacy);
        s.enable_qi(false);
        s.rf.write(reg::CCMD, 8, encode_ccmd({CcGranularity::Global, 0, 0, 0}), 0);
        CHECK(bits(s.rd64(reg::CCMD), 60, 59) == 0);
        CHECK(r.hooks.calls.empty());
        CHECK(s.hooks.calls.empty());
    }
}

TEST_CASE("fault recording, overflow and RW1C clearing", "[vtd-regfile]") {
    Rig r;
    const uint32_t fro = r.cfg.cap.frcd_offset(0);
    const Requester dev = Requester::bdf(0, 2, 0).with_pasid(0x55, true);
    Fault f;
    f.kind = FaultKind::Permission;
    f.reason = kFrWrite;
    const FaultReport first = r.rf.record_fault(f, dev, 0xDEAD'B123, Access::Write, 500);
    CHECK(first.log == FaultLog::Recorded);
    CHECK(first.index == 0);
    CHECK(first.done == 500 + 2 * kCycle);

    const FaultRecord rec = FaultRecord::decode(r.rd64(fro), r.rd64(fro + 8));
    CHECK(rec.f);
    CHECK(rec.fi == 0xDEAD'B000);
    CHECK(rec.sid == dev.rid);
    CHECK(rec.fr == kFrWrite);
    CHECK(rec.type == FaultReqType::Write);
    CHECK(rec.pp);
    CHECK(rec.pv == 0x55);
    CHECK(rec.priv);
    const uint32_t st = r.rd32(reg::FSTS);
    CHECK((st & fsts::PPF));
    CHECK(fsts::fri(st) == 0);
    // FECTL.IM is Set at reset: the event is held pending.
    CHECK((r.rd32(reg::FECTL) & ectl::IP));
    CHECK(r.hooks.interrupts.empty());
    r.rf.write(reg::FECTL, 4, 0, 0);
    CHECK(r.rf.counters().fault_interrupts == 1);

    // Further faults fill the next records without new events; FRI keeps the first.
    for (unsigned i = 1; i < 8; ++i) {
        Access a = i % 2 ? Access::Read : Access::ReadWrite;
        CHECK(r.rf.record_fault(f, Requester::bdf(0, 2, i % 8), 0x1000 * i, a, 0).index == i);
    }
    CHECK(r.rf.fault_record(1).type == FaultReqType::Read);
    CHECK(r.rf.fault_record(2).type == FaultReqType::AtomicOp);
    CHECK(fsts::fri(r.rd32(reg::FSTS)) == 0);
    CHECK(r.rf.counters().fault_interrupts == 1);

    // All eight held: the next one overflows, and while PFO is Set nothing is recorded.
    CHECK(r.rf.record_fault(f, dev, 0x9000, Access::Read, 0).log == FaultLog::Overflow);
    CHECK((r.rd32(reg::FSTS) & fsts::PFO));
    CHECK(r.rf.record_fault(f, dev, 0xA000, Access::Read, 0).log == FaultLog::Overflow);
    CHECK(r.rf.counters().faults_dropped == 2);
    CHECK(r.rf.counters().faults_recorded == 8);

    // Software: clear F in every record (upper doubleword, as Linux writes it), then PFO.
    r.rf.write(fro + 8, 4, 0, 0);  // writes to the record's fields are ignored
    CHECK(r.rf.fault_record(0).sid == dev.rid);
    for (unsigned i = 0; i < 8; ++i) r.rf.write(fro + 16 * i + 12, 4, 1u << 31, 0);
    CHECK_FALSE((r.rd32(reg::FSTS) & fsts::PPF));
    CHECK((r.rd32(reg::FSTS) & fsts::PFO));
    CHECK(r.rf.record_fault(f, dev, 0xB000, Access::Read, 0).log == FaultLog::Overflow);
    r.rf.write(reg::FSTS, 4, 0, 0);  // writing 0 clears nothing
    CHECK((r.rd32(reg::FSTS) & fsts::PFO));
    r.rf.write(reg::FSTS, 4, fsts::PFO, 0);
    CHECK(r.rd32(reg::FSTS) == 0);

    // Recording resumes at the internal index (wrapped to 0); PPF rises again: a new event.
    const FaultReport again = r.rf.record_fault(f, dev, 0xC000, Access::Read, 0);
    CHECK(again.index == 0);
    CHECK(fsts::fri(r.rd32(reg::FSTS)) == 0);
    CHECK(r.rf.counters().fault_interrupts == 2);
}

TEST_CASE("FPD-suppressed faults, collapsing and the index reset", "[vtd-regfile]") {
    Rig r;
    Fault f;
    f.kind = FaultKind::NotPresent;
    f.reason = kFrContextNotPresent;
    f.suppressed = true;
    CHECK(r.rf.record_fault(f, Requester{0x10}, 0x1000, Access::Read, 0).log ==
          FaultLog::Suppressed);
    CHECK_FALSE((r.rd32(reg::FSTS) & fsts::PPF));
    CHECK(r.rf.counters().faults_suppressed == 1);
    CHECK(r.rf.counters().faults_recorded == 0);

    f.suppressed = false;
    r.rf.record_fault(f, Requester{0x10}, 0x1000, Access::Read, 0);
    r.rf.record_fault(f, Requester{0x11}, 0x1000, Access::Read, 0);
    // Both translations off: the next record is FRCD 0 again once it is free.
    r.rf.write(r.cfg.cap.frcd_offset(0) + 12, 4, 1u << 31, 0);
    r.command(gcmd::TE, true);
    r.command(gcmd::TE, false);
    CHECK(r.rf.record_fault(f, Requester{0x12}, 0x1000, Access::Read, 0).index == 0);

    RegFileParams p;
    p.collapse_faults = true;
    Rig c(RegFileConfig::scalable_unit(), p);
    c.rf.record_fault(f, Requester{0x20}, 0x1000, Access::Read, 0);
    CHECK(c.rf.record_fault(f, Requester{0x20}, 0x2000, Access::Read, 0).log ==
          FaultLog::Collapsed);
    CHECK(c.rf.record_fault(f, Requester{0x21}, 0x2000, Access::Read, 0).index == 1);
}

TEST_CASE("page requests are written to the PRQ; a full queue overflows", "[vtd-regfile]") {
    Rig r;
    r.rf.write(reg::PQH, 8, 0, 0);
    r.rf.write(reg::PQT, 8, 0, 0);
    r.rf.write(reg::PQA, 8, Pqa{kPrq, 0}.encode(), 0);  // 128 entries
    r.rf.write(reg::PECTL, 4, 0, 0);
    PageRequest pr{true, 0x0218, 0x77, false, false, true, false, true, 0x12, 0x7fff'0000};

    const PageRequestResult w = r.rf.page_request(pr, 1000);
    CHECK(w.outcome == O::Written);
    CHECK_FALSE(w.respond);
    CHECK(w.done == 1000 + 2 * kCycle + kLat);
    CHECK(r.rd64(reg::PQT) == 32);
    CHECK((r.rd32(reg::PRS) & prs::PPR));
    CHECK(r.rf.counters().page_request_interrupts == 1);
    uint64_t q[4];
    for (int i = 0; i < 4; ++i) q[i] = r.store.read64(kPrq + 8 * i);
    auto back = decode_page_request(q);
    REQUIRE(std::holds_alternative<PageRequest>(back));
    CHECK(std::get<PageRequest>(back).prgi == 0x12);
    CHECK(std::get<PageRequest>(back).addr == 0x7fff'0000);
    CHECK(std::get<PageRequest>(back).pasid == 0x77);

    // PPR still Set: no new events. N-1 entries fit.
    for (int i = 1; i < 127; ++i) CHECK(r.rf.page_request(pr, 2000).outcome == O::Written);
    CHECK(r.rf.counters().page_request_interrupts == 1);
    CHECK(r.rf.counters().page_requests == 127);

    // Full: PRO, and the last request of a group is answered with Success (Table 31).
    const PageRequestResult full = r.rf.page_request(pr, 3000);
    CHECK(full.outcome == O::Full);
    CHECK(full.respond);
    CHECK(full.code == PageResponseCode::Success);
    CHECK((r.rd32(reg::PRS) & prs::PRO));
    PageRequest mid = pr;
    mid.lpig = false;
    CHECK_FALSE(r.rf.page_request(mid, 3000).respond);
    PageRequest stop = pr;  // Stop Marker: LPIG without read or write
    stop.rdr = false;
    const PageRequestResult marker = r.rf.page_request(stop, 3000);
    CHECK(marker.outcome == O::Overflow);
    CHECK_FALSE(marker.respond);
    CHECK(r.rf.counters().page_requests_overflowed == 3);
    CHECK(r.rf.counters().page_responses_auto == 1);

    // The driver drains the queue (PQH = PQT), then clears PRO and PPR: requests flow again.
    r.rf.write(reg::PQH, 8, r.rd64(reg::PQT), 0);
    r.rf.write(reg::PRS, 4, prs::PRO | prs::PPR, 0);
    CHECK(r.rd32(reg::PRS) == 0);
    CHECK(r.rf.page_request(pr, 4000).outcome == O::Written);
    CHECK(r.rf.counters().page_request_interrupts == 2);

    RegFileConfig c = RegFileConfig::scalable_unit();
    c.ecap.prs = false;
    Rig s(c);
    const PageRequestResult u = s.rf.page_request(pr, 0);
    CHECK(u.outcome == O::Unsupported);
    CHECK(u.respond);
    CHECK(u.code == PageResponseCode::InvalidRequest);
}
