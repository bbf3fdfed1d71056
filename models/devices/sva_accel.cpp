#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn
#include "sva_accel.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace iommusim {

namespace {
const SvaAccelParams& checked(const SvaAccelParams& p) {
    std::string why;
    if (!p.valid(&why)) throw std::invalid_argument(why);
    return p;
}

constexpr Tick kQuantum = 1000 * kTicksPerNs;

uint64_t splitmix(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
uint64_t below(uint64_t& s, uint64_t n) {  // uniform in [0, n)
    return uint64_t((unsigned __int128)splitmix(s) * n >> 64);
}

// The agent's counters (ats_agent.cpp registers them under `ats`).
const Counter& stat(StatGroup& g, const char* child, const char* name) {
    return g.child("ats").child(child).counter(name, "");
}
}  // namespace

SvaAccel::SvaAccel(sc_core::sc_module_name name, const SvaAccelParams& p, SvaSpaces& spaces,
                   uint32_t mps, StatGroup& g)
    : sc_module(name),
      dma("dma"),
      p_(checked(p)),
      spaces_(spaces),
      mps_(std::max<uint32_t>(mps, 64)),
      rid_(p_.requester()),
      stats_(g),
      ats_("ats", p_.ats, rid_, g.child("ats")),
      scratch_(std::max<uint32_t>(mps_, 64)),
      submitted_(g.counter("submitted", "descriptors accepted by the shared work queue")),
      completed_(g.counter("completed", "descriptors whose completion record was written")),
      failed_(g.counter("failed", "descriptors completed with a page-fault status")),
      retries_(g.counter("enqcmd_retries", "ENQCMD submissions refused (queue full): Retry")),
      bytes_(g.counter("bytes", "descriptor bytes of successful descriptors")),
      accesses_(g.counter("accesses", "memory requests issued (translated)")),
      paged_accesses_(
          g.counter("faults", "accesses whose translation went through PRI (page faults)")),
      mismatches_(g.counter("translation_mismatches",
                            "accesses whose translation differs from the process's intent")),
      access_errors_(g.counter("access_errors",
                               "accesses without a usable translation or with "
                               "an error response")),
      comp_failures_(
          g.counter("completion_record_failures", "completion records that could not be written")),
      elapsed_ns_(g.counter("elapsed_ns", "first submission until the last completion record")),
      bandwidth_mbps_(g.counter("bandwidth_mbps", "descriptor bytes per elapsed time, Mb/s")),
      atc_hit_rate_ppm_(
          g.counter("atc_hit_rate_ppm", "ATC hits per lookup, parts per million (at the end)")),
      requests_per_fault_milli_(g.counter("page_requests_per_fault_milli",
                                          "page requests sent per faulting access, x1000")),
      faults_per_s_(g.counter("faults_per_s", "faulting accesses per second of elapsed time")),
      latency_(g.histogram("latency", "ns", "descriptor submitted until its completion record")),
      fault_latency_(g.histogram("fault_latency", "ns",
                                 "faulting access ready until the retried access completed")),
      wq_occupancy_(g.histogram("wq_occupancy", "entries", "queue entries at each ENQCMD")),
      fault_request_(g.child("fault").histogram(
          "request_ns", "ns",
          "faulting access ready until its page request was due (ATC lookup, "
          "Translation Request round trip)")),
      fault_pri_(g.child("fault").histogram(
          "pri_ns", "ns",
          "page request due until its response arrived (allocation wait, PRQ "
          "write, queueing, host service, response)")),
      fault_retry_(g.child("fault").histogram(
          "retry_ns", "ns",
          "response arrived until the access completed (retried Translation "
          "Request, the access)")) {
    uint64_t s = p_.seed;
    for (uint32_t i = 0; i < p_.processes; ++i) {
        auto pr = std::make_unique<Process>();
        pr->pasid = p_.pasid_base + i;
        SvaProcessSpec spec;
        spec.name = fmt::format("{}.p{}", basename(), i);
        spec.pasid = pr->pasid;
        spec.frames = p_.frame_bytes();
        spec.guest = p_.guest;
        std::string why;
        const std::optional<size_t> h = spaces.create_process(spec, &why);
        if (!h) throw std::invalid_argument(fmt::format("process {}: {}", i, why));
        pr->handle = *h;
        const double populated = 1.0 - p_.unpopulated;
        auto vma = [&](uint64_t size, const char* what) {
            const std::optional<Addr> va =
                spaces.mmap(*h, size, kPermRW, populated, splitmix(s), &why);
            if (!va) throw std::invalid_argument(fmt::format("process {} {}: {}", i, what, why));
            return *va;
        };
        pr->src = vma(p_.buffer, "source buffer");
        pr->dst = vma(p_.buffer, "destination buffer");
        pr->comp = vma(4096, "completion records");
        procs_.push_back(std::move(pr));
    }
    ats_.set_fabric(
        [this](tlm::tlm_generic_payload& t, sc_core::sc_time& d) { dma->b_transport(t, d); });
    for (uint32_t i = 0; i < p_.processes; ++i)
        sc_core::sc_spawn([this, i] { submitter(i); }, fmt::format("process{}", i).c_str());
    for (unsigned e = 0; e < p_.engines; ++e)
        sc_core::sc_spawn([this, e] { engine(e); }, fmt::format("engine{}", e).c_str());
}

SvaAccel::~SvaAccel() = default;

void SvaAccel::wait_until(Tick t) {
    const Tick now = sim_now();
    if (t > now) sc_core::wait(to_sc_time(t - now));
}

void SvaAccel::wait_inflight(Process& pr, uint32_t limit) {
    for (;;) {
        while (!pr.landing.empty() && pr.landing.top() <= sim_now()) {
            pr.landing.pop();
            --pr.inflight;
        }
        if (pr.inflight < limit) return;
        if (pr.landing.empty())
            sc_core::wait(pr.done_ev);
        else
            sc_core::wait(to_sc_time(pr.landing.top() - sim_now()), pr.done_ev);
    }
}

// The process: keeps `inflight` descriptors submitted; ENQCMD either enqueues (the queue has
// room when the portal write arrives) or returns Retry, after which it backs off.
void SvaAccel::submitter(size_t i) {
    Process& pr = *procs_[i];
    uint64_t rng = p_.seed ^ (0x5eed0000ull + i) * 0x9e3779b97f4a7c15ull;
    const Tick submit = ticks_from_ns(p_.submit_ns), retry = ticks_from_ns(p_.retry_ns);
    const uint64_t slots = (p_.buffer - p_.size) / 64 + 1;  // 64-byte aligned offsets
    for (uint64_t k = 0; k < p_.descriptors; ++k) {
        wait_inflight(pr, p_.inflight);
        Descriptor d;
        d.proc = i;
        d.op = p_.op == SvaOp::Mix ? SvaOp(below(rng, 3)) : p_.op;
        d.src = pr.src + below(rng, slots) * 64;
        d.dst = pr.dst + below(rng, slots) * 64;
        d.comp = pr.comp + (k % p_.inflight) * 32;
        d.len = p_.size;
        for (;;) {
            wait_until(sim_now() + submit);
            wq_occupancy_.add(wq_.size());
            if (wq_.size() < p_.wq_size) break;
            ++retries_;
            wait_until(sim_now() + retry);
        }
        d.submitted = sim_now();
        if (start_ == kNever) start_ = d.submitted;
        ++pr.inflight, ++pr.submitted, ++submitted_;
        wq_.push_back(d);
        wq_ev_.notify(sc_core::SC_ZERO_TIME);
    }
    wait_inflight(pr, 1);
    if (++procs_done_ < procs_.size()) return;
    finished_ = true;
    elapsed_ns_.reset();
    elapsed_ns_ += (end_ - start_) / kTicksPerNs;
    derive_stats();  // now, and again at the end of the simulation
    finished_ev_.notify(sc_core::SC_ZERO_TIME);
}

void SvaAccel::engine(unsigned e) {
    uint16_t tag = uint16_t(e * 256);
    for (;;) {
        while (wq_.empty()) sc_core::wait(wq_ev_);
        const Descriptor d = wq_.front();
        wq_.pop_front();
        const Tick free = execute(d, sim_now() + ticks_from_ns(p_.descriptor_ns), &tag);
        wait_until(free);
    }
}

Tick SvaAccel::execute(const Descriptor& d, Tick t, uint16_t* tag) {
    const double ps_per_byte = 1000.0 / p_.engine_gbps;  // 1 GB/s = 1 byte per ns
    Tick pace = t, end = t;
    bool ok = true;
    for (uint64_t off = 0; off < d.len && ok;) {
        // A piece never crosses a 4 KiB page of either buffer, nor the largest request.
        uint64_t n = std::min<uint64_t>(d.len - off, mps_);
        for (Addr a : {d.src + off, d.dst + off}) n = std::min<uint64_t>(n, 4096 - (a & 4095));
        const uint32_t len = uint32_t(n);
        const uint16_t tg = (*tag)++;
        Done r{true, pace};
        switch (d.op) {
            case SvaOp::Copy: {
                const Done rd = access(d, d.src + off, len, false, pace, tg);
                r = rd.ok ? access(d, d.dst + off, len, true, rd.done, tg) : rd;
                break;
            }
            case SvaOp::Fill: r = access(d, d.dst + off, len, true, pace, tg); break;
            default: {  // compare: both reads at once
                const Done a = access(d, d.src + off, len, false, pace, tg);
                const Done b = a.ok ? access(d, d.dst + off, len, false, pace, tg) : a;
                r = {a.ok && b.ok, std::max(a.done, b.done)};
                break;
            }
        }
        ok = r.ok;
        end = std::max(end, r.done);
        // The engine's data rate paces the next piece; a wait for a translation delays it.
        pace = std::max(pace + Tick(double(len) * ps_per_byte + 0.5), sim_now());
        off += len;
        // A long descriptor runs ahead of SystemC time at most a quantum, so that the other
        // engines' and the host's work interleave with it in time order.
        if (pace > sim_now() + kQuantum) wait_until(pace);
    }
    // The completion record follows the data (32 bytes: status, bytes completed, fault
    // address); a fault's status is written as well.
    const Done c = access(d, d.comp, 32, true, std::max(end, pace), (*tag)++);
    if (!c.ok) ++comp_failures_;
    const Tick done = std::max(c.done, end);
    ++completed_;
    if (ok) {
        bytes_ += d.len;
    } else {
        ++failed_;
        ++procs_[d.proc]->failed;
    }
    latency_.add((done - d.submitted) / kTicksPerNs);
    end_ = std::max(end_, done);
    Process& pr = *procs_[d.proc];
    ++pr.completed;
    // The process sees the record when it lands (it polls it).
    pr.landing.push(done);
    pr.done_ev.notify(sc_core::SC_ZERO_TIME);
    return std::max(pace, sim_now());
}

SvaAccel::Done SvaAccel::access(const Descriptor& d, Addr va, uint32_t len, bool write, Tick at,
                                uint16_t tag) {
    Process& pr = *procs_[d.proc];
    const Requester req = rid_.with_pasid(pr.pasid);
    at = std::max(at, sim_now());
    const AtsAgent::Result x = ats_.translate(req, va, write ? Access::Write : Access::Read, at);
    SvaAccess rec;
    rec.proc = d.proc, rec.pasid = pr.pasid, rec.va = va, rec.len = len, rec.write = write;
    rec.paged = x.paged, rec.start = at;
    Done out{false, std::max(x.done, at)};
    ++accesses_;
    if (x.paged) ++paged_accesses_;
    if (x.ok) {
        const Tick now = sim_now();
        const Tick issue = std::max(out.done, now);
        tlm::tlm_generic_payload t;
        PcieAttr attr;
        attr.req = req;
        attr.at = PcieAttr::At::Translated;
        attr.tlp = write ? PcieAttr::Tlp::MemWrite : PcieAttr::Tlp::MemRead;
        attr.tag = tag;
        attr.contents = false;
        t.set_extension(&attr);
        t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
        t.set_address(x.out);
        t.set_data_ptr(scratch_.data());
        t.set_data_length(len);
        t.set_streaming_width(len);
        t.set_byte_enable_ptr(nullptr);
        t.set_dmi_allowed(false);
        t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
        sc_core::sc_time delay = to_sc_time(issue - now);
        dma->b_transport(t, delay);
        t.clear_extension(&attr);
        out.done = std::max(sim_now() + to_ticks(delay), issue);
        ats_.used(issue, out.done);
        out.ok = t.is_response_ok();
        rec.pa = x.out;
        const Expectation e = spaces_.intent(pr.handle, va);
        if (!e.mapped || e.pa != x.out) ++mismatches_;
    } else {
        // A descriptor that cannot be completed ends here; DSA reports the fault address.
        out.done = std::max(x.done, sim_now());
    }
    if (!out.ok) ++access_errors_;
    if (x.paged && x.requested != kNever) {
        fault_latency_.add((out.done - at) / kTicksPerNs);
        fault_request_.add((x.requested - at) / kTicksPerNs);
        fault_pri_.add((x.responded - x.requested) / kTicksPerNs);
        fault_retry_.add((out.done - x.responded) / kTicksPerNs);
    }
    rec.ok = out.ok, rec.done = out.done;
    if (hook_) hook_(rec);
    return out;
}

double SvaAccel::progress() const {
    const double all = double(p_.descriptors) * double(p_.processes);
    return all > 0 ? std::min(1.0, double(completed_.value()) / all) : 1.0;
}

void SvaAccel::derive_stats() {
    const Tick elapsed = end_ > start_ && start_ != kNever ? end_ - start_ : 0;
    const uint64_t hits = stat(stats_, "atc", "hits").value();
    const uint64_t misses = stat(stats_, "atc", "misses").value();
    const uint64_t requests = stat(stats_, "pri", "page_requests").value();
    const uint64_t faults = paged_accesses_.value();
    bandwidth_mbps_.set_rounded(elapsed ? double(bytes_.value()) * 8e6 / double(elapsed) : 0.0);
    atc_hit_rate_ppm_.set_rounded(hits + misses ? 1e6 * double(hits) / double(hits + misses) : 0.0);
    requests_per_fault_milli_.set_rounded(faults ? 1e3 * double(requests) / double(faults) : 0.0);
    faults_per_s_.set_rounded(elapsed ? double(faults) * 1e12 / double(elapsed) : 0.0);
}

std::string SvaAccel::summary() const {
    const Tick elapsed = end_ > start_ && start_ != kNever ? end_ - start_ : 0;
    const uint64_t hits = stat(stats_, "atc", "hits").value();
    const uint64_t misses = stat(stats_, "atc", "misses").value();
    const uint64_t requests = stat(stats_, "pri", "page_requests").value();
    const uint64_t faults = paged_accesses_.value();
    return fmt::format(
        "sva-accel {} processes {} {} B{}: {} descriptors ({} failed), {:.2f} GB/s, latency ns "
        "p50 {} p99 {}, {} ENQCMD retries; {} faults ({:.2f} page requests each, {:.0f}/s), fault "
        "latency ns p50 {} p99 {} max {} (mean {:.0f} = request {:.0f} + PRI {:.0f} + retry "
        "{:.0f}); ATC hit rate {:.2f} %, {} ATS round trips; {} translation mismatches",
        p_.processes, to_string(p_.op), p_.size, p_.guest ? " in a guest" : "", completed_.value(),
        failed_.value(), elapsed ? double(bytes_.value()) * 1e3 / double(elapsed) : 0.0,
        latency_.percentile(50), latency_.percentile(99), retries_.value(), faults,
        faults ? double(requests) / double(faults) : 0.0,
        elapsed ? double(faults) * 1e12 / double(elapsed) : 0.0, fault_latency_.percentile(50),
        fault_latency_.percentile(99), fault_latency_.max(), fault_latency_.mean(),
        fault_request_.mean(), fault_pri_.mean(), fault_retry_.mean(),
        hits + misses ? 100.0 * double(hits) / double(hits + misses) : 0.0,
        stats_.child("ats").counter("translation_requests", "").value(), mismatches_.value());
}

}  // namespace iommusim
