#include "vtd_invdesc.h"

#include <algorithm>
#include <type_traits>

#include <fmt/format.h>

namespace iommusim::vtd {

namespace {

InvDesc with_type(InvDescType t) {
    InvDesc d;
    TYPE_LO.put(d.qw, unsigned(t) & 0xf);
    TYPE_HI.put(d.qw, unsigned(t) >> 4);
    return d;
}

// First reserved violation in qw[0..n), checked quadword by quadword as hardware would.
std::optional<DescError> reserved(const uint64_t* q, const uint64_t* rsvd, unsigned n,
                                  unsigned type) {
    for (unsigned i = 0; i < n; ++i)
        if (uint64_t b = q[i] & rsvd[i])
            return DescError{Iqei::ReservedField, uint8_t(type), uint8_t(i), b, "Rsvd"};
    return std::nullopt;
}

DescError bad_field(unsigned type, const Field& f, const uint64_t* q, const char* name) {
    return DescError{Iqei::ReservedField, uint8_t(type), f.qw, q[f.qw] & f.mask(), name};
}

// VT-d page-selective ranges: 2^AM pages with ADDR's low AM page bits ignored.
void set_range(InvalidationScope& s, Addr addr, unsigned am) {
    s.order = uint8_t(std::min<unsigned>(am, InvalidationScope::kWholeSpace));
    s.addr = s.order >= InvalidationScope::kWholeSpace ? 0 : addr & ~(s.bytes() - 1);
}

}  // namespace

const char* to_string(InvDescType t) {
    switch (t) {
        case InvDescType::ContextCache: return "context-cache";
        case InvDescType::Iotlb: return "iotlb";
        case InvDescType::DeviceTlb: return "device-tlb";
        case InvDescType::InterruptEntryCache: return "iec";
        case InvDescType::Wait: return "wait";
        case InvDescType::PasidIotlb: return "p-iotlb";
        case InvDescType::PasidCache: return "pasid-cache";
        case InvDescType::PasidDeviceTlb: return "p-device-tlb";
        case InvDescType::PageGroupResponse: return "page-group-response";
    }
    return "?";
}

std::string to_string(const DescError& e) {
    switch (e.iqei) {
        case Iqei::InvalidType:
            return fmt::format("invalid descriptor type {:#x}", unsigned(e.type));
        case Iqei::ReservedField:
            return fmt::format("type {:#x}: {} bits {:#018x} set in QW{}", unsigned(e.type),
                               *e.field ? e.field : "Rsvd", e.bits, unsigned(e.qw));
        default:
            return fmt::format("type {:#x}: invalidation queue error {}", unsigned(e.type),
                               unsigned(e.iqei));
    }
}

DecodedInvDesc decode(const uint64_t q[4], bool dw256) {
    const unsigned type = desc_type(q[0]);
    const unsigned nq = dw256 ? 4 : 2;
    const uint64_t upper_rsvd[4] = {0, 0, ~0ULL, ~0ULL};
    auto check = [&](const uint64_t(&rsvd)[2]) -> std::optional<DescError> {
        if (auto e = reserved(q, rsvd, 2, type)) return e;
        return reserved(q, upper_rsvd, nq, type);  // QW2, QW3 of a 256-bit descriptor
    };
    switch (InvDescType(type)) {
        case InvDescType::ContextCache: {
            namespace f = cc_inv_dsc;
            if (auto e = check(f::kRsvd)) return *e;
            if (f::G.get(q) == 0) return bad_field(type, f::G, q, "G");
            return ContextCacheInv{CcGranularity(f::G.get(q)), uint16_t(f::DID.get(q)),
                                   uint16_t(f::SID.get(q)), uint8_t(f::FM.get(q))};
        }
        case InvDescType::Iotlb: {
            namespace f = iotlb_inv_dsc;
            if (auto e = check(f::kRsvd)) return *e;
            if (f::G.get(q) == 0) return bad_field(type, f::G, q, "G");
            return IotlbInv{
                IotlbGranularity(f::G.get(q)), bool(f::DR.get(q)),    bool(f::DW.get(q)),
                uint16_t(f::DID.get(q)),       q[1] & f::ADDR.mask(), bool(f::IH.get(q)),
                uint8_t(f::AM.get(q))};
        }
        case InvDescType::DeviceTlb: {
            namespace f = dev_tlb_inv_dsc;
            if (auto e = check(f::kRsvd)) return *e;
            return DeviceTlbInv{uint16_t(f::SID.get(q)),
                                uint16_t(f::PFSID_LO.get(q) | (f::PFSID_HI.get(q) << 4)),
                                uint8_t(f::MIP.get(q)), q[1] & f::ADDR.mask(), bool(f::S.get(q))};
        }
        case InvDescType::InterruptEntryCache: {
            namespace f = iec_inv_dsc;
            if (auto e = check(f::kRsvd)) return *e;
            return IecInv{bool(f::G.get(q)), uint8_t(f::IM.get(q)), uint16_t(f::IIDX.get(q))};
        }
        case InvDescType::Wait: {
            namespace f = inv_wait_dsc;
            if (auto e = check(f::kRsvd)) return *e;
            return InvWait{bool(f::IF.get(q)), bool(f::SW.get(q)),         bool(f::FN.get(q)),
                           bool(f::PD.get(q)), uint32_t(f::STDATA.get(q)), q[1] & f::STADDR.mask()};
        }
        case InvDescType::PasidIotlb: {
            namespace f = p_iotlb_inv_dsc;
            if (auto e = check(f::kRsvd)) return *e;
            if (f::G.get(q) < 2) return bad_field(type, f::G, q, "G");
            return PasidIotlbInv{PasidIotlbGranularity(f::G.get(q)),
                                 uint16_t(f::DID.get(q)),
                                 uint32_t(f::PASID.get(q)),
                                 q[1] & f::ADDR.mask(),
                                 bool(f::IH.get(q)),
                                 uint8_t(f::AM.get(q))};
        }
        case InvDescType::PasidCache: {
            namespace f = pc_inv_dsc;
            if (auto e = check(f::kRsvd)) return *e;
            if (f::G.get(q) == 2) return bad_field(type, f::G, q, "G");
            return PasidCacheInv{PasidCacheGranularity(f::G.get(q)), uint16_t(f::DID.get(q)),
                                 uint32_t(f::PASID.get(q))};
        }
        case InvDescType::PasidDeviceTlb: {
            namespace f = p_dev_tlb_inv_dsc;
            if (auto e = check(f::kRsvd)) return *e;
            return PasidDeviceTlbInv{
                uint16_t(f::SID.get(q)), uint16_t(f::PFSID_LO.get(q) | (f::PFSID_HI.get(q) << 4)),
                uint8_t(f::MIP.get(q)),  uint32_t(f::PASID.get(q)),
                bool(f::G.get(q)),       bool(f::S.get(q)),
                q[1] & f::ADDR.mask()};
        }
        case InvDescType::PageGroupResponse: {
            namespace f = pgrp_resp_dsc;
            if (auto e = check(f::kRsvd)) return *e;
            return PageGroupResponse{bool(f::PP.get(q)), uint8_t(f::RC.get(q)),
                                     uint16_t(f::RID.get(q)), uint32_t(f::PASID.get(q)),
                                     uint16_t(f::PRGI.get(q))};
        }
    }
    return DescError{Iqei::InvalidType, uint8_t(type), 0, q[0] & (TYPE_LO.mask() | TYPE_HI.mask()),
                     "Type"};
}

InvDesc encode(const ContextCacheInv& d) {
    namespace f = cc_inv_dsc;
    InvDesc r = with_type(InvDescType::ContextCache);
    f::G.put(r.qw, uint64_t(d.g));
    f::DID.put(r.qw, d.did);
    f::SID.put(r.qw, d.sid);
    f::FM.put(r.qw, d.fm);
    return r;
}

InvDesc encode(const IotlbInv& d) {
    namespace f = iotlb_inv_dsc;
    InvDesc r = with_type(InvDescType::Iotlb);
    f::G.put(r.qw, uint64_t(d.g));
    f::DR.put(r.qw, d.dr);
    f::DW.put(r.qw, d.dw);
    f::DID.put(r.qw, d.did);
    r.qw[1] = d.addr & f::ADDR.mask();
    f::IH.put(r.qw, d.ih);
    f::AM.put(r.qw, d.am);
    return r;
}

InvDesc encode(const DeviceTlbInv& d) {
    namespace f = dev_tlb_inv_dsc;
    InvDesc r = with_type(InvDescType::DeviceTlb);
    f::PFSID_LO.put(r.qw, d.pfsid & 0xf);
    f::PFSID_HI.put(r.qw, d.pfsid >> 4);
    f::MIP.put(r.qw, d.mip);
    f::SID.put(r.qw, d.sid);
    r.qw[1] = d.addr & f::ADDR.mask();
    f::S.put(r.qw, d.s);
    return r;
}

InvDesc encode(const IecInv& d) {
    namespace f = iec_inv_dsc;
    InvDesc r = with_type(InvDescType::InterruptEntryCache);
    f::G.put(r.qw, d.g);
    f::IM.put(r.qw, d.im);
    f::IIDX.put(r.qw, d.iidx);
    return r;
}

InvDesc encode(const InvWait& d) {
    namespace f = inv_wait_dsc;
    InvDesc r = with_type(InvDescType::Wait);
    f::IF.put(r.qw, d.iflag);
    f::SW.put(r.qw, d.sw);
    f::FN.put(r.qw, d.fn);
    f::PD.put(r.qw, d.pd);
    f::STDATA.put(r.qw, d.status_data);
    r.qw[1] = d.status_addr & f::STADDR.mask();
    return r;
}

InvDesc encode(const PasidIotlbInv& d) {
    namespace f = p_iotlb_inv_dsc;
    InvDesc r = with_type(InvDescType::PasidIotlb);
    f::G.put(r.qw, uint64_t(d.g));
    f::DID.put(r.qw, d.did);
    f::PASID.put(r.qw, d.pasid);
    r.qw[1] = d.addr & f::ADDR.mask();
    f::IH.put(r.qw, d.ih);
    f::AM.put(r.qw, d.am);
    return r;
}

InvDesc encode(const PasidCacheInv& d) {
    namespace f = pc_inv_dsc;
    InvDesc r = with_type(InvDescType::PasidCache);
    f::G.put(r.qw, uint64_t(d.g));
    f::DID.put(r.qw, d.did);
    f::PASID.put(r.qw, d.pasid);
    return r;
}

InvDesc encode(const PasidDeviceTlbInv& d) {
    namespace f = p_dev_tlb_inv_dsc;
    InvDesc r = with_type(InvDescType::PasidDeviceTlb);
    f::MIP.put(r.qw, d.mip);
    f::PFSID_LO.put(r.qw, d.pfsid & 0xf);
    f::PFSID_HI.put(r.qw, d.pfsid >> 4);
    f::SID.put(r.qw, d.sid);
    f::PASID.put(r.qw, d.pasid);
    r.qw[1] = d.addr & f::ADDR.mask();
    f::G.put(r.qw, d.g);
    f::S.put(r.qw, d.s);
    return r;
}

InvDesc encode(const PageGroupResponse& d) {
    namespace f = pgrp_resp_dsc;
    InvDesc r = with_type(InvDescType::PageGroupResponse);
    f::PP.put(r.qw, d.pp);
    f::RC.put(r.qw, d.rc);
    f::RID.put(r.qw, d.rid);
    f::PASID.put(r.qw, d.pasid);
    f::PRGI.put(r.qw, d.prgi);
    return r;
}

InvDesc encode(const DecodedInvDesc& d) {
    return std::visit(
        [](const auto& x) -> InvDesc {
            if constexpr (std::is_same_v<std::decay_t<decltype(x)>, DescError>)
                return InvDesc{};
            else
                return encode(x);
        },
        d);
}

std::array<uint64_t, 4> encode(const PageRequest& r) {
    namespace f = page_req_dsc;
    uint64_t q[4] = {f::kType, r.addr & f::ADDR.mask(), 0, 0};
    f::PP.put(q, r.pp);
    f::RID.put(q, r.rid);
    f::PASID.put(q, r.pasid);
    f::EXR.put(q, r.exe);
    f::PMR.put(q, r.pmr);
    f::RDR.put(q, r.rdr);
    f::WRR.put(q, r.wrr);
    f::LPIG.put(q, r.lpig);
    f::PRGI.put(q, r.prgi);
    return {q[0], q[1], q[2], q[3]};
}

std::variant<DescError, PageRequest> decode_page_request(const uint64_t q[4]) {
    namespace f = page_req_dsc;
    const unsigned type = unsigned(f::TYPE.get(q));
    if (type != f::kType)
        return DescError{Iqei::InvalidType, uint8_t(type), 0, q[0] & f::TYPE.mask(), "Type"};
    if (auto e = reserved(q, f::kRsvd, 4, type)) return *e;
    PageRequest r;
    r.pp = f::PP.get(q);
    r.rid = uint16_t(f::RID.get(q));
    r.pasid = uint32_t(f::PASID.get(q));
    r.exe = f::EXR.get(q);
    r.pmr = f::PMR.get(q);
    r.rdr = f::RDR.get(q);
    r.wrr = f::WRR.get(q);
    r.lpig = f::LPIG.get(q);
    r.prgi = uint16_t(f::PRGI.get(q));
    r.addr = q[1] & f::ADDR.mask();
    return r;
}

InvDesc cc_global() {
    return encode(ContextCacheInv{CcGranularity::Global, 0, 0, 0});
}
InvDesc cc_domain(uint16_t did) {
    return encode(ContextCacheInv{CcGranularity::Domain, did, 0, 0});
}
InvDesc cc_device(uint16_t did, uint16_t sid, uint8_t fm) {
    return encode(ContextCacheInv{CcGranularity::Device, did, sid, fm});
}
InvDesc iotlb_global(bool drain_reads, bool drain_writes) {
    return encode(IotlbInv{IotlbGranularity::Global, drain_reads, drain_writes, 0, 0, false, 0});
}
InvDesc iotlb_domain(uint16_t did, bool drain_reads, bool drain_writes) {
    return encode(IotlbInv{IotlbGranularity::Domain, drain_reads, drain_writes, did, 0, false, 0});
}
InvDesc iotlb_page(uint16_t did, Addr addr, uint8_t am, bool ih, bool drain_reads,
                   bool drain_writes) {
    return encode(IotlbInv{IotlbGranularity::Page, drain_reads, drain_writes, did, addr, ih, am});
}
InvDesc inv_wait(Addr status_addr, uint32_t status_data, bool interrupt, bool fence,
                 bool page_drain) {
    return encode(InvWait{interrupt, true, fence, page_drain, status_data, status_addr});
}
InvDesc piotlb_pasid(uint16_t did, uint32_t pasid) {
    return encode(PasidIotlbInv{PasidIotlbGranularity::NonGlobalPasid, did, pasid, 0, false, 0});
}
InvDesc piotlb_page(uint16_t did, uint32_t pasid, Addr addr, uint8_t am, bool ih) {
    return encode(PasidIotlbInv{PasidIotlbGranularity::PasidPage, did, pasid, addr, ih, am});
}
InvDesc pc_domain(uint16_t did) {
    return encode(PasidCacheInv{PasidCacheGranularity::Domain, did, 0});
}
InvDesc pc_pasid(uint16_t did, uint32_t pasid) {
    return encode(PasidCacheInv{PasidCacheGranularity::Pasid, did, pasid});
}
InvDesc pc_global() {
    return encode(PasidCacheInv{PasidCacheGranularity::Global, 0, 0});
}

std::optional<ContextCacheInv> decode_ccmd(uint64_t v) {
    const uint64_t q[1] = {v};
    if (ccmd::CIRG.get(q) == 0) return std::nullopt;
    return ContextCacheInv{CcGranularity(ccmd::CIRG.get(q)), uint16_t(ccmd::DID.get(q)),
                           uint16_t(ccmd::SID.get(q)), uint8_t(ccmd::FM.get(q))};
}

uint64_t encode_ccmd(const ContextCacheInv& d) {
    uint64_t q[1] = {0};
    ccmd::ICC.put(q, 1);
    ccmd::CIRG.put(q, uint64_t(d.g));
    ccmd::FM.put(q, d.fm);
    ccmd::SID.put(q, d.sid);
    ccmd::DID.put(q, d.did);
    return q[0];
}

std::optional<IotlbInv> decode_iotlb_reg(uint64_t iotlb, uint64_t iva) {
    const uint64_t q[1] = {iotlb}, a[1] = {iva};
    if (iotlb_reg::IIRG.get(q) == 0) return std::nullopt;
    return IotlbInv{IotlbGranularity(iotlb_reg::IIRG.get(q)),
                    bool(iotlb_reg::DR.get(q)),
                    bool(iotlb_reg::DW.get(q)),
                    uint16_t(iotlb_reg::DID.get(q)),
                    iva & iva_reg::ADDR.mask(),
                    bool(iva_reg::IH.get(a)),
                    uint8_t(iva_reg::AM.get(a))};
}

IotlbRegs encode_iotlb_reg(const IotlbInv& d) {
    uint64_t q[1] = {0}, a[1] = {d.addr & iva_reg::ADDR.mask()};
    iotlb_reg::IVT.put(q, 1);
    iotlb_reg::IIRG.put(q, uint64_t(d.g));
    iotlb_reg::DR.put(q, d.dr);
    iotlb_reg::DW.put(q, d.dw);
    iotlb_reg::DID.put(q, d.did);
    iva_reg::IH.put(a, d.ih);
    iva_reg::AM.put(a, d.am);
    return {a[0], q[0]};
}

AtsRange ats_range(Addr addr, bool s) {
    if (!s) return {addr & ~Addr(0xfff), 0};
    unsigned ones = 0;  // run of set bits from bit 12 up; the first clear bit ends it
    while (ones < 52 && ((addr >> (12 + ones)) & 1)) ++ones;
    const uint8_t order = uint8_t(std::min<unsigned>(ones + 1, InvalidationScope::kWholeSpace));
    if (order >= InvalidationScope::kWholeSpace) return {0, order};
    return {addr & ~((Addr(4096) << order) - 1), order};
}

Addr ats_encode(Addr addr, uint8_t order) {
    if (order == 0) return addr & ~Addr(0xfff);
    if (order >= InvalidationScope::kWholeSpace) return bit_mask(62, 12);
    const Addr base = addr & ~((Addr(4096) << order) - 1);
    return base | (order > 1 ? bit_mask(12 + order - 2, 12) : 0);
}

InvalidationScope scope_of(const ContextCacheInv& d) {
    using K = InvalidationScope::Kind;
    InvalidationScope s;
    s.domain = d.did;
    switch (d.g) {
        case CcGranularity::Global: s.kind = K::ContextGlobal; break;
        case CcGranularity::Domain: s.kind = K::ContextDomain; break;
        case CcGranularity::Device:
            s.kind = K::ContextDevice;
            s.rid = d.sid;
            // FM masks the most significant FM bits of the 3-bit function number.
            s.rid_ignore = uint16_t(((1u << d.fm) - 1) << (3 - d.fm));
            break;
    }
    return s;
}

InvalidationScope scope_of(const IotlbInv& d) {
    using K = InvalidationScope::Kind;
    InvalidationScope s;
    s.domain = d.did;
    switch (d.g) {
        case IotlbGranularity::Global: s.kind = K::Global; break;
        case IotlbGranularity::Domain: s.kind = K::Domain; break;
        case IotlbGranularity::Page:
            s.kind = K::Page;
            set_range(s, d.addr, d.am);
            s.leaf_only = d.ih;
            break;
    }
    return s;
}

InvalidationScope scope_of(const DeviceTlbInv& d) {
    InvalidationScope s;
    s.kind = InvalidationScope::Kind::DeviceTlb;
    s.rid = d.sid;
    const AtsRange r = ats_range(d.addr, d.s);
    s.addr = r.addr;
    s.order = r.order;
    return s;
}

InvalidationScope scope_of(const PasidIotlbInv& d) {
    InvalidationScope s;
    s.domain = d.did;
    s.pasid = d.pasid;
    if (d.g == PasidIotlbGranularity::PasidPage) {
        s.kind = InvalidationScope::Kind::PasidPage;
        set_range(s, d.addr, d.am);
        s.leaf_only = d.ih;
    } else {
        s.kind = InvalidationScope::Kind::Pasid;
    }
    return s;
}

InvalidationScope scope_of(const PasidCacheInv& d) {
    InvalidationScope s;
    s.kind = InvalidationScope::Kind::PasidCache;
    s.domain = d.g == PasidCacheGranularity::Global ? InvalidationScope::kAllDomains : d.did;
    s.pasid = d.g == PasidCacheGranularity::Pasid ? d.pasid : InvalidationScope::kAllPasids;
    return s;
}

InvalidationScope scope_of(const PasidDeviceTlbInv& d) {
    InvalidationScope s;
    s.kind = InvalidationScope::Kind::DeviceTlb;
    s.rid = d.sid;
    s.pasid = d.pasid;
    s.global = d.g;
    const AtsRange r = ats_range(d.addr, d.s);
    s.addr = r.addr;
    s.order = r.order;
    return s;
}

std::optional<InvalidationScope> scope_of(const DecodedInvDesc& d) {
    return std::visit(
        [](const auto& x) -> std::optional<InvalidationScope> {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, InvWait>) {
                InvalidationScope s;
                s.kind = InvalidationScope::Kind::Wait;
                return s;
            } else if constexpr (std::is_same_v<T, DescError> || std::is_same_v<T, IecInv> ||
                                 std::is_same_v<T, PageGroupResponse>) {
                return std::nullopt;
            } else {
                return scope_of(x);
            }
        },
        d);
}

}  // namespace iommusim::vtd
