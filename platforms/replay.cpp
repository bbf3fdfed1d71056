#include "replay.h"

#include <fmt/format.h>

#include <chrono>
#include <map>

#include "arch/vtd/vtd_walker.h"
#include "host/vtd_driver.h"
#include "iommu/translation_unit.h"
#include "traces/trace.h"

namespace iommusim {

namespace {
// Translation-structure reads through the DRAM timing model (the walk port of the unit).
class DramPort final : public MemoryPort {
public:
    DramPort(SparseMemory& m, DramTiming& t) : mem_(m), t_(t) {}
    MemDone read(Addr a, void* d, size_t n, Tick at) override {
        return {t_.access(a, n, false, true, at), mem_.read(a, d, n)};
    }
    MemDone write(Addr a, const void* s, size_t n, Tick at) override {
        return {t_.access(a, n, true, true, at), mem_.write(a, s, n)};
    }
    bool peek(Addr a, void* d, size_t n) override { return mem_.read(a, d, n); }

private:
    SparseMemory& mem_;
    DramTiming& t_;
};
}  // namespace

Replay::Replay(ParamRegistry& registry) {
    unit_.iotlb = {64, 0, Replacement::LRU, 2};
    registry.bind("system.replay", params_);
    registry.bind("system.iommu0", unit_);
    registry.bind("system.memory", dram_);
}

Replay::~Replay() = default;

ReplayResult Replay::run(const std::string& path, StatGroup& stats) {
    const auto t0 = std::chrono::steady_clock::now();
    ReplayResult res;
    SparseMemory mem;
    vtd::DriverConfig dc;
    dc.hw.scalable = params_.scalable;
    dc.hw.sagaw = 0b1110;
    dc.hw.mgaw = 57;
    dc.large_pages = false;  // the guest's own mappings, page by page
    vtd::Driver drv(mem, dc);
    vtd::VtdWalker walker(drv.hw());
    DramTiming dram(dram_, stats.child("memory"));
    DramPort port(mem, dram);
    TranslationUnit unit(unit_, walker, port, stats.child("iommu0"));
    StatGroup& g = stats.child("replay");
    Counter& c_records = g.counter("records", "trace records replayed");
    Counter& c_dmas = g.counter("dmas", "DMA records");
    Counter& c_checked = g.counter("translations_checked",
                                   "translations with a recorded physical address, compared");
    Counter& c_mismatch =
        g.counter("mismatches", "translations that differ from the recorded address");
    Counter& c_faults = g.counter("faults", "translations that faulted");
    Histogram& h_lat =
        g.histogram("translation_latency", "ns", "IOMMU latency per translated page");

    // One domain per requester (the recording's devices), attached on first sight.
    std::map<uint16_t, uint16_t> domain_of;
    auto domain = [&](const Requester& r) {
        auto it = domain_of.find(r.rid);
        if (it != domain_of.end()) return it->second;
        vtd::DomainOptions o;
        uint16_t did = *drv.create_domain(o);
        drv.attach(r.rid, did);
        domain_of[r.rid] = did;
        return did;
    };
    size_t applied = 0;
    auto flush = [&](Tick at) {  // the driver's invalidations, executed by the unit
        const auto& inv = drv.invalidations();
        for (; applied < inv.size(); ++applied) at = unit.invalidate(inv[applied], at);
        drv.forget_issued();  // executed: keep memory flat in trace length
        applied = 0;
        return at;
    };

    trace::Reader reader(
        path, params_.stop_on_error ? trace::Reader::OnError::Stop : trace::Reader::OnError::Skip);
    trace::Record r;
    Tick now = 0;
    uint64_t first_ns = 0;
    bool first = true;
    std::string why;
    while ((!params_.max_records || res.records < params_.max_records) && reader.next(r)) {
        ++res.records;
        ++c_records;
        if (first) first_ns = r.time_ns, first = false;
        const Tick rec_t = (r.time_ns - first_ns) * kTicksPerNs;
        if (params_.timed && rec_t > now) now = rec_t;
        switch (r.kind) {
            case trace::Kind::Map: {
                ++res.maps;
                const uint16_t did = domain(r.req);
                const Addr lo = r.iova & ~Addr(0xFFF), pa = r.pa & ~Addr(0xFFF);
                const Addr len = ((r.iova + r.size + 0xFFF) & ~Addr(0xFFF)) - lo;
                drv.unmap(did, lo, len);  // a recorded map replaces whatever was there
                if (!drv.map(did, lo, pa, len, r.perm ? r.perm : kPermRW, &why))
                    res.errors.push_back(
                        fmt::format("{}:{}: map not applied: {}", path, reader.line(), why));
                now = flush(now);
                break;
            }
            case trace::Kind::Unmap:
                ++res.unmaps;
                drv.unmap(domain(r.req), r.iova & ~Addr(0xFFF),
                          ((r.iova + r.size + 0xFFF) & ~Addr(0xFFF)) - (r.iova & ~Addr(0xFFF)));
                now = flush(now);
                break;
            case trace::Kind::Invalidate:
                ++res.invalidations;
                now = unit.invalidate(r.scope, now);
                break;
            case trace::Kind::Fault: ++res.faults_recorded; break;
            case trace::Kind::Dma: {
                ++res.dmas;
                ++c_dmas;
                domain(r.req);
                // A DMA of unknown size stays within its page: the recording only saw that page.
                const uint64_t size =
                    r.size_known && r.size ? r.size
                                           : std::min<uint64_t>(params_.unknown_size, 0x1000 - (r.iova & 0xFFF));
                const Access acc = r.dir == trace::Dir::Write ? Access::Write : Access::Read;
                // Each translated page of the DMA is one translation, as the IOMMU sees it.
                Addr a = r.iova;
                const Addr end = r.iova + size;
                Tick done = now;
                while (a < end) {
                    TranslateOutcome o = unit.translate(r.req, a, acc, now);
                    ++res.translations;
                    h_lat.add((o.done - now) / kTicksPerNs);
                    done = std::max(done, o.done);
                    if (!o.result.ok()) {
                        ++res.faults;
                        ++c_faults;
                    }
                    // The recorded address is the translation of the recorded page only: the
                    // next pages of a DMA may map anywhere.
                    if (r.has_pa && (a >> 12) == (r.iova >> 12)) {
                        ++res.translations_checked;
                        ++c_checked;
                        const Addr expect = r.pa + (a - r.iova);
                        if (!o.result.ok() || o.result.tr.out != expect) {
                            ++res.mismatches;
                            ++c_mismatch;
                            if (res.first_mismatches.size() < 10)
                                res.first_mismatches.push_back({reader.line(), r.req, a, expect,
                                                                o.result.tr.out, !o.result.ok()});
                        }
                    }
                    const Addr page = o.result.ok() ? o.result.tr.page_size() : 4096;
                    a = (a & ~(page - 1)) + page;
                }
                if (!params_.timed) now = done;  // closed loop: the next DMA waits for this one
                break;
            }
        }
    }
    for (const auto& e : reader.errors()) res.errors.push_back(e.str());
    res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

}  // namespace iommusim
