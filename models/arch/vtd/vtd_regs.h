// Intel VT-d remapping-hardware register interface (VT-d specification chapter 11), bit-exact:
// register offsets, CAP/ECAP decode and encode, command/status bits, queue registers and the
// 128-bit fault recording register. Plain values; the register file model owns the state.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>

#include "core/bits.h"
#include "core/types.h"

namespace iommusim::vtd {

// A field of a multi-quadword record, placed as the specification draws it.
struct Field {
    uint8_t qw, hi, lo;
    constexpr uint64_t mask() const { return bit_mask(hi, lo); }
    constexpr uint64_t get(const uint64_t* q) const { return bits(q[qw], hi, lo); }
    constexpr void put(uint64_t* q, uint64_t v) const { q[qw] = set_bits(q[qw], hi, lo, v); }
    constexpr bool fits(uint64_t v) const { return (v & ~(mask() >> lo)) == 0; }
};

// True if the masks are pairwise disjoint and together cover all 64 bits: a quadword's fields
// plus its reserved mask must tile it exactly, or a layout constant is wrong.
constexpr bool tiles(std::initializer_list<uint64_t> masks) {
    uint64_t seen = 0;
    for (uint64_t m : masks) {
        if (seen & m) return false;
        seen |= m;
    }
    return seen == ~0ULL;
}

// ---- Register offsets from the unit's register base (11.4) ----
namespace reg {
constexpr uint32_t VER = 0x000, CAP = 0x008, ECAP = 0x010, GCMD = 0x018, GSTS = 0x01c,
                   RTADDR = 0x020, CCMD = 0x028, FSTS = 0x034, FECTL = 0x038, FEDATA = 0x03c,
                   FEADDR = 0x040, FEUADDR = 0x044, AFLOG = 0x058, PMEN = 0x064, PLMBASE = 0x068,
                   PLMLIMIT = 0x06c, PHMBASE = 0x070, PHMLIMIT = 0x078, IQH = 0x080, IQT = 0x088,
                   IQA = 0x090, ICS = 0x09c, IECTL = 0x0a0, IEDATA = 0x0a4, IEADDR = 0x0a8,
                   IEUADDR = 0x0ac, IQERCD = 0x0b0, IRTA = 0x0b8, PQH = 0x0c0, PQT = 0x0c8,
                   PQA = 0x0d0, PRS = 0x0dc, PECTL = 0x0e0, PEDATA = 0x0e4, PEADDR = 0x0e8,
                   PEUADDR = 0x0ec, MTRRCAP = 0x100, MTRRDEF = 0x108, MTRR_FIX64K_00000 = 0x120,
                   MTRR_FIX16K_80000 = 0x128, MTRR_FIX16K_A0000 = 0x130, MTRR_FIX4K_C0000 = 0x138,
                   MTRR_FIX4K_C8000 = 0x140, MTRR_FIX4K_D0000 = 0x148, MTRR_FIX4K_D8000 = 0x150,
                   MTRR_FIX4K_E0000 = 0x158, MTRR_FIX4K_E8000 = 0x160, MTRR_FIX4K_F0000 = 0x168,
                   MTRR_FIX4K_F8000 = 0x170;
constexpr unsigned kMtrrVarCount = 10;
constexpr uint32_t mtrr_physbase(unsigned n) {
    return 0x180 + 16 * n;
}
constexpr uint32_t mtrr_physmask(unsigned n) {
    return 0x188 + 16 * n;
}
constexpr uint32_t kFrcdBytes = 16;  // one fault recording register
}  // namespace reg

// A fixed-offset register's name and access width, for MMIO decoding and logs.
struct RegInfo {
    uint32_t offset;
    uint8_t bytes;  // 4 or 8
    const char* name;
};
// The fixed-offset register at `offset` (exact start), or nullptr. IVA/IOTLB and FRCD sit at
// CAP/ECAP-given offsets and are found with the helpers of Cap and Ecap instead.
const RegInfo* find_reg(uint32_t offset);

// ---- VER_REG ----
constexpr unsigned ver_major(uint32_t v) {
    return unsigned(bits(v, 7, 4));
}
constexpr unsigned ver_minor(uint32_t v) {
    return unsigned(bits(v, 3, 0));
}
constexpr uint32_t make_ver(unsigned major, unsigned minor) {
    return uint32_t(((major & 0xf) << 4) | (minor & 0xf));
}

// ---- CAP_REG (11.4.2) ----
struct Cap {
    uint8_t nd = 0;        // 2:0   number of domains = 2^(4 + 2*ND)
    bool afl = false;      // 3     advanced fault logging
    bool rwbf = false;     // 4     required write-buffer flushing
    bool plmr = false;     // 5     protected low-memory region
    bool phmr = false;     // 6     protected high-memory region
    bool cm = false;       // 7     caching mode (not-present entries may be cached)
    uint8_t sagaw = 0;     // 12:8  supported adjusted guest address widths (bit n: AW n)
    uint8_t mgaw = 0;      // 21:16 maximum guest address width - 1
    bool zlr = false;      // 22    zero-length read
    uint16_t fro = 0;      // 33:24 fault-recording register offset / 16
    uint8_t sllps = 0;     // 37:34 second-level large pages: bit0 2M, bit1 1G, bit2 512G, bit3 1T
    bool psi = false;      // 39    page-selective invalidation
    uint8_t nfr = 0;       // 47:40 number of fault-recording registers - 1
    uint8_t mamv = 0;      // 53:48 maximum address mask value
    bool dwd = false;      // 54    write draining
    bool drd = false;      // 55    read draining
    bool fl1gp = false;    // 56    first-level 1-GByte pages
    bool pi = false;       // 59    posted interrupts
    bool fl5lp = false;    // 60    first-level 5-level paging
    bool ecmds = false;    // 61    enhanced command support
    bool esirtps = false;  // 62    enhanced set interrupt remap table pointer
    bool esrtps = false;   // 63    enhanced set root table pointer

    static Cap decode(uint64_t v);
    uint64_t encode() const;
    // Bits the specification defines; the rest are reserved and read as zero.
    static constexpr uint64_t kDefined =
        ~(bit_mask(15, 13) | bit_mask(23, 23) | bit_mask(38, 38) | bit_mask(58, 57));

    constexpr uint32_t num_domains() const { return 1u << (4 + 2 * nd); }
    constexpr unsigned mgaw_bits() const { return unsigned(mgaw) + 1; }
    constexpr bool supports_aw(unsigned aw) const { return aw < 5 && ((sagaw >> aw) & 1); }
    // Second-level leaf at `shift` (21, 30, 39, 48) supported; 12 always is.
    constexpr bool sl_page(unsigned shift) const {
        return shift == 12 || (shift >= 21 && shift <= 48 && (shift - 21) % 9 == 0 &&
                               ((sllps >> ((shift - 21) / 9)) & 1));
    }
    constexpr uint32_t frcd_offset(unsigned i) const { return 16u * fro + reg::kFrcdBytes * i; }
    constexpr unsigned num_fault_regs() const { return unsigned(nfr) + 1; }
};

// ---- ECAP_REG (11.4.3) ----
struct Ecap {
    bool c = false;       // 0     page-walk coherency
    bool qi = false;      // 1     queued invalidation
    bool dt = false;      // 2     device-TLB
    bool ir = false;      // 3     interrupt remapping
    bool eim = false;     // 4     extended interrupt mode (x2APIC)
    bool pt = false;      // 6     pass-through
    bool sc = false;      // 7     snoop control
    uint16_t iro = 0;     // 17:8  IOTLB register offset / 16
    uint8_t mhmv = 0;     // 23:20 maximum handle mask value
    bool mts = false;     // 25    memory type support
    bool nest = false;    // 26    nested translation
    bool prs = false;     // 29    page requests
    bool ers = false;     // 30    execute requests
    bool srs = false;     // 31    supervisor requests
    bool nwfs = false;    // 33    no write flag
    bool eafs = false;    // 34    extended accessed flag
    uint8_t pss = 0;      // 39:35 PASID size - 1 (bits)
    bool pasid = false;   // 40    PASID support
    bool dit = false;     // 41    device-TLB invalidation throttle
    bool pds = false;     // 42    page-request drain
    bool smts = false;    // 43    scalable-mode translation
    bool vcs = false;     // 44    virtual command
    bool slads = false;   // 45    second-level accessed/dirty
    bool slts = false;    // 46    second-level translation
    bool flts = false;    // 47    first-level translation
    bool smpwcs = false;  // 48    scalable-mode page-walk coherency
    bool rps = false;     // 49    RID_PASID
    bool pms = false;     // 51    performance monitoring
    bool adms = false;    // 52    abort DMA mode
    bool rprivs = false;  // 53    RID_PRIV

    static Ecap decode(uint64_t v);
    uint64_t encode() const;
    static constexpr uint64_t kDefined =
        ~(bit_mask(5, 5) | bit_mask(19, 18) | bit_mask(24, 24) | bit_mask(28, 27) |
          bit_mask(32, 32) | bit_mask(50, 50) | bit_mask(63, 54));

    constexpr uint32_t iva_offset() const { return 16u * iro; }
    constexpr uint32_t iotlb_offset() const { return 16u * iro + 8; }
    constexpr unsigned pasid_bits() const { return pasid ? unsigned(pss) + 1 : 0; }
};

// ---- GCMD_REG / GSTS_REG (11.4.4, 11.4.5): one-shot commands and their status bits ----
namespace gcmd {
constexpr uint32_t TE = 1u << 31, SRTP = 1u << 30, SFL = 1u << 29, EAFL = 1u << 28, WBF = 1u << 27,
                   QIE = 1u << 26, IRE = 1u << 25, SIRTP = 1u << 24, CFI = 1u << 23;
}
namespace gsts {
constexpr uint32_t TES = 1u << 31, RTPS = 1u << 30, FLS = 1u << 29, AFLS = 1u << 28,
                   WBFS = 1u << 27, QIES = 1u << 26, IRES = 1u << 25, IRTPS = 1u << 24,
                   CFIS = 1u << 23;
}

// ---- RTADDR_REG (11.4.6) ----
enum class Ttm : uint8_t { Legacy = 0, Scalable = 1, Reserved = 2, AbortDma = 3 };
struct Rtaddr {
    Addr rta = 0;           // 63:12 root table address
    Ttm ttm = Ttm::Legacy;  // 11:10 translation table mode
    static Rtaddr decode(uint64_t v) { return {v & bit_mask(63, 12), Ttm(bits(v, 11, 10))}; }
    uint64_t encode() const { return (rta & bit_mask(63, 12)) | (uint64_t(ttm) << 10); }
};

// ---- FSTS_REG (11.4.7.1) and the event control registers (FECTL, IECTL, PECTL) ----
namespace fsts {
constexpr uint32_t PFO = 1u << 0, PPF = 1u << 1, AFO = 1u << 2, APF = 1u << 3, IQE = 1u << 4,
                   ICE = 1u << 5, ITE = 1u << 6;
constexpr uint32_t kRw1c = PFO | AFO | APF | IQE | ICE | ITE;  // PPF follows the FRCD F bits
constexpr unsigned fri(uint32_t v) {
    return unsigned(bits(v, 15, 8));
}
constexpr uint32_t with_fri(uint32_t v, unsigned i) {
    return uint32_t(set_bits(v, 15, 8, i));
}
}  // namespace fsts
namespace ectl {  // FECTL, IECTL, PECTL share the layout
constexpr uint32_t IM = 1u << 31, IP = 1u << 30;
}
namespace ics {
constexpr uint32_t IWC = 1u << 0;
}
namespace prs {
constexpr uint32_t PPR = 1u << 0, PRO = 1u << 1;
}
namespace pmen {
constexpr uint32_t EPM = 1u << 31, PRS = 1u << 0;
}

// ---- Invalidation queue: IQA_REG, IQH_REG/IQT_REG (11.4.9) ----
struct Iqa {
    Addr iqa = 0;     // 63:12 queue base
    bool dw = false;  // 11    descriptor width: 256-bit
    uint8_t qs = 0;   // 2:0   queue size: 4 KiB << QS
    static Iqa decode(uint64_t v) {
        return {v & bit_mask(63, 12), bit(v, 11), uint8_t(bits(v, 2, 0))};
    }
    uint64_t encode() const { return (iqa & bit_mask(63, 12)) | (uint64_t(dw) << 11) | (qs & 7u); }
    constexpr uint64_t bytes() const { return uint64_t(4096) << qs; }
    constexpr unsigned desc_bytes() const { return dw ? 32 : 16; }
    constexpr uint32_t entries() const { return uint32_t(bytes() / desc_bytes()); }
};
// IQH/IQT hold a byte offset in bits 18:4; with 256-bit descriptors bit 4 must be clear.
constexpr uint64_t kIqOffsetMask = bit_mask(18, 4);
constexpr uint32_t iq_index(uint64_t reg, bool dw) {
    return uint32_t((reg & kIqOffsetMask) >> (dw ? 5 : 4));
}
constexpr uint64_t iq_reg(uint32_t index, bool dw) {
    return (uint64_t(index) << (dw ? 5 : 4)) & kIqOffsetMask;
}
constexpr bool iqt_misaligned(uint64_t reg, bool dw) {
    return dw && bit(reg, 4);
}

// IQERCD_REG.IQEI: why the queue stopped (reported with FSTS.IQE).
enum class Iqei : uint8_t {
    NotAvailable = 0,
    InvalidTail = 1,     // IQT beyond the queue size
    FetchError = 2,      // reading the descriptor failed
    InvalidType = 3,     // unknown or unsupported descriptor type
    ReservedField = 4,   // a reserved field (or reserved encoding) is non-zero
    InvalidWidth = 5,    // descriptor width not allowed in this translation mode
    TailMisaligned = 6,  // IQT bit 4 set with 256-bit descriptors
    InvalidTtm = 7,      // the translation table mode does not allow the descriptor
};
constexpr uint64_t make_iqercd(Iqei iqei, uint16_t itesid = 0, uint16_t icesid = 0) {
    return uint64_t(iqei) | (uint64_t(itesid) << 32) | (uint64_t(icesid) << 48);
}

// ---- Page request queue: PQA_REG, PQH_REG/PQT_REG (11.4.11) ----
struct Pqa {
    Addr pqa = 0;     // 63:12 queue base
    uint8_t pqs = 0;  // 2:0   queue size: 4 KiB << PQS, 32-byte entries
    static Pqa decode(uint64_t v) { return {v & bit_mask(63, 12), uint8_t(bits(v, 2, 0))}; }
    uint64_t encode() const { return (pqa & bit_mask(63, 12)) | (pqs & 7u); }
    constexpr uint32_t entries() const { return uint32_t((uint64_t(4096) << pqs) / 32); }
};
constexpr uint64_t kPqOffsetMask = bit_mask(18, 5);
constexpr uint32_t pq_index(uint64_t reg) {
    return uint32_t((reg & kPqOffsetMask) >> 5);
}
constexpr uint64_t pq_reg(uint32_t index) {
    return (uint64_t(index) << 5) & kPqOffsetMask;
}

// ---- IRTA_REG (11.4.8.1) ----
struct Irta {
    Addr irta = 0;      // 63:12 table base
    bool eime = false;  // 11    x2APIC mode
    uint8_t s = 0;      // 3:0   table holds 2^(S+1) entries
    static Irta decode(uint64_t v) {
        return {v & bit_mask(63, 12), bit(v, 11), uint8_t(bits(v, 3, 0))};
    }
    uint64_t encode() const {
        return (irta & bit_mask(63, 12)) | (uint64_t(eime) << 11) | (s & 0xfu);
    }
    constexpr uint32_t entries() const { return 2u << s; }
};

// ---- Fault recording register FRCD_REG (11.4.7.4), 128 bits at CAP.FRO ----
// Request type from T2 (bit 92) and T1 (bit 126).
enum class FaultReqType : uint8_t {
    Write = 0,               // T2=0 T1=0
    Read = 1,                // T2=0 T1=1
    TranslationRequest = 2,  // T2=1 T1=0: ATS translation request (page request)
    AtomicOp = 3,            // T2=1 T1=1
};
// AT field of the faulted request (PCIe address type).
enum class AddrType : uint8_t {
    Untranslated = 0,
    TranslationRequest = 1,
    Translated = 2,
    Reserved = 3
};

struct FaultRecord {
    Addr fi = 0;       // 63:12    fault info: page address of the faulted request
    uint16_t sid = 0;  // 79:64    source identifier (RID)
    FaultReqType type = FaultReqType::Write;  // T2 (92), T1 (126)
    bool priv = false;                        // 93       privilege-mode requested
    bool exe = false;                         // 94       execute requested
    bool pp = false;                          // 95       PASID present
    uint8_t fr = 0;                           // 103:96   fault reason
    uint32_t pv = 0;                          // 123:104  PASID value
    AddrType at = AddrType::Untranslated;     // 125:124
    bool f = false;                           // 127      fault (valid); write 1 to clear

    static FaultRecord decode(uint64_t lo, uint64_t hi);
    std::array<uint64_t, 2> encode() const;
    static constexpr uint64_t kReservedLo = bit_mask(11, 0), kReservedHi = bit_mask(27, 16);
};
namespace frcd {  // positions within the 128-bit record, for direct register access
constexpr Field FI{0, 63, 12}, SID{1, 15, 0}, T2{1, 28, 28}, PRIV{1, 29, 29}, EXE{1, 30, 30},
    PP{1, 31, 31}, FR{1, 39, 32}, PV{1, 59, 40}, AT{1, 61, 60}, T1{1, 62, 62}, F{1, 63, 63};
static_assert(tiles({FI.mask(), FaultRecord::kReservedLo}));
static_assert(tiles({SID.mask(), FaultRecord::kReservedHi, T2.mask(), PRIV.mask(), EXE.mask(),
                     PP.mask(), FR.mask(), PV.mask(), AT.mask(), T1.mask(), F.mask()}));
}  // namespace frcd

}  // namespace iommusim::vtd
