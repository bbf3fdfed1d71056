// A device's DMA address space as a list of regions (docs/architecture.md, "What is simulated"):
// windows translated by one of several IOMMU units, direct-mapped bypass windows, and
// reserved holes. The router sits between the root complex and the units; a DMA that is not
// entirely inside one region of its requester gets an error completion.
#pragma once
#include <tlm_utils/multi_passthrough_initiator_socket.h>
#include <tlm_utils/simple_initiator_socket.h>
#include <map>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/direct_target_socket.h"
#include "core/log.h"
#include "core/pcie_ext.h"
#include "core/stats.h"
#include "iommu_unit.h"

namespace iommusim {

struct DmaRegion {
    enum class Kind : uint8_t { Translate, Bypass, Reserved };
    std::string name;
    Addr base = 0;
    Addr size = 0;
    Kind kind = Kind::Translate;
    unsigned unit = 0;   // Translate: index of the unit socket binding
    Addr phys_base = 0;  // Bypass: bus address base -> physical address phys_base

    Addr last() const { return base + (size - 1); }
    bool holds(Addr a, Addr len) const { return a >= base && a <= last() && len - 1 <= last() - a; }
};

class RegionRouter : public sc_core::sc_module {
    // Declared before `upstream`, whose type names them.
    void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    unsigned int transport_dbg(tlm::tlm_generic_payload& p);

public:
    DirectTargetSocket<RegionRouter, &RegionRouter::b_transport, &RegionRouter::transport_dbg>
        upstream;
    // Bind once per translation unit, in the order DmaRegion::unit counts them.
    tlm_utils::multi_passthrough_initiator_socket<RegionRouter> units;
    tlm_utils::simple_initiator_socket<RegionRouter> bypass;  // straight to memory

    RegionRouter(sc_core::sc_module_name name, StatGroup& stats);

    // The regions of requests from `rid` (overlaps are an error: returns its description).
    std::string set_regions(uint16_t rid, std::vector<DmaRegion> regions);
    // Regions of requesters that have none of their own.
    std::string set_default_regions(std::vector<DmaRegion> regions);

private:
    void end_of_elaboration() override;
    const DmaRegion* find(const tlm::tlm_generic_payload& p, const PcieAttr* attr) const;
    static std::string check(std::vector<DmaRegion>& regions);

    std::map<uint16_t, std::vector<DmaRegion>> by_rid_;
    std::vector<DmaRegion> default_;
    // The last requester looked up and its list: devices issue runs of requests, so most
    // lookups skip the map. Reset by set_regions() and set_default_regions().
    mutable int cached_rid_ = -1;
    mutable const std::vector<DmaRegion>* cached_list_ = nullptr;
    // The region find() returned last and its list: a run's requests stay in one region, and
    // regions never overlap, so holding the address is the search's answer. Reset likewise.
    mutable const std::vector<DmaRegion>* last_list_ = nullptr;
    mutable const DmaRegion* last_region_ = nullptr;
    // units[i] once bound: the multi-socket's size() and operator[] are library calls. A unit
    // bound straight to an IommuUnit is called directly, with the attributes read here.
    struct UnitTarget {
        tlm::tlm_fw_transport_if<>* fw;
        IommuUnit* direct;  // IommuUnit::behind(fw)
    };
    std::vector<UnitTarget> unit_if_;
    static void to_unit(const UnitTarget& u, tlm::tlm_generic_payload& p, sc_core::sc_time& delay,
                        const PcieAttr* attr);
    // The translated region b_transport routed last and its unit: a run of DMAs in it skips
    // the region's checks. Reset with last_list_.
    const DmaRegion* routed_ = nullptr;
    const UnitTarget* routed_to_ = nullptr;
    Counter *translated_, *bypassed_, *reserved_, *outside_;
    log::Channel log_;  // each DMA's region, at trace level
};

}  // namespace iommusim
