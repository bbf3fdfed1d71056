// System's parts, shared by the files that implement it (private to platforms/): the
// modules it declares from the configuration, the fabric it builds, and where each device's
// and unit's memory lies. system_config.cpp reads the topology, system_build.cpp builds it,
// system.cpp runs it.
#pragma once

#include <fmt/format.h>

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <tlm_utils/tlm_quantumkeeper.h>
#include <functional>
#include <optional>

#include "bundles/bundle.h"
#include "bundles/viommu/viommu_domain.h"
#include "core/quote.h"
#include "devices/device_kind.h"
#include "devices/replay_device.h"
#include "host/dma_api.h"
#include "iommu/region_router.h"
#include "memory/mux.h"
#include "pcie/pcie_link.h"
#include "system.h"
#include "traces/import_bdf.h"

namespace iommusim {

// Physical memory: device i's buffers in [kDataBase + i * kDeviceSpan, + kDeviceSpan); the
// host structures of IOMMU i (page or TCE tables, then the VT-d invalidation queue at +1 GiB)
// in [kStructBase + i * kStructSpan, + kStructSpan), above every device and below a 48-bit
// HAW. Nothing overlaps, whatever the buffer sizes (they are checked against kDeviceSpan).
constexpr Addr kDataBase = Addr(8) << 30;
constexpr Addr kDeviceSpan = Addr(64) << 30;
constexpr Addr kStructBase = Addr(1) << 46;
constexpr Addr kStructSpan = Addr(2) << 30;
constexpr size_t kMaxDevices = (kStructBase - kDataBase) / kDeviceSpan;

// Splitmix64 of the run's seed and an FNV-1a hash of the device's name: the same run seed and
// name give the same stream, different devices different ones, and adding a device does not
// change the streams of the others.
inline uint64_t derived_seed(uint64_t seed, const std::string& name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
    uint64_t z = seed ^ h;
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// An IOMMU: its architecture's bundle (bundles/bundle.h) does the rest.
struct System::Iommu {
    std::string name, arch;
    std::unique_ptr<IommuBundle> bundle;
    Counter* hit_rate = nullptr;  // iotlb.hit_rate_ppm, derived at the end (finish_stats)
};

struct System::Device {
    std::string name, type, iommu, rc, sw;
    uint16_t rid = 0;     // replay: the recorded requester it stands for
    bool placed = false;  // replay: created for a requester the platform does not declare
    size_t tenant = 0;    // replay: whose trace it replays
    std::vector<std::string> regions;  // its DMA address space; empty: all of it translated
    std::unique_ptr<DeviceKind> kind;  // what it is (null: a replay device)
    DmaEngineParams engine;
    PcieLinkParams link;
    MapParams map;
    ViommuParams viommu;  // a guest IOMMU over its domain (docs/viommu.md)
    std::unique_ptr<sc_core::sc_module> dev;
    std::unique_ptr<DeviceDomain> domain;  // its address space on its IOMMU
    std::unique_ptr<DmaMapper> mapper;
    std::unique_ptr<PcieLink> pl;
    // The same view of every kind of device.
    std::function<bool()> finished;
    const sc_core::sc_event* finished_ev = nullptr;
    // Its finished event fired: a device sets its flag at its local time, ahead of the kernel
    // under a quantum, and notifies the event at its last completion, when it really ends.
    bool ended = false;
    std::function<std::string()> summary;
    std::function<double()> progress;

    Requester requester() const { return kind ? kind->requester() : Requester{rid}; }
};

struct System::RootComplexSpec {
    std::string name;
    RootComplexParams params;
    std::unique_ptr<RootComplex> rc;
};

// A switch: its Downstream Ports take devices' links, its Upstream Port a link (`uplink`)
// into a root port.
struct System::SwitchSpec {
    std::string name, rc;
    PcieSwitchParams params;
    PcieLinkParams uplink;
    std::unique_ptr<PcieSwitch> sw;
    std::unique_ptr<PcieLink> link;
};

// Stands in for the units of a platform without IOMMUs: the router's unit path and the walk
// path to memory must be bound even when nothing translates (no region can name a unit).
struct NoIommu : sc_core::sc_module {
    tlm_utils::simple_target_socket<NoIommu> upstream;
    tlm_utils::simple_initiator_socket<NoIommu> walk;
    explicit NoIommu(sc_core::sc_module_name n) : sc_module(n), upstream("upstream"), walk("walk") {
        upstream.register_b_transport(this, &NoIommu::b_transport);
    }
    void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time&) {
        p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    }
};

struct System::Fabric {
    SparseMemory store;
    std::unique_ptr<NoIommu> no_iommu;
    std::unique_ptr<Mux> rc_mux;
    std::unique_ptr<RegionRouter> router;
    std::unique_ptr<Mux> data_mux, walk_mux;
    std::unique_ptr<Dram> dram;
};

}  // namespace iommusim
