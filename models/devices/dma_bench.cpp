#include "dma_bench.h"

#include <fmt/format.h>

#include <stdexcept>

namespace iommusim {

namespace {
const DmaBenchParams& checked(const DmaBenchParams& p) {
    std::string why;
    if (!p.valid(&why)) throw std::invalid_argument(why);
    return p;
}

std::string bytes_str(uint64_t b) {
    if (b >= (1u << 30) && b % (1u << 30) == 0) return fmt::format("{} GiB", b >> 30);
    if (b >= (1u << 20) && b % (1u << 20) == 0) return fmt::format("{} MiB", b >> 20);
    if (b >= (1u << 10) && b % (1u << 10) == 0) return fmt::format("{} KiB", b >> 10);
    return fmt::format("{} B", b);
}
}  // namespace

DmaBench::DmaBench(sc_core::sc_module_name name, const DmaBenchParams& p, const DmaEngineParams& ep,
                   Addr iova_base, StatGroup& stats)
    : sc_module(name),
      dma("dma"),
      p_(checked(p)),
      engine_("engine", ep, stats.child("engine")),
      pattern_(p_, iova_base),
      req_(p_.requester()),
      transfers_(stats.counter("transfers", "transfers completed")),
      bytes_(stats.counter("bytes", "bytes moved by requests that completed successfully")),
      faults_(stats.counter("faults", "requests that got an error response")),
      faulted_transfers_(stats.counter("faulted_transfers", "transfers with an error response")),
      elapsed_ns_(stats.counter("elapsed_ns", "first transfer ready until last completion")),
      bandwidth_(stats.counter("bandwidth", "bytes per second of simulated time")),
      bandwidth_mbps_(
          stats.counter("bandwidth_mbps", "bandwidth in Mb/s (pcie-bench's Gb/s x 1000)")),
      latency_(stats.histogram("latency", "ns", "transfer latency: ready until last completion")) {
    engine_.dma.bind(dma);  // hierarchical: the platform binds the bench's socket
    // Its transfers are exactly the engine's, latencies and counts included: read, not added
    // twice (each result's bytes and faults are those the engine counted for it).
    latency_.include({&engine_.transfer_latency()});
    const DmaEngine::Counts c = engine_.counts();
    transfers_.include({{&c.transfers, 1}});
    bytes_.include({{&c.bytes_read, 1}, {&c.bytes_written, 1}});
    faults_.include({{&c.faults, 1}});
    faulted_transfers_.include({{&c.faulted_transfers, 1}});
    if (p_.ats.enable) {
        ats_ = std::make_unique<AtsAgent>("ats", p_.ats, req_, stats.child("ats"));
        engine_.set_ats(ats_.get());
    }
    engine_.set_client(*this);
}

bool DmaBench::next_transfer(DmaTransfer& t) {
    if (finished_) return false;
    const Tick now = engine_.now();
    if (issued_ == 0) start_ = now;
    Tick ready = now;
    if (p_.outstanding && in_flight_.size() >= p_.outstanding) ready = after_oldest(ready);
    const bool count_done = p_.count && issued_ >= p_.count;
    const bool time_done = p_.duration_ns && ready >= start_ + p_.duration_ns * kTicksPerNs;
    if (count_done || time_done) {
        finish();
        return false;
    }
    t.req = req_;
    t.iova = pattern_.next();
    t.length = p_.size;
    t.write = p_.op == DmaOp::Write;
    t.ready = ready;
    t.id = issued_++;
    t.data = nullptr;
    return true;
}

Tick DmaBench::after_oldest(Tick ready) {
    ready = std::max(ready, in_flight_.top());
    in_flight_.pop();
    return ready;
}

void DmaBench::transfer_done(const DmaTransfer&, const DmaResult& r) {
    if (r.done > end_) end_ = r.done;
    if (p_.outstanding) in_flight_.push(r.done);
}

void DmaBench::finish() {
    finished_ = true;
    const DmaBenchResult res = result();
    elapsed_ns_.reset();
    elapsed_ns_ += res.elapsed() / kTicksPerNs;
    bandwidth_.reset();
    bandwidth_ += uint64_t(res.bandwidth() + 0.5);
    bandwidth_mbps_.set_rounded(res.bandwidth() * 8 / 1e6);
    const Tick stamp = to_ticks(sc_core::sc_time_stamp());
    finished_ev_.notify(to_sc_time(end_ > stamp ? end_ - stamp : 0));
}

DmaBenchResult DmaBench::result() const {
    DmaBenchResult r;
    r.transfers = transfers_.value();
    r.bytes = bytes_.value();
    r.faults = faults_.value();
    r.faulted_transfers = faulted_transfers_.value();
    r.start = start_;
    r.end = end_;
    r.latency = &latency_;
    return r;
}

std::string DmaBench::summary() const {
    const DmaBenchResult r = result();
    return fmt::format(
        "dma-bench {} {} {} window {}: {} transfers, {:.3f} GB/s = {:.2f} Gb/s, latency ns p50 {} "
        "p90 {} p99 {} max {}, {} faults",
        to_string(p_.op), bytes_str(p_.size), to_string(p_.pattern), bytes_str(p_.window),
        r.transfers, r.bandwidth() / 1e9, r.bandwidth() * 8 / 1e9, latency_.percentile(50),
        latency_.percentile(90), latency_.percentile(99), latency_.max(), r.faults);
}

}  // namespace iommusim
