// Arch-neutral vocabulary: who asks (Requester), for what (Access), with which rights (Perm).
#pragma once
#include <cstdint>
#include <string>

namespace iommusim {

using Addr = uint64_t;

// Widest physical address any modelled architecture uses (VT-d HAW, x86 MAXPHYADDR).
constexpr unsigned kPhysAddrBits = 52;
constexpr unsigned kPageShift4K = 12;

enum class Access : uint8_t { Read, Write, ReadWrite /* atomic: needs both */ };

// Permission bits as a small mask; a translation carries the intersection of all levels.
using Perm = uint8_t;
constexpr Perm kPermNone = 0, kPermR = 1, kPermW = 2, kPermX = 4, kPermRW = 3;

constexpr Perm perm_needed(Access a, bool exec) {
    Perm p = a == Access::Read ? kPermR : a == Access::Write ? kPermW : kPermRW;
    return exec ? Perm(p | kPermX) : p;
}
constexpr bool permits(Perm have, Perm need) {
    return (have & need) == need;
}

// A PCIe requester: the RID (bus/device/function) and the PASID TLP prefix fields.
struct Requester {
    static constexpr uint32_t kNoPasid = 0xFFFFFFFFu;
    static constexpr uint32_t kPasidMax = (1u << 20) - 1;

    uint16_t rid = 0;
    uint32_t pasid = kNoPasid;  // 20-bit PASID, or kNoPasid when the request carries none
    bool priv = false;          // Privileged Mode Requested
    bool exec = false;          // Execute Requested

    static constexpr Requester bdf(unsigned bus, unsigned dev, unsigned fn) {
        return Requester{uint16_t((bus << 8) | (dev << 3) | fn)};
    }
    constexpr Requester with_pasid(uint32_t p, bool privileged = false) const {
        Requester r = *this;
        r.pasid = p;
        r.priv = privileged;
        return r;
    }
    constexpr uint8_t bus() const { return uint8_t(rid >> 8); }
    constexpr uint8_t devfn() const { return uint8_t(rid); }
    constexpr uint8_t dev() const { return uint8_t((rid >> 3) & 0x1f); }
    constexpr uint8_t fn() const { return uint8_t(rid & 7); }
    constexpr bool has_pasid() const { return pasid != kNoPasid; }
};

std::string to_string(const Requester& r);  // "00:02.0" or "00:02.0/pasid 0x5"
const char* to_string(Access a);
std::string perm_string(Perm p);  // "rw-"

}  // namespace iommusim
