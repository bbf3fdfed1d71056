// System::build: the modules of the declared topology, made and wired (system_parts.h).
#include "system_parts.h"

namespace iommusim {

namespace {

// "name:kind:base:size[:phys]" (kind translate, bypass or reserved; numbers as in
// configuration values: 0x..., 4K, 1G, 1Ti) -> a region; `unit` is the device's translation
// unit. A region must be non-empty and end below 2^64 (base and phys alike).
std::optional<DmaRegion> parse_region(const std::string& text, unsigned unit, std::string* why) {
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t i = 0; i <= text.size(); ++i)
        if (i == text.size() || text[i] == ':')
            f.push_back(text.substr(start, i - start)), start = i + 1;
    DmaRegion r;
    if (f.size() < 4 || f.size() > 5) {
        *why = fmt::format("region {}: expected name:kind:base:size[:phys]", quote(text));
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
        *why = fmt::format("region {}: kind {} (expected translate, bypass or reserved)",
                           quote(text), quote(f[1]));
        return std::nullopt;
    }
    const uint64_t kMax = ~uint64_t(0);
    auto num = [&](const char* what, const std::string& t, uint64_t lo, Addr* out) {
        const std::string e = config_detail::parse_unsigned(t, true, lo, kMax, out);
        if (!e.empty()) *why = fmt::format("region {}: {}: {}", quote(text), what, e);
        return e.empty();
    };
    if (!num("base", f[2], 0, &r.base) || !num("size", f[3], 1, &r.size) ||
        (f.size() == 5 && !num("phys", f[4], 0, &r.phys_base)))
        return std::nullopt;
    const Addr top = f.size() == 5 ? std::max(r.base, r.phys_base) : r.base;
    if (r.size - 1 > kMax - top) {
        *why = fmt::format(
            "region {}: {:#x} + size {:#x} passes 2^64 (expected a region ending at or below "
            "0xffffffffffffffff)",
            quote(text), top, r.size);
        return std::nullopt;
    }
    return r;
}
// A device's memory as its model asks for it (System::build_device); failures are listed
// with the build's other errors.
struct BuildMemory final : DeviceMemory {
    std::function<Addr(Addr)> alloc_pa;
    Addr page;
    DeviceDomain* domain;  // null: no IOMMU, bus address = physical address
    DmaMapper* mapper;
    std::string name, why;
    std::vector<std::string>& errors;
    explicit BuildMemory(std::vector<std::string>& e) : errors(e) {}
    Addr full(Addr len) const { return (len + page - 1) & ~(page - 1); }
    Addr alloc(uint64_t len) override { return alloc_pa(len); }
    Addr map_long(uint64_t len) override {
        const Addr pa = alloc_pa(len);
        if (!domain) return pa;
        const std::optional<Addr> iova = domain->map_long(pa, full(len), &why);
        if (!iova) errors.push_back(fmt::format("{}: mapping {:#x} bytes: {}", name, len, why));
        return iova.value_or(0);
    }
    // An explicit bus address, aligned to the page size asked for.
    Addr map_buffer(uint64_t len) override {
        const Addr pa = alloc_pa(full(len));
        if (!domain) return pa;
        const std::optional<Addr> iova = domain->map_buffer(pa, full(len), slot, &why);
        if (!iova) errors.push_back(fmt::format("{}: mapping the buffer: {}", name, why));
        return iova.value_or(0);
    }
    DmaMapper* dma_api() override { return mapper; }
    SvaSpaces* sva() override { return domain ? domain->sva(alloc_pa) : nullptr; }
    size_t slot = 0;
};

}  // namespace

void System::build() {
    registry_.apply(config_);
    registry_.check_unused(config_);
    check_params();
    tlm_utils::tlm_quantumkeeper::set_global_quantum(
        sc_core::sc_time(double(params_.quantum_ns), sc_core::SC_NS));

    // --seed reaches the units' random cache replacement too (see derived_seed).
    for (auto& m : iommus_) m->bundle->unit_params().seed = derived_seed(params_.seed, m->name);
    std::vector<std::string> errors;  // every configuration error, reported at once
    build_fabric(errors);
    build_iommus();
    ReplayTargets targets = start_replay();
    for (size_t i = 0; i < devices_.size(); ++i) build_device(i, targets, errors);
    if (!errors.empty()) throw ConfigError(errors);
    if (replay_spec_) build_replay_hosts(targets);
    for (auto& d : devices_)
        sc_core::sc_spawn(
            [this, dev = d.get()] {
                wait(*dev->finished_ev);
                dev->ended = true;
                device_ended_.notify(sc_core::SC_ZERO_TIME);
            },
            (d->name + "_end").c_str());
    sc_core::sc_spawn([this] { supervise(); }, "supervisor");
}

// Memory, the router and its multiplexers, the root complexes and the switches.
void System::build_fabric(std::vector<std::string>& errors) {
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
    if (iommus_.empty()) {
        f.no_iommu = std::make_unique<NoIommu>("no_iommu");
        f.router->units.bind(f.no_iommu->upstream);
        f.no_iommu->walk.bind(f.walk_mux->inputs);
    }
    for (auto& r : rcs_) {
        r->rc = std::make_unique<RootComplex>(r->name.c_str(), r->params, stats_.child(r->name));
        r->rc->host.bind(f.rc_mux->inputs);
    }
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
}

// A root complex by name (checked before the build: an unknown name is the first).
RootComplex& System::rc_named(const std::string& n) {
    for (auto& r : rcs_)
        if (r->name == n) return *r->rc;
    return *rcs_[0]->rc;
}

// Each unit, built by its architecture's bundle, between the router and memory.
void System::build_iommus() {
    Fabric& f = *fabric_;
    for (size_t i = 0; i < iommus_.size(); ++i) {
        Iommu& m = *iommus_[i];
        StatGroup& g = stats_.child(m.name);
        m.bundle->build(m.name, {f.store, kStructBase + Addr(i) * kStructSpan, kStructSpan,
                                 replay_spec_ != nullptr, replay_params_.large_pages, g});
        m.hit_rate = &g.child("iotlb").counter(
            "hit_rate_ppm", "IOTLB hits per million lookups (derived at the end of the run)");
        IommuUnit& unit = m.bundle->unit();
        f.router->units.bind(unit.upstream);
        unit.downstream.bind(f.data_mux->inputs);
        unit.walk.bind(f.walk_mux->inputs);
    }
}

// Replay: each tenant's targets (filled as the devices are built) and check (with one trace,
// the check is the total one).
System::ReplayTargets System::start_replay() {
    const size_t tenants = replay_spec_ ? replay_spec_->tenants.size() : 0;
    ReplayTargets targets(tenants);
    if (replay_spec_) replay_check_ = std::make_unique<ReplayCheck>(stats_.child("replay"));
    for (size_t t = 0; tenants > 1 && t < tenants; ++t)
        replay_tenant_checks_.push_back(std::make_unique<ReplayCheck>(
            stats_.child("replay").child(fmt::format("tenant{}", t)), *replay_check_));
    return targets;
}

// The tenant of a replay device: a declared one for no traced requester goes to the first.
size_t System::tenant_of(uint16_t rid) const {
    auto it = replay_tenant_of_.find(rid);
    return it == replay_tenant_of_.end() ? 0 : it->second;
}

// Device i: its memory, its regions at the router, its domain and DMA API, its model and
// link, its place in the fabric and its ATS path. Errors are listed, not thrown.
void System::build_device(size_t i, ReplayTargets& targets, std::vector<std::string>& errors) {
    Fabric& f = *fabric_;
    const size_t tenants = targets.size();
    Device& d = *devices_[i];
    if (d.placed) d.engine = replay_engine_, d.link = replay_link_;
    const Requester req = d.requester();
    const std::string key = std::string(basename()) + "." + d.name;
    const Addr page = d.map.page_size;
    if (page & (page - 1)) {
        errors.push_back(fmt::format("{}: page_size {} is not a power of two",
                                     config_.where(key + ".map.page_size"), page));
        return;
    }
    // The device's physical memory: aligned to the mapping page size but not to the next
    // larger size, so the driver's largest-page rule lands on the asked size.
    // Each device's memory is kDeviceSpan bytes; more would overlap the next device's.
    const Addr span_end = kDataBase + Addr(i + 1) * kDeviceSpan;
    Addr next_pa = kDataBase + Addr(i) * kDeviceSpan + (page < (Addr(1) << 30) ? page : 0);
    bool span_exceeded = false;
    auto alloc_pa = [&](Addr len) {
        Addr pa = next_pa;
        const Addr full = (len + page - 1) & ~(page - 1);
        if (full < len || full > span_end - next_pa)
            span_exceeded = true;
        else
            next_pa += full;
        return pa;
    };
    Iommu* m = nullptr;
    for (auto& u : iommus_)
        if (u->name == d.iommu) m = u.get();
    std::vector<DmaRegion> regions;
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
        if (d.viommu.mode != ViommuMode::None)
            errors.push_back(fmt::format("{}: a guest IOMMU needs the device's iommu",
                                         config_.where(key + ".viommu.mode")));
    } else {
        if (!explicit_regions)
            regions.push_back({m->name, 0, ~Addr(0), DmaRegion::Kind::Translate, unit_index, 0});
        d.domain = m->bundle->attach(req, page, &why);
        if (!d.domain) {
            errors.push_back(fmt::format("{}: attaching to {}: {}", d.name, m->name, why));
            return;
        }
        if (d.viommu.mode != ViommuMode::None) {
            d.domain = attach_viommu(std::move(d.domain), d.viommu,
                                     stats_.child(d.name).child("viommu"), &why);
            if (!d.domain) {
                errors.push_back(fmt::format("{}: {}", config_.where(key + ".viommu.mode"), why));
                return;
            }
        }
        d.mapper = d.domain->dma_api();
    }
    // The device's memory as its model asks for it; failures are listed with the others.
    BuildMemory mem(errors);
    mem.alloc_pa = alloc_pa;
    mem.page = page;
    mem.domain = d.domain.get();
    mem.mapper = d.mapper.get();
    mem.name = d.name;
    mem.slot = i;
    if (std::string e = f.router->set_regions(req.rid, regions); !e.empty())
        errors.push_back(fmt::format("{}: {}", config_.where(key + ".regions"), e));
    StatGroup& g = stats_.child(d.name);
    ats::Function* ats_fn = nullptr;  // the device's ATS function, if it has one enabled
    bool ats_pri = false;
    try {
        if (d.type == "replay") {
            std::unique_ptr<RecordedDomain> rec = m ? d.domain->recorded() : nullptr;
            if (!rec) {
                errors.push_back(fmt::format(
                    "{}: a replay device needs a unit whose architecture takes recorded "
                    "maps (`iommu = ...`{})",
                    d.name, m ? fmt::format("; {} is {}", m->name, m->arch) : ""));
                return;
            }
            const size_t t = tenant_of(req.rid);
            auto r = std::make_unique<ReplayDevice>(
                d.name.c_str(), d.engine, g,
                tenants > 1 ? *replay_tenant_checks_[t] : *replay_check_);
            ReplayDevice* rp = r.get();
            d.tenant = t;
            targets[t][req.rid] = {rp, std::move(rec), &m->bundle->unit(), {}};
            d.summary = [rp] { return rp->summary(); };
            d.pl = std::make_unique<PcieLink>((d.name + "_link").c_str(), d.link, g.child("link"));
            r->dma.bind(d.pl->device);
            d.dev = std::move(r);
        } else {
            BuiltDevice b = d.kind->build(d.name, d.engine, mem, g);
            d.finished = std::move(b.finished);
            d.finished_ev = b.finished_event;
            d.summary = std::move(b.summary);
            d.progress = std::move(b.progress);
            ats_fn = b.ats;
            ats_pri = b.pri;
            d.pl = std::make_unique<PcieLink>((d.name + "_link").c_str(), d.link, g.child("link"));
            b.dma->bind(d.pl->device);
            d.dev = std::move(b.module);
        }
    } catch (const std::invalid_argument& e) {
        errors.push_back(located(key, e.what()));
        return;
    }
    if (span_exceeded) {
        errors.push_back(fmt::format(
            "{}: {}'s buffers (window, rings, buffer pools) need more than the {} GiB of "
            "memory each device is given",
            config_.where(key + "." + (d.kind ? d.kind->size_key() : "type")), d.name,
            kDeviceSpan >> 30));
        return;
    }
    if (d.sw.empty()) {
        d.pl->host.bind(rc_named(d.rc).root_port);
    } else {
        for (auto& w : switches_)
            if (w->name == d.sw && w->sw) d.pl->host.bind(w->sw->downstream_port);
    }
    if (ats_fn && !m) {
        errors.push_back(
            fmt::format("{}: ATS needs the device's iommu", config_.where(key + ".ats")));
    } else if (ats_fn && !m->bundle->unit().ats_supported()) {
        errors.push_back(fmt::format("{}: ATS: {}'s architecture ({}) has no ATS",
                                     config_.where(key + ".ats"), m->name, m->arch));
    } else if (ats_fn) {
        attach_ats(d, *m, *ats_fn, ats_pri);
    }
}

// The unit reaches the function over the device's path: root port, then the switch and its
// uplink if any, then the device's link; messages pay each link's serialization in their
// direction and every latency on the way.
void System::attach_ats(Device& d, Iommu& m, ats::Function& fn, bool pri) {
    PcieLink* dl = d.pl.get();
    PcieLink* ul = nullptr;
    Tick sw_lat = 0;
    std::string rc_name = d.rc;
    for (auto& w : switches_)
        if (!d.sw.empty() && w->name == d.sw)
            ul = w->link.get(), sw_lat = ticks_from_ns(w->params.latency_ns), rc_name = w->rc;
    Tick rc_lat = ticks_from_ns(rcs_[0]->params.latency_ns);
    for (auto& r : rcs_)
        if (r->name == rc_name) rc_lat = ticks_from_ns(r->params.latency_ns);
    ats::Path path;
    path.down = [=](Tick t, unsigned n) {
        t += rc_lat;
        if (ul) t = ul->message(true, n, t) + sw_lat;
        return dl->message(true, n, t);
    };
    path.up = [=](Tick t, unsigned n) {
        t = dl->message(false, n, t);
        if (ul) t = ul->message(false, n, t + sw_lat);
        return t + rc_lat;
    };
    m.bundle->unit().attach_function(fn, std::move(path), pri);
}

// Replay: one host process per tenant, each translation observed by its requester's device.
void System::build_replay_hosts(ReplayTargets& targets) {
    const size_t tenants = targets.size();
    StatGroup& rg = stats_.child("replay");
    for (size_t t = 0; t < tenants; ++t) {
        const ReplayTenant& tn = replay_spec_->tenants[t];
        if (tenants == 1) {
            replay_hosts_.push_back(std::make_unique<ReplayHost>(
                "replay", tn.trace, replay_params_, std::move(targets[t]), tn.summary.records,
                *replay_check_, rg));
            continue;
        }
        const std::string name = fmt::format("tenant{}", t);
        replay_hosts_.push_back(std::make_unique<ReplayHost>(
            ("replay_" + name).c_str(), tn.trace, replay_params_, std::move(targets[t]),
            tn.summary.records, *replay_tenant_checks_[t], rg.child(name), replay_rid_offset_[t],
            *replay_tenant_params_[t]));
    }
    // The hosts' counters summed over the tenants (finish_stats).
    if (tenants > 1)
        for (const auto& e : rg.child("tenant0").entries())
            if (e.counter && e.name != "translations" && e.name != "translations_checked" &&
                e.name != "mismatches" && e.name != "faults" && e.name != "iotlb_hits" &&
                e.name != "iotlb_misses")
                replay_totals_.push_back({e.name, &rg.counter(e.name, e.doc)});
    // One translate hook per unit, shared by the tenants: each translation goes to the
    // replay device of its requester.
    std::vector<IommuUnit*> hooked;
    for (const auto& h : replay_hosts_)
        for (const auto& [rid, tg] : h->targets())
            if (std::find(hooked.begin(), hooked.end(), tg.unit) == hooked.end()) {
                hooked.push_back(tg.unit);
                tg.unit->on_translate(
                    [this](const Requester& q, Addr iova, Tick arrival, const TranslateOutcome& o) {
                        for (const auto& host : replay_hosts_)
                            if (ReplayDevice* dev = host->device(q.rid)) {
                                dev->observe(iova, arrival, o);
                                return;
                            }
                    });
            }
    // Replay devices are done when their host has replayed its trace and they have drained.
    for (auto& d : devices_) {
        ReplayHost* h = replay_hosts_[d->tenant].get();
        d->finished = [h] { return h->finished(); };
        d->finished_ev = &h->finished_event();
        d->progress = [h] { return h->progress(); };
    }
}

}  // namespace iommusim
