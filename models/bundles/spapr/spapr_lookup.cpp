// `iommusim lookup --arch spapr`: a PE with the default 32-bit window and a DDW (or bypass)
// window at 2^59, the --map ranges mapped, one request walked.
#include <fmt/format.h>

#include <stdexcept>

#include "arch/spapr/spapr_walker.h"
#include "core/quote.h"
#include "host/spapr_driver.h"
#include "spapr_bundle.h"

namespace iommusim::spapr_lookup {

const std::vector<LookupOption>& options() {
    static const std::vector<LookupOption> o = {
        {"ddw-page", "64K", "spapr: DDW IO page size (4K, 64K, 2M, 16M, ...)"},
        {"ddw-levels", "2", "spapr: DDW TCE table levels"},
        {"bypass", "", "spapr: window 1 is a bypass (direct) window", true},
    };
    return o;
}

int run(const LookupRequest& request) {
    const LookupRequest o = lookup::with_defaults(request, options());
    SparseMemory mem;
    spapr::DriverConfig cfg;
    spapr::Driver drv(mem, cfg);
    std::string why;
    const uint16_t pe = *drv.create_pe(&why);
    const std::string& page_text = o.opt("ddw-page");
    const Addr page = lookup::number(page_text, "--ddw-page");
    if (page < 4096 || (page & (page - 1)))
        throw std::invalid_argument(
            fmt::format("--ddw-page: {} is not a power of two of at least 4K", quote(page_text)));
    unsigned shift = 0;
    while ((Addr(1) << shift) < page) ++shift;
    const uint64_t levels = lookup::number(o.opt("ddw-levels"), "--ddw-levels");
    const bool bypass = !o.opt("bypass").empty();
    const bool ok = bypass ? drv.create_bypass(pe, Addr(64) << 30, 0, &why)
                           : drv.create_ddw(pe, Addr(64) << 30, shift, unsigned(levels), &why);
    if (!ok) throw std::invalid_argument("--ddw-page/--ddw-levels: " + why);
    for (const auto& text : o.maps) {
        const lookup::MapSpec m = lookup::map(text, "--map");
        if (!drv.map(pe, m.iova, m.pa, m.size, m.perm, &why))
            throw std::invalid_argument(fmt::format("--map {}: {}", quote(text), why));
    }
    Requester req{lookup::bdf(o.rid)};
    drv.assign(req.rid, pe);
    if (o.iova.empty()) throw std::invalid_argument("--iova is required");
    const Addr iova = lookup::number(o.iova, "--iova");
    const Access acc = lookup::access(o.access);
    spapr::SpaprWalker walker(drv.phb());
    fmt::print(
        "sPAPR PE {}: 32-bit window 1 GiB of 4 KiB TCEs at 0, {} at {:#x}\n", pe,
        bypass ? std::string("bypass window") : fmt::format("DDW 64 GiB of {} pages", page_text),
        spapr::kDdwBusOffset);
    return lookup::report(walker, mem, req, iova, acc, drv.expect(req, iova));
}

// A 128 KiB map in the DDW of 64 KiB pages, written to.
int demo() {
    LookupRequest power;
    power.maps = {"0x0800000001230000:0x2000000000:128K:rw"};
    power.iova = "0x0800000001234567";
    power.access = "write";
    return run(power);
}

}  // namespace iommusim::spapr_lookup
