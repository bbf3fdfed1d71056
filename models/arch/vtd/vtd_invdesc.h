// Intel VT-d queued-invalidation descriptors (specification 6.5.2) and the page request
// descriptor the hardware writes to the page request queue (7.4.1), bit-exact. Each layout is
// a table of named fields whose union with the reserved bits is checked to tile every quadword.
// Decoding never aborts: a malformed descriptor yields a DescError saying what the hardware
// would report (FSTS.IQE with IQERCD.IQEI).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "core/invalidation.h"
#include "vtd_regs.h"

namespace iommusim::vtd {

enum class InvDescType : uint8_t {
    ContextCache = 1,
    Iotlb = 2,
    DeviceTlb = 3,
    InterruptEntryCache = 4,
    Wait = 5,
    PasidIotlb = 6,
    PasidCache = 7,
    PasidDeviceTlb = 8,
    PageGroupResponse = 9,
};
const char* to_string(InvDescType t);

// A descriptor as it sits in the queue. 128-bit descriptors use qw[0..1] and occupy 16 bytes;
// 256-bit descriptors (IQA.DW = 1) use all four quadwords.
struct InvDesc {
    uint64_t qw[4] = {0, 0, 0, 0};
    static constexpr size_t bytes(bool dw256) { return dw256 ? 32 : 16; }
    bool operator==(const InvDesc& o) const {
        return qw[0] == o.qw[0] && qw[1] == o.qw[1] && qw[2] == o.qw[2] && qw[3] == o.qw[3];
    }
};
static_assert(sizeof(InvDesc) == 32 && offsetof(InvDesc, qw) == 0);

// The type is split: Type[3:0] in bits 3:0 and Type[6:4] in bits 11:9 of QW0.
constexpr Field TYPE_LO{0, 3, 0}, TYPE_HI{0, 11, 9};
constexpr unsigned desc_type(uint64_t qw0) {
    return unsigned(bits(qw0, 3, 0) | (bits(qw0, 11, 9) << 4));
}

// ---- Field layouts, named as in the specification ----
namespace cc_inv_dsc {  // context-cache invalidate
constexpr Field G{0, 5, 4}, DID{0, 31, 16}, SID{0, 47, 32}, FM{0, 49, 48};
constexpr uint64_t kRsvd[2] = {0xfffc'0000'0000'f1c0, ~0ULL};
static_assert(tiles({TYPE_LO.mask(), TYPE_HI.mask(), G.mask(), DID.mask(), SID.mask(), FM.mask(),
                     kRsvd[0]}));
}  // namespace cc_inv_dsc
namespace iotlb_inv_dsc {  // IOTLB invalidate
constexpr Field G{0, 5, 4}, DW{0, 6, 6}, DR{0, 7, 7}, DID{0, 31, 16};
constexpr Field AM{1, 5, 0}, IH{1, 6, 6}, ADDR{1, 63, 12};
constexpr uint64_t kRsvd[2] = {0xffff'ffff'0000'f100, 0xf80};
static_assert(tiles({TYPE_LO.mask(), TYPE_HI.mask(), G.mask(), DW.mask(), DR.mask(), DID.mask(),
                     kRsvd[0]}));
static_assert(tiles({AM.mask(), IH.mask(), ADDR.mask(), kRsvd[1]}));
}  // namespace iotlb_inv_dsc
namespace dev_tlb_inv_dsc {  // device-TLB invalidate
constexpr Field PFSID_LO{0, 15, 12}, MIP{0, 20, 16}, SID{0, 47, 32}, PFSID_HI{0, 63, 52};
constexpr Field S{1, 0, 0}, ADDR{1, 63, 12};
constexpr uint64_t kRsvd[2] = {0x000f'0000'ffe0'01f0, 0xffe};
static_assert(tiles({TYPE_LO.mask(), TYPE_HI.mask(), PFSID_LO.mask(), MIP.mask(), SID.mask(),
                     PFSID_HI.mask(), kRsvd[0]}));
static_assert(tiles({S.mask(), ADDR.mask(), kRsvd[1]}));
}  // namespace dev_tlb_inv_dsc
namespace iec_inv_dsc {  // interrupt entry cache invalidate
constexpr Field G{0, 4, 4}, IM{0, 31, 27}, IIDX{0, 47, 32};
constexpr uint64_t kRsvd[2] = {0xffff'0000'07ff'f1e0, ~0ULL};
static_assert(tiles({TYPE_LO.mask(), TYPE_HI.mask(), G.mask(), IM.mask(), IIDX.mask(), kRsvd[0]}));
}  // namespace iec_inv_dsc
namespace inv_wait_dsc {  // invalidation wait
constexpr Field IF{0, 4, 4}, SW{0, 5, 5}, FN{0, 6, 6}, PD{0, 7, 7}, STDATA{0, 63, 32};
constexpr Field STADDR{1, 63, 2};
constexpr uint64_t kRsvd[2] = {0x0000'0000'ffff'f100, 0x3};
static_assert(tiles({TYPE_LO.mask(), TYPE_HI.mask(), IF.mask(), SW.mask(), FN.mask(), PD.mask(),
                     STDATA.mask(), kRsvd[0]}));
static_assert(tiles({STADDR.mask(), kRsvd[1]}));
}  // namespace inv_wait_dsc
namespace p_iotlb_inv_dsc {  // PASID-based IOTLB invalidate
constexpr Field G{0, 5, 4}, DID{0, 31, 16}, PASID{0, 51, 32};
constexpr Field AM{1, 5, 0}, IH{1, 6, 6}, ADDR{1, 63, 12};
constexpr uint64_t kRsvd[2] = {0xfff0'0000'0000'f1c0, 0xf80};
static_assert(tiles({TYPE_LO.mask(), TYPE_HI.mask(), G.mask(), DID.mask(), PASID.mask(),
                     kRsvd[0]}));
static_assert(tiles({AM.mask(), IH.mask(), ADDR.mask(), kRsvd[1]}));
}  // namespace p_iotlb_inv_dsc
namespace pc_inv_dsc {  // PASID-cache invalidate
constexpr Field G{0, 5, 4}, DID{0, 31, 16}, PASID{0, 51, 32};
constexpr uint64_t kRsvd[2] = {0xfff0'0000'0000'f1c0, ~0ULL};
static_assert(tiles({TYPE_LO.mask(), TYPE_HI.mask(), G.mask(), DID.mask(), PASID.mask(),
                     kRsvd[0]}));
}  // namespace pc_inv_dsc
namespace p_dev_tlb_inv_dsc {  // PASID-based device-TLB invalidate
constexpr Field MIP{0, 8, 4}, PFSID_LO{0, 15, 12}, SID{0, 31, 16}, PASID{0, 51, 32},
    PFSID_HI{0, 63, 52};
constexpr Field G{1, 0, 0}, S{1, 11, 11}, ADDR{1, 63, 12};
constexpr uint64_t kRsvd[2] = {0, 0x7fe};
static_assert(tiles({TYPE_LO.mask(), TYPE_HI.mask(), MIP.mask(), PFSID_LO.mask(), SID.mask(),
                     PASID.mask(), PFSID_HI.mask()}));
static_assert(tiles({G.mask(), S.mask(), ADDR.mask(), kRsvd[1]}));
}  // namespace p_dev_tlb_inv_dsc
namespace pgrp_resp_dsc {  // page group response
constexpr Field PP{0, 4, 4}, RC{0, 15, 12}, RID{0, 31, 16}, PASID{0, 51, 32};
constexpr Field PRGI{1, 11, 3};
// QW1 bit 2 was LPIG before revision 4.0; now reserved, and hardware ignores it. It is
// ignored here too so that responses from older drivers still complete.
constexpr uint64_t kIgnored1 = 1ULL << 2;
constexpr uint64_t kRsvd[2] = {0xfff0'0000'0000'01e0, 0xffff'ffff'ffff'f003};
static_assert(tiles({TYPE_LO.mask(), TYPE_HI.mask(), PP.mask(), RC.mask(), RID.mask(), PASID.mask(),
                     kRsvd[0]}));
static_assert(tiles({PRGI.mask(), kIgnored1, kRsvd[1]}));
}  // namespace pgrp_resp_dsc
namespace page_req_dsc {  // page request descriptor, written by hardware to the PRQ
constexpr Field TYPE{0, 7, 0}, PP{0, 8, 8}, RID{0, 31, 16}, PASID{0, 51, 32}, EXR{0, 52, 52},
    PMR{0, 53, 53};
constexpr Field RDR{1, 0, 0}, WRR{1, 1, 1}, LPIG{1, 2, 2}, PRGI{1, 11, 3}, ADDR{1, 63, 12};
constexpr uint64_t kType = 1;
constexpr uint64_t kRsvd[4] = {0xffc0'0000'0000'fe00, 0, ~0ULL, ~0ULL};
static_assert(tiles({TYPE.mask(), PP.mask(), RID.mask(), PASID.mask(), EXR.mask(), PMR.mask(),
                     kRsvd[0]}));
static_assert(tiles({RDR.mask(), WRR.mask(), LPIG.mask(), PRGI.mask(), ADDR.mask()}));
}  // namespace page_req_dsc

// ---- Decoded descriptors ----
enum class CcGranularity : uint8_t { Global = 1, Domain = 2, Device = 3 };  // 0 reserved
struct ContextCacheInv {
    CcGranularity g = CcGranularity::Global;
    uint16_t did = 0;
    uint16_t sid = 0;
    uint8_t fm = 0;  // function mask: ignore the low FM bits of the SID's function number
};

enum class IotlbGranularity : uint8_t { Global = 1, Domain = 2, Page = 3 };  // 0 reserved
struct IotlbInv {
    IotlbGranularity g = IotlbGranularity::Global;
    bool dr = false, dw = false;  // drain reads / writes
    uint16_t did = 0;
    Addr addr = 0;  // page-selective: 2^AM pages, ADDR aligned to them
    bool ih = false;
    uint8_t am = 0;
};

struct DeviceTlbInv {
    uint16_t sid = 0;
    uint16_t pfsid = 0;  // physical-function SID (SR-IOV), split over two fields
    uint8_t mip = 0;     // max invalidations pending
    Addr addr = 0;
    bool s = false;  // size: the range is encoded in the low set address bits (ATS)
};

struct IecInv {
    bool g = false;  // 0: global, 1: index-selective
    uint8_t im = 0;  // index mask: 2^IM entries
    uint16_t iidx = 0;
};

struct InvWait {
    bool iflag = false;  // IF: raise the invalidation completion event
    bool sw = false;     // status write of STDATA to STADDR
    bool fn = false;     // fence: later descriptors wait for this one
    bool pd = false;     // page-request drain
    uint32_t status_data = 0;
    Addr status_addr = 0;  // dword aligned
};

enum class PasidIotlbGranularity : uint8_t { NonGlobalPasid = 2, PasidPage = 3 };  // 0, 1 rsvd
struct PasidIotlbInv {
    PasidIotlbGranularity g = PasidIotlbGranularity::NonGlobalPasid;
    uint16_t did = 0;
    uint32_t pasid = 0;
    Addr addr = 0;
    bool ih = false;
    uint8_t am = 0;
};

enum class PasidCacheGranularity : uint8_t { Domain = 0, Pasid = 1, Global = 3 };  // 2 reserved
struct PasidCacheInv {
    PasidCacheGranularity g = PasidCacheGranularity::Global;
    uint16_t did = 0;
    uint32_t pasid = 0;
};

struct PasidDeviceTlbInv {
    uint16_t sid = 0;
    uint16_t pfsid = 0;
    uint8_t mip = 0;
    uint32_t pasid = 0;
    bool g = false;  // global: every PASID's global translations
    bool s = false;
    Addr addr = 0;
};

enum class PageResponseCode : uint8_t { Success = 0x0, InvalidRequest = 0x1, Failure = 0xF };
struct PageGroupResponse {
    bool pp = false;  // PASID present
    uint8_t rc = 0;   // response code (PageResponseCode)
    uint16_t rid = 0;
    uint32_t pasid = 0;
    uint16_t prgi = 0;  // page request group index
};

// What the hardware writes to the page request queue (32 bytes per entry).
struct PageRequest {
    bool pp = false;  // PASID present
    uint16_t rid = 0;
    uint32_t pasid = 0;
    bool exe = false;               // EXR: execute requested
    bool pmr = false;               // privileged mode requested
    bool rdr = false, wrr = false;  // read / write requested
    bool lpig = false;              // last page in group
    uint16_t prgi = 0;
    Addr addr = 0;  // page address
};

// Why a descriptor is not valid, as the queue would report it.
struct DescError {
    Iqei iqei = Iqei::ReservedField;
    uint8_t type = 0;        // the type read from the descriptor
    uint8_t qw = 0;          // quadword holding the offending bits
    uint64_t bits = 0;       // the offending bits as found
    const char* field = "";  // "Type", "Rsvd", or the field holding a reserved encoding
};
std::string to_string(const DescError& e);

using DecodedInvDesc =
    std::variant<DescError, ContextCacheInv, IotlbInv, DeviceTlbInv, IecInv, InvWait, PasidIotlbInv,
                 PasidCacheInv, PasidDeviceTlbInv, PageGroupResponse>;

// Decode a descriptor fetched from the queue. With 256-bit descriptors, QW2 and QW3 are reserved
// in every type this revision defines.
DecodedInvDesc decode(const uint64_t qw[4], bool dw256);
inline DecodedInvDesc decode(const InvDesc& d, bool dw256) {
    return decode(d.qw, dw256);
}

InvDesc encode(const ContextCacheInv& d);
InvDesc encode(const IotlbInv& d);
InvDesc encode(const DeviceTlbInv& d);
InvDesc encode(const IecInv& d);
InvDesc encode(const InvWait& d);
InvDesc encode(const PasidIotlbInv& d);
InvDesc encode(const PasidCacheInv& d);
InvDesc encode(const PasidDeviceTlbInv& d);
InvDesc encode(const PageGroupResponse& d);
// Encodes any decoded kind; a DescError yields an all-zero (type 0, invalid) descriptor.
InvDesc encode(const DecodedInvDesc& d);

std::array<uint64_t, 4> encode(const PageRequest& r);
std::variant<DescError, PageRequest> decode_page_request(const uint64_t qw[4]);

// ---- Named-parameter constructors for the driver model ----
InvDesc cc_global();
InvDesc cc_domain(uint16_t did);
InvDesc cc_device(uint16_t did, uint16_t sid, uint8_t fm = 0);
InvDesc iotlb_global(bool drain_reads = false, bool drain_writes = false);
InvDesc iotlb_domain(uint16_t did, bool drain_reads = false, bool drain_writes = false);
InvDesc iotlb_page(uint16_t did, Addr addr, uint8_t am, bool ih, bool drain_reads = false,
                   bool drain_writes = false);
InvDesc inv_wait(Addr status_addr, uint32_t status_data, bool interrupt = false, bool fence = false,
                 bool page_drain = false);
InvDesc piotlb_pasid(uint16_t did, uint32_t pasid);
InvDesc piotlb_page(uint16_t did, uint32_t pasid, Addr addr, uint8_t am, bool ih);
InvDesc pc_domain(uint16_t did);
InvDesc pc_pasid(uint16_t did, uint32_t pasid);
InvDesc pc_global();

// ---- Register-based invalidation (CCMD_REG, IOTLB_REG + IVA_REG) ----
// The request in the register, or nullopt for a reserved granularity (hardware answers with
// an actual granularity of 0).
std::optional<ContextCacheInv> decode_ccmd(uint64_t ccmd);
uint64_t encode_ccmd(const ContextCacheInv& d);  // with ICC set
std::optional<IotlbInv> decode_iotlb_reg(uint64_t iotlb, uint64_t iva);
struct IotlbRegs {
    uint64_t iva, iotlb;  // write IVA first; IOTLB (with IVT set) starts the invalidation
};
IotlbRegs encode_iotlb_reg(const IotlbInv& d);
namespace ccmd {
constexpr Field DID{0, 15, 0}, SID{0, 31, 16}, FM{0, 33, 32}, CAIG{0, 60, 59}, CIRG{0, 62, 61},
    ICC{0, 63, 63};
}
namespace iotlb_reg {
constexpr Field DID{0, 47, 32}, DW{0, 48, 48}, DR{0, 49, 49}, IAIG{0, 58, 57}, IIRG{0, 61, 60},
    IVT{0, 63, 63};
}
namespace iva_reg {
constexpr Field AM{0, 5, 0}, IH{0, 6, 6}, ADDR{0, 63, 12};
}

// ---- Arch-neutral scope ----
// The caches to invalidate; nullopt for descriptors that invalidate no translation cache
// (interrupt entry cache, page group response) and for errors. A wait maps to Kind::Wait.
std::optional<InvalidationScope> scope_of(const DecodedInvDesc& d);
InvalidationScope scope_of(const ContextCacheInv& d);
InvalidationScope scope_of(const IotlbInv& d);
InvalidationScope scope_of(const DeviceTlbInv& d);
InvalidationScope scope_of(const PasidIotlbInv& d);
InvalidationScope scope_of(const PasidCacheInv& d);
InvalidationScope scope_of(const PasidDeviceTlbInv& d);

// ATS size encoding (S = 1): the run of set bits from bit 12 up gives the size. Returns the
// order (2^order pages) and the base address.
struct AtsRange {
    Addr addr;
    uint8_t order;
};
AtsRange ats_range(Addr addr, bool s);
Addr ats_encode(Addr addr, uint8_t order);  // inverse: address field with S implied by order > 0

}  // namespace iommusim::vtd
