#include "replay_device.h"

#include <fmt/format.h>

#include <algorithm>

namespace iommusim {

std::string Mismatch::str() const {
    const std::string answer = what == What::Fault          ? std::string("a fault")
                               : what == What::Untranslated ? std::string("no translation")
                                                            : fmt::format("{:#x}", got);
    return fmt::format("line {} {} iova {:#x}: expected {:#x}, got {}", line, to_string(req), iova,
                       expected, answer);
}

ReplayCheck::ReplayCheck(StatGroup& g)
    : translations(g.counter("translations", "translations the IOMMU made for replayed DMAs")),
      checked(g.counter("translations_checked",
                        "DMA records with a recorded physical address, compared")),
      mismatches(g.counter("mismatches", "recorded translations the replayed unit did not give")),
      faults(g.counter("faults", "translations of replayed DMAs that faulted")),
      latency(g.histogram("translation_latency", "ns", "IOMMU latency per translation")) {}

ReplayCheck::ReplayCheck(StatGroup& g, ReplayCheck& total) : ReplayCheck(g) {
    tenant.emplace(Tenant{
        total, g.counter("iotlb_hits", "translations of the tenant's DMAs that hit the IOTLB"),
        g.counter("iotlb_misses", "translations of the tenant's DMAs that missed it"),
        g.histogram("miss_latency", "ns", "IOMMU latency per translation that missed (walks)"),
        g.histogram("dma_latency", "ns",
                    "per DMA of the tenant, ready until its last completion")});
}

void ReplayCheck::mismatch(const Mismatch& m) {
    ++mismatches;
    if (first.size() < kFirst) first.push_back(m);
    if (tenant) tenant->total.mismatch(m);
}

void ReplayCheck::translated(Tick arrival, const TranslateOutcome& o) {
    ++translations;
    latency.add((o.done - arrival) / kTicksPerNs);
    if (!o.result.ok()) ++faults;
    if (!tenant) return;
    if (o.iotlb_hit) {
        ++tenant->iotlb_hits;
    } else {
        ++tenant->iotlb_misses;
        tenant->miss_latency.add((o.done - arrival) / kTicksPerNs);
    }
    tenant->total.translated(arrival, o);
}

void ReplayCheck::checked_one() {
    ++checked;
    if (tenant) tenant->total.checked_one();
}

void ReplayCheck::dma_done(uint64_t latency_ns) {
    if (tenant) tenant->dma_latency.add(latency_ns);
}

ReplayDevice::ReplayDevice(sc_core::sc_module_name name, const DmaEngineParams& ep,
                           StatGroup& stats, ReplayCheck& check)
    : sc_module(name),
      dma("dma"),
      engine_("engine", ep, stats.child("engine")),
      check_(check),
      dmas_(stats.counter("dmas", "DMA records issued")),
      checked_(stats.counter("translations_checked", "of them with a recorded translation")),
      mismatches_(stats.counter("mismatches", "recorded translations not given")),
      latency_(stats.histogram("dma_latency", "ns", "ready until the DMA's last completion")) {
    engine_.dma.bind(dma);
    engine_.on_complete([this](const DmaTransfer& t, const DmaResult& r) { completed(t, r); });
}

void ReplayDevice::submit(const DmaTransfer& t, const Expect& e) {
    Inflight f{e, t.req};
    f.lo = t.iova & ~Addr(0xFFF);
    f.hi = t.iova + std::max<uint64_t>(t.length, 1);  // lengths are bounded: no wrap
    inflight_.push_back(f);
    engine_.submit(t);
}

unsigned ReplayDevice::pending_through(Addr lo, uint64_t len) const {
    const Addr hi = lo + len;
    for (size_t i = inflight_.size(); i-- > 0;)
        if (inflight_[i].lo < hi && lo < inflight_[i].hi) return unsigned(i + 1);
    return 0;
}

void ReplayDevice::observe(Addr iova, Tick arrival, const TranslateOutcome& o) {
    check_.translated(arrival, o);
    if (inflight_.empty()) return;  // not a replayed DMA (cannot happen: one device per RID)
    Inflight& f = inflight_.front();
    // The recorded address is the translation of the recorded page only: the other pages of
    // a DMA may map anywhere.
    if (!f.e.has_pa || (iova >> 12) != (f.e.iova >> 12)) return;
    f.seen = true;
    const Addr expect = f.e.pa + (iova - f.e.iova);
    if (!o.result.ok()) {
        f.bad = f.fault = true;
    } else if (o.result.tr.out != expect) {
        f.bad = true;
        f.got = o.result.tr.out;
    }
}

void ReplayDevice::completed(const DmaTransfer&, const DmaResult& r) {
    const Inflight f = inflight_.front();
    inflight_.pop_front();
    ++dmas_;
    latency_.add(r.latency() / kTicksPerNs);
    check_.dma_done(r.latency() / kTicksPerNs);
    if (r.done > last_done_) last_done_ = r.done;
    if (f.e.has_pa) {
        ++checked_;
        check_.checked_one();
        if (f.bad || !f.seen) {
            ++mismatches_;
            Mismatch m;
            m.line = f.e.line, m.req = f.req, m.iova = f.e.iova, m.expected = f.e.pa;
            m.got = f.got;
            m.what = !f.seen   ? Mismatch::What::Untranslated
                     : f.fault ? Mismatch::What::Fault
                               : Mismatch::What::Wrong;
            check_.mismatch(m);
        }
    }
    progress_.notify();
}

std::string ReplayDevice::summary() const {
    return fmt::format(
        "{} DMAs, {} recorded translations checked, {} mismatches; latency mean "
        "{:.0f} ns, p99 {} ns",
        dmas_.value(), checked_.value(), mismatches_.value(), latency_.mean(),
        latency_.percentile(99));
}

}  // namespace iommusim
