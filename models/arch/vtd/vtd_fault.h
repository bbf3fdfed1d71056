// VT-d fault reason codes as the specification numbers them (legacy 0x1-0xD, scalable-mode
// 0x30-0x90). Reported in fault recording registers (FRCD.FR) and by the walker.
#pragma once
#include <cstdint>

namespace iommusim::vtd {

enum FaultReason : uint16_t {
    // Legacy mode
    kFrRootNotPresent = 0x1,
    kFrContextNotPresent = 0x2,
    kFrContextInvalid = 0x3,
    kFrAddressBeyondMgaw = 0x4,
    kFrWrite = 0x5,
    kFrRead = 0x6,
    kFrPagingEntryAccess = 0x7,
    kFrRootTableAccess = 0x8,
    kFrContextTableAccess = 0x9,
    kFrRootReserved = 0xA,
    kFrContextReserved = 0xB,
    kFrPagingEntryReserved = 0xC,
    kFrContextTtBlocked = 0xD,
    // Scalable mode
    kSmInvalidRootTableAddress = 0x30,
    kSmTtm0RequestWithPasid = 0x31,
    kSmRootAccess = 0x38,
    kSmRootNotPresent = 0x39,
    kSmRootReserved = 0x3A,
    kSmContextAccess = 0x40,
    kSmContextNotPresent = 0x41,
    kSmContextReserved = 0x42,
    kSmContextInvalid = 0x43,
    kSmContextDteClear = 0x44,
    kSmContextPasidDisabled = 0x45,
    kSmPasidTooLarge = 0x46,
    kSmContextPreClear = 0x47,
    kSmRidPasidError = 0x48,
    kSmPasidDirAccess = 0x50,
    kSmPasidDirNotPresent = 0x51,
    kSmPasidDirReserved = 0x52,
    kSmPasidEntryAccess = 0x58,
    kSmPasidEntryNotPresent = 0x59,
    kSmPasidEntryReserved = 0x5A,
    kSmPasidEntryInvalid = 0x5B,
    kSmPasidEreClear = 0x5C,
    kSmPasidSreClear = 0x5D,
    kSmFlAccess = 0x70,
    kSmFlNotPresent = 0x71,
    kSmFlReserved = 0x72,
    kSmFlPml4Access = 0x73,
    kSmFlAddressBeyondMgawNested = 0x74,
    kSmFlPml4ReadNested = 0x75,
    kSmFlReadNested = 0x76,
    kSmFlWriteNested = 0x77,
    kSmSlAccess = 0x78,
    kSmSlPermission = 0x79,
    kSmSlReserved = 0x7A,
    kSmSlInvalidPointer = 0x7B,
    kSmNonCanonical = 0x80,
    kSmUserSupervisor = 0x81,
    kSmNoExecute = 0x82,
    kSmAddressBeyondHwMax = 0x83,
    kSmSlAddressBeyondMax = 0x84,
    kSmNoWrite = 0x85,
    kSmNoRead = 0x86,
};

// The specification's one-line description of a reason code ("Unknown" if not defined).
const char* fault_reason_text(uint16_t reason);

}  // namespace iommusim::vtd
