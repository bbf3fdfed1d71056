// Every parameter a module declares is reachable: each bundle's and device's parameter
// structs are walked here (their visit(), independently of how System binds them), and each
// key must be listed by the system's registry and by `iommusim params`, and be settable
// (a --set of a value other than the default lands). A struct that a module declares but
// System never binds shows up as missing keys.
#include <fmt/format.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "arch/vtd/vtd_regfile.h"
#include "bundles/bundle.h"
#include "devices/dma_bench.h"
#include "devices/nic.h"
#include "devices/nvme.h"
#include "devices/sva_accel_params.h"
#include "host/dma_api.h"
#include "host/prq_service.h"
#include "platforms/system.h"
#include "sc_harness.h"

using namespace iommusim;

namespace {

struct Key {
    std::string name, value;  // a valid value other than the default
};

template <typename T>
std::string other(const T& field, double lo, double hi) {
    if constexpr (std::is_same_v<T, bool>) {
        return field ? "false" : "true";
    } else if constexpr (std::is_enum_v<T>) {
        for (T v : EnumParam<T>::values())
            if (v != field) return EnumParam<T>::name(v);
        return EnumParam<T>::name(field);
    } else if constexpr (std::is_floating_point_v<T>) {
        return fmt::format("{}", double(field) == lo ? hi : lo);
    } else if constexpr (std::is_same_v<T, std::string>) {
        return field + "x";
    } else {
        return fmt::format("{}", uint64_t(field) == uint64_t(lo) ? uint64_t(hi) : uint64_t(lo));
    }
}

// The keys of `p` under `prefix`, each with a value to set.
template <typename P>
void walk(const std::string& prefix, P p, std::vector<Key>& out) {
    p.visit([&](const char* name, auto& field, const char*, const char*, auto lo, auto hi) {
        using T = std::decay_t<decltype(field)>;
        double l = 0, h = 0;
        if constexpr (std::is_arithmetic_v<decltype(lo)>) l = double(lo), h = double(hi);
        out.push_back({prefix + "." + name, other<T>(field, l, h)});
    });
}

std::string iommusim_binary() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return "";
    std::string self(buf, size_t(n));
    return self.substr(0, self.rfind('/')) + "/iommusim";
}

std::string run(const std::string& cmd) {
    std::string out;
    if (FILE* f = popen(cmd.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
        pclose(f);
    }
    return out;
}

}  // namespace

int sc_main(int, char*[]) {
    test::Checker check;
    // One unit of every registered architecture, one device of every type, a switch.
    std::string ini = "[system]\nroot_complexes = rc\nswitches = sw\niommus =";
    std::vector<std::string> units;
    for (const auto& e : ArchRegistry::all()) units.push_back("u_" + e.name);
    for (size_t i = 0; i < units.size(); ++i) ini += (i ? ", " : " ") + units[i];
    ini += "\ndevices = bench, nic, nvme, accel\n";
    for (const auto& e : ArchRegistry::all())
        ini += fmt::format("[system.u_{0}]\narch = {0}\n", e.name);
    ini +=
        "[system.nic]\ntype = nic\n[system.nvme]\ntype = nvme\n[system.accel]\ntype = sva-accel\n";
    check(units.size() >= 2, "at least VT-d and sPAPR are registered");

    std::vector<Key> keys;
    walk("system", SystemParams{}, keys);
    walk("system.memory", DramParams{}, keys);
    walk("system.rc", RootComplexParams{}, keys);
    walk("system.sw", PcieSwitchParams{}, keys);
    walk("system.sw.uplink", PcieLinkParams{}, keys);
    for (const auto& e : ArchRegistry::all()) {
        const std::string u = "system.u_" + e.name;
        walk(u, UnitParams{}, keys);
        walk(u + ".driver", HostDriverParams{}, keys);
        if (e.name == "vtd") walk(u + ".regs", vtd::RegFileParams{}, keys);
        if (e.name == "vtd") walk(u + ".prq", sva::PrqParams{}, keys);
    }
    walk("system.bench", DmaBenchParams{}, keys);
    walk("system.nic", NicParams{}, keys);
    walk("system.nvme", NvmeParams{}, keys);
    walk("system.accel", SvaAccelParams{}, keys);
    for (const char* d : {"bench", "nic", "nvme", "accel"}) {
        const std::string k = std::string("system.") + d;
        walk(k + ".engine", DmaEngineParams{}, keys);
        walk(k + ".link", PcieLinkParams{}, keys);
        walk(k + ".map", MapParams{}, keys);
    }
    walk("system.replay", ReplayParams{}, keys);
    walk("system.replay.engine", DmaEngineParams{}, keys);
    walk("system.replay.link", PcieLinkParams{}, keys);

    Config config;
    config.load_string(ini, "sc_params.ini");
    const ReplaySpec replay;  // as `iommusim params` does: system.replay.* declared too
    System sys("system", config, &replay);
    ParamRegistry& reg = sys.registry();
    size_t missing = 0;
    for (const Key& k : keys)
        if (!reg.contains(k.name)) {
            ++missing;
            check(false, fmt::format("{} is declared but not bound", k.name));
        }
    check(missing == 0, fmt::format("all {} declared keys are bound", keys.size()));

    // Settable: every key at once to a non-default value; each lands.
    Config set;
    set.load_string(ini, "sc_params.ini");
    for (const Key& k : keys) set.set(k.name + "=" + k.value);
    try {
        // The topology keys (arch, type) are read by System, not by the registry.
        reg.apply(set, ParamRegistry::Unknown::Ignore);
        size_t wrong = 0;
        for (const Key& k : keys) {
            const auto v = reg.value(k.name);
            // Numbers may print differently (64Ki for 65536, 0.001 for 1e-3): compare values.
            uint64_t a = 0, b = 0;
            const uint64_t kAll = ~uint64_t(0);
            const bool same =
                v &&
                (*v == k.value ||
                 (config_detail::parse_unsigned(*v, true, 0, kAll, &a).empty() &&
                  config_detail::parse_unsigned(k.value, true, 0, kAll, &b).empty() && a == b) ||
                 (std::strtod(v->c_str(), nullptr) == std::strtod(k.value.c_str(), nullptr) &&
                  std::strtod(v->c_str(), nullptr) != 0));
            if (!same)
                ++wrong, check(false, fmt::format("{} reads {} after --set {}", k.name,
                                                  v.value_or("nothing"), k.value));
        }
        check(wrong == 0, "every key reads back after --set");
    } catch (const ConfigError& e) {
        for (const auto& m : e.errors()) check(false, "--set refused: " + m);
    }

    // `iommusim params` on the same system lists every key.
    const std::string bin = iommusim_binary();
    if (access(bin.c_str(), X_OK) == 0) {
        const std::string path = fmt::format("/tmp/sc_params_{}.ini", getpid());
        if (FILE* f = std::fopen(path.c_str(), "w")) std::fputs(ini.c_str(), f), std::fclose(f);
        const std::string out = run(bin + " params -c " + path);
        std::remove(path.c_str());
        std::set<std::string> listed;
        for (size_t at = 0; at < out.size();) {
            const size_t nl = out.find('\n', at);
            const std::string line = out.substr(at, nl - at);
            listed.insert(line.substr(0, line.find(' ')));
            at = nl == std::string::npos ? out.size() : nl + 1;
        }
        size_t absent = 0;
        for (const Key& k : keys)
            if (!listed.count(k.name)) ++absent, check(false, k.name + " not in iommusim params");
        check(absent == 0, fmt::format("`iommusim params` lists all {} keys", keys.size()));
    } else {
        check(false, "no iommusim binary beside this bench (" + bin + ")");
    }
    return check.finish();
}
