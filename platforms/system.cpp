#include "system.h"

#include <fmt/format.h>

#include <tlm_utils/tlm_quantumkeeper.h>
#include <functional>
#include <optional>

#include "arch/spapr/spapr_walker.h"
#include "devices/dma_bench.h"
#include "devices/nic.h"
#include "devices/nvme.h"
#include "host_dma.h"
#include "iommu/region_router.h"
#include "memory/mux.h"
#include "pcie/pcie_link.h"
#include "replay_device.h"
#include "traces/import_common.h"

namespace iommusim {

namespace {
constexpr Addr kDataBase = Addr(8) << 30;  // device memory: 64 GiB apart
constexpr Addr kDeviceSpan = Addr(64) << 30;
constexpr Addr kQueueBase = Addr(120) << 30;  // VT-d invalidation queues
constexpr Addr kVtdIovaBase = Addr(1) << 32;  // where dma-bench windows are mapped (VT-d)
// "name:kind:base:size[:phys]" (kind translate, bypass or reserved; numbers with 0x or K/M/G/T
// suffixes) -> a region; `unit` is the device's translation unit.
std::optional<DmaRegion> parse_region(const std::string& text, unsigned unit, std::string* why) {
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t i = 0; i <= text.size(); ++i)
        if (i == text.size() || text[i] == ':')
            f.push_back(text.substr(start, i - start)), start = i + 1;
    auto num = [&](const std::string& t, Addr* out) {
        size_t pos = 0;
        try {
            *out = std::stoull(t, &pos, 0);
        } catch (const std::exception&) {
            return false;
        }
        const std::string sfx = t.substr(pos);
        const unsigned sh = sfx.empty()  ? 0
                            : sfx == "K" ? 10
                            : sfx == "M" ? 20
                            : sfx == "G" ? 30
                            : sfx == "T" ? 40
                                         : 64;
        if (sh == 64) return false;
        *out <<= sh;
        return true;
    };
    DmaRegion r;
    if (f.size() < 4 || f.size() > 5) {
        *why = fmt::format("region '{}': expected name:kind:base:size[:phys]", text);
        return std::nullopt;
    }
    r.name = f[0];
    r.unit = unit;
    if (f[1] == "translate")
        r.kind = DmaRegion::Kind::Translate;
    else if (f[1] == "bypass")
        r.kind = DmaRegion::Kind::Bypass;
    else if (f[1] == "reserved")
        r.kind = DmaRegion::Kind::Reserved;
    else {
        *why = fmt::format("region '{}': kind '{}' (expected translate, bypass or reserved)", text,
                           f[1]);
        return std::nullopt;
    }
    if (!num(f[2], &r.base) || !num(f[3], &r.size) || (f.size() == 5 && !num(f[4], &r.phys_base))) {
        *why =
            fmt::format("region '{}': base, size and phys are numbers (0x..., 4K, 1G, 1T)", text);
        return std::nullopt;
    }
    return r;
}
}  // namespace

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

struct System::Iommu {
    std::string name, arch, mode;
    UnitParams unit;
    HostDriverParams driver;
    std::unique_ptr<vtd::Driver> vtd_drv;
    std::unique_ptr<vtd::InvQueueWriter> queue;
    std::unique_ptr<VtdIommu> vtd;
    std::unique_ptr<VtdQueueFeeder> feeder;
    std::unique_ptr<spapr::Driver> phb_drv;
    std::unique_ptr<spapr::SpaprWalker> phb_walker;
    std::unique_ptr<IommuUnit> phb;
    size_t tce_kills = 0;
    IommuUnit& unit_module() { return vtd ? vtd->unit() : *phb; }
};

struct System::Device {
    std::string name, type, iommu, rc, sw;
    uint16_t rid = 0;     // replay: the recorded requester it stands for
    bool placed = false;  // replay: created for a requester the platform does not declare
    std::vector<std::string> regions;  // its DMA address space; empty: all of it translated
    DmaBenchParams bench;
    NicParams nic;
    NvmeParams nvme;
    DmaEngineParams engine;
    PcieLinkParams link;
    MapParams map;
    std::unique_ptr<sc_core::sc_module> dev;
    std::unique_ptr<DmaMapper> mapper;
    std::unique_ptr<PcieLink> pl;
    // The same view of every kind of device.
    std::function<bool()> finished;
    const sc_core::sc_event* finished_ev = nullptr;
    std::function<std::string()> summary;
    std::function<double()> progress;

    Requester requester() const {
        auto rid = [](unsigned b, unsigned d, unsigned f) { return Requester::bdf(b, d, f); };
        if (type == "nic") return rid(nic.bus, nic.device, nic.function);
        if (type == "nvme") return rid(nvme.bus, nvme.device, nvme.function);
        if (type == "replay") return Requester{this->rid};
        return rid(bench.bus, bench.device, bench.function);
    }
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

struct System::Fabric {
    SparseMemory store;
    std::unique_ptr<Mux> rc_mux;
    std::unique_ptr<RegionRouter> router;
    std::unique_ptr<Mux> data_mux, walk_mux;
    std::unique_ptr<Dram> dram;
};

System::System(sc_core::sc_module_name name, Config& config, const ReplaySpec* replay)
    : sc_module(name), config_(config), stats_(std::string(basename())), replay_spec_(replay) {
    const std::string root = basename();
    registry_.bind(root, params_);
    registry_.bind(root + ".memory", dram_params_);
    std::vector<std::string> errors;
    std::vector<std::string> rc_names = config.get_list(root + ".root_complexes");
    if (rc_names.empty()) rc_names = {"rc"};
    for (const std::string& n : rc_names) {
        auto r = std::make_unique<RootComplexSpec>();
        r->name = n;
        registry_.bind(root + "." + n, r->params);
        rcs_.push_back(std::move(r));
    }
    auto known_rc = [&](const std::string& n) {
        for (auto& r : rcs_)
            if (r->name == n) return true;
        return false;
    };
    for (const std::string& n : config.get_list(root + ".switches")) {
        auto w = std::make_unique<SwitchSpec>();
        w->name = n;
        const std::string key = root + "." + n;
        w->rc = config.get_string(key + ".rc").value_or(rcs_[0]->name);
        if (!known_rc(w->rc))
            errors.push_back(fmt::format("{}: no root complex '{}' in {}.root_complexes",
                                         config.where(key + ".rc"), w->rc, root));
        registry_.bind(key, w->params);
        registry_.bind(key + ".uplink", w->uplink);
        switches_.push_back(std::move(w));
    }
    for (const std::string& n : config.get_list(root + ".iommus")) {
        auto m = std::make_unique<Iommu>();
        m->name = n;
        const std::string key = root + "." + n;
        m->arch = config.get_string(key + ".arch").value_or("vtd");
        m->mode = config.get_string(key + ".mode").value_or("legacy");
        if (m->arch != "vtd" && m->arch != "spapr")
            errors.push_back(fmt::format("{}: arch '{}' (expected vtd or spapr)",
                                         config.where(key + ".arch"), m->arch));
        if (m->mode != "legacy" && m->mode != "scalable")
            errors.push_back(fmt::format("{}: mode '{}' (expected legacy or scalable)",
                                         config.where(key + ".mode"), m->mode));
        registry_.bind(key, m->unit);
        registry_.bind(key + ".driver", m->driver);
        iommus_.push_back(std::move(m));
    }
    for (const std::string& n : config.get_list(root + ".devices")) {
        auto d = std::make_unique<Device>();
        d->name = n;
        const std::string key = root + "." + n;
        d->type = config.get_string(key + ".type").value_or("dma-bench");
        d->iommu =
            config.get_string(key + ".iommu").value_or(iommus_.empty() ? "none" : iommus_[0]->name);
        d->sw = config.get_string(key + ".switch").value_or("");
        d->regions = config.get_list(key + ".regions");
        d->rc = config.get_string(key + ".rc").value_or(rcs_[0]->name);
        if (!known_rc(d->rc))
            errors.push_back(fmt::format("{}: no root complex '{}' in {}.root_complexes",
                                         config.where(key + ".rc"), d->rc, root));
        bool known_sw = d->sw.empty();
        for (auto& w : switches_) known_sw |= w->name == d->sw;
        if (!known_sw)
            errors.push_back(fmt::format("{}: no switch '{}' in {}.switches",
                                         config.where(key + ".switch"), d->sw, root));
        bool known = d->iommu == "none";
        for (auto& m : iommus_) known |= m->name == d->iommu;
        if (!known)
            errors.push_back(fmt::format("{}: no IOMMU named '{}' in {}.iommus",
                                         config.where(key + ".iommu"), d->iommu, root));
        const uint8_t dev_no = uint8_t(devices_.size() + 1);  // distinct default requesters
        if (d->type == "dma-bench") {
            d->bench.device = dev_no;
            registry_.bind(key, d->bench);
        } else if (d->type == "nic") {
            d->nic.device = dev_no;
            registry_.bind(key, d->nic);
        } else if (d->type == "nvme") {
            d->nvme.device = dev_no;
            registry_.bind(key, d->nvme);
        } else if (d->type == "replay") {
            const auto text = config.get_string(key + ".rid");
            const auto rid = text ? trace::import::bdf(*text) : std::nullopt;
            if (!replay)
                errors.push_back(fmt::format("{}: a replay device is for `iommusim replay`",
                                             config.where(key + ".type")));
            else if (!rid)
                errors.push_back(fmt::format("{}: a replay device needs `rid = BB:DD.F`",
                                             config.where(text ? key + ".rid" : key + ".type")));
            d->rid = rid.value_or(0);
        } else {
            errors.push_back(
                fmt::format("{}: device type '{}' (expected dma-bench, nic, nvme or replay)",
                            config.where(key + ".type"), d->type));
        }
        registry_.bind(key + ".engine", d->engine);
        registry_.bind(key + ".link", d->link);
        registry_.bind(key + ".map", d->map);
        // A replay runs the trace's requesters only; the platform's other devices keep their
        // parameters (one platform file serves `run` and `replay`) but are not built.
        (replay && d->type != "replay" ? unbuilt_ : devices_).push_back(std::move(d));
    }
    if (replay) {
        registry_.bind(root + ".replay", replay_params_);
        registry_.bind(root + ".replay.engine", replay_engine_);
        registry_.bind(root + ".replay.link", replay_link_);
        const std::string key = root + ".replay";
        const std::string unit =
            config.get_string(key + ".iommu").value_or(iommus_.empty() ? "" : iommus_[0]->name);
        const std::string rc = config.get_string(key + ".rc").value_or(rcs_[0]->name);
        const std::string sw = config.get_string(key + ".switch").value_or("");
        bool known_unit = false, known_sw = sw.empty();
        for (auto& m : iommus_) known_unit |= m->name == unit && m->arch == "vtd";
        for (auto& w : switches_) known_sw |= w->name == sw;
        if (!known_rc(rc))
            errors.push_back(fmt::format("{}: no root complex '{}' in {}.root_complexes",
                                         config.where(key + ".rc"), rc, root));
        if (!known_sw)
            errors.push_back(fmt::format("{}: no switch '{}' in {}.switches",
                                         config.where(key + ".switch"), sw, root));
        for (uint16_t rid : replay->summary.rids) {
            bool declared = false;
            for (auto& d : devices_) declared |= d->rid == rid;
            if (declared) continue;
            if (!known_unit) {  // said once: the first requester to place
                errors.push_back(fmt::format(
                    "{}: replay needs a VT-d unit (the recorded IOVAs are VT-d's): none named "
                    "'{}' in {}.iommus",
                    config.where(key + ".iommu"), unit, root));
                break;
            }
            auto d = std::make_unique<Device>();
            d->name = fmt::format("req{:02x}_{:02x}_{}", rid >> 8, (rid >> 3) & 0x1F, rid & 7);
            d->type = "replay";
            d->rid = rid;
            d->placed = true;
            d->iommu = unit;
            d->rc = rc;
            d->sw = sw;
            devices_.push_back(std::move(d));
        }
    } else if (devices_.empty()) {
        errors.push_back(fmt::format("{}: no devices (expected e.g. `devices = bench0` in [{}])",
                                     config.where(root + ".devices"), root));
    }
    if (!errors.empty()) throw ConfigError(errors);
}

// Drivers free their tables through the simulated memory (in the fabric): they go first.
System::~System() {
    devices_.clear();
    iommus_.clear();
    switches_.clear();
    rcs_.clear();
    fabric_.reset();
}

void System::build() {
    registry_.apply(config_);
    registry_.check_unused(config_);
    tlm_utils::tlm_quantumkeeper::set_global_quantum(
        sc_core::sc_time(double(params_.quantum_ns), sc_core::SC_NS));

    fabric_ = std::make_unique<Fabric>();
    Fabric& f = *fabric_;
    f.router = std::make_unique<RegionRouter>("router", stats_.child("router"));
    f.rc_mux = std::make_unique<Mux>("rc_mux");
    f.data_mux = std::make_unique<Mux>("data_mux");
    f.walk_mux = std::make_unique<Mux>("walk_mux");
    f.dram = std::make_unique<Dram>("memory", f.store, dram_params_, stats_.child("memory"),
                                    params_.seed);
    f.rc_mux->output.bind(f.router->upstream);
    f.router->bypass.bind(f.data_mux->inputs);
    f.data_mux->output.bind(f.dram->target);
    f.walk_mux->output.bind(f.dram->walk);
    for (auto& r : rcs_) {
        r->rc = std::make_unique<RootComplex>(r->name.c_str(), r->params, stats_.child(r->name));
        r->rc->host.bind(f.rc_mux->inputs);
    }
    auto rc_named = [&](const std::string& n) -> RootComplex& {
        for (auto& r : rcs_)
            if (r->name == n) return *r->rc;
        return *rcs_[0]->rc;
    };
    std::vector<std::string> errors;
    for (auto& w : switches_) {
        StatGroup& g = stats_.child(w->name);
        w->sw = std::make_unique<PcieSwitch>(w->name.c_str(), w->params, g);
        try {
            w->link = std::make_unique<PcieLink>((w->name + "_uplink").c_str(), w->uplink,
                                                 g.child("uplink"));
        } catch (const std::invalid_argument& e) {
            errors.push_back(fmt::format("{}.uplink: {}", w->name, e.what()));
            continue;
        }
        w->sw->upstream_port.bind(w->link->device);
        w->link->host.bind(rc_named(w->rc).root_port);
    }

    for (size_t i = 0; i < iommus_.size(); ++i) {
        Iommu& m = *iommus_[i];
        StatGroup& g = stats_.child(m.name);
        if (m.arch == "vtd") {
            vtd::DriverConfig dc;
            dc.hw.scalable = m.mode == "scalable";
            dc.strict = m.driver.strict;
            // Replay: the guest's ranges as it mapped them, unless large pages are asked for.
            if (replay_spec_) dc.large_pages = replay_params_.large_pages;
            dc.lazy.entries = m.driver.fq_entries;
            dc.lazy.timeout_ns = m.driver.fq_timeout_us * 1000;
            m.vtd_drv = std::make_unique<vtd::Driver>(f.store, dc);
            m.vtd = std::make_unique<VtdIommu>(m.name.c_str(), vtd::RegFileConfig::scalable_unit(),
                                               m.vtd_drv->hw(), m.unit, g);
            m.queue = std::make_unique<vtd::InvQueueWriter>(
                f.store, kQueueBase + Addr(i) * (1 << 20), 0, dc.hw.scalable);
            m.feeder = std::make_unique<VtdQueueFeeder>(*m.vtd_drv, *m.vtd, *m.queue);
        } else {
            m.phb_drv = std::make_unique<spapr::Driver>(f.store, spapr::DriverConfig{});
            m.phb_walker = std::make_unique<spapr::SpaprWalker>(m.phb_drv->phb());
            m.phb = std::make_unique<IommuUnit>(m.name.c_str(), m.unit, *m.phb_walker, g);
        }
        f.router->units.bind(m.unit_module().upstream);
        m.unit_module().downstream.bind(f.data_mux->inputs);
        m.unit_module().walk.bind(f.walk_mux->inputs);
    }

    std::unordered_map<uint16_t, ReplayTarget> targets;
    if (replay_spec_) replay_check_ = std::make_unique<ReplayCheck>(stats_.child("replay"));
    for (size_t i = 0; i < devices_.size(); ++i) {
        Device& d = *devices_[i];
        if (d.placed) d.engine = replay_engine_, d.link = replay_link_;
        const Requester req = d.requester();
        const std::string key = std::string(basename()) + "." + d.name;
        const Addr page = d.map.page_size;
        if (page & (page - 1)) {
            errors.push_back(fmt::format("{}: page_size {} is not a power of two",
                                         config_.where(key + ".map.page_size"), page));
            continue;
        }
        // The device's physical memory: aligned to the mapping page size but not to the next
        // larger size, so the driver's largest-page rule lands on the asked size.
        Addr next_pa = kDataBase + Addr(i) * kDeviceSpan + (page < (Addr(1) << 30) ? page : 0);
        auto alloc_pa = [&](Addr len) {
            Addr pa = next_pa;
            next_pa += (len + page - 1) & ~(page - 1);
            return pa;
        };
        Iommu* m = nullptr;
        for (auto& u : iommus_)
            if (u->name == d.iommu) m = u.get();
        std::vector<DmaRegion> regions;
        uint16_t did = 0, pe = 0;
        std::string why;
        unsigned unit_index = 0;
        while (m && iommus_[unit_index].get() != m) ++unit_index;
        for (const std::string& text : d.regions) {
            if (auto r = parse_region(text, unit_index, &why))
                regions.push_back(*r);
            else
                errors.push_back(fmt::format("{}: {}", config_.where(key + ".regions"), why));
            if (!m && !regions.empty() && regions.back().kind == DmaRegion::Kind::Translate)
                errors.push_back(fmt::format("{}: a translated region needs the device's iommu",
                                             config_.where(key + ".regions")));
        }
        const bool explicit_regions = !regions.empty();
        if (!m) {
            if (!explicit_regions)
                regions.push_back({"direct", 0, ~Addr(0), DmaRegion::Kind::Bypass, 0, 0});
            d.mapper = std::make_unique<DirectDmaApi>();
        } else {
            if (!explicit_regions)
                regions.push_back(
                    {m->name, 0, ~Addr(0), DmaRegion::Kind::Translate, unit_index, 0});
            if (m->vtd_drv) {
                auto dd = m->vtd_drv->create_domain({}, &why);
                if (!dd || !m->vtd_drv->attach(req.rid, *dd, &why)) {
                    errors.push_back(fmt::format("{}: attaching to {}: {}", d.name, m->name, why));
                    continue;
                }
                did = *dd;
                d.mapper = std::make_unique<VtdDmaApi>(*m->vtd_drv, *m->feeder, did, m->driver);
            } else {
                unsigned shift = 0;
                while ((Addr(1) << shift) < page) ++shift;
                auto p = m->phb_drv->create_pe(&why);
                if (!p || !m->phb_drv->create_ddw(*p, Addr(64) << 30, shift, 2, &why)) {
                    errors.push_back(fmt::format("{}: PE and DDW on {}: {}", d.name, m->name, why));
                    continue;
                }
                pe = *p;
                m->phb_drv->assign(req.rid, pe);
                d.mapper = std::make_unique<SpaprDmaApi>(*m->phb_drv, *m->phb, pe, m->driver,
                                                         m->tce_kills);
            }
        }
        // A long-lived (coherent or pooled) mapping of `len` bytes: its bus address.
        auto map_long = [&](Addr len) -> Addr {
            const Addr pa = alloc_pa(len);
            const Addr full = (len + page - 1) & ~(page - 1);
            if (!m) return pa;
            std::optional<Addr> iova;
            if (m->vtd_drv)
                iova = m->vtd_drv->map_alloc(did, pa, full, kPermRW, ~Addr(0), &why);
            else
                iova = m->phb_drv->map_alloc(pe, 1, pa, full, kPermRW, ~Addr(0), &why);
            if (!iova)
                errors.push_back(fmt::format("{}: mapping {:#x} bytes: {}", d.name, len, why));
            return iova.value_or(0);
        };
        if (std::string e = f.router->set_regions(req.rid, regions); !e.empty())
            errors.push_back(fmt::format("{}: {}", config_.where(key + ".regions"), e));
        StatGroup& g = stats_.child(d.name);
        try {
            if (d.type == "replay") {
                if (!m || !m->vtd_drv) {
                    errors.push_back(fmt::format(
                        "{}: a replay device needs a VT-d unit (`iommu = ...`)", d.name));
                    continue;
                }
                auto r =
                    std::make_unique<ReplayDevice>(d.name.c_str(), d.engine, g, *replay_check_);
                ReplayDevice* rp = r.get();
                targets[req.rid] = {
                    rp, m->vtd_drv.get(), m->feeder.get(), &m->vtd->unit(), did, &m->driver, {}};
                d.summary = [rp] { return rp->summary(); };
                d.pl =
                    std::make_unique<PcieLink>((d.name + "_link").c_str(), d.link, g.child("link"));
                r->dma.bind(d.pl->device);
                d.dev = std::move(r);
            } else if (d.type == "dma-bench") {
                Addr iova = 0;
                const Addr len = (d.bench.window + page - 1) & ~(page - 1);
                const Addr pa = alloc_pa(len);
                if (!m) {
                    iova = pa;
                } else if (m->vtd_drv) {  // explicit IOVA: aligned to the page size asked for
                    iova = kVtdIovaBase + Addr(i) * kDeviceSpan;
                    if (!m->vtd_drv->map(did, iova, pa, len, kPermRW, &why))
                        errors.push_back(fmt::format("{}: mapping the buffer: {}", d.name, why));
                } else {
                    iova = spapr::kDdwBusOffset;
                    if (!m->phb_drv->map(pe, iova, pa, len, kPermRW, &why))
                        errors.push_back(fmt::format("{}: mapping the buffer: {}", d.name, why));
                }
                auto b = std::make_unique<DmaBench>(d.name.c_str(), d.bench, d.engine, iova, g);
                DmaBench* bp = b.get();
                d.finished = [bp] { return bp->finished(); };
                d.finished_ev = &bp->finished_event();
                d.summary = [bp] { return bp->summary(); };
                d.progress = [bp, &d] {
                    return std::min(1.0, double(bp->result().transfers) /
                                             double(d.bench.count ? d.bench.count : 1));
                };
                d.pl =
                    std::make_unique<PcieLink>((d.name + "_link").c_str(), d.link, g.child("link"));
                b->dma.bind(d.pl->device);
                d.dev = std::move(b);
            } else if (d.type == "nic") {
                NicLayout lay;
                lay.rx_ring = map_long(d.nic.ring_bytes());
                lay.tx_ring = map_long(d.nic.ring_bytes());
                lay.buffers = d.nic.buffers == NicBufferPolicy::Pool
                                  ? map_long(d.nic.buffer_region_bytes())
                                  : alloc_pa(d.nic.buffer_region_bytes());
                auto n =
                    std::make_unique<Nic>(d.name.c_str(), d.nic, d.engine, lay, d.mapper.get(), g);
                Nic* np = n.get();
                d.finished = [np] { return np->finished(); };
                d.finished_ev = &np->finished_event();
                d.summary = [np] { return np->summary(); };
                d.progress = [np] { return np->progress(); };
                d.pl =
                    std::make_unique<PcieLink>((d.name + "_link").c_str(), d.link, g.child("link"));
                n->dma.bind(d.pl->device);
                d.dev = std::move(n);
            } else {
                NvmeLayout lay;
                lay.sq = map_long(d.nvme.sq_bytes());
                lay.cq = map_long(d.nvme.cq_bytes());
                lay.prp_lists = map_long(d.nvme.prp_list_bytes());
                lay.buffers = d.nvme.buffers == NvmeBufferPolicy::Pool
                                  ? map_long(d.nvme.buffer_region_bytes())
                                  : alloc_pa(d.nvme.buffer_region_bytes());
                auto n = std::make_unique<Nvme>(d.name.c_str(), d.nvme, d.engine, lay,
                                                d.mapper.get(), g);
                Nvme* np = n.get();
                d.finished = [np] { return np->finished(); };
                d.finished_ev = &np->finished_event();
                d.summary = [np] { return np->summary(); };
                d.progress = [np] { return np->progress(); };
                d.pl =
                    std::make_unique<PcieLink>((d.name + "_link").c_str(), d.link, g.child("link"));
                n->dma.bind(d.pl->device);
                d.dev = std::move(n);
            }
        } catch (const std::invalid_argument& e) {
            errors.push_back(fmt::format("{}: {}", d.name, e.what()));
            continue;
        }
        if (d.sw.empty()) {
            d.pl->host.bind(rc_named(d.rc).root_port);
        } else {
            for (auto& w : switches_)
                if (w->name == d.sw && w->sw) d.pl->host.bind(w->sw->downstream_port);
        }
    }
    if (!errors.empty()) throw ConfigError(errors);
    if (replay_spec_) {
        replay_host_ = std::make_unique<ReplayHost>(
            "replay", replay_spec_->trace, replay_params_, std::move(targets),
            replay_spec_->summary.records, *replay_check_, stats_.child("replay"));
        // Replay devices are done when the host has replayed the trace and they have drained.
        for (auto& d : devices_) {
            ReplayHost* h = replay_host_.get();
            d->finished = [h] { return h->finished(); };
            d->finished_ev = &h->finished_event();
            d->progress = [h] { return h->progress(); };
        }
    }
    sc_core::sc_spawn([this] { supervise(); }, "supervisor");
}

// The host brings the VT-d units up (root table, queued invalidation, translation) and
// submits the invalidations of its attaches, as its driver would at boot. At time 0 of the
// simulation, before any device runs: sockets are only usable once elaboration is complete.
void System::bring_up() {
    for (auto& m : iommus_) {
        if (!m->vtd) continue;
        namespace reg = vtd::reg;
        VtdIommu& r = *m->vtd;
        const uint64_t ttm = m->mode == "scalable" ? uint64_t(vtd::Ttm::Scalable) << 10 : 0;
        r.mmio_write(reg::RTADDR, 8, m->vtd_drv->hw().rtaddr | ttm, 0);
        r.mmio_write(reg::GCMD, 4, vtd::gcmd::SRTP, 0);
        r.mmio_write(reg::IQA, 8, m->queue->iqa(), 0);
        r.mmio_write(reg::GCMD, 4, vtd::gcmd::QIE, 0);
        r.mmio_write(reg::GCMD, 4, vtd::gcmd::QIE | vtd::gcmd::TE, 0);
        m->feeder->submit(0);
        m->vtd->unit().engine().set_oracle(
            [d = m->vtd_drv.get()](const Requester& q, Addr a) { return d->expect(q, a); });
    }
    for (auto& m : iommus_)
        if (m->phb)
            m->phb->engine().set_oracle(
                [d = m->phb_drv.get()](const Requester& q, Addr a) { return d->expect(q, a); });
}

void System::start_of_simulation() {
    bring_up();
}

bool System::devices_done() const {
    if (replay_host_ && !replay_host_->finished()) return false;
    for (const auto& d : devices_)
        if (!d->finished()) return false;
    return true;
}

double System::progress() const {
    if (replay_host_) return replay_host_->progress();
    double sum = 0;
    for (const auto& d : devices_) sum += d->finished() ? 1.0 : d->progress();
    return devices_.empty() ? 1.0 : sum / double(devices_.size());
}

std::vector<std::string> System::device_summaries() const {
    std::vector<std::string> out;
    for (const auto& d : devices_) out.push_back(d->name + ": " + d->summary());
    return out;
}

std::vector<std::string> System::iommu_names() const {
    std::vector<std::string> out;
    for (const auto& m : iommus_) out.push_back(m->name);
    return out;
}

void System::supervise() {
    sc_core::sc_event_or_list any;
    for (auto& d : devices_) any |= *d->finished_ev;
    if (replay_host_) any |= replay_host_->finished_event();
    // Wake when a device finishes, and every 10 us of simulated time to honour a stop request
    // (Ctrl-C) and the time limit.
    const sc_core::sc_time tick(10, sc_core::SC_US);
    const sc_core::sc_time limit(double(params_.max_time_us), sc_core::SC_US);
    while (!devices_done() && !stop_requested_ &&
           (!params_.max_time_us || sc_core::sc_time_stamp() < limit))
        wait(tick, any);
    done_.notify(sc_core::SC_ZERO_TIME);
    sc_core::sc_stop();
}

}  // namespace iommusim
