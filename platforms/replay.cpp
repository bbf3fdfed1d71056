#include "replay.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_set>

namespace iommusim {

std::string replay_limit_error(const trace::Record& r, uint64_t first_ns, uint64_t prev_ns,
                               bool timed) {
    using L = ReplayLimits;
    const bool sized = r.kind == trace::Kind::Map || r.kind == trace::Kind::Unmap ||
                       (r.kind == trace::Kind::Dma && r.size_known);
    if (sized) {
        const uint64_t max = r.kind == trace::Kind::Dma ? L::kMaxDmaBytes : L::kMaxMapBytes;
        if (r.size > max)
            return fmt::format("size {} bytes is more than a replay takes ({} bytes at most)",
                               r.size, max);
        // Ranges are widened to whole pages: the last page must end within 64 bits.
        constexpr Addr kTop = ~Addr(0) - 0xFFF;
        if (r.iova > kTop || r.size > kTop - r.iova)
            return fmt::format("iova {:#x} + size {:#x} runs past the 64-bit address space", r.iova,
                               r.size);
    }
    if (!timed) return {};
    if (r.time_ns - prev_ns > L::kMaxGapNs)
        return fmt::format(
            "time {} ns is {} ns after the previous record's; a replay at recorded times takes "
            "gaps of at most {} ns (1 hour; replay with system.replay.timed=0 to ignore times)",
            r.time_ns, r.time_ns - prev_ns, L::kMaxGapNs);
    if (r.time_ns - first_ns > L::kMaxSpanNs)
        return fmt::format(
            "time {} ns is {} ns after the first record's; a replay at recorded times spans at "
            "most {} ns (2^63 ps)",
            r.time_ns, r.time_ns - first_ns, L::kMaxSpanNs);
    return {};
}

TraceSummary scan_trace(const std::string& path, bool timed) {
    constexpr size_t kMaxListed = 1000;
    TraceSummary s;
    std::unordered_set<uint16_t> seen;
    trace::Reader reader(path, trace::Reader::OnError::Skip);
    trace::Record r;
    std::vector<trace::ParseError> limits;
    uint64_t first = 0, prev = 0, unlisted = 0;
    bool any = false;
    while (reader.next(r)) {
        if (!any) first = prev = r.time_ns, any = true;
        std::string why = replay_limit_error(r, first, prev, timed);
        if (!why.empty()) {
            // As the reader lists bad lines: a bounded list, then one entry counting the rest.
            if (limits.size() < kMaxListed)
                limits.push_back({path, reader.line(), std::move(why)});
            else
                ++unlisted;
            continue;
        }
        prev = r.time_ns;
        ++s.records;
        if (r.time_ns >= first && r.time_ns - first > s.span_ns) s.span_ns = r.time_ns - first;
        if (r.kind != trace::Kind::Invalidate && seen.insert(r.req.rid).second) {
            s.rids.push_back(r.req.rid);
            s.rid_lines.push_back(reader.line());
        }
    }
    if (unlisted)
        limits.push_back({path, limits.back().line,
                          fmt::format("{} more records past the limits not listed", unlisted)});
    s.errors = reader.errors();
    s.errors.insert(s.errors.end(), limits.begin(), limits.end());
    std::stable_sort(s.errors.begin(), s.errors.end(),
                     [](const auto& a, const auto& b) { return a.line < b.line; });
    return s;
}

ReplayHost::ReplayHost(sc_core::sc_module_name name, std::string path, const ReplayParams& p,
                       std::unordered_map<uint16_t, ReplayTarget> targets, uint64_t total_records,
                       ReplayCheck& check, StatGroup& g, uint16_t rid_offset,
                       const ReplayTenantParams& tenant)
    : sc_module(name),
      path_(std::move(path)),
      p_(p),
      targets_(std::move(targets)),
      total_(total_records),
      check_(check),
      rid_offset_(rid_offset),
      tenant_(tenant),
      records_(g.counter("records", "trace records replayed")),
      maps_(g.counter("maps", "map records applied through the driver model")),
      unmaps_(g.counter("unmaps", "unmap records applied through the driver model")),
      invalidations_(g.counter("invalidations", "invalidation records")),
      dmas_(g.counter("dmas", "DMA records issued by the replay devices")),
      faults_recorded_(g.counter("faults_recorded", "fault records (the recording's faults)")),
      barrier_waits_(
          g.counter("barrier_waits", "unmaps and remaps that waited for the requester's DMAs")),
      pasid_stripped_(
          g.counter("pasid_stripped", "PASID-tagged records replayed without the PASID (legacy)")) {
    SC_HAS_PROCESS(ReplayHost);
    SC_THREAD(run);
}

ReplayHost::~ReplayHost() = default;

Tick ReplayHost::when(uint64_t since_first_ns) const {
    if (tenant_.rate == 1.0) return (tenant_.shift_ns + since_first_ns) * kTicksPerNs;
    // The platform checked that shift_ns + span / rate fits (ReplayLimits::kMaxSpanNs).
    return tenant_.shift_ns * kTicksPerNs +
           Tick(std::llround(double(since_first_ns) * double(kTicksPerNs) / tenant_.rate));
}

Tick ReplayHost::now() const {
    return to_ticks(qk_.get_current_time());
}

void ReplayHost::advance_to(Tick t) {
    if (t <= now()) return;
    qk_.set(to_sc_time(t - to_ticks(sc_core::sc_time_stamp())));
    if (qk_.need_sync()) qk_.sync();
}

void ReplayHost::wait_pending(ReplayDevice& d, unsigned limit) {
    if (d.pending() <= limit) return;
    const Tick before = now();
    qk_.sync();  // the device runs only when this process yields
    while (d.pending() > limit) sc_core::wait(d.progress_event());
    qk_.reset();
    advance_to(before);
}

void ReplayHost::drain(ReplayDevice& d) {
    if (d.pending()) ++barrier_waits_;
    wait_pending(d, 0);
    advance_to(d.last_done());
}

ReplayTarget* ReplayHost::target(Requester& r, uint64_t line) {
    auto it = targets_.find(r.rid);
    if (it == targets_.end()) {  // the first pass saw every RID, unless the file changed since
        errors_.push_back(fmt::format("{}:{}: requester {} was not in the trace's first pass",
                                      path_, line, to_string(r)));
        return nullptr;
    }
    ReplayTarget& t = it->second;
    if (r.pasid == Requester::kNoPasid) return &t;
    if (!t.driver->takes_pasids()) {
        ++pasid_stripped_;
        r.pasid = Requester::kNoPasid;
        return &t;
    }
    if (t.pasids.insert(r.pasid).second) {
        std::string why;
        Tick done = now();
        if (!t.driver->attach_pasid(r.pasid, now(), &done, &why))
            errors_.push_back(fmt::format("{}: attaching PASID {:#x} of {}: {}", path_, r.pasid,
                                          to_string(r), why));
        advance_to(done);
    }
    return &t;
}

namespace {
// A record's range widened to whole 4 KiB pages.
std::pair<Addr, Addr> pages(Addr iova, uint64_t size) {
    const Addr lo = iova & ~Addr(0xFFF);
    return {lo, ((iova + (size ? size : 1) + 0xFFF) & ~Addr(0xFFF)) - lo};
}
}  // namespace

void ReplayHost::apply(const trace::Record& rec, uint64_t line) {
    trace::Record r = rec;
    ReplayTarget* tp = nullptr;  // the requester's, for the records that have one
    if (r.kind == trace::Kind::Map || r.kind == trace::Kind::Unmap || r.kind == trace::Kind::Dma)
        if (!(tp = target(r.req, line))) return;
    switch (r.kind) {
        case trace::Kind::Map: {
            ++maps_;
            ReplayTarget& t = *tp;
            auto& doms = recorded_domains_[r.domain];
            if (std::find(doms.begin(), doms.end(), r.req.rid) == doms.end())
                doms.push_back(r.req.rid);
            const auto [lo, len] = pages(r.iova, r.size);
            // The requester's DMAs recorded before this map were done before it, so they must
            // translate (or fault) without it, however far the device lags the host.
            if (const unsigned k = t.device->pending_through(lo, len)) {
                ++barrier_waits_;
                wait_pending(*t.device, t.device->pending() - k);
                advance_to(t.device->last_done());
            }
            // A recorded map replaces whatever was there; DMAs before it used the old mapping.
            if (t.driver->mapped(lo, len)) {
                drain(*t.device);
                advance_to(t.driver->unmap(lo, len, now()));
            }
            std::string why;
            Tick done = now();
            if (!t.driver->map(lo, r.pa & ~Addr(0xFFF), len, r.perm ? r.perm : kPermRW, now(),
                               &done, &why))
                errors_.push_back(fmt::format("{}:{}: map not applied: {}", path_, line, why));
            advance_to(done);
            break;
        }
        case trace::Kind::Unmap: {
            ++unmaps_;
            ReplayTarget& t = *tp;
            drain(*t.device);
            const auto [lo, len] = pages(r.iova, r.size);
            advance_to(t.driver->unmap(lo, len, now()));
            break;
        }
        case trace::Kind::Invalidate: {
            ++invalidations_;
            if (!p_.recorded_invalidations) break;
            // The recording's domain numbers are the guest's: each becomes the domains of the
            // requesters that mapped in it. Scopes naming no domain go to every unit.
            InvalidationScope s = r.scope;
            using K = InvalidationScope::Kind;
            const bool per_domain =
                s.domain != InvalidationScope::kAllDomains &&
                (s.kind == K::Domain || s.kind == K::Page || s.kind == K::Pasid ||
                 s.kind == K::PasidPage || s.kind == K::ContextDomain || s.kind == K::PasidCache);
            if (per_domain) {
                auto it = recorded_domains_.find(r.scope.domain);
                if (it == recorded_domains_.end()) break;  // nothing of it was mapped here
                for (uint16_t rid : it->second) targets_.at(rid).driver->invalidate(s, now());
            } else {
                std::vector<const void*> done;
                for (auto& [rid, t] : targets_)
                    if (std::find(done.begin(), done.end(), t.driver->unit_id()) == done.end()) {
                        done.push_back(t.driver->unit_id());
                        t.driver->invalidate_unit(s, now());
                    }
            }
            break;
        }
        case trace::Kind::Fault: ++faults_recorded_; break;
        case trace::Kind::Dma: {
            ++dmas_;
            ReplayDevice& d = *tp->device;
            wait_pending(d, p_.queue_depth - 1);  // the device is behind: let it catch up
            // A DMA of unknown size stays within its page: the recording only saw that page.
            const uint64_t size =
                r.size_known && r.size
                    ? r.size
                    : std::min<uint64_t>(p_.unknown_size, 0x1000 - (r.iova & 0xFFF));
            DmaTransfer x;
            x.req = r.req;
            x.iova = r.iova;
            x.length = size;
            x.write = r.dir == trace::Dir::Write;
            x.ready = now();
            x.id = line;
            d.submit(x, {line, r.iova, r.pa, r.has_pa});
            break;
        }
    }
}

void ReplayHost::run() {
    const auto t0 = std::chrono::steady_clock::now();
    qk_.reset();
    try {
        trace::Reader reader(
            path_, p_.stop_on_error ? trace::Reader::OnError::Stop : trace::Reader::OnError::Skip);
        trace::Record r;
        uint64_t prev_ns = 0;
        while ((!p_.max_records || records_.value() < p_.max_records) && reader.next(r)) {
            if (!seen_first_) first_ns_ = prev_ns = r.time_ns, seen_first_ = true;
            // The first pass refused these; the file may have changed since.
            const std::string why = replay_limit_error(r, first_ns_, prev_ns, p_.timed);
            if (!why.empty()) {
                errors_.push_back(fmt::format("{}:{}: {}", path_, reader.line(), why));
                if (p_.stop_on_error) break;
                continue;
            }
            prev_ns = r.time_ns;
            ++records_;
            if (p_.timed && r.time_ns >= first_ns_) advance_to(when(r.time_ns - first_ns_));
            // A tenant's requesters are remapped (the platform checked that theirs fit); an
            // invalidation naming a requester names the remapped one.
            using K = InvalidationScope::Kind;
            if (r.kind != trace::Kind::Invalidate) {
                r.req.rid = uint16_t(r.req.rid + rid_offset_);
            } else if (rid_offset_ &&
                       (r.scope.kind == K::ContextDevice || r.scope.kind == K::DeviceTlb)) {
                if (uint32_t(r.scope.rid) + rid_offset_ > 0xFFFF) {
                    errors_.push_back(fmt::format(
                        "{}:{}: the invalidation's requester {} would be past bus 255 in this "
                        "tenant; not executed",
                        path_, reader.line(), to_string(Requester{r.scope.rid})));
                    continue;
                }
                r.scope.rid = uint16_t(r.scope.rid + rid_offset_);
            }
            apply(r, reader.line());
        }
        for (const auto& e : reader.errors()) errors_.push_back(e.str());
    } catch (const std::runtime_error& e) {
        errors_.push_back(e.what());
    }
    for (auto& [rid, t] : targets_) drain(*t.device);
    qk_.sync();
    wall_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    finished_ = true;
    finished_ev_.notify(sc_core::SC_ZERO_TIME);
}

}  // namespace iommusim
