#include "system.h"

#include <fmt/format.h>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "arch/spapr/spapr_walker.h"
#include "devices/dma_bench.h"
#include "host/spapr_driver.h"
#include "host/vtd_driver.h"
#include "host/vtd_inv_queue.h"
#include "iommu/region_router.h"
#include "memory/mux.h"
#include "pcie/pcie_link.h"
#include "vtd_iommu.h"

namespace iommusim {

namespace {
constexpr Addr kDataBase = Addr(8) << 30;     // device buffers, 64 GiB apart
constexpr Addr kQueueBase = Addr(120) << 30;  // VT-d invalidation queues
constexpr Addr kVtdIovaBase = Addr(1) << 32;  // where VT-d devices' windows are mapped
uint16_t rid_of(const DmaBenchParams& b) {
    return uint16_t((b.bus << 8) | (b.device << 3) | b.function);
}
}  // namespace

// How a device's buffer is mapped.
struct MapParams {
    uint64_t page_size = 4096;  // IOMMU page size of the device's buffer mapping

    template <typename V>
    void visit(V&& v) {
        v("page_size", page_size, "bytes",
          "IOMMU page size the driver maps the buffer with: 4K, 64K, 2M, 16M, 1G", 4096,
          uint64_t(1) << 30);
    }
};

struct System::Iommu {
    std::string name, arch, mode;
    UnitParams unit;
    // Built:
    std::unique_ptr<vtd::Driver> vtd_drv;
    std::unique_ptr<vtd::InvQueueWriter> queue;
    std::unique_ptr<VtdIommu> vtd;
    std::unique_ptr<spapr::Driver> phb_drv;
    std::unique_ptr<spapr::SpaprWalker> phb_walker;
    std::unique_ptr<IommuUnit> phb;
    IommuUnit& unit_module() { return vtd ? vtd->unit() : *phb; }
};

struct System::Device {
    std::string name, type, iommu, rc, sw;  // sw: the switch it sits behind, or ""
    DmaBenchParams bench;
    DmaEngineParams engine;
    PcieLinkParams link;
    MapParams map;
    std::unique_ptr<DmaBench> dev;
    std::unique_ptr<PcieLink> pl;
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

System::System(sc_core::sc_module_name name, Config& config)
    : sc_module(name), config_(config), stats_(std::string(basename())) {
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
        d->rc = config.get_string(key + ".rc").value_or(rcs_[0]->name);
        if (!known_rc(d->rc))
            errors.push_back(fmt::format("{}: no root complex '{}' in {}.root_complexes",
                                         config.where(key + ".rc"), d->rc, root));
        bool known_sw = d->sw.empty();
        for (auto& w : switches_) known_sw |= w->name == d->sw;
        if (!known_sw)
            errors.push_back(fmt::format("{}: no switch '{}' in {}.switches",
                                         config.where(key + ".switch"), d->sw, root));
        if (d->type != "dma-bench")
            errors.push_back(fmt::format("{}: device type '{}' (expected dma-bench)",
                                         config.where(key + ".type"), d->type));
        bool known = d->iommu == "none";
        for (auto& m : iommus_) known |= m->name == d->iommu;
        if (!known)
            errors.push_back(fmt::format("{}: no IOMMU named '{}' in {}.iommus",
                                         config.where(key + ".iommu"), d->iommu, root));
        d->bench.device = uint8_t(devices_.size() + 1);  // distinct default requesters
        registry_.bind(key, d->bench);
        registry_.bind(key + ".engine", d->engine);
        registry_.bind(key + ".link", d->link);
        registry_.bind(key + ".map", d->map);
        devices_.push_back(std::move(d));
    }
    if (devices_.empty())
        errors.push_back(fmt::format("{}: no devices (expected e.g. `devices = bench0` in [{}])",
                                     config.where(root + ".devices"), root));
    if (!errors.empty()) throw ConfigError(errors);
}

System::~System() = default;

void System::build() {
    registry_.apply(config_);
    registry_.check_unused(config_);
    tlm_utils::tlm_quantumkeeper::set_global_quantum(
        sc_core::sc_time(double(params_.quantum_ns), sc_core::SC_NS));

    fabric_ = std::make_unique<Fabric>();
    Fabric& f = *fabric_;
    f.router = std::make_unique<RegionRouter>("router", stats_.child("router"));
    f.rc_mux = std::make_unique<Mux>("rc_mux");
    f.rc_mux->output.bind(f.router->upstream);
    for (auto& r : rcs_) {
        r->rc = std::make_unique<RootComplex>(r->name.c_str(), r->params, stats_.child(r->name));
        r->rc->host.bind(f.rc_mux->inputs);
    }
    auto rc_named = [&](const std::string& n) -> RootComplex& {
        for (auto& r : rcs_)
            if (r->name == n) return *r->rc;
        return *rcs_[0]->rc;
    };
    for (auto& w : switches_) {
        StatGroup& g = stats_.child(w->name);
        w->sw = std::make_unique<PcieSwitch>(w->name.c_str(), w->params, g);
        try {
            w->link = std::make_unique<PcieLink>((w->name + "_uplink").c_str(), w->uplink,
                                                 g.child("uplink"));
        } catch (const std::invalid_argument& e) {
            throw ConfigError({fmt::format("{}.uplink: {}", w->name, e.what())});
        }
        w->sw->upstream_port.bind(w->link->device);
        w->link->host.bind(rc_named(w->rc).root_port);
    }
    f.data_mux = std::make_unique<Mux>("data_mux");
    f.walk_mux = std::make_unique<Mux>("walk_mux");
    f.dram = std::make_unique<Dram>("memory", f.store, dram_params_, stats_.child("memory"),
                                    params_.seed);
    f.router->bypass.bind(f.data_mux->inputs);
    f.data_mux->output.bind(f.dram->target);
    f.walk_mux->output.bind(f.dram->walk);

    std::vector<std::string> errors;
    for (size_t i = 0; i < iommus_.size(); ++i) {
        Iommu& m = *iommus_[i];
        StatGroup& g = stats_.child(m.name);
        if (m.arch == "vtd") {
            vtd::DriverConfig dc;
            dc.hw.scalable = m.mode == "scalable";
            m.vtd_drv = std::make_unique<vtd::Driver>(f.store, dc);
            vtd::RegFileConfig rc = vtd::RegFileConfig::scalable_unit();
            m.vtd = std::make_unique<VtdIommu>(m.name.c_str(), rc, m.vtd_drv->hw(), m.unit, g);
            m.queue = std::make_unique<vtd::InvQueueWriter>(
                f.store, kQueueBase + Addr(i) * (1 << 20), 0, dc.hw.scalable);
        } else {
            m.phb_drv = std::make_unique<spapr::Driver>(f.store, spapr::DriverConfig{});
            m.phb_walker = std::make_unique<spapr::SpaprWalker>(m.phb_drv->phb());
            m.phb = std::make_unique<IommuUnit>(m.name.c_str(), m.unit, *m.phb_walker, g);
        }
        f.router->units.bind(m.unit_module().upstream);
        m.unit_module().downstream.bind(f.data_mux->inputs);
        m.unit_module().walk.bind(f.walk_mux->inputs);
    }

    for (size_t i = 0; i < devices_.size(); ++i) {
        Device& d = *devices_[i];
        const Requester req{rid_of(d.bench)};
        const Addr page = d.map.page_size;
        if (page & (page - 1))
            errors.push_back(fmt::format(
                "{}: page_size {} is not a power of two",
                config_.where(basename() + std::string(".") + d.name + ".map.page_size"), page));
        const Addr len = (d.bench.window + page - 1) & ~(page - 1);
        // Aligned to the page size but not to the next larger one, so the driver's
        // largest-page choice lands exactly on the asked size.
        const Addr pa =
            kDataBase + Addr(i) * (Addr(64) << 30) + (page < (Addr(1) << 30) ? page : 0);
        Addr iova = 0;
        std::vector<DmaRegion> regions;
        std::string why;
        if (d.iommu == "none") {
            iova = pa;
            regions.push_back({"direct", 0, ~Addr(0), DmaRegion::Kind::Bypass, 0, 0});
        } else {
            size_t u = 0;
            while (iommus_[u]->name != d.iommu) ++u;
            Iommu& m = *iommus_[u];
            regions.push_back({m.name, 0, ~Addr(0), DmaRegion::Kind::Translate, unsigned(u), 0});
            if (m.vtd_drv) {
                iova = kVtdIovaBase + Addr(i) * (Addr(64) << 30);
                auto did = m.vtd_drv->create_domain({}, &why);
                if (!did || !m.vtd_drv->attach(req.rid, *did, &why) ||
                    !m.vtd_drv->map(*did, iova, pa, len, kPermRW, &why))
                    errors.push_back(fmt::format("{}: mapping the buffer: {}", d.name, why));
            } else {
                unsigned shift = 0;
                while ((Addr(1) << shift) < page) ++shift;
                auto pe = m.phb_drv->create_pe(&why);
                iova = spapr::kDdwBusOffset;
                if (!pe || !m.phb_drv->create_ddw(*pe, Addr(64) << 30, shift, 2, &why) ||
                    !m.phb_drv->map(*pe, iova, pa, len, kPermRW, &why))
                    errors.push_back(fmt::format("{}: mapping the buffer: {}", d.name, why));
                else
                    m.phb_drv->assign(req.rid, *pe);
            }
        }
        if (std::string e = f.router->set_regions(req.rid, regions); !e.empty())
            errors.push_back(d.name + ": " + e);
        StatGroup& g = stats_.child(d.name);
        try {
            d.dev = std::make_unique<DmaBench>(d.name.c_str(), d.bench, d.engine, iova, g);
            d.pl = std::make_unique<PcieLink>((d.name + "_link").c_str(), d.link, g.child("link"));
        } catch (const std::invalid_argument& e) {
            errors.push_back(fmt::format("{}: {}", d.name, e.what()));
            continue;
        }
        d.dev->dma.bind(d.pl->device);
        if (d.sw.empty()) {
            d.pl->host.bind(rc_named(d.rc).root_port);
        } else {
            for (auto& w : switches_)
                if (w->name == d.sw) d.pl->host.bind(w->sw->downstream_port);
        }
    }
    if (!errors.empty()) throw ConfigError(errors);

    sc_core::sc_spawn([this] { supervise(); }, "supervisor");
}

bool System::devices_done() const {
    for (const auto& d : devices_)
        if (!d->dev->finished()) return false;
    return true;
}

double System::progress() const {
    double sum = 0;
    for (const auto& d : devices_) {
        DmaBenchResult r = d->dev->result();
        const double want = double(d->bench.count ? d->bench.count : 1);
        sum += d->dev->finished() ? 1.0 : std::min(1.0, double(r.transfers) / want);
    }
    return devices_.empty() ? 1.0 : sum / double(devices_.size());
}

std::vector<std::string> System::device_summaries() const {
    std::vector<std::string> out;
    for (const auto& d : devices_) out.push_back(d->name + ": " + d->dev->summary());
    return out;
}

std::vector<std::string> System::iommu_names() const {
    std::vector<std::string> out;
    for (const auto& m : iommus_) out.push_back(m->name);
    return out;
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
        if (auto iqt = m->queue->append(m->vtd_drv->descriptors(), r.mmio_read(reg::IQH, 8)))
            r.mmio_write(reg::IQT, 8, *iqt, 0);
        m->vtd->unit().engine().set_oracle(
            [d = m->vtd_drv.get()](const Requester& q, Addr a) { return d->expect(q, a); });
    }
}

void System::start_of_simulation() {
    bring_up();
}

void System::supervise() {
    sc_core::sc_event_and_list all;
    for (auto& d : devices_)
        if (!d->dev->finished()) all &= d->dev->finished_event();
    // Wake every 10 us of simulated time to honour a stop request (Ctrl-C).
    const sc_core::sc_time tick(10, sc_core::SC_US);
    const sc_core::sc_time limit(double(params_.max_time_us), sc_core::SC_US);
    while (!devices_done() && !stop_requested_ &&
           (!params_.max_time_us || sc_core::sc_time_stamp() < limit))
        wait(tick, all);
    done_.notify(sc_core::SC_ZERO_TIME);
    sc_core::sc_stop();
}

}  // namespace iommusim
