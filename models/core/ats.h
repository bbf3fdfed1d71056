// Address Translation Services and Page Request Interface (PCIe Base Specification, chapter
// 10), architecture-neutral: what a translation completion says, the S-bit encoding of a
// range's size, page request and PRG response messages, ATC invalidation requests, and the
// two interfaces by which an IOMMU unit and an ATS/PRI-capable function reach each other.
//
//   device side (devices/ats_agent.h) implements ats::Function;
//   IOMMU side (iommu/iommu_unit.h) implements ats::Host;
//   the platform connects them with an ats::Path (its message costs on the fabric).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>

#include "time.h"
#include "types.h"

namespace iommusim::ats {

// ---- S-bit range encoding (10.2.3.2, also 10.3.1 for invalidation requests) ----
// An address field [63:12] with S: S = 0 names 4 KiB; S = 1 names 2^(k+1) bytes, where bit k
// is the lowest clear bit at or above bit 12 (bits 12..k-1 are ones, the rest the range's
// base). So 8 KiB = S and bit 12 clear; 2 MiB = S, bits 12..19 set and bit 20 clear.
constexpr unsigned kPageShift = 12;
constexpr uint64_t kSBit = uint64_t(1) << 11;
constexpr uint64_t kAddrMask = ~uint64_t(0xFFF);

// The field (bits 63:11) for the naturally aligned 2^shift-byte range holding `addr`;
// shift in 12..63.
constexpr uint64_t encode_range(Addr addr, unsigned shift) {
    const Addr base = addr & ~((Addr(1) << shift) - 1) & kAddrMask;
    if (shift <= kPageShift) return base;
    // Ones in bits 12..shift-2, bit shift-1 clear.
    const uint64_t ones = ((uint64_t(1) << (shift - 1)) - 1) & kAddrMask;
    return base | ones | kSBit;
}
struct Range {
    Addr base = 0;
    uint8_t shift = kPageShift;  // 2^shift bytes
    constexpr bool operator==(const Range& o) const { return base == o.base && shift == o.shift; }
};
// nullopt when S is set and bits 12..63 are all ones (no clear bit: no size this field names).
constexpr std::optional<Range> decode_range(uint64_t field) {
    if (!(field & kSBit)) return Range{field & kAddrMask, uint8_t(kPageShift)};
    const uint64_t above = ~field >> kPageShift;  // ones where the field has zeros
    if (above == 0) return std::nullopt;
    unsigned k = kPageShift;
    while (!((above >> (k - kPageShift)) & 1)) ++k;
    const unsigned shift = k + 1;
    const Addr mask = shift >= 64 ? ~Addr(0) : (Addr(1) << shift) - 1;
    return Range{field & ~mask, uint8_t(shift)};
}
static_assert(encode_range(0x1000, 12) == 0x1000);
static_assert(encode_range(0x2000, 13) == (0x2000 | kSBit));
static_assert(encode_range(0x200000, 21) == (0x200000 | 0xFF000 | kSBit));
static_assert(decode_range(0x200000 | 0xFF000 | kSBit)->shift == 21);
static_assert(decode_range(0x200000 | 0xFF000 | kSBit)->base == 0x200000);
static_assert(!decode_range(~uint64_t(0)).has_value());

// ---- Translation Completion (10.2.3): one data entry ----
// Bit positions of a Translation Completion Data Entry's low doubleword (PCIe Base 4.0 and later,
// "Translation Completion Data Entry": R 0, W 1, U 2, Exe 3, Priv 4, Global 5, ATS Memory
// Attributes 8:6 (not modelled), N 10, S 11).
enum : unsigned { kBitR = 0, kBitW = 1, kBitU = 2, kBitExe = 3, kBitPriv = 4, kBitGlobal = 5 };
constexpr unsigned kBitN = 10;

struct Completion {
    // False: the request completed with UR/CA (no data entry): the function must not use ATS
    // for it. True with neither R nor W: the page is not accessible (PRI may make it so).
    bool ok = true;
    Range range;  // translated address of the range's base, and the range's size
    bool r = false, w = false;
    bool exe = false, priv = false;
    bool u = false;  // untranslated only: use AT = untranslated for this range
    bool n = false;  // non-snooped
    bool global = false;

    bool permits(Access a, bool exec = false) const {
        if (u) return false;
        const bool rd = a != Access::Write, wr = a != Access::Read;
        return (!rd || r) && (!wr || w) && (!exec || exe);
    }
    uint64_t encode() const {
        return encode_range(range.base, range.shift) | uint64_t(r) << kBitR | uint64_t(w) << kBitW |
               uint64_t(u) << kBitU | uint64_t(exe) << kBitExe | uint64_t(priv) << kBitPriv |
               uint64_t(global) << kBitGlobal | uint64_t(n) << kBitN;
    }
    // nullopt when the range field names no size.
    static std::optional<Completion> decode(uint64_t e) {
        const std::optional<Range> rg = decode_range(e & (kAddrMask | kSBit));
        if (!rg) return std::nullopt;
        Completion c;
        c.range = *rg;
        c.r = (e >> kBitR) & 1, c.w = (e >> kBitW) & 1, c.u = (e >> kBitU) & 1;
        c.exe = (e >> kBitExe) & 1, c.priv = (e >> kBitPriv) & 1;
        c.global = (e >> kBitGlobal) & 1, c.n = (e >> kBitN) & 1;
        return c;
    }
};

// ---- Page Request Interface (10.4) ----
struct PageRequest {
    Requester req;      // RID; PASID (TLP prefix) and privilege when req.has_pasid()
    Addr addr = 0;      // page address (bits 63:12)
    uint16_t prgi = 0;  // page request group index (9 bits)
    bool last = false;  // last request of its group
    bool read = false, write = false, exec = false;
};
constexpr uint16_t kPrgiMask = 0x1FF;

enum class ResponseCode : uint8_t { Success = 0x0, InvalidRequest = 0x1, ResponseFailure = 0xF };
const char* to_string(ResponseCode c);
struct PrgResponse {
    Requester req;  // destination RID; PASID when the request carried one
    uint16_t prgi = 0;
    ResponseCode code = ResponseCode::Success;
};

// ---- ATC invalidation (10.3) ----
struct Invalidation {
    Requester req;        // destination RID; PASID present: only that PASID's entries
    bool global = false;  // with a PASID: every PASID's Global entries as well
    bool all = false;     // the whole address space (InvalidationScope::kWholeSpace)
    Range range;          // untranslated range otherwise
    uint8_t itag = 0;     // 5-bit invalidate tag, returned in the completion
};

// The IOMMU side as a function reaches it (upstream messages).
class Host {
public:
    virtual ~Host() = default;
    // A Page Request message that left the function at `sent`.
    virtual void page_request(const PageRequest& pr, Tick sent) = 0;
};

// One ATS/PRI-capable function as the IOMMU reaches it (downstream messages).
class Function {
public:
    virtual ~Function() = default;
    virtual Requester requester() const = 0;
    // An Invalidation Request reaching the function at `at`: the entries go at once; returns
    // when the function sends its Invalidation Completion (after the in-flight requests that
    // used them), or kNever when it does not answer.
    virtual Tick invalidate(const Invalidation& inv, Tick at) = 0;
    // A PRG Response reaching the function at `at`.
    virtual void page_response(const PrgResponse& r, Tick at) = 0;
    // The IOMMU unit this function talks to (the platform calls it once).
    virtual void connect(Host& host) = 0;
};

// Message costs between a unit and one function, given by the platform from its fabric: each
// returns when a message of `payload` bytes ready at `at` reaches the other end.
struct Path {
    std::function<Tick(Tick at, unsigned payload)> down;  // unit -> function
    std::function<Tick(Tick at, unsigned payload)> up;    // function -> unit
};
// Payload bytes of the messages (Invalidation Request: MsgD with 8 bytes; the rest: Msg).
constexpr unsigned kInvalidationRequestBytes = 8;

}  // namespace iommusim::ats
