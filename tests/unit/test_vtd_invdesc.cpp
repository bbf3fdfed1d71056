#include <catch2/catch.hpp>

#include <random>
#include <tuple>

#include "arch/vtd/vtd_invdesc.h"

using namespace iommusim;
using namespace iommusim::vtd;
using K = InvalidationScope::Kind;

namespace {

// Field-wise views for comparing decoded descriptors.
auto tie(const ContextCacheInv& d) {
    return std::tie(d.g, d.did, d.sid, d.fm);
}
auto tie(const IotlbInv& d) {
    return std::tie(d.g, d.dr, d.dw, d.did, d.addr, d.ih, d.am);
}
auto tie(const DeviceTlbInv& d) {
    return std::tie(d.sid, d.pfsid, d.mip, d.addr, d.s);
}
auto tie(const IecInv& d) {
    return std::tie(d.g, d.im, d.iidx);
}
auto tie(const InvWait& d) {
    return std::tie(d.iflag, d.sw, d.fn, d.pd, d.status_data, d.status_addr);
}
auto tie(const PasidIotlbInv& d) {
    return std::tie(d.g, d.did, d.pasid, d.addr, d.ih, d.am);
}
auto tie(const PasidCacheInv& d) {
    return std::tie(d.g, d.did, d.pasid);
}
auto tie(const PasidDeviceTlbInv& d) {
    return std::tie(d.sid, d.pfsid, d.mip, d.pasid, d.g, d.s, d.addr);
}
auto tie(const PageGroupResponse& d) {
    return std::tie(d.pp, d.rc, d.rid, d.pasid, d.prgi);
}
auto tie(const PageRequest& r) {
    return std::tie(r.pp, r.rid, r.pasid, r.exe, r.pmr, r.rdr, r.wrr, r.lpig, r.prgi, r.addr);
}

struct Rand {
    std::mt19937_64 g{2024};
    uint64_t bits(unsigned n) { return n >= 64 ? g() : g() & ((1ULL << n) - 1); }
    bool flag() { return g() & 1; }
    Addr page() { return g() & bit_mask(63, 12); }
};

// One random valid descriptor of every type.
std::vector<DecodedInvDesc> random_descs(Rand& r) {
    std::vector<DecodedInvDesc> v;
    v.push_back(ContextCacheInv{CcGranularity(1 + r.bits(2) % 3), uint16_t(r.bits(16)),
                                uint16_t(r.bits(16)), uint8_t(r.bits(2))});
    v.push_back(IotlbInv{IotlbGranularity(1 + r.bits(2) % 3), r.flag(), r.flag(),
                         uint16_t(r.bits(16)), r.page(), r.flag(), uint8_t(r.bits(6))});
    v.push_back(DeviceTlbInv{uint16_t(r.bits(16)), uint16_t(r.bits(16)), uint8_t(r.bits(5)),
                             r.page(), r.flag()});
    v.push_back(IecInv{r.flag(), uint8_t(r.bits(5)), uint16_t(r.bits(16))});
    v.push_back(InvWait{r.flag(), r.flag(), r.flag(), r.flag(), uint32_t(r.bits(32)),
                        r.bits(64) & ~Addr(3)});
    v.push_back(PasidIotlbInv{PasidIotlbGranularity(2 + r.bits(1)), uint16_t(r.bits(16)),
                              uint32_t(r.bits(20)), r.page(), r.flag(), uint8_t(r.bits(6))});
    const uint64_t pcg[3] = {0, 1, 3};
    v.push_back(PasidCacheInv{PasidCacheGranularity(pcg[r.bits(8) % 3]), uint16_t(r.bits(16)),
                              uint32_t(r.bits(20))});
    v.push_back(PasidDeviceTlbInv{uint16_t(r.bits(16)), uint16_t(r.bits(16)), uint8_t(r.bits(5)),
                                  uint32_t(r.bits(20)), r.flag(), r.flag(), r.page()});
    v.push_back(PageGroupResponse{r.flag(), uint8_t(r.bits(4)), uint16_t(r.bits(16)),
                                  uint32_t(r.bits(20)), uint16_t(r.bits(9))});
    return v;
}

bool same(const DecodedInvDesc& a, const DecodedInvDesc& b) {
    if (a.index() != b.index()) return false;
    return std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, DescError>)
                return false;
            else
                return tie(x) == tie(std::get<T>(b));
        },
        a);
}

InvDesc make(uint64_t q0, uint64_t q1, uint64_t q2 = 0, uint64_t q3 = 0) {
    InvDesc d;
    d.qw[0] = q0;
    d.qw[1] = q1;
    d.qw[2] = q2;
    d.qw[3] = q3;
    return d;
}

// Reserved masks per type, in the order random_descs produces them.
struct Rsvd {
    uint64_t q0, q1;
};
const Rsvd kRsvdByType[] = {
    {cc_inv_dsc::kRsvd[0], cc_inv_dsc::kRsvd[1]},
    {iotlb_inv_dsc::kRsvd[0], iotlb_inv_dsc::kRsvd[1]},
    {dev_tlb_inv_dsc::kRsvd[0], dev_tlb_inv_dsc::kRsvd[1]},
    {iec_inv_dsc::kRsvd[0], iec_inv_dsc::kRsvd[1]},
    {inv_wait_dsc::kRsvd[0], inv_wait_dsc::kRsvd[1]},
    {p_iotlb_inv_dsc::kRsvd[0], p_iotlb_inv_dsc::kRsvd[1]},
    {pc_inv_dsc::kRsvd[0], pc_inv_dsc::kRsvd[1]},
    {p_dev_tlb_inv_dsc::kRsvd[0], p_dev_tlb_inv_dsc::kRsvd[1]},
    {pgrp_resp_dsc::kRsvd[0], pgrp_resp_dsc::kRsvd[1]},
};

}  // namespace

TEST_CASE("known descriptor encodings", "[vtd-invdesc]") {
    // Global IOTLB invalidation with read and write draining: type 2, G=01, DW, DR.
    CHECK(iotlb_global(true, true) == make(0xd2, 0));
    CHECK(iotlb_global() == make(0x12, 0));
    CHECK(cc_global() == make(0x11, 0));
    CHECK(cc_domain(7) == make(0x0007'0021, 0));
    CHECK(cc_device(5, 0x0010, 3) == make(0x0003'0010'0005'0031ULL, 0));
    CHECK(pc_global() == make(0x37, 0));
    CHECK(pc_pasid(2, 5) == make(0x0000'0005'0002'0017ULL, 0));
    CHECK(piotlb_pasid(2, 5) == make(0x0000'0005'0002'0026ULL, 0));
    CHECK(piotlb_page(2, 5, 0x1234'5000, 3, true) == make(0x0000'0005'0002'0036ULL, 0x1234'5043));
    CHECK(inv_wait(0x1000, 1, true, true) == make(0x0000'0001'0000'0075ULL, 0x1000));
    CHECK(encode(IecInv{true, 2, 0x40}) == make(0x0000'0040'1000'0014ULL, 0));
    // PFSID 0xabc split: low nibble at 15:12, the rest at 63:52.
    CHECK(encode(DeviceTlbInv{0x0100, 0xabc, 0x1f, 0x7000, true}) ==
          make(0x0ab0'0100'001f'c003ULL, 0x7001));
    CHECK(encode(PasidDeviceTlbInv{0x0100, 0xabc, 0x1f, 0x12345, true, true, 0x7000}) ==
          make(0x0ab1'2345'0100'c1f8ULL, 0x7801));
    CHECK(encode(PageGroupResponse{true, 0xf, 0x0010, 9, 0x1ff}) ==
          make(0x0000'0009'0010'f019ULL, 0xff8));
}

TEST_CASE("descriptors recorded from a Linux guest decode", "[vtd-invdesc]") {
    // From qemu-trace.log (vtd_inv_desc "high ... low ..."): strict-mode unmap of one page.
    auto d = decode(make(0x400f2, 0xfffdf000), false);
    REQUIRE(std::holds_alternative<IotlbInv>(d));
    const auto& io = std::get<IotlbInv>(d);
    CHECK(io.g == IotlbGranularity::Page);
    CHECK(io.did == 4);
    CHECK(io.dr);
    CHECK(io.dw);
    CHECK(io.addr == 0xfffdf000);
    CHECK(io.am == 0);
    CHECK_FALSE(io.ih);
    CHECK(iotlb_page(4, 0xfffdf000, 0, false, true, true) == make(0x400f2, 0xfffdf000));
    CHECK(iotlb_domain(2, true, true) == make(0x200e2, 0));

    auto w = decode(make(0x200000025, 0x2810804), true);  // scalable run uses DW=1
    REQUIRE(std::holds_alternative<InvWait>(w));
    CHECK(std::get<InvWait>(w).sw);
    CHECK(std::get<InvWait>(w).status_data == 2);
    CHECK(std::get<InvWait>(w).status_addr == 0x2810804);
    CHECK(inv_wait(0x2810804, 2) == make(0x200000025, 0x2810804));

    auto c = decode(make(0xfb00000031, 0), false);
    REQUIRE(std::holds_alternative<ContextCacheInv>(c));
    CHECK(std::get<ContextCacheInv>(c).g == CcGranularity::Device);
    CHECK(std::get<ContextCacheInv>(c).sid == 0xfb);  // 00:1f.3
    CHECK(cc_device(0, 0x10) == make(0x1000000031, 0));
}

TEST_CASE("every descriptor round-trips in both widths", "[vtd-invdesc]") {
    Rand r;
    for (int i = 0; i < 500; ++i) {
        for (const DecodedInvDesc& want : random_descs(r)) {
            const InvDesc e = encode(want);
            for (bool dw : {false, true}) {
                const DecodedInvDesc got = decode(e, dw);
                INFO("type " << desc_type(e.qw[0]) << " qw0 " << std::hex << e.qw[0]);
                REQUIRE_FALSE(std::holds_alternative<DescError>(got));
                CHECK(same(got, want));
                CHECK(encode(got) == e);
            }
        }
    }
}

TEST_CASE("reserved bits and upper quadwords are detected", "[vtd-invdesc]") {
    Rand r;
    const auto descs = random_descs(r);
    for (size_t t = 0; t < descs.size(); ++t) {
        const InvDesc good = encode(descs[t]);
        const uint64_t rsvd[2] = {kRsvdByType[t].q0, kRsvdByType[t].q1};
        for (unsigned q = 0; q < 2; ++q) {
            for (unsigned b = 0; b < 64; ++b) {
                if (!((rsvd[q] >> b) & 1)) continue;
                InvDesc bad = good;
                bad.qw[q] |= 1ULL << b;
                const auto d = decode(bad, false);
                INFO("type " << desc_type(good.qw[0]) << " qw" << q << " bit " << b);
                REQUIRE(std::holds_alternative<DescError>(d));
                const auto& e = std::get<DescError>(d);
                CHECK(e.iqei == Iqei::ReservedField);
                CHECK(e.qw == q);
                CHECK(e.bits == (1ULL << b));
                CHECK(e.type == desc_type(good.qw[0]));
            }
        }
        // QW2/QW3 are reserved in 256-bit mode and not part of a 128-bit descriptor.
        for (unsigned q = 2; q < 4; ++q) {
            InvDesc up = good;
            up.qw[q] = 0x8000'0000'0000'0001ULL;
            CHECK_FALSE(std::holds_alternative<DescError>(decode(up, false)));
            const auto d = decode(up, true);
            REQUIRE(std::holds_alternative<DescError>(d));
            CHECK(std::get<DescError>(d).qw == q);
        }
    }
    // Page group response: bit 66 (old LPIG) is ignored, bit 5 (old PDP) is reserved.
    InvDesc pgr = encode(PageGroupResponse{true, 0, 0x10, 1, 3});
    pgr.qw[1] |= 1ULL << 2;
    CHECK(std::holds_alternative<PageGroupResponse>(decode(pgr, true)));
    pgr.qw[0] |= 1ULL << 5;
    CHECK(std::holds_alternative<DescError>(decode(pgr, true)));
    CHECK(to_string(std::get<DescError>(decode(pgr, true))).find("Rsvd") != std::string::npos);
}

TEST_CASE("invalid types and reserved granularities", "[vtd-invdesc]") {
    for (uint64_t t : {0x0ULL, 0xaULL, 0xbULL, 0xfULL}) {
        const auto d = decode(make(t, 0), false);
        REQUIRE(std::holds_alternative<DescError>(d));
        CHECK(std::get<DescError>(d).iqei == Iqei::InvalidType);
        CHECK(std::get<DescError>(d).type == t);
    }
    // Type[6:4] in bits 11:9: an IOTLB descriptor with bit 9 set is type 0x12, not type 2.
    const auto hi = decode(make(0x200 | 0x12, 0), false);
    REQUIRE(std::holds_alternative<DescError>(hi));
    CHECK(std::get<DescError>(hi).iqei == Iqei::InvalidType);
    CHECK(std::get<DescError>(hi).type == 0x12);
    CHECK(to_string(std::get<DescError>(hi)) == "invalid descriptor type 0x12");
    CHECK(desc_type(0xe0f) == 0x7f);

    auto g_error = [](uint64_t q0) {
        const auto d = decode(make(q0, 0), false);
        return std::holds_alternative<DescError>(d) &&
               std::get<DescError>(d).iqei == Iqei::ReservedField &&
               std::string(std::get<DescError>(d).field) == "G";
    };
    CHECK(g_error(0x1));        // context cache, G=00
    CHECK(g_error(0x2));        // IOTLB, G=00
    CHECK(g_error(0x6));        // PASID IOTLB, G=00
    CHECK(g_error(0x16));       // PASID IOTLB, G=01
    CHECK(g_error(0x27));       // PASID cache, G=10
    CHECK_FALSE(g_error(0x7));  // PASID cache, G=00: domain-selective
}

TEST_CASE("descriptors map to arch-neutral scopes", "[vtd-invdesc]") {
    auto scope = [](const InvDesc& d) { return scope_of(decode(d, true)); };
    auto s = scope(iotlb_page(4, 0x1234'5000, 2, true));
    REQUIRE(s);
    CHECK(s->kind == K::Page);
    CHECK(s->domain == 4);
    CHECK(s->addr == 0x1234'4000);  // low AM page bits ignored
    CHECK(s->order == 2);
    CHECK(s->leaf_only);
    CHECK(s->covers(0x1234'7fff));
    CHECK_FALSE(s->covers(0x1234'8000));
    CHECK(s->overlaps(0x1220'0000, 21));  // the 2 MiB page holding the range
    CHECK_FALSE(s->overlaps(0x1240'0000, 21));

    CHECK(to_string(*s) == "page dom 4 0x12344000+0x4000 ih");

    CHECK(scope(iotlb_global())->kind == K::Global);
    CHECK(scope(iotlb_domain(9))->kind == K::Domain);
    CHECK(scope(iotlb_domain(9))->domain == 9);
    CHECK(scope(cc_global())->kind == K::ContextGlobal);
    CHECK(scope(cc_domain(3))->kind == K::ContextDomain);

    s = scope(cc_device(3, 0x0010, 1));
    CHECK(s->kind == K::ContextDevice);
    CHECK(s->rid_ignore == 0x4);  // FM=01 masks function bit 2
    CHECK(s->matches_rid(0x0014));
    CHECK_FALSE(s->matches_rid(0x0011));
    CHECK(scope(cc_device(3, 0x0010, 3))->rid_ignore == 0x7);
    CHECK(scope(cc_device(3, 0x0010, 0))->rid_ignore == 0);

    s = scope(piotlb_page(2, 5, 0x40'0000, 9, false));
    CHECK(s->kind == K::PasidPage);
    CHECK(s->pasid == 5);
    CHECK(s->bytes() == 2 * 1024 * 1024);
    CHECK(scope(piotlb_pasid(2, 5))->kind == K::Pasid);

    s = scope(pc_global());
    CHECK(s->kind == K::PasidCache);
    CHECK(s->domain == InvalidationScope::kAllDomains);
    CHECK(s->pasid == InvalidationScope::kAllPasids);
    CHECK(s->matches_domain(77));
    CHECK(to_string(*s) == "pasid-cache dom * pasid *");
    CHECK(scope(pc_domain(6))->pasid == InvalidationScope::kAllPasids);
    CHECK(scope(pc_domain(6))->domain == 6);
    CHECK(scope(pc_pasid(6, 8))->pasid == 8);

    // ATS size encoding: bits 12..14 set, bit 15 clear -> 16 pages at 0.
    s = scope(encode(PasidDeviceTlbInv{0x0100, 0, 0, 7, true, true, 0x7000}));
    CHECK(s->kind == K::DeviceTlb);
    CHECK(s->rid == 0x0100);
    CHECK(s->pasid == 7);
    CHECK(s->global);
    CHECK(s->addr == 0);
    CHECK(s->order == 4);
    s = scope(encode(DeviceTlbInv{0x0100, 0, 0, 0x8000'1000, false}));
    CHECK(s->pasid == Requester::kNoPasid);
    CHECK(s->addr == 0x8000'1000);
    CHECK(s->order == 0);
    s = scope(encode(DeviceTlbInv{0x0100, 0, 0, bit_mask(62, 12), true}));
    CHECK(s->order == InvalidationScope::kWholeSpace);
    CHECK(s->covers(~0ULL));
    for (uint8_t order = 0; order <= InvalidationScope::kWholeSpace; ++order) {
        const AtsRange back = ats_range(ats_encode(0xabcd'e000'0000ULL, order), order > 0);
        INFO("order " << unsigned(order));
        CHECK(back.order == order);
    }

    CHECK(scope(inv_wait(0x1000, 1))->kind == K::Wait);
    CHECK_FALSE(scope(encode(IecInv{})));
    CHECK_FALSE(scope(encode(PageGroupResponse{})));
    CHECK_FALSE(scope(make(0, 0)));  // invalid type
}

TEST_CASE("register-based invalidation commands", "[vtd-invdesc]") {
    // CCMD global with ICC, IOTLB global with IVT, as written by a driver without QI.
    CHECK(encode_ccmd(ContextCacheInv{}) == 0xA000'0000'0000'0000ULL);
    const ContextCacheInv dev{CcGranularity::Device, 0x1234, 0x00fb, 2};
    const auto cc = decode_ccmd(encode_ccmd(dev));
    REQUIRE(cc);
    CHECK(tie(*cc) == tie(dev));
    CHECK_FALSE(decode_ccmd(1ULL << 63));  // CIRG=00 is rejected

    CHECK(encode_iotlb_reg(IotlbInv{}).iotlb == 0x9000'0000'0000'0000ULL);
    const IotlbInv page{IotlbGranularity::Page, true, false, 0x42, 0xfee0'0000, true, 4};
    const IotlbRegs regs = encode_iotlb_reg(page);
    CHECK(regs.iva == 0xfee0'0044);
    CHECK(regs.iotlb == ((1ULL << 63) | (3ULL << 60) | (1ULL << 49) | (0x42ULL << 32)));
    const auto io = decode_iotlb_reg(regs.iotlb, regs.iva);
    REQUIRE(io);
    CHECK(tie(*io) == tie(page));
    CHECK_FALSE(decode_iotlb_reg(1ULL << 63, 0));
}

TEST_CASE("page request descriptors", "[vtd-invdesc]") {
    PageRequest pr;
    pr.pp = true;
    pr.rid = 0x10;
    pr.pasid = 5;
    pr.rdr = pr.wrr = pr.lpig = true;
    pr.prgi = 3;
    pr.addr = 0x7000;
    const auto q = encode(pr);
    CHECK(q[0] == 0x0000'0005'0010'0101ULL);
    CHECK(q[1] == 0x701f);
    CHECK(q[2] == 0);
    CHECK(q[3] == 0);
    auto d = decode_page_request(q.data());
    REQUIRE(std::holds_alternative<PageRequest>(d));
    CHECK(tie(std::get<PageRequest>(d)) == tie(pr));

    Rand r;
    for (int i = 0; i < 500; ++i) {
        PageRequest x{r.flag(),
                      uint16_t(r.bits(16)),
                      uint32_t(r.bits(20)),
                      r.flag(),
                      r.flag(),
                      r.flag(),
                      r.flag(),
                      r.flag(),
                      uint16_t(r.bits(9)),
                      r.page()};
        const auto e = encode(x);
        auto back = decode_page_request(e.data());
        REQUIRE(std::holds_alternative<PageRequest>(back));
        CHECK(tie(std::get<PageRequest>(back)) == tie(x));
    }

    auto bad = q;
    bad[0] = (bad[0] & ~0xffULL) | 2;
    CHECK(std::get<DescError>(decode_page_request(bad.data())).iqei == Iqei::InvalidType);
    bad = q;
    bad[0] |= 1ULL << 60;
    CHECK(std::get<DescError>(decode_page_request(bad.data())).bits == (1ULL << 60));
    bad = q;
    bad[3] = 1;
    CHECK(std::get<DescError>(decode_page_request(bad.data())).qw == 3);
}
