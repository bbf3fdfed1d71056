#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "arch/vtd/vtd_fault.h"
#include "arch/vtd/vtd_regs.h"

using namespace iommusim;
using namespace iommusim::vtd;

TEST_CASE("register offsets and widths follow the specification", "[vtd-regs]") {
    struct Expect {
        uint32_t off;
        uint8_t bytes;
        const char* name;
    };
    const Expect table[] = {
        {0x00, 4, "VER_REG"},
        {0x08, 8, "CAP_REG"},
        {0x10, 8, "ECAP_REG"},
        {0x18, 4, "GCMD_REG"},
        {0x1c, 4, "GSTS_REG"},
        {0x20, 8, "RTADDR_REG"},
        {0x28, 8, "CCMD_REG"},
        {0x34, 4, "FSTS_REG"},
        {0x38, 4, "FECTL_REG"},
        {0x3c, 4, "FEDATA_REG"},
        {0x40, 4, "FEADDR_REG"},
        {0x44, 4, "FEUADDR_REG"},
        {0x58, 8, "AFLOG_REG"},
        {0x64, 4, "PMEN_REG"},
        {0x80, 8, "IQH_REG"},
        {0x88, 8, "IQT_REG"},
        {0x90, 8, "IQA_REG"},
        {0x9c, 4, "ICS_REG"},
        {0xa0, 4, "IECTL_REG"},
        {0xb0, 8, "IQERCD_REG"},
        {0xb8, 8, "IRTA_REG"},
        {0xc0, 8, "PQH_REG"},
        {0xc8, 8, "PQT_REG"},
        {0xd0, 8, "PQA_REG"},
        {0xdc, 4, "PRS_REG"},
        {0xe0, 4, "PECTL_REG"},
        {0x100, 8, "MTRRCAP_REG"},
        {0x108, 8, "MTRRDEF_REG"},
        {0x218, 8, "MTRR_PHYSMASK9_REG"},
    };
    for (const auto& e : table) {
        const RegInfo* r = find_reg(e.off);
        INFO(e.name);
        REQUIRE(r != nullptr);
        CHECK(r->bytes == e.bytes);
        CHECK(std::strcmp(r->name, e.name) == 0);
    }
    CHECK(find_reg(0x0c) == nullptr);  // upper half of CAP is not a register start
    CHECK(find_reg(0x30) == nullptr);
    CHECK(find_reg(0xf0) == nullptr);  // IVA lives at ECAP.IRO, not at a fixed offset
    CHECK(reg::mtrr_physbase(0) == 0x180);
    CHECK(reg::mtrr_physmask(9) == 0x218);
}

TEST_CASE("CAP and ECAP round-trip every defined field", "[vtd-regs]") {
    CHECK(Cap::decode(~0ULL).encode() == Cap::kDefined);
    CHECK(Ecap::decode(~0ULL).encode() == Ecap::kDefined);
    CHECK(Cap::decode(0).encode() == 0);
    CHECK(Ecap::decode(0).encode() == 0);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; ++i) {
        uint64_t v = rng();
        CHECK(Cap::decode(v).encode() == (v & Cap::kDefined));
        CHECK(Ecap::decode(v).encode() == (v & Ecap::kDefined));
    }
    // Single fields land where the spec puts them.
    Cap c;
    c.fro = 0x3ff;
    CHECK(c.encode() == bit_mask(33, 24));
    c = {};
    c.mamv = 0x3f;
    CHECK(c.encode() == bit_mask(53, 48));
    c = {};
    c.esrtps = true;
    CHECK(c.encode() == 1ULL << 63);
    Ecap e;
    e.iro = 0x3ff;
    CHECK(e.encode() == bit_mask(17, 8));
    e = {};
    e.pss = 0x1f;
    CHECK(e.encode() == bit_mask(39, 35));
    e = {};
    e.rprivs = true;
    CHECK(e.encode() == 1ULL << 53);
}

// Values a Debian 6.1 guest printed under QEMU 7.2 (intel-iommu, caching-mode=on, intremap=off):
// "DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c22260286 ecap f42" (legacy run, as in
// traces/samples/qemu-vtd-legacy-strict/console.log.gz) and "ecap 480080000f42" with
// x-scalable-mode=on.
TEST_CASE("CAP/ECAP of the recorded QEMU guests decode as configured", "[vtd-regs]") {
    const Cap c = Cap::decode(0xd2008c22260286ULL);
    CHECK(c.nd == 6);
    CHECK(c.num_domains() == 65536);
    CHECK(c.cm);  // caching-mode=on
    CHECK(c.sagaw == 0x2);
    CHECK(c.supports_aw(1));  // 39-bit, 3-level only
    CHECK_FALSE(c.supports_aw(2));
    CHECK(c.mgaw_bits() == 39);
    CHECK(c.frcd_offset(0) == 0x220);
    CHECK(c.num_fault_regs() == 1);
    CHECK(c.psi);
    CHECK(c.mamv == 18);
    CHECK(c.sl_page(21));
    CHECK(c.sl_page(30));
    CHECK_FALSE(c.sl_page(39));
    CHECK(c.dwd);
    CHECK(c.drd);
    CHECK_FALSE(c.afl);
    CHECK_FALSE(c.rwbf);
    CHECK_FALSE(c.zlr);
    CHECK_FALSE(c.fl1gp);
    CHECK_FALSE(c.pi);
    CHECK(c.encode() == 0xd2008c22260286ULL);  // QEMU sets no reserved bit

    const Ecap legacy = Ecap::decode(0xf42);
    CHECK(legacy.qi);
    CHECK(legacy.pt);
    CHECK_FALSE(legacy.ir);  // intremap=off
    CHECK_FALSE(legacy.dt);
    CHECK_FALSE(legacy.c);
    CHECK(legacy.iva_offset() == 0xf0);
    CHECK(legacy.iotlb_offset() == 0xf8);
    CHECK_FALSE(legacy.smts);

    const Ecap sm = Ecap::decode(0x480080000f42ULL);
    CHECK(sm.smts);  // x-scalable-mode=on
    CHECK(sm.slts);
    CHECK(sm.srs);
    CHECK_FALSE(sm.flts);
    CHECK_FALSE(sm.pasid);
    CHECK(sm.pasid_bits() == 0);
    CHECK(sm.qi);
    CHECK(sm.iva_offset() == 0xf0);
    CHECK(sm.encode() == 0x480080000f42ULL);
}

TEST_CASE("command, status and queue registers", "[vtd-regs]") {
    // GCMD writes of the recorded guest: QIE, then SRTP|QIE, then TE|QIE.
    CHECK(gcmd::QIE == 0x04000000u);
    CHECK((gcmd::SRTP | gcmd::QIE) == 0x44000000u);
    CHECK((gcmd::TE | gcmd::QIE) == 0x84000000u);
    CHECK(gsts::TES == gcmd::TE);
    CHECK(gsts::CFIS == gcmd::CFI);

    Rtaddr rt = Rtaddr::decode(0x2c66400);  // scalable run's RTADDR write
    CHECK(rt.rta == 0x2c66000);
    CHECK(rt.ttm == Ttm::Scalable);
    CHECK(rt.encode() == 0x2c66400);
    CHECK(Rtaddr::decode(0x2c67000).ttm == Ttm::Legacy);
    CHECK(Rtaddr::decode(0xc00).ttm == Ttm::AbortDma);

    Iqa q = Iqa::decode(0x281a801);  // scalable run: 256-bit descriptors, 8 KiB
    CHECK(q.iqa == 0x281a000);
    CHECK(q.dw);
    CHECK(q.qs == 1);
    CHECK(q.bytes() == 8192);
    CHECK(q.entries() == 256);
    CHECK(q.encode() == 0x281a801);
    Iqa l = Iqa::decode(0x2c66000);  // legacy run: 128-bit descriptors, 4 KiB
    CHECK_FALSE(l.dw);
    CHECK(l.entries() == 256);

    CHECK(iq_index(0x60, true) == 3);
    CHECK(iq_index(0x60, false) == 6);
    CHECK(iq_reg(255, true) == 0x1fe0);
    CHECK(iq_reg(iq_index(0x7fff0, false), false) == 0x7fff0);
    CHECK(iqt_misaligned(0x30, true));
    CHECK_FALSE(iqt_misaligned(0x30, false));
    CHECK(make_iqercd(Iqei::ReservedField, 0x10, 0x18) == 0x0018'0010'0000'0004ULL);

    CHECK(fsts::PFO == 1);
    CHECK(fsts::PPF == 2);
    CHECK(fsts::IQE == 0x10);
    CHECK(fsts::ICE == 0x20);
    CHECK(fsts::ITE == 0x40);
    CHECK(fsts::fri(0x0000'0302) == 3);
    CHECK(fsts::with_fri(fsts::PPF, 7) == 0x702);
    CHECK(ectl::IM == 0x80000000u);
    CHECK(ectl::IP == 0x40000000u);

    Pqa p = Pqa::decode(0x1234'5002);
    CHECK(p.pqa == 0x1234'5000);
    CHECK(p.entries() == 512);  // 16 KiB of 32-byte requests
    CHECK(p.encode() == 0x1234'5002);
    CHECK(pq_index(pq_reg(77)) == 77);

    Irta ir = Irta::decode(0xabc'd80f);
    CHECK(ir.irta == 0xabc'd000);
    CHECK(ir.eime);
    CHECK(ir.entries() == 65536);
    CHECK(ir.encode() == 0xabc'd80f);

    CHECK(ver_major(0x10) == 1);
    CHECK(ver_minor(0x10) == 0);
    CHECK(make_ver(6, 0) == 0x60);
}

TEST_CASE("fault recording register encode/decode", "[vtd-regs]") {
    // A read fault at 0x1234000 from 00:02.0, reason 6, no PASID, pending.
    FaultRecord r;
    r.fi = 0x1234000;
    r.sid = 0x10;
    r.type = FaultReqType::Read;
    r.fr = kFrRead;
    r.f = true;
    auto q = r.encode();
    CHECK(q[0] == 0x1234000);
    CHECK(q[1] == 0xC000'0006'0000'0010ULL);

    // A privileged execute AtomicOp with PASID 5 on a translated request, reason 0x82.
    FaultRecord a;
    a.fi = 0xdead'b000;
    a.sid = 0x0118;
    a.type = FaultReqType::AtomicOp;
    a.priv = a.exe = a.pp = true;
    a.fr = kSmNoExecute;
    a.pv = 5;
    a.at = AddrType::Translated;
    a.f = true;
    q = a.encode();
    // F | T1 | AT=10 | PV=5 | FR=0x82 | PP | EXE | PRIV | T2 | SID
    CHECK(q[1] == ((1ULL << 63) | (1ULL << 62) | (2ULL << 60) | (5ULL << 40) | (0x82ULL << 32) |
                   (1ULL << 31) | (1ULL << 30) | (1ULL << 29) | (1ULL << 28) | 0x0118));
    const FaultRecord b = FaultRecord::decode(q[0], q[1]);
    CHECK(b.fi == a.fi);
    CHECK(b.sid == a.sid);
    CHECK(b.type == FaultReqType::AtomicOp);
    CHECK(b.priv);
    CHECK(b.exe);
    CHECK(b.pp);
    CHECK(b.fr == 0x82);
    CHECK(b.pv == 5);
    CHECK(b.at == AddrType::Translated);
    CHECK(b.f);

    CHECK(FaultRecord::decode(0, 1ULL << 28).type == FaultReqType::TranslationRequest);
    CHECK(FaultRecord::decode(0, 0).type == FaultReqType::Write);

    std::mt19937_64 rng(11);
    for (int i = 0; i < 2000; ++i) {
        const uint64_t lo = rng(), hi = rng();
        const auto back = FaultRecord::decode(lo, hi).encode();
        CHECK(back[0] == (lo & ~FaultRecord::kReservedLo));
        CHECK(back[1] == (hi & ~FaultRecord::kReservedHi));
    }
}

TEST_CASE("fault reason texts", "[vtd-regs]") {
    const uint16_t defined[] = {
        kFrRootNotPresent,
        kFrContextNotPresent,
        kFrContextInvalid,
        kFrAddressBeyondMgaw,
        kFrWrite,
        kFrRead,
        kFrPagingEntryAccess,
        kFrRootTableAccess,
        kFrContextTableAccess,
        kFrRootReserved,
        kFrContextReserved,
        kFrPagingEntryReserved,
        kFrContextTtBlocked,
        kSmInvalidRootTableAddress,
        kSmTtm0RequestWithPasid,
        kSmRootAccess,
        kSmRootNotPresent,
        kSmRootReserved,
        kSmContextAccess,
        kSmContextNotPresent,
        kSmContextReserved,
        kSmContextInvalid,
        kSmContextDteClear,
        kSmContextPasidDisabled,
        kSmPasidTooLarge,
        kSmContextPreClear,
        kSmRidPasidError,
        kSmPasidDirAccess,
        kSmPasidDirNotPresent,
        kSmPasidDirReserved,
        kSmPasidEntryAccess,
        kSmPasidEntryNotPresent,
        kSmPasidEntryReserved,
        kSmPasidEntryInvalid,
        kSmPasidEreClear,
        kSmPasidSreClear,
        kSmFlAccess,
        kSmFlNotPresent,
        kSmFlReserved,
        kSmFlPml4Access,
        kSmFlAddressBeyondMgawNested,
        kSmFlPml4ReadNested,
        kSmFlReadNested,
        kSmFlWriteNested,
        kSmSlAccess,
        kSmSlPermission,
        kSmSlReserved,
        kSmSlInvalidPointer,
        kSmNonCanonical,
        kSmUserSupervisor,
        kSmNoExecute,
        kSmAddressBeyondHwMax,
        kSmSlAddressBeyondMax,
        kSmNoWrite,
        kSmNoRead,
    };
    for (uint16_t r : defined) {
        INFO("reason " << r);
        CHECK(std::strcmp(fault_reason_text(r), "Unknown") != 0);
    }
    CHECK(std::strcmp(fault_reason_text(kFrWrite),
                      "Write request without write permission (W clear)") == 0);
    for (uint16_t r : {0x0, 0xE, 0x35, 0x4F, 0x60, 0xFF, 0x1234})
        CHECK(std::strcmp(fault_reason_text(r), "Unknown") == 0);
}
