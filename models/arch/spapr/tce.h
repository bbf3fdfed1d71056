// POWER TCE (Translation Control Entry) DMA translation: the TCE format shared by PAPR
// (sPAPR guests, H_PUT_TCE) and PowerNV IODA2/IODA3 PHBs, the IODA TVE (TVT entry) encoding,
// the per-PE DMA window configuration held in PHB registers, and the fault codes the model
// reports. Bit numbers here are LSB-0; PAPR and IODA documents number MSB-0.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "core/bits.h"
#include "core/types.h"

namespace iommusim::spapr {

// ---- TCE entry (asm/tce.h; PAPR: RPN in bits 0-51, PCI write bit 62, PCI read bit 63) ----

constexpr unsigned kTceEntrySize = 8;       // TCE_ENTRY_SIZE
constexpr uint64_t kTcePciRead = 1u << 0;   // TCE_PCI_READ: device may read memory
constexpr uint64_t kTcePciWrite = 1u << 1;  // TCE_PCI_WRITE: device may write memory
constexpr uint64_t kTcePerm = kTcePciRead | kTcePciWrite;
// Indirect TCEs and the TVE table address hold 4 KiB-aligned addresses.
constexpr unsigned kTceTableAlignShift = 12;
constexpr uint64_t kTceIndirectAddrMask = bit_mask(63, kTceTableAlignShift);

constexpr uint64_t tce_make(Addr pa, Perm perm) {
    return (pa & ~kTcePerm) | ((perm & kPermR) ? kTcePciRead : 0) |
           ((perm & kPermW) ? kTcePciWrite : 0);
}
// PowerNV marks indirect (non-leaf) TCEs valid by setting both permission bits.
constexpr uint64_t tce_make_indirect(Addr next_table) {
    return (next_table & kTceIndirectAddrMask) | kTcePciRead | kTcePciWrite;
}
constexpr bool tce_valid(uint64_t tce) {
    return (tce & kTcePerm) != 0;
}
constexpr Perm tce_perm(uint64_t tce) {
    return Perm(((tce & kTcePciRead) ? kPermR : 0) | ((tce & kTcePciWrite) ? kPermW : 0));
}
// The real address of a leaf TCE: the PHB ignores the bits below the IO page size.
constexpr Addr tce_rpn_addr(uint64_t tce, unsigned page_shift) {
    return tce & bit_mask(63, page_shift);
}
constexpr Addr tce_indirect_addr(uint64_t tce) {
    return tce & kTceIndirectAddrMask;
}
// Bits between the permission bits and the address: the PHB ignores them; KVM's H_PUT_TCE
// refuses them (iommu_tce_check_gpa: the address must be IO-page aligned).
constexpr uint64_t tce_low_reserved(uint64_t tce, unsigned addr_shift) {
    return tce & bit_mask(addr_shift - 1, 2);
}

static_assert(tce_make(0x12345000, kPermRW) == 0x12345003);
static_assert(tce_make(0x12345000, kPermR) == 0x12345001);
static_assert(tce_make(0x12345000, kPermW) == 0x12345002);
static_assert(tce_perm(0x2) == kPermW && !tce_valid(0x12345000));
static_assert(tce_rpn_addr(0x1234'5678'9abc'd003, 16) == 0x1234'5678'9abc'0000);
static_assert(tce_make_indirect(0x4000'0000) == 0x4000'0003);

// ---- Memory image: TCE tables are big-endian (PHBs and Linux use be64 TCEs) ----

constexpr uint64_t byte_swap64(uint64_t v) {
    uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r = (r << 8) | ((v >> (8 * i)) & 0xff);
    return r;
}
// The value SparseMemory::write64 (little-endian) must store for memory to hold `tce` as
// the hardware sees it, and back. TcePteFormat entries are such memory words.
constexpr uint64_t tce_to_mem(uint64_t tce) {
    return byte_swap64(tce);
}
constexpr uint64_t tce_from_mem(uint64_t word) {
    return byte_swap64(word);
}
inline uint64_t load_be64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
    return v;
}
static_assert(byte_swap64(0x0102030405060708ULL) == 0x0807060504030201ULL);

// ---- IO page sizes: a mask with bit n set when 2^n-byte pages are supported ----

constexpr uint64_t page_bit(unsigned shift) {
    return uint64_t(1) << shift;
}
// PHB3 (IODA2) TVE IO_PSIZE values 1, 5, 13, 17: 4K, 64K, 16M, 256M.
constexpr uint64_t kIoda2PageSizes = page_bit(12) | page_bit(16) | page_bit(24) | page_bit(28);
// PHB4 (IODA3) adds 2M and 1G and drops 16M and 256M.
constexpr uint64_t kIoda3PageSizes = page_bit(12) | page_bit(16) | page_bit(21) | page_bit(30);

// PAPR DDW page-size flags returned by ibm,query-pe-dma-window (DDW_PGSIZE_*).
enum DdwPageSize : uint32_t {
    kDdwPgsize4K = 0x01,
    kDdwPgsize64K = 0x02,
    kDdwPgsize16M = 0x04,
    kDdwPgsize32M = 0x08,
    kDdwPgsize64M = 0x10,
    kDdwPgsize128M = 0x20,
    kDdwPgsize256M = 0x40,
    kDdwPgsize16G = 0x80,
};
// The DDW flags for the sizes in `page_sizes` that PAPR can express (2M and 1G cannot).
uint32_t ddw_page_size_mask(uint64_t page_sizes);

// ---- Windows ----

constexpr unsigned kMaxLevels = 5;                  // POWERNV_IOMMU_MAX_LEVELS; TVE NUM_LEVELS 0..4
constexpr unsigned kMinLevelBits = 9;               // TTS = 1: a 4 KiB table of 512 TCEs
constexpr unsigned kMaxLevelBits = 39;              // TTS = 31: 2^42 bytes
constexpr Addr kDefaultWindowSize = Addr(1) << 30;  // QEMU sPAPR dma_win_size: 0..1 GiB
constexpr Addr kDdwBusOffset = Addr(1) << 59;       // TVE #1 is selected by PCI address bit 59
constexpr unsigned kWindowsPerPe = 2;               // the "two windows per PE" TVT mode

// One DMA window: a range of bus addresses translated by a TCE table, or mapped directly
// onto memory (bypass). This is PHB register state (a TVE), not a structure in memory.
struct TceWindow {
    enum class Mode : uint8_t { Disabled, Translate, Bypass };

    Mode mode = Mode::Disabled;
    Addr bus_offset = 0;  // first bus (DMA) address of the window
    Addr size = 0;        // bytes; the last address is bus_offset + size - 1
    // Translate: TTA (top table address), levels, IO page size and table size per level.
    Addr table = 0;
    uint8_t levels = 1;
    uint8_t page_shift = 12;
    uint8_t level_bits = kMinLevelBits;  // index bits of each table below the top (TTS + 8)
    uint8_t top_bits = kMinLevelBits;    // index bits of the top table (<= level_bits)
    // Bypass: output = bus address - bus_offset + phys_base.
    Addr phys_base = 0;
    // PAPR Logical I/O Bus Number naming the table; 0 on PowerNV (no LIOBN there).
    uint32_t liobn = 0;

    constexpr bool enabled() const { return mode != Mode::Disabled && size != 0; }
    constexpr Addr last() const { return bus_offset + (size - 1); }
    constexpr bool contains(Addr a) const {
        return enabled() && a >= bus_offset && a - bus_offset < size;
    }
    constexpr unsigned index_bits(unsigned level) const {
        return level == levels ? top_bits : level_bits;
    }
    // Input bit where `level`'s index starts (level 1 indexes above the IO page offset).
    constexpr unsigned level_shift(unsigned level) const {
        return page_shift + level_bits * (level - 1);
    }
    // Address bits the table can translate: a window may not be larger than 2^reach_bits.
    constexpr unsigned reach_bits() const { return level_shift(levels) + top_bits; }
    constexpr Addr table_bytes(unsigned level) const {
        return Addr(kTceEntrySize) << index_bits(level);
    }

    // A translated window; level_bits 0 splits the index bits evenly like Linux does.
    static TceWindow translated(Addr bus_offset, Addr size, Addr table, unsigned page_shift,
                                unsigned levels = 1, unsigned level_bits = 0);
    static TceWindow bypass(Addr bus_offset, Addr size, Addr phys_base = 0);
};

// Index bits per level that Linux's pnv_pci_ioda2_table_alloc_pages picks: the window's
// TCE index split evenly across levels (rounded up), each table at least 2^min_table_shift
// bytes (the kernel page size).
unsigned linux_level_bits(Addr window_size, unsigned page_shift, unsigned levels,
                          unsigned min_table_shift = 12);

// ---- IODA2/IODA3 TVT entry (PPC_BITMASK(0,47) TABLE_ADDR, (48,50) NUM_LEVELS,
// (51,55) TCE_TABLE_SIZE, (59,63) IO_PSIZE) for translated windows ----

namespace tve {
constexpr unsigned kTableAddrHi = 63, kTableAddrLo = 16;  // TTA >> 12
constexpr unsigned kNumLevelsHi = 15, kNumLevelsLo = 13;  // levels - 1
constexpr unsigned kTableSizeHi = 12, kTableSizeLo = 8;   // log2(table bytes) - 11; 0 = invalid
constexpr unsigned kIoPsizeHi = 4, kIoPsizeLo = 0;        // page shift - 11; 0 = no translation
}  // namespace tve

// The TVE for a translated window with equal-size tables; 0 (an invalid TVE) when the
// window cannot be expressed as one.
uint64_t tve_encode(const TceWindow& w);
// The translated window a TVE describes, covering its whole reach (at most 2^59 bytes);
// Disabled when TCE_TABLE_SIZE or IO_PSIZE is 0.
TceWindow tve_decode(uint64_t tve, Addr bus_offset);

// ---- The PHB ----

// What the PHB implementation supports.
struct PhbCaps {
    unsigned num_pes = 256;        // PHB3: 256 PEs; PHB4: 512 (256 in small-PHB mode)
    unsigned real_addr_bits = 52;  // TCE and table addresses at or above 2^bits are errors
    uint64_t page_sizes = kIoda2PageSizes | kIoda3PageSizes;
    // Treat TCE bits between bit 2 and the IO page size (12 for indirect TCEs) as reserved,
    // as KVM's H_PUT_TCE does, instead of ignoring them as the PHB does.
    bool strict_reserved = false;
};

// Why `w` is not a usable window on a PHB with `caps`; nullptr when it is (the checks
// OPAL's map-PE-DMA-window calls make before writing a TVE).
const char* check_window(const PhbCaps& caps, const TceWindow& w);

// The PHB's DMA configuration: the RID Translation Table (RID -> PE#) and two windows
// (TVEs) per PE. Windows are stored as given, as TVE registers are; the walker reports an
// invalid one when a DMA uses it.
class PhbConfig {
public:
    static constexpr uint16_t kNoPe = 0xFFFF;

    explicit PhbConfig(const PhbCaps& caps = PhbCaps{});

    const PhbCaps& caps() const { return caps_; }
    void set_pe(uint16_t rid, uint16_t pe) { rtt_[rid] = pe; }
    void clear_pe(uint16_t rid) { rtt_[rid] = kNoPe; }
    uint16_t pe(uint16_t rid) const { return rtt_[rid]; }

    // Out-of-range PE or window numbers are ignored (set) or read as Disabled (window).
    void set_window(unsigned pe, unsigned num, const TceWindow& w);
    void disable_window(unsigned pe, unsigned num) { set_window(pe, num, TceWindow{}); }
    const TceWindow& window(unsigned pe, unsigned num) const;

private:
    PhbCaps caps_;
    std::vector<uint16_t> rtt_;  // 64 Ki entries
    std::vector<std::array<TceWindow, kWindowsPerPe>> tvt_;
};

// ---- Faults ----

// What the PHB detects on a DMA. On real hardware every one of these is an EEH event that
// freezes the PE (DMA dropped, MMIO loads return all-ones until the OS recovers it); the
// model reports the request as a fault with one of these codes and freezes nothing.
enum TceFault : uint16_t {
    kTceFaultNone = 0,
    kTceNoPe = 1,               // RTT maps the RID to no PE (or to a PE# the PHB lacks)
    kTcePasidUnsupported = 2,   // the request carries a PASID prefix; the PHB has no PASID
    kTceOutsideWindow = 3,      // the DMA address is in no enabled window of the PE
    kTceInvalidTve = 4,         // the window's TVE is unusable (levels, page/table size...)
    kTceTableAccess = 5,        // fetching a TCE failed
    kTceInvalidIndirect = 6,    // an indirect TCE has neither R nor W set
    kTceNotValid = 7,           // the leaf TCE has neither R nor W set
    kTceWriteNotPermitted = 8,  // DMA write, TCE_PCI_WRITE clear
    kTceReadNotPermitted = 9,   // DMA read, TCE_PCI_READ clear
    kTceReservedBits = 10,      // address beyond the real address size, or reserved bits set
};
const char* tce_fault_text(uint16_t reason);  // "Unknown" for codes not listed

}  // namespace iommusim::spapr
