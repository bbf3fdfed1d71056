// The one TLM extension for PCIe attributes of a transaction: who sent it (RID, PASID
// prefix, PRIV/EXEC), what the AT field says, and which TLP it is. Generic payload fields
// are never reused for these.
#pragma once
#include <systemc>
#include <tlm>
#include <type_traits>

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
//
// Inline: sc_time::from_value() is a library call (it also fixes the time resolution, which
// the platform has done long before a model converts a time), and every TLP converts several
// times. sc_time is standard-layout with its value as the only member, so a pointer to it is
// a pointer to that value.
static_assert(std::is_standard_layout_v<sc_core::sc_time> &&
                  sizeof(sc_core::sc_time) == sizeof(sc_core::sc_time::value_type),
              "to_sc_time() sets sc_time's only member");
inline sc_core::sc_time to_sc_time(uint64_t ticks) {
    sc_core::sc_time t;
    *reinterpret_cast<sc_core::sc_time::value_type*>(&t) = ticks;
    return t;
}
inline uint64_t to_ticks(const sc_core::sc_time& t) {
    return t.value();
}
// The current SystemC time, read inline (sc_time_stamp() is a library call).
inline const sc_core::sc_time& sim_time() {
    return sc_core::sc_get_curr_simcontext()->time_stamp();
}
inline uint64_t sim_now() {
    return to_ticks(sim_time());
}

}  // namespace iommusim
