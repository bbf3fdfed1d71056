#include "viommu.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "address_space.h"
#include "arch/vtd/vtd_format.h"
#include "arch/vtd/vtd_tables.h"
#include "core/why.h"
#include "flush_queue.h"
#include "intent_map.h"
#include "phys_alloc.h"

namespace iommusim {

std::optional<ViommuMode> EnumParam<ViommuMode>::parse(std::string_view s) {
    for (ViommuMode m : values())
        if (name(m) == s) return m;
    return std::nullopt;
}

std::string EnumParam<ViommuMode>::name(ViommuMode m) {
    switch (m) {
        case ViommuMode::None: return "none";
        case ViommuMode::Shadow: return "shadow";
        case ViommuMode::Nested: return "nested";
        case ViommuMode::NestedDirect: return "nested-direct";
        case ViommuMode::ParavirtSpapr: return "paravirt-spapr";
    }
    return "?";
}

namespace {

constexpr Addr kGiB = Addr(1) << 30;

std::string size_text(Addr v) {
    if (v && !(v & (kGiB - 1))) return fmt::format("{} GiB", v >> 30);
    if (v && !(v & ((Addr(1) << 20) - 1))) return fmt::format("{} MiB", v >> 20);
    if (v && !(v & 1023)) return fmt::format("{} KiB", v >> 10);
    return fmt::format("{:#x} bytes", v);
}

Addr page_round(Addr v, Addr page) {
    return (v + page - 1) & ~(page - 1);
}

// A DMA API inside the guest: each call goes through its vIOMMU.
class ViommuDmaApi final : public DmaMapper {
public:
    explicit ViommuDmaApi(Viommu& v) : v_(v) {}
    std::optional<Mapped> map(Addr pa, uint64_t len, bool write, Tick at) override {
        return v_.map(pa, len, write, at);
    }
    Tick unmap(Addr iova, uint64_t len, Tick at) override { return v_.unmap(iova, len, at); }

private:
    Viommu& v_;
};

}  // namespace

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

Viommu::Stats::Stats(StatGroup& g)
    : exits_inv(g.child("vm_exits")
                    .counter("inv_queue", "VM exits for invalidation-queue writes (trapped IQT)")),
      exits_hcall(g.child("vm_exits").counter("hcall", "VM exits for TCE hypercalls")),
      guest_maps(g.counter("guest_maps", "guest dma_map calls")),
      guest_unmaps(g.counter("guest_unmaps", "guest dma_unmap calls")),
      map_failures(g.counter("map_failures", "guest maps that failed")),
      shadow_maps(g.counter("shadow_maps", "host map calls made for the guest")),
      shadow_unmaps(g.counter("shadow_unmaps", "host unmap calls made for the guest")),
      vmm_reads(g.counter("vmm_table_reads", "guest table entries the VMM read")),
      passed_down(g.counter("passed_down", "guest invalidations passed down to the host unit")),
      direct_inv(g.counter("direct_invalidations",
                           "guest invalidations written straight to a hardware queue")),
      guest_inv(g.counter("guest_invalidations", "invalidations the guest submitted")),
      hcalls_put(g.child("hcalls").counter("put_tce", "H_PUT_TCE calls")),
      hcalls_indirect(g.child("hcalls").counter("put_tce_indirect", "H_PUT_TCE_INDIRECT calls")),
      hcalls_stuff(g.child("hcalls").counter("stuff_tce", "H_STUFF_TCE calls")),
      tces(g.child("hcalls").counter("tces", "TCEs the hypercalls set or cleared")),
      inv_latency(
          g.histogram("inv_latency_ns", "ns", "guest invalidation: guest submit to completion")),
      map_cost(g.histogram("map_ns", "ns", "guest dma_map call: start to mapping usable")),
      unmap_cost(g.histogram("unmap_ns", "ns", "guest dma_unmap call: start to return")) {}

Viommu::Viommu(const ViommuParams& p, const ViommuHost& host, StatGroup& g)
    : p_(p), host_(host), st_(g) {}

std::unique_ptr<DmaMapper> Viommu::dma_api() {
    return std::make_unique<ViommuDmaApi>(*this);
}

std::optional<Addr> Viommu::gpa_of(Addr hpa, std::string* why) const {
    if (hpa < p_.hpa_offset) {
        fail(why, fmt::format("host address {:#x} lies below the VM's RAM (hpa_offset {:#x})", hpa,
                              p_.hpa_offset));
        return std::nullopt;
    }
    return hpa - p_.hpa_offset;
}

std::optional<Addr> Viommu::gpa_of(Addr hpa, uint64_t len, std::string* why) const {
    auto gpa = gpa_of(hpa, why);
    if (!gpa) return std::nullopt;
    const IovaRegion hole = x86_msi_region();
    const Addr last = *gpa + (len ? len - 1 : 0);
    if (*gpa <= hole.last() && hole.base <= last) {
        fail(why, fmt::format("guest physical [{:#x}, {:#x}] touches the {} hole [{:#x}, {:#x}], "
                              "which is not the VM's RAM",
                              *gpa, last, hole.name, hole.base, hole.last()));
        return std::nullopt;
    }
    return gpa;
}

namespace {

Tick ns_between(Tick a, Tick b) {
    return (b - a + kTicksPerNs / 2) / kTicksPerNs;
}

// ---- Path 1: shadowing a caching-mode guest VT-d ----

class ShadowViommu final : public Viommu {
public:
    ShadowViommu(const ViommuParams& p, const ViommuHost& h, StatGroup& g)
        : Viommu(p, h, g),
          gfmt_(4, true, true),
          galloc_(kGuestTables, kGuestTablesSize),
          gas_(gmem_, galloc_, gfmt_),
          fq_({p.guest_fq_entries, p.guest_fq_timeout_us * 1000}) {
        gas_.iova().add_window({0, Addr(1) << 48, "all"});
        gas_.iova().add_reserved(x86_msi_region());
    }

    std::optional<Addr> map_long(Addr hpa, uint64_t len, std::string* why) override {
        auto gpa = gpa_of(hpa, len, why);
        if (!gpa) return std::nullopt;
        const Addr off = *gpa & (kPage - 1), glen = page_round(len + off, kPage);
        auto iova = gas_.iova().alloc(glen);
        if (!iova) {
            fail(why, fmt::format("guest IOVA space: no free range of {:#x} bytes", glen));
            return std::nullopt;
        }
        if (!gas_.map(*iova, *gpa - off, glen, kPermRW, why)) return std::nullopt;
        sync(*iova, glen, 0, false);
        return *iova + off;
    }
    bool map_at(Addr iova, Addr hpa, uint64_t len, std::string* why) override {
        auto gpa = gpa_of(hpa, len, why);
        if (!gpa || !gas_.map(iova, *gpa, len, kPermRW, why)) return false;
        sync(iova, len, 0, false);
        return true;
    }

    std::optional<DmaMapper::Mapped> map(Addr hpa, uint64_t len, bool write, Tick at) override {
        Tick t = at + ns(p_.guest_map_ns);
        t = lazy_tick(t);
        auto gpa = gpa_of(hpa, len, nullptr);
        const Addr off = gpa ? *gpa & (kPage - 1) : 0, glen = page_round(len + off, kPage);
        auto iova = gpa ? gas_.iova().alloc(glen) : std::nullopt;
        if (!iova || !gas_.map(*iova, *gpa - off, glen, write ? kPermRW : kPermR)) {
            if (iova) gas_.iova().free(*iova);
            ++st_.map_failures;
            return std::nullopt;
        }
        ++st_.guest_maps;
        // Caching mode: a new mapping is invalidated too, so the VMM sees it.
        t = guest_invalidate(*iova, glen, t);
        st_.map_cost.add(ns_between(at, t));
        return DmaMapper::Mapped{*iova + off, t};
    }

    Tick unmap(Addr iova, uint64_t len, Tick at) override {
        const Addr base = iova & ~(kPage - 1), glen = page_round(len + (iova - base), kPage);
        gas_.unmap(base, glen);
        ++st_.guest_unmaps;
        Tick t = at + ns(p_.guest_unmap_ns);
        if (p_.guest_strict) {
            t = guest_invalidate(base, glen, t);
            gas_.iova().free(base);
        } else if (fq_.push({0, base, glen, t / kTicksPerNs, true})) {
            t = flush(t);
        } else {
            t = lazy_tick(t);
        }
        st_.unmap_cost.add(ns_between(at, t));
        return t;
    }

    Expectation guest_intent(Addr iova) const override {
        auto hit = gas_.intent().translate(iova);
        if (!hit) return {};
        return {true, hit->pa + p_.hpa_offset, hit->perm};
    }

private:
    static constexpr Addr kPage = 4096;
    static constexpr Addr kGuestTables = Addr(1) << 28;  // guest-physical, in the guest's store
    static constexpr Addr kGuestTablesSize = Addr(1) << 28;
    static constexpr Addr kAll = (Addr(1) << 48) - 1;

    struct Leaf {
        Addr iova, size, gpa;
        Perm perm;
    };

    // The guest's flush queue: flush when its oldest entry has timed out.
    Tick lazy_tick(Tick t) {
        if (!p_.guest_strict && fq_.due(t / kTicksPerNs)) return flush(t);
        return t;
    }
    // A lazy guest's flush: one domain-selective invalidation, which makes the VMM walk the
    // whole of the guest's tables.
    Tick flush(Tick t) {
        auto pending = fq_.drain();
        t = guest_invalidate(0, kAll + 1, t);
        for (const auto& u : pending) gas_.iova().free(u.iova);
        return t;
    }

    // The guest writes an invalidation for [iova, + len) and the queue tail: a VM exit, the
    // VMM's walk and host updates, a VM entry. Returns when the guest goes on.
    Tick guest_invalidate(Addr iova, Addr len, Tick t) {
        const Tick start = t;
        ++st_.guest_inv;
        ++st_.exits_inv;
        t += ns(p_.guest_inv_submit_ns) + ns(p_.vm_exit_ns);
        t = sync(iova, len, t, true);
        st_.inv_latency.add(ns_between(start, t));
        return t;
    }

    void walk(Addr table, unsigned level, Addr base, Addr lo, Addr hi, std::vector<Leaf>& out,
              uint64_t& reads) const {
        const unsigned shift = gfmt_.level_shift(level);
        const Addr entries = Addr(1) << gfmt_.index_bits(level);
        const Addr span_last = base + ((entries << shift) - 1);
        const Addr from = (std::max(lo, base) - base) >> shift;
        const Addr to = (std::min(hi, span_last) - base) >> shift;
        for (Addr i = from; i <= to; ++i) {
            const uint64_t e = gmem_.read64(table + i * gfmt_.entry_size());
            ++reads;
            if (!gfmt_.is_present(e, level)) continue;
            const Addr eb = base + (i << shift);
            if (gfmt_.is_leaf(e, level))
                out.push_back(
                    {eb, Addr(1) << shift, gfmt_.address(e, level), gfmt_.leaf_perm(e, level)});
            else
                walk(gfmt_.address(e, level), level - 1, eb, lo, hi, out, reads);
        }
    }

    // Host PTEs one host map of `size` bytes at iova/hpa writes: one leaf when the host can
    // take it as one large page, else host pages.
    Addr host_ptes(Addr iova, Addr hpa, Addr size) const {
        for (unsigned s : {30u, 21u})
            if (size == (Addr(1) << s) && !((iova | hpa) & (size - 1))) return 1;
        return std::max<Addr>(1, size / p_.host_page_size);
    }

    // The VMM brings the shadow of [iova, + len) in line with the guest's tables: host
    // unmaps of what the guest removed (then the host's invalidation), host maps of what it
    // added. `timed`: costs are charged and counted (boot maps are not).
    Tick sync(Addr iova, Addr len, Tick t, bool timed) {
        const Addr lo = iova, hi = std::min(kAll, iova + (len - 1));
        std::vector<Leaf> leaves;
        uint64_t reads = 0;
        walk(gas_.table().root(), gfmt_.levels(), 0, lo, hi, leaves, reads);
        Tick cost = 0;
        auto clip = [&](Leaf l) {
            const Addr a = std::max(lo, l.iova), b = std::min(hi, l.iova + (l.size - 1));
            return Leaf{a, b - a + 1, l.gpa + (a - l.iova), l.perm};
        };
        // What the shadow has in range that the guest's tables no longer say.
        std::vector<Mapping> stale;
        shadow_.for_each([&](const Mapping& m) {
            const Addr a = std::max(lo, m.iova), b = std::min(hi, m.iova + (m.size - 1));
            if (a > b) return;
            stale.push_back({a, b - a + 1, m.pa + (a - m.iova), m.perm});
        });
        size_t host_unmaps = 0;
        for (const Mapping& s : stale) {
            bool same = false;
            for (const Leaf& raw : leaves) {
                const Leaf l = clip(raw);
                if (l.iova <= s.iova && s.iova + (s.size - 1) <= l.iova + (l.size - 1) &&
                    l.gpa + (s.iova - l.iova) + p_.hpa_offset == s.pa && l.perm == s.perm)
                    same = true;
            }
            if (same) continue;
            host_.drv->unmap(host_.did, s.iova, s.size, t / kTicksPerNs);
            shadow_.erase(s.iova, s.size);
            ++host_unmaps;
            cost += ns(p_.host_unmap_ns) + host_ptes(s.iova, s.pa, s.size) * ns(p_.host_pte_ns);
        }
        for (const Leaf& raw : leaves) {
            const Leaf l = clip(raw);
            if (shadow_.overlaps(l.iova, l.size)) continue;  // already shadowed, unchanged
            const Addr hpa = l.gpa + p_.hpa_offset;
            std::string why;
            if (!host_.drv->map(host_.did, l.iova, hpa, l.size, l.perm, &why))
                continue;  // the host refuses (MSI range, width): the device's DMA faults
            shadow_.insert({l.iova, l.size, hpa, l.perm});
            cost += ns(p_.host_map_ns) + host_ptes(l.iova, hpa, l.size) * ns(p_.host_pte_ns);
            if (timed) ++st_.shadow_maps;
        }
        if (!timed) return t;  // boot: maps only, nothing for the queue
        st_.vmm_reads += reads;
        st_.shadow_unmaps += host_unmaps;
        t += Tick(reads) * ns(p_.vmm_read_ns) + cost;
        // Host unmaps: the host driver's invalidations, waited for (VFIO unmaps are synchronous).
        return host_.submit(t);
    }

    SparseMemory gmem_;  // guest-physical memory holding the guest's tables
    vtd::SecondLevelFormat gfmt_;
    PhysAllocator galloc_;
    AddressSpace gas_;  // the guest driver's domain: its tables, IOVAs and intent
    FlushQueue fq_;
    IntentMap shadow_;  // what the VMM mapped on the host: IOVA -> HPA
};

// ---- Paths 3 and 4: hardware nesting, invalidations trapped or direct ----

class NestedViommu final : public Viommu {
public:
    NestedViommu(const ViommuParams& p, const ViommuHost& h, StatGroup& g, uint16_t s1)
        : Viommu(p, h, g),
          s1_(s1),
          direct_(p.mode == ViommuMode::NestedDirect),
          fq_({p.guest_fq_entries, p.guest_fq_timeout_us * 1000}) {}

    std::optional<Addr> map_long(Addr hpa, uint64_t len, std::string* why) override {
        auto gpa = gpa_of(hpa, len, why);
        if (!gpa || !guest_ram(*gpa, len, why)) return std::nullopt;
        return host_.drv->map_alloc(s1_, *gpa, len, kPermRW, ~Addr(0), why);
    }
    bool map_at(Addr iova, Addr hpa, uint64_t len, std::string* why) override {
        auto gpa = gpa_of(hpa, len, why);
        return gpa && guest_ram(*gpa, len, why) &&
               host_.drv->map(s1_, iova, *gpa, len, kPermRW, why);
    }

    std::optional<DmaMapper::Mapped> map(Addr hpa, uint64_t len, bool write, Tick at) override {
        // A lazy guest's flush queue times out on its next call, as shadowing's does.
        const Tick t0 = lazy_tick(at);
        auto gpa = gpa_of(hpa, len, nullptr);
        std::optional<Addr> iova;
        if (gpa && guest_ram(*gpa, len, nullptr))
            iova = host_.drv->map_alloc(s1_, *gpa, len, write ? kPermRW : kPermR);
        if (!iova) {
            ++st_.map_failures;
            return std::nullopt;
        }
        ++st_.guest_maps;
        // The guest writes its own first-level tables: nothing reaches the host.
        const Tick t = t0 + ns(p_.guest_map_ns);
        st_.map_cost.add(ns_between(at, t));
        return DmaMapper::Mapped{*iova, t};
    }

    // The guest's own iommu.strict (`guest_strict`): strict invalidates the range at once
    // and waits; lazy clears its PTEs, queues the IOVA, and flushes the whole first level
    // with one PASID-selective invalidation when the queue fills or times out.
    Tick unmap(Addr iova, uint64_t len, Tick at) override {
        ++st_.guest_unmaps;
        Tick t = lazy_tick(at) + ns(p_.guest_unmap_ns);
        AddressSpace& as = *host_.drv->space(s1_);
        const Addr base = iova & ~(kPage - 1), glen = page_round(len + (iova - base), kPage);
        as.unmap(base, glen);  // the guest clears its first-level PTEs
        if (p_.guest_strict) {
            host_.drv->invalidate(s1_, base, glen);
            t = guest_invalidate(t);
            as.iova().free(base);
        } else if (fq_.push({0, base, glen, t / kTicksPerNs, true})) {
            t = flush(t);
        }
        st_.unmap_cost.add(ns_between(at, t));
        return t;
    }

    Expectation guest_intent(Addr iova) const override {
        const AddressSpace* as = host_.drv->space(s1_);
        auto hit = as ? as->intent().translate(iova) : std::nullopt;
        if (!hit) return {};
        return {true, hit->pa + p_.hpa_offset, hit->perm};
    }

private:
    static constexpr Addr kPage = 4096;
    static constexpr Addr kAll = Addr(1) << 48;

    // The guest submits what the driver model just queued for its first level and waits for
    // it: trapped (VM exit, the VMM passes it down) or written to its own hardware queue.
    Tick guest_invalidate(Tick t) {
        const Tick start = t;
        ++st_.guest_inv;
        t += ns(p_.guest_inv_submit_ns);
        if (direct_) {
            ++st_.direct_inv;
            t += ns(p_.direct_submit_ns);
        } else {
            ++st_.exits_inv;
            ++st_.passed_down;
            t += ns(p_.vm_exit_ns) + ns(p_.passdown_ns);
        }
        t = host_.submit(t);
        st_.inv_latency.add(ns_between(start, t));
        return t;
    }
    Tick lazy_tick(Tick t) {
        if (!p_.guest_strict && fq_.due(t / kTicksPerNs)) return flush(t);
        return t;
    }
    // One PASID-selective invalidation for everything queued, waited for; then the IOVAs
    // are free again (Linux's flush queue: flush_iotlb_all, then free).
    Tick flush(Tick t) {
        auto pending = fq_.drain();
        if (pending.empty()) return t;
        host_.drv->invalidate(s1_, 0, kAll);
        t = guest_invalidate(t);
        AddressSpace& as = *host_.drv->space(s1_);
        for (const auto& u : pending) as.iova().free(u.iova);
        return t;
    }

    // The static second level: the VM's RAM, mapped GPA -> HPA in 1 GiB pieces as the guest
    // first uses them (a VMM maps all of it at start; only the touched part is built here).
    bool guest_ram(Addr gpa, uint64_t len, std::string* why) {
        const Addr last = gpa + (len ? len - 1 : 0);
        for (Addr c = gpa >> 30; c <= last >> 30; ++c) {
            if (ram_.count(c)) continue;
            // The MSI hole is not RAM: the piece around it is mapped, the hole left out.
            const IovaRegion hole = x86_msi_region();
            const Addr lo = c << 30, hi = lo + (kGiB - 1);
            std::vector<std::pair<Addr, Addr>> parts{{lo, hi}};
            if (lo <= hole.last() && hole.base <= hi)
                parts = {{lo, hole.base - 1}, {hole.last() + 1, hi}};
            for (auto [a, b] : parts)
                if (!host_.drv->map(host_.did, a, a + p_.hpa_offset, b - a + 1, kPermRW, why))
                    return false;
            ram_.insert(c);
        }
        return true;
    }

    uint16_t s1_;
    bool direct_;
    FlushQueue fq_;  // the guest's own (lazy); the host driver's policy is not the guest's
    std::set<Addr> ram_;
};

// ---- Path 2: a POWER sPAPR guest's TCE hypercalls on a VT-d host ----

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
        if (!iova) {
            ++st_.map_failures;
            return std::nullopt;
        }
        ++st_.guest_maps;
        st_.map_cost.add(ns_between(at, t));
        return DmaMapper::Mapped{*iova, t};
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

std::unique_ptr<Viommu> Viommu::create(const ViommuParams& p, const ViommuHost& host,
                                       StatGroup& stats, std::string* why) {
    const uint64_t hp = p.host_page_size;
    if (!host.drv || !host.submit) {
        fail(why, "no host unit driver to emulate the guest IOMMU on");
        return nullptr;
    }
    if (hp & (hp - 1)) {
        fail(why, fmt::format("host_page_size {} is not a power of two", hp));
        return nullptr;
    }
    switch (p.mode) {
        case ViommuMode::None: fail(why, "viommu mode none has no model"); return nullptr;
        case ViommuMode::Shadow:
            if (hp > 4096) {
                fail(why, fmt::format("shadow: the host's IO page size {} is larger than the "
                                      "guest VT-d's 4 KiB page; a guest page could not be "
                                      "shadowed on its own (expected a host page that divides "
                                      "4 KiB)",
                                      size_text(hp)));
                return nullptr;
            }
            return std::make_unique<ShadowViommu>(p, host, stats);
        case ViommuMode::Nested:
        case ViommuMode::NestedDirect: {
            if (hp > 4096) {
                fail(why, fmt::format("nested: the host's IO page size {} is larger than the "
                                      "guest's 4 KiB first-level page",
                                      size_text(hp)));
                return nullptr;
            }
            if (p.hpa_offset & (kGiB - 1)) {
                fail(why, fmt::format("nested: hpa_offset {:#x} is not 1 GiB aligned (the "
                                      "static second level maps the VM's RAM in 1 GiB pages)",
                                      p.hpa_offset));
                return nullptr;
            }
            auto s1 = host.drv->create_nested_domain(host.did, {}, why);
            if (!s1) {
                if (why)
                    *why = fmt::format("{}: {} (set the unit's mode = scalable)",
                                       EnumParam<ViommuMode>::name(p.mode), *why);
                return nullptr;
            }
            // The PASID entry's invalidation goes with the unit's boot (or the next submit).
            if (!host.drv->attach(host.rid, *s1, why)) return nullptr;
            return std::make_unique<NestedViommu>(p, host, stats, *s1);
        }
        case ViommuMode::ParavirtSpapr: {
            const HostIovaLimits lim = host_iova_limits(*host.drv, hp);
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
    }
    return nullptr;
}

}  // namespace iommusim
