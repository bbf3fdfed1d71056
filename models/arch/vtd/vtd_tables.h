// Intel VT-d in-memory translation structures (VT-d specification chapter 9), bit-exact:
// legacy and scalable-mode root/context entries, PASID directory and table entries, and
// the fields of first- and second-level paging entries. Little-endian quadwords.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/bits.h"
#include "core/types.h"

namespace iommusim::vtd {

// Address-width encodings (context AW, PASID-entry AW, CAP.SAGAW bit numbers).
constexpr unsigned kAw39 = 1, kAw48 = 2, kAw57 = 3;
constexpr unsigned aw_levels(unsigned aw) {
    return aw + 2;
}  // 1 -> 3-level
constexpr unsigned aw_bits(unsigned aw) {
    return 30 + 9 * aw;
}  // 1 -> 39 bits
constexpr unsigned levels_to_aw(unsigned levels) {
    return levels - 2;
}

// Mask of the address bits at or above `haw` up to 51: reserved in every table pointer.
constexpr uint64_t above_haw(unsigned haw) {
    return haw >= 52 ? 0 : bit_mask(51, haw);
}

// ---- Legacy mode (RTADDR.TTM = 00) ----

// Root entry (9.1): P, context-table pointer; the upper quadword is reserved.
struct RootEntry {
    uint64_t lo = 0, hi = 0;
    bool p() const { return bit(lo, 0); }
    Addr ctp() const { return lo & bit_mask(63, 12); }
    uint64_t reserved(unsigned haw) const { return (lo & (bit_mask(11, 1) | above_haw(haw))) | hi; }
};
static_assert(sizeof(RootEntry) == 16 && offsetof(RootEntry, hi) == 8);

// Context entry (9.3): P, FPD, TT, SLPTPTR | AW, DID.
enum class TranslationType : uint8_t {
    Untranslated = 0,
    DeviceTlb = 1,
    PassThrough = 2,
    Reserved = 3
};
struct ContextEntry {
    uint64_t lo = 0, hi = 0;
    bool p() const { return bit(lo, 0); }
    bool fpd() const { return bit(lo, 1); }
    TranslationType tt() const { return TranslationType(bits(lo, 3, 2)); }
    Addr slptptr() const { return lo & bit_mask(63, 12); }
    unsigned aw() const { return unsigned(bits(hi, 2, 0)); }
    uint16_t did() const { return uint16_t(bits(hi, 23, 8)); }
    uint64_t reserved(unsigned haw) const {
        return (lo & (bit_mask(11, 4) | above_haw(haw))) | (hi & (bit_mask(63, 24) | (1ULL << 7)));
    }
};
static_assert(sizeof(ContextEntry) == 16);

// ---- Scalable mode (RTADDR.TTM = 01) ----

// Scalable-mode root entry (9.2): lower half for devfn 0-127, upper for 128-255.
struct ScalableRootEntry {
    uint64_t lo = 0, hi = 0;
    bool lp() const { return bit(lo, 0); }
    Addr lctp() const { return lo & bit_mask(63, 12); }
    bool up() const { return bit(hi, 0); }
    Addr uctp() const { return hi & bit_mask(63, 12); }
    uint64_t reserved(unsigned haw) const {
        uint64_t m = bit_mask(11, 1) | above_haw(haw);
        return (lo & m) | (hi & m);
    }
};
static_assert(sizeof(ScalableRootEntry) == 16);

// Scalable-mode context entry (9.4), 256 bits.
struct ScalableContextEntry {
    uint64_t qw[4] = {};
    bool p() const { return bit(qw[0], 0); }
    bool fpd() const { return bit(qw[0], 1); }
    bool dte() const { return bit(qw[0], 2); }
    bool paside() const { return bit(qw[0], 3); }
    bool pre() const { return bit(qw[0], 4); }
    unsigned pdts() const { return unsigned(bits(qw[0], 11, 9)); }  // 2^(PDTS+7) dir entries
    Addr pasiddirptr() const { return qw[0] & bit_mask(63, 12); }
    uint32_t rid_pasid() const { return uint32_t(bits(qw[1], 19, 0)); }
    bool rid_priv() const { return bit(qw[1], 20); }
    uint64_t reserved(unsigned haw) const {
        return (qw[0] & (bit_mask(8, 5) | above_haw(haw))) | (qw[1] & bit_mask(63, 21)) | qw[2] |
               qw[3];
    }
    uint64_t pasid_dir_entries() const { return 1ULL << (pdts() + 7); }
};
static_assert(sizeof(ScalableContextEntry) == 32);

// PASID directory entry (9.5): indexed by PASID[19:6].
struct PasidDirEntry {
    uint64_t v = 0;
    bool p() const { return bit(v, 0); }
    bool fpd() const { return bit(v, 1); }
    Addr smptblptr() const { return v & bit_mask(63, 12); }
    uint64_t reserved(unsigned haw) const { return v & (bit_mask(11, 2) | above_haw(haw)); }
};
static_assert(sizeof(PasidDirEntry) == 8);

// PASID-granular translation type (PASID entry PGTT).
enum class Pgtt : uint8_t { FirstLevel = 1, SecondLevel = 2, Nested = 3, PassThrough = 4 };

// Scalable-mode PASID table entry (9.6), 512 bits, indexed by PASID[5:0].
struct PasidEntry {
    uint64_t qw[8] = {};
    bool p() const { return bit(qw[0], 0); }
    bool fpd() const { return bit(qw[0], 1); }
    unsigned aw() const { return unsigned(bits(qw[0], 4, 2)); }
    bool slee() const { return bit(qw[0], 5); }
    unsigned pgtt() const { return unsigned(bits(qw[0], 8, 6)); }
    bool slade() const { return bit(qw[0], 9); }
    Addr slptptr() const { return qw[0] & bit_mask(63, 12); }
    uint16_t did() const { return uint16_t(bits(qw[1], 15, 0)); }
    bool pwsnp() const { return bit(qw[1], 23); }
    bool pgsnp() const { return bit(qw[1], 24); }
    bool sre() const { return bit(qw[2], 0); }
    unsigned flpm() const { return unsigned(bits(qw[2], 3, 2)); }  // 0: 4-level, 1: 5-level
    bool wpe() const { return bit(qw[2], 4); }
    bool eafe() const { return bit(qw[2], 7); }
    Addr flptr() const { return qw[2] & bit_mask(63, 12); }
    uint64_t reserved(unsigned haw) const {
        return (qw[0] & (bit_mask(11, 10) | above_haw(haw))) | (qw[1] & bit_mask(22, 16)) |
               (qw[2] & (bit_mask(11, 8) | above_haw(haw))) | qw[3];
    }
};
static_assert(sizeof(PasidEntry) == 64);

// ---- Paging entries (9.7 first-level, 9.8 second-level): field positions ----
namespace sl {
constexpr unsigned R = 0, W = 1, X = 2, EMT_LO = 3, EMT_HI = 5, IPAT = 6, PS = 7, A = 8, D = 9,
                   SNP = 11, TM = 62;
}
namespace fl {
constexpr unsigned P = 0, RW = 1, US = 2, PWT = 3, PCD = 4, A = 5, D = 6, PS = 7, G = 8, XD = 63;
}

}  // namespace iommusim::vtd
