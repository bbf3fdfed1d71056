// Path 2 of the vIOMMU (viommu.h): a POWER sPAPR guest's TCE hypercalls on a VT-d host, and
// the check of the guest's DMA windows against the host's permitted IOVA ranges.
#include <fmt/format.h>

#include <algorithm>

#include "address_space.h"
#include "arch/vtd/vtd_format.h"
#include "core/why.h"
#include "intent_map.h"
#include "viommu_impl.h"

namespace iommusim {

using viommu_detail::ns_between;
using viommu_detail::page_round;
using viommu_detail::size_text;

HostIovaLimits host_iova_limits(const vtd::Driver& drv, uint64_t host_page_size) {
    HostIovaLimits h;
    h.width = std::min(vtd::aw_bits(vtd::levels_to_aw(drv.config().sl_levels)), drv.hw().mgaw);
    h.reserved.push_back(x86_msi_region());
    h.page_size = host_page_size;
    return h;
}

std::optional<Addr> place_guest_window(const char* what, Addr base, Addr size, unsigned page_shift,
                                       const HostIovaLimits& host, bool relocate,
                                       std::string* why) {
    const Addr tce_page = Addr(1) << page_shift;
    if (host.page_size > tce_page) {
        fail(why, fmt::format("{}: the host's IO page size {} is larger than the guest's TCE page "
                              "size {}: one TCE could not be mapped on its own (expected a host "
                              "page of at most {})",
                              what, size_text(host.page_size), size_text(tce_page),
                              size_text(tce_page)));
        return std::nullopt;
    }
    if (size == 0 || (size & (tce_page - 1)) || (base & (tce_page - 1))) {
        fail(why, fmt::format("{}: base {:#x} size {:#x} not aligned to its {} TCE pages", what,
                              base, size, size_text(tce_page)));
        return std::nullopt;
    }
    const Addr limit = host.width >= 64 ? ~Addr(0) : (Addr(1) << host.width) - 1;
    auto problem = [&](Addr b) -> std::string {
        const Addr last = b + (size - 1);
        if (last < b || last > limit)
            return fmt::format(
                "[{:#x}, {:#x}] passes the host's {}-bit IOVA width (last "
                "permitted address {:#x})",
                b, b + (size - 1), host.width, limit);
        for (const IovaRegion& r : host.reserved)
            if (b <= r.last() && r.base <= last)
                return fmt::format(
                    "[{:#x}, {:#x}] overlaps the host's reserved {} range "
                    "[{:#x}, {:#x}]",
                    b, last, r.name, r.base, r.last());
        return {};
    };
    std::string first = problem(base);
    if (first.empty()) return base;
    if (!relocate) {
        fail(why, fmt::format("{} of {} at {:#x}: {}", what, size_text(size), base, first));
        return std::nullopt;
    }
    // The lowest base at or above 4 GiB (clear of the 32-bit window and the MSI range)
    // aligned to the window's size rounded up to a power of two, as PAPR windows are.
    Addr align = Addr(1) << (64 - __builtin_clzll(size - 1));
    if (size == 1) align = 1;
    for (Addr b = std::max<Addr>(align, Addr(1) << 32); b && b <= limit; b += align)
        if (problem(b).empty()) return b;
    fail(why, fmt::format("{} of {} at {:#x}: {}; no base the host permits holds it either "
                          "(host IOVA width {} bits)",
                          what, size_text(size), base, first, host.width));
    return std::nullopt;
}

namespace {

class SpaprViommu final : public Viommu {
public:
    struct Window {
        const char* name;
        Addr base, size;
        unsigned shift;
        IovaSpace iova;
        IntentMap intent;  // IOVA -> guest physical
    };

    SpaprViommu(const ViommuParams& p, const ViommuHost& h, StatGroup& g,
                std::vector<std::unique_ptr<Window>> w)
        : Viommu(p, h, g), win_(std::move(w)) {}

    std::optional<Addr> map_long(Addr hpa, uint64_t len, std::string* why) override {
        return guest_map(hpa, len, kPermRW, 0, false, why).first;
    }
    bool map_at(Addr, Addr, uint64_t, std::string*) override { return false; }

    std::optional<DmaMapper::Mapped> map(Addr hpa, uint64_t len, bool write, Tick at) override {
        auto [iova, t] = guest_map(hpa, len, write ? kPermRW : kPermR, at, true, nullptr);
        return counted_map(iova, at, t);
    }

    Tick unmap(Addr iova, uint64_t len, Tick at) override {
        Window* w = window_of(iova);
        ++st_.guest_unmaps;
        Tick t = at + ns(p_.guest_unmap_ns);
        if (!w) return t;
        const Addr page = Addr(1) << w->shift, base = iova & ~(page - 1);
        const Addr n = page_round(len + (iova - base), page) / page;
        // Linux pseries frees a range with one H_STUFF_TCE.
        ++st_.hcalls_stuff;
        ++st_.exits_hcall;
        st_.tces += n;
        t += ns(p_.hcall_ns) + Tick(n) * ns(p_.hcall_tce_ns);
        for (Addr i = 0; i < n; ++i) {  // the VMM's notifier unmaps each TCE from the host
            host_.drv->unmap(host_.did, base + i * page, page, t / kTicksPerNs);
            ++st_.shadow_unmaps;
            t += ns(p_.host_unmap_ns) + Tick(page / p_.host_page_size) * ns(p_.host_pte_ns);
        }
        w->intent.erase(base, n * page);
        w->iova.free(base);
        if (!host_.drv->descriptors().empty()) {
            const Tick start = t;
            t = host_.submit(t);
            st_.inv_latency.add(ns_between(start, t));
        }
        st_.unmap_cost.add(ns_between(at, t));
        return t;
    }

    Expectation guest_intent(Addr iova) const override {
        for (const auto& w : win_)
            if (auto hit = w->intent.translate(iova))
                return {true, hit->pa + p_.hpa_offset, hit->perm};
        return {};
    }
    std::vector<IovaRegion> windows() const override {
        std::vector<IovaRegion> r;
        for (const auto& w : win_) r.push_back({w->base, w->size, w->name});
        return r;
    }

private:
    Window* window_of(Addr iova) {
        for (auto& w : win_)
            if (iova >= w->base && iova - w->base < w->size) return w.get();
        return nullptr;
    }

    // Per-I/O maps go through the DDW when the guest has one, as Linux pseries does.
    std::pair<std::optional<Addr>, Tick> guest_map(Addr hpa, uint64_t len, Perm perm, Tick at,
                                                   bool timed, std::string* why) {
        Window& w = *win_.back();
        const Addr page = Addr(1) << w.shift;
        auto gpa = gpa_of(hpa, len, why);
        if (!gpa) return {std::nullopt, at};
        const Addr off = *gpa & (page - 1), glen = page_round(len + off, page);
        auto iova = w.iova.alloc(glen);
        if (!iova) {
            fail(why, fmt::format("{}: no free range of {:#x} bytes", w.name, glen));
            return {std::nullopt, at};
        }
        const Addr n = glen / page, gbase = *gpa - off;
        Tick t = at + ns(p_.guest_map_ns);
        // One TCE: H_PUT_TCE; more: H_PUT_TCE_INDIRECT with up to 512 TCEs (one 4 KiB page).
        for (Addr done = 0; done < n;) {
            const Addr k = std::min<Addr>(n - done, 512);
            if (timed) {
                ++(n == 1 ? st_.hcalls_put : st_.hcalls_indirect);
                ++st_.exits_hcall;
                st_.tces += k;
            }
            t += ns(p_.hcall_ns) + Tick(k) * ns(p_.hcall_tce_ns);
            for (Addr i = done; i < done + k; ++i) {
                std::string err;
                const Addr a = *iova + i * page, h = gbase + i * page + p_.hpa_offset;
                if (!host_.drv->map(host_.did, a, h, page, perm, &err)) {
                    // H_PARAMETER back to the guest: undo what this map put in.
                    host_.drv->unmap(host_.did, *iova, i * page);
                    if (timed) t = host_.submit(t);
                    w.iova.free(*iova);
                    fail(why, "host map: " + err);
                    return {std::nullopt, t};
                }
                if (timed) ++st_.shadow_maps;
                t += ns(p_.host_map_ns) + Tick(page / p_.host_page_size) * ns(p_.host_pte_ns);
            }
            done += k;
        }
        w.intent.insert({*iova, glen, gbase, perm});
        return {*iova + off, timed ? t : at};
    }

    std::vector<std::unique_ptr<Window>> win_;  // the default window, then the DDW if any
};

}  // namespace

std::unique_ptr<Viommu> viommu_detail::make_spapr(const ViommuParams& p, const ViommuHost& host,
                                                  StatGroup& stats, std::string* why) {
    const HostIovaLimits lim = host_iova_limits(*host.drv, p.host_page_size);
    std::vector<std::unique_ptr<SpaprViommu::Window>> w;
    auto add = [&](const char* name, Addr base, Addr size, unsigned shift, bool relocate) {
        auto b = place_guest_window(name, base, size, shift, lim, relocate, why);
        if (!b) return false;
        auto win = std::make_unique<SpaprViommu::Window>();
        win->name = name;
        win->base = *b;
        win->size = size;
        win->shift = shift;
        win->iova.add_window({*b, size, name});
        w.push_back(std::move(win));
        return true;
    };
    if (!add("default window", 0, p.dma32_size, p.dma32_page_shift, false)) return nullptr;
    if (p.ddw_size && !add("DDW", p.ddw_base, p.ddw_size, p.ddw_page_shift, p.ddw_relocate))
        return nullptr;
    return std::make_unique<SpaprViommu>(p, host, stats, std::move(w));
}

}  // namespace iommusim
