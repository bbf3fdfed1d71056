#include "vtd_fault.h"

namespace iommusim::vtd {

// One line per condition of the specification's fault-reason table (chapter 7), shortened.
// Codes the table leaves undefined, and those this model cannot raise and no reference
// describes, read "Unknown" rather than a guess.
const char* fault_reason_text(uint16_t reason) {
    switch (reason) {
        // Legacy mode
        case kFrRootNotPresent: return "Present (P) field of the root entry is clear";
        case kFrContextNotPresent: return "Present (P) field of the context entry is clear";
        case kFrContextInvalid: return "Invalid programming of a present context entry";
        case kFrAddressBeyondMgaw: return "Input address above 2^MGAW - 1 or the context AW";
        case kFrWrite: return "Write request without write permission (W clear)";
        case kFrRead: return "Read or AtomicOp request without read permission (R clear)";
        case kFrPagingEntryAccess: return "Error accessing a second-level paging entry";
        case kFrRootTableAccess: return "Error accessing the root entry";
        case kFrContextTableAccess: return "Error accessing the context entry";
        case kFrRootReserved: return "Non-zero reserved field in a present root entry";
        case kFrContextReserved: return "Non-zero reserved field in a present context entry";
        case kFrPagingEntryReserved:
            return "Non-zero reserved field in a second-level paging entry with R or W set";
        case kFrContextTtBlocked:
            return "Translation or translated request blocked by the context entry's TT field";
        // Scalable mode: root table address register
        case kSmInvalidRootTableAddress: return "SM: invalid root table address";
        case kSmTtm0RequestWithPasid: return "SM: request with PASID while RTADDR.TTM is legacy";
        case 0x32: return "SM: page request while RTADDR.TTM is legacy";
        // Scalable-mode root entry
        case kSmRootAccess: return "SM: error accessing the scalable-mode root entry";
        case kSmRootNotPresent: return "SM: present bit of the root entry (LP/UP) is clear";
        case kSmRootReserved: return "SM: non-zero reserved field in a present root entry";
        // Scalable-mode context entry
        case kSmContextAccess: return "SM: error accessing the scalable-mode context entry";
        case kSmContextNotPresent: return "SM: present bit of the context entry is clear";
        case kSmContextReserved: return "SM: non-zero reserved field in a present context entry";
        case kSmContextInvalid: return "SM: invalid programming of a present context entry";
        case kSmContextDteClear:
            return "SM: translation or translated request while context DTE is clear";
        case kSmContextPasidDisabled: return "SM: request with PASID while context PASIDE is clear";
        case kSmPasidTooLarge: return "SM: PASID larger than the context entry's PDTS allows";
        case kSmContextPreClear: return "SM: page request while context PRE is clear";
        case kSmRidPasidError: return "SM: RID_PASID field of the context entry is invalid";
        // PASID directory and table
        case kSmPasidDirAccess: return "SM: error accessing the PASID directory entry";
        case kSmPasidDirNotPresent: return "SM: present bit of the PASID directory entry is clear";
        case kSmPasidDirReserved:
            return "SM: non-zero reserved field in a present PASID directory entry";
        case kSmPasidEntryAccess: return "SM: error accessing the PASID table entry";
        case kSmPasidEntryNotPresent: return "SM: present bit of the PASID table entry is clear";
        case kSmPasidEntryReserved:
            return "SM: non-zero reserved field in a present PASID table entry";
        case kSmPasidEntryInvalid: return "SM: invalid programming of a present PASID table entry";
        case kSmPasidEreClear: return "SM: execute request while the PASID entry's ERE is clear";
        case kSmPasidSreClear: return "SM: supervisor request while the PASID entry's SRE is clear";
        // First-level (stage-1) paging
        case kSmFlAccess: return "SM: error accessing a first-level paging entry";
        case kSmFlNotPresent: return "SM: present bit of a first-level paging entry is clear";
        case kSmFlReserved: return "SM: non-zero reserved field in a first-level paging entry";
        case kSmFlPml4Access: return "SM: error accessing the first-level PML4 entry";
        case kSmFlAddressBeyondMgawNested:
            return "SM: first-level table address beyond MGAW in nested translation";
        case kSmFlPml4ReadNested:
            return "SM: no read permission for the first-level root in nested translation";
        case kSmFlReadNested:
            return "SM: no read permission for a first-level entry in nested translation";
        case kSmFlWriteNested:
            return "SM: write permission error on a first-level entry in nested translation";
        // Second-level (stage-2) paging
        case kSmSlAccess: return "SM: error accessing a second-level paging entry";
        case kSmSlPermission:
            return "SM: read/write permission error in a second-level paging entry";
        case kSmSlReserved: return "SM: non-zero reserved field in a second-level paging entry";
        case kSmSlInvalidPointer: return "SM: invalid second-level page-table pointer";
        case 0x7C: return "SM: second-level A/D update needed while paging walks are not snooped";
        // General
        case kSmNonCanonical: return "SM: non-canonical address in first-level translation";
        case kSmUserSupervisor:
            return "SM: user-mode request to a first-level supervisor page (U/S clear)";
        case kSmNoExecute: return "SM: execute request without execute permission";
        case kSmAddressBeyondHwMax: return "SM: input address beyond the hardware's maximum (MGAW)";
        case kSmSlAddressBeyondMax: return "SM: address in a second-level entry beyond the maximum";
        case kSmNoWrite: return "SM: write or AtomicOp request without write permission";
        case kSmNoRead: return "SM: read or AtomicOp request without read permission";
        case 0x87: return "SM: invalid address-interrupt address";
        case 0x90: return "SM: first-level A/D update needed while paging walks are not snooped";
        default: return "Unknown";
    }
}

}  // namespace iommusim::vtd
