#include "system.h"

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
#include "traces/import_bdf.h"

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

// Physical memory: device i's buffers in [kDataBase + i * kDeviceSpan, + kDeviceSpan); the
// host structures of IOMMU i (page or TCE tables, then the VT-d invalidation queue at +1 GiB)
// in [kStructBase + i * kStructSpan, + kStructSpan), above every device and below a 48-bit
// HAW. Nothing overlaps, whatever the buffer sizes (they are checked against kDeviceSpan).
constexpr Addr kDataBase = Addr(8) << 30;
constexpr Addr kDeviceSpan = Addr(64) << 30;
constexpr Addr kStructBase = Addr(1) << 46;
constexpr Addr kStructSpan = Addr(2) << 30;
constexpr size_t kMaxDevices = (kStructBase - kDataBase) / kDeviceSpan;
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

bool System::known_rc(const std::string& n) const {
    for (auto& r : rcs_)
        if (r->name == n) return true;
    return false;
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
        if (!known_rc(w->rc))
            errors.push_back(fmt::format("{}: no root complex {} in {}.root_complexes",
                                         config_.where(key + ".rc"), quote(w->rc), root));
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
        if (!known_rc(d->rc))
            errors.push_back(fmt::format("{}: no root complex {} in {}.root_complexes",
                                         config_.where(key + ".rc"), quote(d->rc), root));
        bool known_sw = d->sw.empty();
        for (auto& w : switches_) known_sw |= w->name == d->sw;
        if (!known_sw)
            errors.push_back(fmt::format("{}: no switch {} in {}.switches",
                                         config_.where(key + ".switch"), quote(d->sw), root));
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
    bool known_unit = false, known_sw = sw.empty();
    for (auto& m : iommus_) known_unit |= m->name == unit;
    for (auto& w : switches_) known_sw |= w->name == sw;
    if (!known_rc(rc))
        errors.push_back(fmt::format("{}: no root complex {} in {}.root_complexes",
                                     config_.where(key + ".rc"), quote(rc), root));
    if (!known_sw)
        errors.push_back(fmt::format("{}: no switch {} in {}.switches",
                                     config_.where(key + ".switch"), quote(sw), root));
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

// Drivers free their tables through the simulated memory (in the fabric): they go first.
System::~System() {
    devices_.clear();
    iommus_.clear();
    switches_.clear();
    rcs_.clear();
    fabric_.reset();
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

// Splitmix64 of the run's seed and an FNV-1a hash of the device's name: the same run seed and
// name give the same stream, different devices different ones, and adding a device does not
// change the streams of the others.
static uint64_t derived_seed(uint64_t seed, const std::string& name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
    uint64_t z = seed ^ h;
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
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

// The host brings its units up as its driver would at boot (bundles/bundle.h). At time 0 of
// the simulation, before any device runs: sockets are only usable once elaboration is complete.
void System::bring_up() {
    for (auto& m : iommus_) m->bundle->bring_up();
}

void System::start_of_simulation() {
    bring_up();
}

bool System::devices_done() const {
    for (const auto& h : replay_hosts_)
        if (!h->finished()) return false;
    for (const auto& d : devices_)
        if (!d->ended) return false;
    return true;
}

double System::progress() const {
    if (replay_hosts_.size() == 1) return replay_hosts_[0]->progress();
    if (!replay_hosts_.empty()) {  // the tenants' records done, weighted by their length
        double done = 0, all = 0;
        for (size_t t = 0; t < replay_hosts_.size(); ++t) {
            const double n = double(replay_spec_->tenants[t].summary.records);
            done += n * replay_hosts_[t]->progress(), all += n;
        }
        return all > 0 ? done / all : 1.0;
    }
    double sum = 0;
    for (const auto& d : devices_) sum += d->finished() ? 1.0 : d->progress();
    return devices_.empty() ? 1.0 : sum / double(devices_.size());
}

std::vector<std::string> System::device_summaries() const {
    std::vector<std::string> out;
    for (const auto& d : devices_) out.push_back(d->name + ": " + d->summary());
    return out;
}

void System::finish_stats() {
    for (auto& [name, total] : replay_totals_) {
        total->reset();
        for (size_t t = 0; t < replay_hosts_.size(); ++t)
            for (const auto& e : stats_.child("replay").child(fmt::format("tenant{}", t)).entries())
                if (e.name == name && e.counter) *total += e.counter->value();
    }
    for (auto& m : iommus_) {
        if (!m->hit_rate) continue;
        const StatGroup& g = stats_.child(m->name).child("iotlb");
        uint64_t lookups = 0, hits = 0;
        for (const auto& e : g.entries()) {
            if (e.name == "lookups" && e.counter) lookups = e.counter->value();
            if (e.name == "hits" && e.counter) hits = e.counter->value();
        }
        m->hit_rate->set_rounded(lookups ? 1e6 * double(hits) / double(lookups) : 0.0);
    }
}

std::vector<std::string> System::defects() const {
    std::vector<std::string> out;
    for (const auto& m : iommus_)
        for (const std::string& d : m->bundle->defects()) out.push_back(m->name + ": " + d);
    return out;
}

std::vector<std::string> System::iommu_names() const {
    std::vector<std::string> out;
    for (const auto& m : iommus_) out.push_back(m->name);
    return out;
}

void System::supervise() {
    const sc_core::sc_time limit(double(params_.max_time_us), sc_core::SC_US);
    PollPeriod poll;
    while (!devices_done() && !stop_requested_ &&
           (!params_.max_time_us || sc_core::sc_time_stamp() < limit)) {
        sc_core::sc_time t = poll.next();
        if (params_.max_time_us) t = std::min(t, limit - sc_core::sc_time_stamp());
        wait(t, device_ended_);
    }
    done_.notify(sc_core::SC_ZERO_TIME);
    sc_core::sc_stop();
}

sc_core::sc_time System::PollPeriod::next() {
    const auto now = std::chrono::steady_clock::now();
    const auto wall = now - last_;
    last_ = now;
    const sc_core::sc_time lo(10, sc_core::SC_US), hi(1, sc_core::SC_SEC);
    if (wall < std::chrono::milliseconds(50) && period_ < hi)
        period_ = period_ * 2;
    else if (wall > std::chrono::milliseconds(200) && period_ > lo)
        period_ = period_ / 2;
    return period_;
}

}  // namespace iommusim
