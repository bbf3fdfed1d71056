// The one TLM extension for PCIe attributes of a transaction: who sent it (RID, PASID
// prefix, PRIV/EXEC), what the AT field says, and which TLP it is. Generic payload fields
// are never reused for these.
#pragma once
#include <systemc>
#include <tlm>

#include "types.h"

namespace iommusim {

struct PcieAttr final : tlm::tlm_extension<PcieAttr> {
    enum class At : uint8_t { Untranslated = 0, TranslationRequest = 1, Translated = 2 };
    enum class Tlp : uint8_t { MemRead, MemWrite, AtomicOp, Message };

    Requester req;
    At at = At::Untranslated;
    Tlp tlp = Tlp::MemRead;
    uint16_t tag = 0;
    // False when the payload bytes mean nothing (a device model's scratch buffer): memory
    // times the access but keeps no copy.
    bool contents = true;

    tlm::tlm_extension_base* clone() const override { return new PcieAttr(*this); }
    void copy_from(const tlm::tlm_extension_base& e) override {
        *this = static_cast<const PcieAttr&>(e);
    }
    Access access() const {
        return tlp == Tlp::AtomicOp   ? Access::ReadWrite
               : tlp == Tlp::MemWrite ? Access::Write
                                      : Access::Read;
    }
};

// Simulated time in the simulator's resolution (1 ps) <-> Tick.
inline sc_core::sc_time to_sc_time(uint64_t ticks) {
    return sc_core::sc_time::from_value(ticks);
}
inline uint64_t to_ticks(const sc_core::sc_time& t) {
    return t.value();
}

}  // namespace iommusim
