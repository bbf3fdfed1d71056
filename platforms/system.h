// A system assembled from configuration (platform + workload files): DMA devices on PCIe
// links into a root complex, a region router giving each device its DMA address space, IOMMU
// units (VT-d or sPAPR) and DRAM; the host driver models map what the devices use.
//
//   System s("system", config);   // reads the topology, binds every parameter
//   s.registry().apply(config);   // (done by build) values from files and --set
//   s.build();                    // modules, wiring, driver set-up
//   sc_start(); s.finish();
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <systemc>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/stats.h"
#include "iommu/unit_params.h"
#include "memory/dram.h"
#include "pcie/link_model.h"
#include "pcie/pcie_switch.h"
#include "pcie/root_complex.h"
#include "replay.h"

namespace iommusim {

namespace ats {
class Function;
}

struct SystemParams {
    static constexpr uint64_t kMaxQuantumNs = 1'000'000'000;
    uint64_t quantum_ns = 1000;  // the initiators' global quantum
    uint64_t seed = 1;
    uint64_t max_time_us = 0;  // stop here even if devices are not done; 0 = no limit

    template <typename V>
    void visit(V&& v) {
        v("quantum_ns", quantum_ns, "ns",
          "TLM global quantum of every initiator; 0 = synchronise every transaction", 0,
          kMaxQuantumNs);
        v("seed", seed, "",
          "seed of every random choice of the run (devices without their own seed derive one)", 0,
          ~uint64_t(0));
        v("max_time_us", max_time_us, "us", "simulated time limit; 0 = until every device is done",
          0, ~uint64_t(0) >> 20);
    }
};

// How a device's memory is mapped.
struct MapParams {
    uint64_t page_size = 4096;

    template <typename V>
    void visit(V&& v) {
        v("page_size", page_size, "bytes",
          "IOMMU page size of the device's long-lived mappings: 4K, 64K, 2M, 16M, 1G", 4096,
          uint64_t(1) << 30);
    }
};

// `iommusim replay`: the traces (one per tenant), and what a first pass found in each
// (scan_trace). Several traces replay together as tenants of one platform.
struct ReplayTenant {
    std::string trace;
    TraceSummary summary;
};
struct ReplaySpec {
    std::vector<ReplayTenant> tenants;
};

// Multi-tenant replay: how far apart the tenants' buses are (tenant t's requesters are on
// their recorded bus + t * stride).
struct ReplayTenancyParams {
    uint32_t tenant_bus_stride = 1;

    template <typename V>
    void visit(V&& v) {
        v("tenant_bus_stride", tenant_bus_stride, "buses",
          "tenant t's requesters are on their recorded bus + t * this (several traces)", 1, 255);
    }
};

class System : public sc_core::sc_module {
public:
    // Reads topology keys (system.iommus, system.devices, each one's arch/type) and declares
    // the parameters of everything it will build. Throws ConfigError on bad topology.
    // With `replay`, each requester of the trace becomes a replay device (a declared device
    // of type `replay` with its `rid`, else one placed by system.replay.{iommu,rc,switch});
    // the platform's other devices are not built (their keys are accepted).
    System(sc_core::sc_module_name name, Config& config, const ReplaySpec* replay = nullptr);
    ~System() override;

    ParamRegistry& registry() { return registry_; }
    SystemParams& params() { return params_; }
    // Apply the configuration (all errors at once), check nothing is unused, then build the
    // modules, wire them and let the drivers map the devices' buffers.
    void build();
    StatGroup& stats() { return stats_; }
    // Every device has finished (or the time limit passed).
    const sc_core::sc_event& done_event() const { return done_; }
    bool devices_done() const;
    // One line per device for the terminal.
    std::vector<std::string> device_summaries() const;
    // Fraction of the devices' work done, 0..1 (progress display).
    double progress() const;
    std::vector<std::string> iommu_names() const;
    // After the run: the host software's defects (page requests never answered), one line
    // each; a run with any fails.
    std::vector<std::string> defects() const;
    // Derived statistics (each unit's iotlb.hit_rate_ppm): call once the simulation stopped.
    void finish_stats();
    // Replay mode: the host process (the first tenant's) and the translation checks (null
    // otherwise); every tenant's host, and its check (the total one with a single trace).
    const ReplayHost* replay() const {
        return replay_hosts_.empty() ? nullptr : replay_hosts_[0].get();
    }
    const ReplayCheck* replay_check() const { return replay_check_.get(); }
    size_t replay_tenants() const { return replay_hosts_.size(); }
    const ReplayHost& replay_host(size_t t) const { return *replay_hosts_[t]; }
    const ReplayCheck& replay_tenant_check(size_t t) const {
        return replay_tenant_checks_.empty() ? *replay_check_ : *replay_tenant_checks_[t];
    }
    // A simulated-time period for the processes that poll (Ctrl-C, the time limit, progress):
    // a fixed one made a recording with hour-long idle gaps take minutes of wall time, so it
    // doubles while wakes come faster than 20 per wall-clock second and halves below 5.
    class PollPeriod {
    public:
        sc_core::sc_time next();

    private:
        sc_core::sc_time period_{10, sc_core::SC_US};
        std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
    };
    // Stop at the next check (Ctrl-C): statistics so far are kept.
    void request_stop() { stop_requested_ = true; }

private:
    struct Iommu;
    struct Device;
    // The constructor's steps: the topology's modules and their parameters.
    class Names;
    void declare_root_complexes(Names& names);
    void declare_switches(Names& names, std::vector<std::string>& errors);
    void declare_iommus(Names& names, std::vector<std::string>& errors);
    void declare_devices(Names& names, std::vector<std::string>& errors);
    void declare_replay(const ReplaySpec& replay, std::vector<std::string>& errors);
    void check_rc(const std::string& key, const std::string& rc,
                  std::vector<std::string>& errors) const;
    void check_switch(const std::string& key, const std::string& sw,
                      std::vector<std::string>& errors) const;
    // Per tenant: the replay device of each traced requester (filled by build_device).
    using ReplayTargets = std::vector<std::unordered_map<uint16_t, ReplayTarget>>;
    // build()'s steps, in the order the modules are made (SystemC names and process order).
    void build_fabric(std::vector<std::string>& errors);
    void build_iommus();
    ReplayTargets start_replay();
    void build_device(size_t i, ReplayTargets& targets, std::vector<std::string>& errors);
    void attach_ats(Device& d, Iommu& m, ats::Function& fn, bool pri);
    void build_replay_hosts(ReplayTargets& targets);
    RootComplex& rc_named(const std::string& name);
    size_t tenant_of(uint16_t rid) const;
    void supervise();
    void bring_up();
    void check_params();
    std::string located(const std::string& prefix, const std::string& msg) const;
    void start_of_simulation() override;

    Config& config_;
    ParamRegistry registry_;
    SystemParams params_;
    StatGroup stats_;
    DramParams dram_params_;
    struct RootComplexSpec;
    struct SwitchSpec;
    std::vector<std::unique_ptr<RootComplexSpec>> rcs_;
    std::vector<std::unique_ptr<SwitchSpec>> switches_;
    std::vector<std::unique_ptr<Iommu>> iommus_;
    std::vector<std::unique_ptr<Device>> devices_;
    std::vector<std::unique_ptr<Device>> unbuilt_;  // replay: the platform's own devices
    const ReplaySpec* replay_spec_ = nullptr;
    ReplayParams replay_params_;
    DmaEngineParams replay_engine_;
    PcieLinkParams replay_link_;
    std::unique_ptr<ReplayCheck> replay_check_;
    std::vector<std::unique_ptr<ReplayHost>> replay_hosts_;  // one per tenant
    // Several traces: the tenancy parameters, each tenant's pacing and check, the RID offset
    // of each tenant, the tenant of each platform RID, and the totals of the hosts' counters.
    ReplayTenancyParams replay_tenancy_;
    std::vector<std::unique_ptr<ReplayTenantParams>> replay_tenant_params_;
    std::vector<std::unique_ptr<ReplayCheck>> replay_tenant_checks_;
    std::vector<uint16_t> replay_rid_offset_;
    std::unordered_map<uint16_t, size_t> replay_tenant_of_;
    std::vector<std::pair<std::string, Counter*>> replay_totals_;
    struct Fabric;
    std::unique_ptr<Fabric> fabric_;
    sc_core::sc_event done_;
    sc_core::sc_event device_ended_;  // a device's finished event fired (its last completion)
    volatile bool stop_requested_ = false;
};

}  // namespace iommusim
