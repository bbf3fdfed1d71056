// `iommusim lookup --arch vtd`: a VT-d unit of the asked mode with a domain of the asked
// translation type, the --map ranges mapped, one request walked.
#include <fmt/format.h>

#include <stdexcept>

#include "core/quote.h"
#include "host/vtd_driver.h"
#include "vtd_bundle.h"

namespace iommusim::vtd_lookup {

const std::vector<LookupOption>& options() {
    static const std::vector<LookupOption> o = {
        {"mode", "legacy", "vtd: legacy or scalable"},
        {"stage", "sl", "vtd: sl, fl (scalable), nested (scalable) or pt"},
        {"levels", "4", "vtd: second-level table levels: 3, 4 or 5"},
        {"map2", "", "vtd nested: stage-2 GPA:HPA:SIZE[:r|rw] (repeatable)", false, true},
    };
    return o;
}

int run(const LookupRequest& request) {
    const LookupRequest o = lookup::with_defaults(request, options());
    const std::string& mode = o.opt("mode");
    const std::string& stage = o.opt("stage");
    if (mode != "legacy" && mode != "scalable")
        throw std::invalid_argument(
            fmt::format("--mode: {} (expected legacy or scalable)", quote(mode)));
    if (stage != "sl" && stage != "fl" && stage != "nested" && stage != "pt")
        throw std::invalid_argument(
            fmt::format("--stage: {} (expected sl, fl, nested or pt)", quote(stage)));
    const uint64_t levels = lookup::number(o.opt("levels"), "--levels");
    if (levels < 3 || levels > 5)
        throw std::invalid_argument(fmt::format("--levels: {} (expected 3, 4 or 5)", levels));
    SparseMemory mem;
    vtd::DriverConfig cfg;
    cfg.hw.scalable = mode == "scalable";
    cfg.hw.sagaw = 0b1110;
    cfg.hw.mgaw = 57;
    cfg.hw.haw = 52;
    cfg.hw.fl_5level = true;
    cfg.sl_levels = unsigned(levels);
    cfg.fl_levels = stage == "fl" || stage == "nested" ? std::max(4u, unsigned(levels)) : 4;
    vtd::Driver drv(mem, cfg);
    std::string why;
    vtd::DomainOptions opt;
    opt.stage = stage == "fl" ? vtd::Stage::FirstLevel : vtd::Stage::SecondLevel;
    opt.identity = stage == "pt";
    auto did = drv.create_domain(opt, &why);
    if (!did) throw std::invalid_argument(why);
    uint16_t target = *did;
    if (stage == "nested") {
        // Stage 2 (GPA -> HPA): --map2, or guest RAM [0, 3 GiB) at host 4 GiB by default
        // (below the MSI range, which stays reserved in the guest-physical space too).
        std::vector<lookup::MapSpec> s2;
        if (auto it = o.opts.find("map2"); it != o.opts.end())
            for (const auto& m : it->second) s2.push_back(lookup::map(m, "--map2"));
        if (s2.empty()) s2.push_back({0, Addr(4) << 30, Addr(3) << 30, kPermRW});
        for (const auto& m : s2)
            if (!drv.map(*did, m.iova, m.pa, m.size, m.perm, &why))
                throw std::invalid_argument("--map2: " + why);
        auto nd = drv.create_nested_domain(*did, {}, &why);
        if (!nd) throw std::invalid_argument(why);
        target = *nd;
    }
    for (const auto& text : o.maps) {
        const lookup::MapSpec m = lookup::map(text, "--map");
        if (!drv.map(target, m.iova, m.pa, m.size, m.perm, &why))
            throw std::invalid_argument(fmt::format("--map {}: {}", quote(text), why));
    }
    Requester req{lookup::bdf(o.rid)};
    if (!o.pasid.empty()) {
        req = req.with_pasid(uint32_t(lookup::number(o.pasid, "--pasid")), o.priv);
        if (!drv.attach_pasid(req.rid, req.pasid, target, o.priv, &why))
            throw std::invalid_argument("--pasid: " + why);
    } else if (!drv.attach(req.rid, target, &why)) {
        throw std::invalid_argument(why);
    }
    if (o.iova.empty()) throw std::invalid_argument("--iova is required");
    const Addr iova = lookup::number(o.iova, "--iova");
    const Access acc = lookup::access(o.access);
    vtd::VtdWalker walker(drv.hw());
    fmt::print("VT-d {} mode, {} translation, {}-level second level, RTADDR {:#x}\n", mode, stage,
               levels, drv.hw().rtaddr);
    return lookup::report(walker, mem, req, iova, acc, drv.expect(req, iova));
}

// A legacy-mode 4 KiB map and a read-only 2 MiB page written to (fault 0x5), a first-level
// translation with a PASID, and a nested one.
int demo() {
    int rc = 0;
    LookupRequest legacy;
    legacy.maps = {"0xfffdf000:0x12345000:4K:rw", "0x40000000:0x80000000:2M:r"};
    legacy.iova = "0xfffdf123";
    rc |= run(legacy);
    legacy.iova = "0x40012345";
    legacy.access = "write";
    rc |= run(legacy);
    LookupRequest fl;
    fl.opts = {{"mode", {"scalable"}}, {"stage", {"fl"}}};
    fl.pasid = "0x42";
    fl.maps = {"0x7f0000200000:0x23456000:1M:rw"};
    fl.iova = "0x7f0000212340";
    rc |= run(fl);
    LookupRequest nested;
    nested.opts = {{"mode", {"scalable"}}, {"stage", {"nested"}}};
    nested.maps = {"0x10000:0x3000000:64K:rw"};
    nested.iova = "0x10008";
    rc |= run(nested);
    return rc;
}

}  // namespace iommusim::vtd_lookup
