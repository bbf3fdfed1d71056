// System from the configuration: the topology's modules, their names and parameters, and the
// checks that need no module (system_parts.h).
#include "system_parts.h"

namespace iommusim {

namespace {
// Module names become key and statistics path components.
constexpr size_t kMaxNameLength = 64;
bool valid_component(const std::string& n) {
    if (n.empty() || n.size() > kMaxNameLength) return false;
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    return true;
}

}  // namespace

// Root complexes, switches, IOMMUs and devices share one namespace (system.<name>.*, and
// their statistics groups): a name declared twice, a reserved one or one that is no single
// name component is an error, and the module is skipped so that it does not bring a cascade
// of follow-up errors with it.
class System::Names {
public:
    Names(const Config& config, std::string root, std::vector<std::string>& errors)
        : config_(config), root_(std::move(root)), errors_(errors) {}
    // `n`, declared in the list `list`: false (and an error listed) if it may not be used.
    bool claim(const std::string& list, const std::string& n) {
        const std::string where = config_.where(root_ + "." + list);
        std::string bad;
        if (!valid_component(n))
            bad = fmt::format("{} is not a name (expected 1..{} letters, digits, '_' and '-')",
                              quote(n), kMaxNameLength);
        else if (n == "memory" || n == "router" || n == "replay")
            bad = fmt::format("'{}' is reserved ({}.{}.* is the {})", n, root_, n,
                              n == "memory"   ? "DRAM"
                              : n == "router" ? "region router"
                                              : "trace replay");
        else if (auto [it, fresh] = claimed_.emplace(n, list); !fresh)
            bad = fmt::format(
                "'{}' is declared twice (also in {}.{}); names of root complexes, "
                "switches, IOMMUs and devices must differ",
                n, root_, it->second);
        if (!bad.empty()) errors_.push_back(fmt::format("{}: {}", where, bad));
        return bad.empty();
    }

private:
    const Config& config_;
    const std::string root_;
    std::vector<std::string>& errors_;
    std::unordered_map<std::string, std::string> claimed_;  // name -> list that declared it
};

System::System(sc_core::sc_module_name name, Config& config, const ReplaySpec* replay)
    : sc_module(name), config_(config), stats_(std::string(basename())), replay_spec_(replay) {
    const std::string root = basename();
    registry_.bind(root, params_);
    registry_.bind(root + ".memory", dram_params_);
    std::vector<std::string> errors;  // every topology error, reported at once
    Names names(config, root, errors);
    declare_root_complexes(names);
    if (rcs_.empty()) throw ConfigError(errors);  // the messages say why; nothing to attach to
    declare_switches(names, errors);
    declare_iommus(names, errors);
    declare_devices(names, errors);
    if (replay) {
        declare_replay(*replay, errors);
    } else if (devices_.size() > kMaxDevices) {
        errors.push_back(fmt::format("{}: {} devices (expected at most {})",
                                     config.where(root + ".devices"), devices_.size(),
                                     kMaxDevices));
    } else if (devices_.empty() && config.get_list(root + ".devices").empty()) {
        errors.push_back(fmt::format("{}: no devices (expected e.g. `devices = bench0` in [{}])",
                                     config.where(root + ".devices"), root));
    }
    if (!errors.empty()) throw ConfigError(errors);
}

// system.root_complexes (default: one named rc).
void System::declare_root_complexes(Names& names) {
    const std::string root = basename();
    std::vector<std::string> rc_names = config_.get_list(root + ".root_complexes");
    if (rc_names.empty()) rc_names = {"rc"};
    for (const std::string& n : rc_names) {
        if (!names.claim("root_complexes", n)) continue;
        auto r = std::make_unique<RootComplexSpec>();
        r->name = n;
        registry_.bind(root + "." + n, r->params);
        rcs_.push_back(std::move(r));
    }
}

// `key`.rc and `key`.switch name a declared root complex and switch (or no switch); else an
// error at that key.
void System::check_rc(const std::string& key, const std::string& rc,
                      std::vector<std::string>& errors) const {
    for (auto& r : rcs_)
        if (r->name == rc) return;
    errors.push_back(fmt::format("{}: no root complex {} in {}.root_complexes",
                                 config_.where(key + ".rc"), quote(rc), basename()));
}

void System::check_switch(const std::string& key, const std::string& sw,
                          std::vector<std::string>& errors) const {
    if (sw.empty()) return;
    for (auto& w : switches_)
        if (w->name == sw) return;
    errors.push_back(fmt::format("{}: no switch {} in {}.switches", config_.where(key + ".switch"),
                                 quote(sw), basename()));
}

// system.switches: each on a root complex, with its uplink.
void System::declare_switches(Names& names, std::vector<std::string>& errors) {
    const std::string root = basename();
    for (const std::string& n : config_.get_list(root + ".switches")) {
        if (!names.claim("switches", n)) continue;
        auto w = std::make_unique<SwitchSpec>();
        w->name = n;
        const std::string key = root + "." + n;
        w->rc = config_.get_string(key + ".rc").value_or(rcs_[0]->name);
        check_rc(key, w->rc, errors);
        registry_.bind(key, w->params);
        registry_.bind(key + ".uplink", w->uplink);
        switches_.push_back(std::move(w));
    }
}

// system.iommus: each its architecture's bundle, found by name, which binds its parameters.
void System::declare_iommus(Names& names, std::vector<std::string>& errors) {
    const std::string root = basename();
    for (const std::string& n : config_.get_list(root + ".iommus")) {
        if (!names.claim("iommus", n)) continue;
        auto m = std::make_unique<Iommu>();
        m->name = n;
        const std::string key = root + "." + n;
        m->arch = config_.get_string(key + ".arch").value_or(ArchRegistry::default_name());
        m->bundle = ArchRegistry::create(m->arch);
        if (!m->bundle) {
            errors.push_back(fmt::format("{}: arch {} (expected {})", config_.where(key + ".arch"),
                                         quote(m->arch), ArchRegistry::names()));
            continue;
        }
        m->bundle->bind(registry_, key);
        iommus_.push_back(std::move(m));
    }
}

// system.devices: each a device kind (or a replay device), its place, its parameters.
void System::declare_devices(Names& names, std::vector<std::string>& errors) {
    const std::string root = basename();
    for (const std::string& n : config_.get_list(root + ".devices")) {
        if (!names.claim("devices", n)) continue;
        auto d = std::make_unique<Device>();
        d->name = n;
        const std::string key = root + "." + n;
        d->type = config_.get_string(key + ".type").value_or("dma-bench");
        d->iommu = config_.get_string(key + ".iommu")
                       .value_or(iommus_.empty() ? "none" : iommus_[0]->name);
        d->sw = config_.get_string(key + ".switch").value_or("");
        d->regions = config_.get_list(key + ".regions");
        d->rc = config_.get_string(key + ".rc").value_or(rcs_[0]->name);
        check_rc(key, d->rc, errors);
        check_switch(key, d->sw, errors);
        bool known = d->iommu == "none";
        for (auto& m : iommus_) known |= m->name == d->iommu;
        if (!known)
            errors.push_back(fmt::format("{}: no IOMMU named {} in {}.iommus",
                                         config_.where(key + ".iommu"), quote(d->iommu), root));
        const uint8_t dev_no = uint8_t(devices_.size() + 1);  // distinct default requesters
        if ((d->kind = DeviceKind::create(d->type, dev_no))) {
            d->kind->bind(registry_, key);
        } else if (d->type == "replay") {
            const auto text = config_.get_string(key + ".rid");
            const auto rid = text ? trace::import::bdf(*text) : std::nullopt;
            if (!replay_spec_)
                errors.push_back(fmt::format("{}: a replay device is for `iommusim replay`",
                                             config_.where(key + ".type")));
            else if (!rid)
                errors.push_back(fmt::format("{}: a replay device needs `rid = BB:DD.F`",
                                             config_.where(text ? key + ".rid" : key + ".type")));
            d->rid = rid.value_or(0);
        } else {
            errors.push_back(fmt::format("{}: device type {} (expected {} or replay)",
                                         config_.where(key + ".type"), quote(d->type),
                                         DeviceKind::names()));
        }
        registry_.bind(key + ".engine", d->engine);
        registry_.bind(key + ".link", d->link);
        registry_.bind(key + ".map", d->map);
        registry_.bind(key + ".viommu", d->viommu);
        // A replay runs the trace's requesters only; the platform's other devices keep their
        // parameters (one platform file serves `run` and `replay`) but are not built.
        (replay_spec_ && d->type != "replay" ? unbuilt_ : devices_).push_back(std::move(d));
    }
}

// Replay: the tenancy parameters, each traced requester's platform RID (tenant t's move t *
// stride buses up), and a device for each one no declared replay device stands for.
void System::declare_replay(const ReplaySpec& replay, std::vector<std::string>& errors) {
    const std::string root = basename();
    registry_.bind(root + ".replay", replay_params_);
    registry_.bind(root + ".replay.engine", replay_engine_);
    registry_.bind(root + ".replay.link", replay_link_);
    const std::string key = root + ".replay";
    const size_t tenants = replay.tenants.size();
    // Several traces: tenant t's requesters move t * stride buses up. The stride is read
    // here, before the registry applies it (a bad value is reported there; 1 meanwhile).
    if (tenants != 1) {  // none: `iommusim params` lists them
        registry_.bind(key, replay_tenancy_);
        for (size_t t = 0; t < std::max<size_t>(tenants, 1); ++t) {
            replay_tenant_params_.push_back(std::make_unique<ReplayTenantParams>());
            registry_.bind(fmt::format("{}.tenant{}", key, t), *replay_tenant_params_.back());
        }
    }
    uint64_t stride = 1;
    if (const ConfigValue* v = config_.find(key + ".tenant_bus_stride"))
        if (!config_detail::parse_unsigned(v->value, false, 1, 255, &stride).empty()) stride = 1;
    std::vector<uint16_t> rids;  // every tenant's, as the platform sees them
    struct Owner {
        size_t tenant;
        uint16_t recorded;
        uint64_t line;
    };
    std::unordered_map<uint16_t, Owner> owner;
    for (size_t t = 0; t < tenants; ++t) {
        const ReplayTenant& tn = replay.tenants[t];
        const uint64_t bus_offset = t * stride;
        replay_rid_offset_.push_back(uint16_t(bus_offset << 8));
        for (size_t i = 0; i < tn.summary.rids.size(); ++i) {
            const uint16_t rec = tn.summary.rids[i];
            const uint64_t line = i < tn.summary.rid_lines.size() ? tn.summary.rid_lines[i] : 0;
            const std::string what = fmt::format("{}:{}: requester {} of tenant {}", tn.trace, line,
                                                 to_string(Requester{rec}), t);
            if ((rec >> 8) + bus_offset > 0xFF) {
                errors.push_back(fmt::format(
                    "{} would be on bus {} with {}.tenant_bus_stride = {} (buses end at 255)", what,
                    (rec >> 8) + bus_offset, key, stride));
                continue;
            }
            const uint16_t rid = uint16_t(rec + (bus_offset << 8));
            auto [it, fresh] = owner.emplace(rid, Owner{t, rec, line});
            if (!fresh) {
                const Owner& o = it->second;
                errors.push_back(fmt::format(
                    "{} becomes {}, which is already tenant {}'s requester {} ({}:{}); "
                    "tenants need distinct requesters (expected a larger "
                    "{}.tenant_bus_stride)",
                    what, to_string(Requester{rid}), o.tenant, to_string(Requester{o.recorded}),
                    replay.tenants[o.tenant].trace, o.line, key));
                continue;
            }
            replay_tenant_of_[rid] = t;
            rids.push_back(rid);
        }
    }
    const std::string unit =
        config_.get_string(key + ".iommu").value_or(iommus_.empty() ? "" : iommus_[0]->name);
    const std::string rc = config_.get_string(key + ".rc").value_or(rcs_[0]->name);
    const std::string sw = config_.get_string(key + ".switch").value_or("");
    bool known_unit = false;
    for (auto& m : iommus_) known_unit |= m->name == unit;
    check_rc(key, rc, errors);
    check_switch(key, sw, errors);
    for (uint16_t rid : rids) {
        bool declared = false;
        for (auto& d : devices_) declared |= d->rid == rid;
        if (declared) continue;
        if (!known_unit) {  // said once: the first requester to place
            errors.push_back(fmt::format("{}: replay needs a unit: none named {} in {}.iommus",
                                         config_.where(key + ".iommu"), quote(unit), root));
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
}

// A module's own check names its parameters by their short names ("pcie lanes = 3 is not a
// width ..."): the origin of the first one it mentions that the configuration sets goes in
// front, so the message says which line to change.
std::string System::located(const std::string& prefix, const std::string& msg) const {
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    size_t best = std::string::npos;
    std::string lead = prefix;
    for (const ParamInfo& p : registry_.list()) {
        if (p.name.size() <= prefix.size() + 1 || p.name.compare(0, prefix.size(), prefix) != 0 ||
            p.name[prefix.size()] != '.' || !config_.has(p.name))
            continue;
        const std::string rel = p.name.substr(prefix.size() + 1);
        for (size_t at = msg.find(rel); at != std::string::npos; at = msg.find(rel, at + 1)) {
            const size_t end = at + rel.size();
            if ((at > 0 && word(msg[at - 1])) || (end < msg.size() && word(msg[end]))) continue;
            if (at < best) best = at, lead = p.name;
            break;
        }
    }
    return fmt::format("{}: {}", config_.where(lead), msg);
}

// Everything that can be checked before modules exist, with the origin of the values.
void System::check_params() {
    const std::string root = basename();
    std::vector<std::string> errors;
    std::string why;
    auto check = [&](const std::string& prefix, bool ok) {
        if (!ok) errors.push_back(located(prefix, why));
    };
    check(root + ".memory", dram_params_.valid(&why));
    for (auto& w : switches_) check(root + "." + w->name + ".uplink", w->uplink.valid(&why));
    // A number of ways that does not divide the entries would silently lose entries.
    for (auto& m : iommus_) {
        const std::string key = root + "." + m->name;
        const UnitParams& u = m->bundle->unit_params();
        auto ways = [&](const char* entries_key, uint32_t entries, const char* ways_key,
                        uint32_t w) {
            if (w == 0 || w >= entries || entries % w == 0) return;
            errors.push_back(fmt::format(
                "{}: {} = {} does not divide {}.{} = {} (expected a divisor of {}, or 0 for "
                "fully associative)",
                config_.where(key + "." + ways_key), ways_key, w, key, entries_key, entries,
                entries));
        };
        ways("iotlb.entries", u.iotlb.entries, "iotlb.ways", u.iotlb.ways);
        if (u.iotlb_split) {
            ways("iotlb.entries_2m", u.iotlb_entries_2m, "iotlb.ways", u.iotlb.ways);
            ways("iotlb.entries_1g", u.iotlb_entries_1g, "iotlb.ways", u.iotlb.ways);
        }
        ways("context_cache.entries", u.context_cache.entries, "context_cache.ways",
             u.context_cache.ways);
        ways("pasid_cache.entries", u.pasid_cache.entries, "pasid_cache.ways", u.pasid_cache.ways);
        static const char* kWalk[] = {"walk_cache.l2_entries", "walk_cache.l3_entries",
                                      "walk_cache.l4_entries", "walk_cache.l5_entries"};
        for (unsigned l = 0; l < 4; ++l)
            if (u.walk_cache_entries[l])
                ways(kWalk[l], u.walk_cache_entries[l], "walk_cache.ways", u.walk_cache_ways);
    }
    // One requester ID per device: a second device on a RID would take over the first one's
    // context entry, so its DMAs would go through the other device's domain.
    std::unordered_map<uint16_t, const Device*> rids;
    for (auto& d : devices_) {
        const std::string key = root + "." + d->name;
        if (d->kind) {
            if (!config_.has(key + ".seed")) d->kind->seed() = derived_seed(params_.seed, d->name);
            check(key, d->kind->valid(&why));
        }
        check(d->placed ? root + ".replay.engine" : key + ".engine",
              (d->placed ? replay_engine_ : d->engine).valid(&why));
        check(d->placed ? root + ".replay.link" : key + ".link",
              (d->placed ? replay_link_ : d->link).valid(&why));
        const Requester req = d->requester();
        auto [it, fresh] = rids.emplace(req.rid, d.get());
        if (fresh) continue;
        auto rid_where = [&](const Device& x) {
            const std::string k = root + "." + x.name;
            for (const char* f :
                 {".rid", ".requester.device", ".requester.bus", ".requester.function"})
                if (config_.has(k + f)) return config_.where(k + f);
            return config_.where(k + ".type");
        };
        errors.push_back(fmt::format(
            "{}: requester {} of {} is already {}'s ({}); each device needs its own requester "
            "ID (set requester.bus/device/function)",
            rid_where(*d), to_string(req), d->name, it->second->name, rid_where(*it->second)));
    }
    // A tenant's shifted and rescaled times must stay within a replay's span, as recorded
    // times must (ReplayLimits); never clamped.
    for (size_t t = 0; replay_spec_ && replay_params_.timed && t < replay_tenant_params_.size() &&
                       t < replay_spec_->tenants.size();
         ++t) {
        const ReplayTenantParams& tp = *replay_tenant_params_[t];
        const uint64_t span = replay_spec_->tenants[t].summary.span_ns;
        const double end = double(tp.shift_ns) + double(span) / tp.rate;
        if (end > double(ReplayLimits::kMaxSpanNs)) {
            const std::string key = fmt::format("{}.replay.tenant{}", root, t);
            errors.push_back(fmt::format(
                "{}: tenant {} ({}) would end {:.0f} ns after the start with shift_ns = {} and "
                "rate = {}: a replay at recorded times spans at most {} ns (2^63 ps)",
                config_.where(config_.has(key + ".rate") ? key + ".rate" : key + ".shift_ns"), t,
                replay_spec_->tenants[t].trace, end, tp.shift_ns,
                config_detail::format_double(tp.rate), ReplayLimits::kMaxSpanNs));
        }
    }
    if (!errors.empty()) throw ConfigError(std::move(errors));
}

}  // namespace iommusim
