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
#include "viommu_impl.h"

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

using viommu_detail::kGiB;
using viommu_detail::ns_between;
using viommu_detail::page_round;
using viommu_detail::size_text;

std::string viommu_detail::size_text(Addr v) {
    if (v && !(v & (kGiB - 1))) return fmt::format("{} GiB", v >> 30);
    if (v && !(v & ((Addr(1) << 20) - 1))) return fmt::format("{} MiB", v >> 20);
    if (v && !(v & 1023)) return fmt::format("{} KiB", v >> 10);
    return fmt::format("{:#x} bytes", v);
}

namespace {

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

std::optional<DmaMapper::Mapped> Viommu::counted_map(std::optional<Addr> iova, Tick at, Tick done) {
    if (!iova) {
        ++st_.map_failures;
        return std::nullopt;
    }
    ++st_.guest_maps;
    st_.map_cost.add(viommu_detail::ns_between(at, done));
    return DmaMapper::Mapped{*iova, done};
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

// ---- What a VT-d guest does alike on paths 1, 3 and 4: its dma_map and dma_unmap, its own
// flush queue (iommu.strict=0) and the accounting of the invalidations it submits ----

class VtdGuestViommu : public Viommu {
public:
    std::optional<DmaMapper::Mapped> map(Addr hpa, uint64_t len, bool write, Tick at) final {
        const Tick t0 = lazy_tick(at);
        auto gpa = gpa_of(hpa, len, nullptr);
        auto iova = gpa ? guest_map(*gpa, len, write ? kPermRW : kPermR) : std::nullopt;
        return counted_map(iova, at, iova ? mapped(*iova, len, t0 + ns(p_.guest_map_ns)) : at);
    }

    // The guest's own iommu.strict (`guest_strict`), whatever the host driver's: strict
    // clears its PTEs, invalidates the range and waits; lazy clears them and queues the IOVA,
    // and one invalidation of everything flushes the queue when it fills (this call pays)
    // or its oldest entry times out (the next call pays).
    Tick unmap(Addr iova, uint64_t len, Tick at) final {
        ++st_.guest_unmaps;
        Tick t = lazy_tick(at) + ns(p_.guest_unmap_ns);
        const Addr base = iova & ~(kPage - 1), glen = page_round(len + (iova - base), kPage);
        space().unmap(base, glen);
        if (p_.guest_strict) {
            t = invalidate(base, glen, t);
            space().iova().free(base);
        } else if (fq_.push({0, base, glen, t / kTicksPerNs, true})) {
            t = flush(t);
        }
        st_.unmap_cost.add(ns_between(at, t));
        return t;
    }

    Expectation guest_intent(Addr iova) const final {
        auto hit = space().intent().translate(iova);
        if (!hit) return {};
        return {true, hit->pa + p_.hpa_offset, hit->perm};
    }

protected:
    static constexpr Addr kPage = 4096;
    static constexpr Addr kAll = Addr(1) << 48;  // the guest's whole IOVA space

    VtdGuestViommu(const ViommuParams& p, const ViommuHost& h, StatGroup& g)
        : Viommu(p, h, g), fq_({p.guest_fq_entries, p.guest_fq_timeout_us * 1000}) {}

    // The guest driver's domain: its tables, IOVAs and intent.
    virtual AddressSpace& space() = 0;
    virtual const AddressSpace& space() const = 0;
    // The guest's PTE writes for [gpa, + len): the IOVA, or nullopt when it cannot map.
    virtual std::optional<Addr> guest_map(Addr gpa, uint64_t len, Perm perm) = 0;
    // What follows the guest's PTE writes of a map; returns when the guest goes on.
    virtual Tick mapped(Addr iova, uint64_t len, Tick t) = 0;
    // The guest invalidates [iova, + len) (kAll: its whole space) and waits for it.
    virtual Tick invalidate(Addr iova, Addr len, Tick t) = 0;

    // One guest invalidation, counted and timed from the guest's descriptor writes:
    // `deliver` takes it from the queue-tail write to completion.
    template <typename Deliver>
    Tick submit(Tick t, Deliver&& deliver) {
        const Tick start = t;
        ++st_.guest_inv;
        t = deliver(t + ns(p_.guest_inv_submit_ns));
        st_.inv_latency.add(ns_between(start, t));
        return t;
    }

private:
    // A timed-out flush queue is flushed by the guest's next call.
    Tick lazy_tick(Tick t) {
        if (!p_.guest_strict && fq_.due(t / kTicksPerNs)) return flush(t);
        return t;
    }
    // One invalidation for everything queued, waited for; then the IOVAs are free again
    // (Linux's flush queue: flush_iotlb_all, then free).
    Tick flush(Tick t) {
        auto pending = fq_.drain();
        if (pending.empty()) return t;
        t = invalidate(0, kAll, t);
        for (const auto& u : pending) space().iova().free(u.iova);
        return t;
    }

    FlushQueue fq_;  // the guest's own: the host driver's policy is not the guest's
};

// ---- Path 1: shadowing a caching-mode guest VT-d ----

class ShadowViommu final : public VtdGuestViommu {
public:
    ShadowViommu(const ViommuParams& p, const ViommuHost& h, StatGroup& g)
        : VtdGuestViommu(p, h, g),
          gfmt_(4, true, true),
          galloc_(kGuestTables, kGuestTablesSize),
          gas_(gmem_, galloc_, gfmt_) {
        gas_.iova().add_window({0, kAll, "all"});
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

private:
    static constexpr Addr kGuestTables = Addr(1) << 28;  // guest-physical, in the guest's store
    static constexpr Addr kGuestTablesSize = Addr(1) << 28;
    static constexpr Addr kLast = kAll - 1;

    struct Leaf {
        Addr iova, size, gpa;
        Perm perm;
    };

    AddressSpace& space() override { return gas_; }
    const AddressSpace& space() const override { return gas_; }
    std::optional<Addr> guest_map(Addr gpa, uint64_t len, Perm perm) override {
        const Addr off = gpa & (kPage - 1), glen = page_round(len + off, kPage);
        auto iova = gas_.iova().alloc(glen);
        if (!iova) return std::nullopt;
        if (!gas_.map(*iova, gpa - off, glen, perm)) {
            gas_.iova().free(*iova);
            return std::nullopt;
        }
        return *iova + off;
    }
    // Caching mode: a new mapping is invalidated too, so the VMM sees it.
    Tick mapped(Addr iova, uint64_t len, Tick t) override {
        const Addr base = iova & ~(kPage - 1);
        return invalidate(base, page_round(len + (iova - base), kPage), t);
    }
    // The guest's queue-tail write traps: a VM exit, the VMM's walk over the range (the
    // whole table for a domain-selective flush) and host updates, a VM entry.
    Tick invalidate(Addr iova, Addr len, Tick t) override {
        return submit(t, [&](Tick at) {
            ++st_.exits_inv;
            return sync(iova, len, at + ns(p_.vm_exit_ns), true);
        });
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
        const Addr lo = iova, hi = std::min(kLast, iova + (len - 1));
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
    IntentMap shadow_;  // what the VMM mapped on the host: IOVA -> HPA
};

// ---- Paths 3 and 4: hardware nesting, invalidations trapped or direct ----

class NestedViommu final : public VtdGuestViommu {
public:
    NestedViommu(const ViommuParams& p, const ViommuHost& h, StatGroup& g, uint16_t s1)
        : VtdGuestViommu(p, h, g), s1_(s1), direct_(p.mode == ViommuMode::NestedDirect) {}

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

private:
    AddressSpace& space() override { return *host_.drv->space(s1_); }
    const AddressSpace& space() const override { return *host_.drv->space(s1_); }
    std::optional<Addr> guest_map(Addr gpa, uint64_t len, Perm perm) override {
        if (!guest_ram(gpa, len, nullptr)) return std::nullopt;
        return host_.drv->map_alloc(s1_, gpa, len, perm);
    }
    // The guest writes its own first-level tables: nothing reaches the host.
    Tick mapped(Addr, uint64_t, Tick t) override { return t; }
    // A page- or PASID-selective invalidation of the guest's first level, trapped (VM exit,
    // the VMM passes it down) or written to its own hardware queue; the host unit runs it.
    Tick invalidate(Addr iova, Addr len, Tick t) override {
        host_.drv->invalidate(s1_, iova, len);
        return submit(t, [&](Tick at) {
            if (direct_) {
                ++st_.direct_inv;
                at += ns(p_.direct_submit_ns);
            } else {
                ++st_.exits_inv;
                ++st_.passed_down;
                at += ns(p_.vm_exit_ns) + ns(p_.passdown_ns);
            }
            return host_.submit(at);
        });
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
    std::set<Addr> ram_;
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
        case ViommuMode::ParavirtSpapr: return viommu_detail::make_spapr(p, host, stats, why);
    }
    return nullptr;
}

}  // namespace iommusim
