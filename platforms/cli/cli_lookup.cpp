// `iommusim lookup` and `iommusim demo`: build an address space with the driver model, then
// walk one IOVA functionally and print every entry read, next to the driver's intent.
#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <iostream>
#include <stdexcept>

#include "arch/spapr/spapr_walker.h"
#include "arch/vtd/vtd_walker.h"
#include "cli.h"
#include "core/quote.h"
#include "host/spapr_driver.h"
#include "host/vtd_driver.h"

namespace po = boost::program_options;

namespace iommusim::cli {

uint64_t parse_number(const std::string& t, const std::string& what) {
    // The configuration's integer syntax (0x, 0b, '_', K M G T as powers of 1024): a sign,
    // a fraction or a value past 2^64 is an error rather than wrapped or cut.
    uint64_t v = 0;
    const std::string e = config_detail::parse_unsigned(t, true, 0, ~uint64_t(0), &v);
    if (!e.empty()) throw std::invalid_argument(fmt::format("{}: {}", what, e));
    return v;
}

uint16_t parse_bdf(const std::string& t) {
    unsigned b, d, f;
    char tail;
    if (std::sscanf(t.c_str(), "%x:%x.%x%c", &b, &d, &f, &tail) != 3 || b > 255 || d > 31 || f > 7)
        throw std::invalid_argument(fmt::format(
            "--rid: {} is not a PCI address (expected BB:DD.F, e.g. 00:02.0)", quote(t)));
    return Requester::bdf(b, d, f).rid;
}

namespace {

struct MapSpec {
    Addr iova, pa, size;
    Perm perm;
};

MapSpec parse_map(const std::string& t, const char* opt) {
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t i = 0; i <= t.size(); ++i)
        if (i == t.size() || t[i] == ':') f.push_back(t.substr(start, i - start)), start = i + 1;
    if (f.size() < 3 || f.size() > 4)
        throw std::invalid_argument(
            fmt::format("{}: {} should be IOVA:PA:SIZE[:r|rw]", opt, quote(t)));
    MapSpec m{parse_number(f[0], opt), parse_number(f[1], opt), parse_number(f[2], opt), kPermRW};
    if (f.size() == 4) {
        if (f[3] == "r")
            m.perm = kPermR;
        else if (f[3] == "rw")
            m.perm = kPermRW;
        else if (f[3] == "w")
            m.perm = kPermW;
        else
            throw std::invalid_argument(
                fmt::format("{}: permission {} (expected r, w or rw)", opt, quote(f[3])));
    }
    return m;
}

Access parse_access(const std::string& a) {
    if (a == "read") return Access::Read;
    if (a == "write") return Access::Write;
    if (a == "atomic") return Access::ReadWrite;
    throw std::invalid_argument(
        fmt::format("--access: {} (expected read, write or atomic)", quote(a)));
}

struct VtdLookup {
    std::string mode = "legacy", stage = "sl", access = "read";
    unsigned levels = 4;
    std::string rid = "00:02.0";
    std::string pasid, iova;
    bool priv = false;
    std::vector<std::string> maps, maps2;
    // sPAPR: window 1 is a DDW with these IO pages, or a bypass window.
    std::string ddw_page = "64K";
    unsigned ddw_levels = 2;
    bool bypass = false;
};

// Print the walk, the intent and whether they agree; 0 when they do.
int report(Walker& walker, SparseMemory& mem, const Requester& req, Addr iova, Access acc,
           const Expectation& e) {
    fmt::print("{}", explain_walk(walker, mem, req, iova, acc));
    if (e.mapped)
        fmt::print("  driver intent: {:#x} -> {:#x} ({})\n", iova, e.pa, perm_string(e.perm));
    else
        fmt::print("  driver intent: {:#x} is not mapped for {}\n", iova, to_string(req));
    std::string bad = check_translation(walker.result(), e, acc, false);
    fmt::print("  check: {}\n\n", bad.empty() ? "consistent with the intent" : "MISMATCH: " + bad);
    return bad.empty() ? 0 : 1;
}

// A PE with the default 32-bit window and a DDW (or bypass) window at 2^59.
int run_spapr(const VtdLookup& o) {
    SparseMemory mem;
    spapr::DriverConfig cfg;
    spapr::Driver drv(mem, cfg);
    std::string why;
    uint16_t pe = *drv.create_pe(&why);
    Addr page = parse_number(o.ddw_page, "--ddw-page");
    if (page < 4096 || (page & (page - 1)))
        throw std::invalid_argument(
            fmt::format("--ddw-page: {} is not a power of two of at least 4K", quote(o.ddw_page)));
    unsigned shift = 0;
    while ((Addr(1) << shift) < page) ++shift;
    bool ok = o.bypass ? drv.create_bypass(pe, Addr(64) << 30, 0, &why)
                       : drv.create_ddw(pe, Addr(64) << 30, shift, o.ddw_levels, &why);
    if (!ok) throw std::invalid_argument("--ddw-page/--ddw-levels: " + why);
    for (const auto& text : o.maps) {
        MapSpec m = parse_map(text, "--map");
        if (!drv.map(pe, m.iova, m.pa, m.size, m.perm, &why))
            throw std::invalid_argument(fmt::format("--map {}: {}", quote(text), why));
    }
    Requester req{parse_bdf(o.rid)};
    drv.assign(req.rid, pe);
    if (o.iova.empty()) throw std::invalid_argument("--iova is required");
    Addr iova = parse_number(o.iova, "--iova");
    Access acc = parse_access(o.access);
    spapr::SpaprWalker walker(drv.phb());
    fmt::print(
        "sPAPR PE {}: 32-bit window 1 GiB of 4 KiB TCEs at 0, {} at {:#x}\n", pe,
        o.bypass ? std::string("bypass window") : fmt::format("DDW 64 GiB of {} pages", o.ddw_page),
        spapr::kDdwBusOffset);
    return report(walker, mem, req, iova, acc, drv.expect(req, iova));
}

// Build the system `o` describes and print the walk of o.iova. Returns the exit code.
int run_vtd(const VtdLookup& o) {
    if (o.mode != "legacy" && o.mode != "scalable")
        throw std::invalid_argument(
            fmt::format("--mode: {} (expected legacy or scalable)", quote(o.mode)));
    if (o.stage != "sl" && o.stage != "fl" && o.stage != "nested" && o.stage != "pt")
        throw std::invalid_argument(
            fmt::format("--stage: {} (expected sl, fl, nested or pt)", quote(o.stage)));
    if (o.levels < 3 || o.levels > 5)
        throw std::invalid_argument(fmt::format("--levels: {} (expected 3, 4 or 5)", o.levels));
    SparseMemory mem;
    vtd::DriverConfig cfg;
    cfg.hw.scalable = o.mode == "scalable";
    cfg.hw.sagaw = 0b1110;
    cfg.hw.mgaw = 57;
    cfg.hw.haw = 52;
    cfg.hw.fl_5level = true;
    cfg.sl_levels = o.levels;
    cfg.fl_levels = o.stage == "fl" || o.stage == "nested" ? std::max(4u, o.levels) : 4;
    vtd::Driver drv(mem, cfg);
    std::string why;
    vtd::DomainOptions opt;
    opt.stage = o.stage == "fl" ? vtd::Stage::FirstLevel : vtd::Stage::SecondLevel;
    opt.identity = o.stage == "pt";
    auto did = drv.create_domain(opt, &why);
    if (!did) throw std::invalid_argument(why);
    uint16_t target = *did;
    if (o.stage == "nested") {
        // Stage 2 (GPA -> HPA): --map2, or guest RAM [0, 3 GiB) at host 4 GiB by default
        // (below the MSI range, which stays reserved in the guest-physical space too).
        std::vector<MapSpec> s2;
        for (const auto& m : o.maps2) s2.push_back(parse_map(m, "--map2"));
        if (s2.empty()) s2.push_back({0, Addr(4) << 30, Addr(3) << 30, kPermRW});
        for (const auto& m : s2)
            if (!drv.map(*did, m.iova, m.pa, m.size, m.perm, &why))
                throw std::invalid_argument("--map2: " + why);
        auto nd = drv.create_nested_domain(*did, {}, &why);
        if (!nd) throw std::invalid_argument(why);
        target = *nd;
    }
    for (const auto& text : o.maps) {
        MapSpec m = parse_map(text, "--map");
        if (!drv.map(target, m.iova, m.pa, m.size, m.perm, &why))
            throw std::invalid_argument(fmt::format("--map {}: {}", quote(text), why));
    }
    Requester req{parse_bdf(o.rid)};
    if (!o.pasid.empty()) {
        req = req.with_pasid(uint32_t(parse_number(o.pasid, "--pasid")), o.priv);
        if (!drv.attach_pasid(req.rid, req.pasid, target, o.priv, &why))
            throw std::invalid_argument("--pasid: " + why);
    } else if (!drv.attach(req.rid, target, &why)) {
        throw std::invalid_argument(why);
    }
    if (o.iova.empty()) throw std::invalid_argument("--iova is required");
    Addr iova = parse_number(o.iova, "--iova");
    Access acc = parse_access(o.access);

    vtd::VtdWalker walker(drv.hw());
    fmt::print("VT-d {} mode, {} translation, {}-level second level, RTADDR {:#x}\n", o.mode,
               o.stage, o.levels, drv.hw().rtaddr);
    return report(walker, mem, req, iova, acc, drv.expect(req, iova));
}

}  // namespace

int lookup(const std::vector<std::string>& args) {
    VtdLookup o;
    po::options_description d("iommusim lookup [options]");
    d.add_options()("help,h", "this text")("arch", po::value<std::string>()->default_value("vtd"),
                                           "architecture: vtd or spapr")(
        "mode", po::value(&o.mode)->default_value(o.mode), "legacy or scalable")(
        "stage", po::value(&o.stage)->default_value(o.stage),
        "sl, fl (scalable), nested (scalable) or pt")("levels",
                                                      po::value(&o.levels)->default_value(o.levels),
                                                      "second-level table levels: 3, 4 or 5")(
        "rid", po::value(&o.rid)->default_value(o.rid), "requester BB:DD.F")(
        "pasid", po::value(&o.pasid), "PASID carried by the request (scalable mode)")(
        "priv", po::bool_switch(&o.priv), "privileged (supervisor) request")(
        "map", po::value(&o.maps)->composing(), "IOVA:PA:SIZE[:r|rw] to map first (repeatable)")(
        "map2", po::value(&o.maps2)->composing(), "nested: stage-2 GPA:HPA:SIZE[:r|rw]")(
        "iova", po::value(&o.iova), "address to look up")(
        "access", po::value(&o.access)->default_value(o.access), "read, write or atomic")(
        "ddw-page", po::value(&o.ddw_page)->default_value(o.ddw_page),
        "spapr: DDW IO page size (4K, 64K, 2M, 16M, ...)")(
        "ddw-levels", po::value(&o.ddw_levels)->default_value(o.ddw_levels),
        "spapr: DDW TCE table levels")("bypass", po::bool_switch(&o.bypass),
                                       "spapr: window 1 is a bypass (direct) window");
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(d).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw std::invalid_argument(std::string(e.what()) + " (see iommusim lookup --help)");
    }
    if (vm.count("help")) {
        std::cout << d;
        return 0;
    }
    const std::string& arch = vm["arch"].as<std::string>();
    if (arch == "spapr") return run_spapr(o);
    if (arch != "vtd")
        throw std::invalid_argument(fmt::format("--arch: {} (expected vtd or spapr)", quote(arch)));
    return run_vtd(o);
}

int demo(const std::vector<std::string>& args) {
    if (!args.empty())
        throw std::invalid_argument(fmt::format("unexpected argument {}", quote(args[0])));
    int rc = 0;
    VtdLookup legacy;
    legacy.maps = {"0xfffdf000:0x12345000:4K:rw", "0x40000000:0x80000000:2M:r"};
    legacy.iova = "0xfffdf123";
    rc |= run_vtd(legacy);
    legacy.iova = "0x40012345";
    legacy.access = "write";  // read-only 2 MiB page: fault 0x5
    rc |= run_vtd(legacy);
    VtdLookup fl;
    fl.mode = "scalable";
    fl.stage = "fl";
    fl.pasid = "0x42";
    fl.maps = {"0x7f0000200000:0x23456000:1M:rw"};
    fl.iova = "0x7f0000212340";
    rc |= run_vtd(fl);
    VtdLookup nested;
    nested.mode = "scalable";
    nested.stage = "nested";
    nested.maps = {"0x10000:0x3000000:64K:rw"};
    nested.iova = "0x10008";
    rc |= run_vtd(nested);
    VtdLookup power;
    power.maps = {"0x0800000001230000:0x2000000000:128K:rw"};
    power.iova = "0x0800000001234567";
    power.access = "write";
    rc |= run_spapr(power);
    return rc;
}

}  // namespace iommusim::cli
