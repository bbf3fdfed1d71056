#include "nvme.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace iommusim {

namespace {

// Events, in one queue ordered by time: driver work, then the controller's DMA transfers.
enum Kind : uint8_t {
    kSubmit,   // the application issues the slot's next command
    kReap,     // the driver processes a completion
    kSqe,      // read the submission queue entry
    kPrpList,  // read a PRP list page (idx)
    kData,     // move one data page (idx): MemWrite for a read command, MemRead for a write
    kCqe,      // write the completion queue entry
};

}  // namespace

struct Nvme::Cmd {
    Tick issued = 0;  // when the application issued it
    Addr iova = 0;    // PRP1: the data buffer in the device's address space
    uint32_t size = 0;
    bool read = true;
    bool fail = false;
    uint32_t sq_pos = 0, cq_pos = 0;
    uint64_t pages_left = 0;  // write: data reads not yet complete
    Tick data_done = 0;       // write: when the last of them completed
    NvmePrps prps;
};

struct NvmeStats {
    StatGroup& drv;
    Counter &submitted, &completed, &failed, &reads, &writes, &read_bytes, &write_bytes;
    Counter &prp_list_reads, &faults, &iops, &bandwidth, &elapsed_ns;
    Histogram &latency, &read_latency, &write_latency;
    DriverStats driver;

    explicit NvmeStats(StatGroup& g)
        : drv(g.child("driver")),
          submitted(g.counter("submitted", "commands the application issued")),
          completed(g.counter("completed", "commands completed successfully")),
          failed(g.counter("failed", "commands that ended in an error (mapping, DMA fault)")),
          reads(g.counter("reads", "read commands completed")),
          writes(g.counter("writes", "write commands completed")),
          read_bytes(g.counter("read_bytes", "bytes of read commands completed")),
          write_bytes(g.counter("write_bytes", "bytes of write commands completed")),
          prp_list_reads(g.counter("prp_list_reads", "PRP list pages read")),
          faults(g.counter("faults", "DMA requests that got an error response")),
          iops(g.counter("iops", "completed commands per second (set at the end)")),
          bandwidth(g.counter("bandwidth", "bytes per second of completed commands (at end)")),
          elapsed_ns(g.counter("elapsed_ns", "first submission until last completion")),
          latency(g.histogram("latency", "ns", "issue until the driver has reaped the completion")),
          read_latency(g.histogram("read_latency", "ns", "latency of read commands")),
          write_latency(g.histogram("write_latency", "ns", "latency of write commands")),
          driver(drv) {}
};

Nvme::Nvme(sc_core::sc_module_name name, const NvmeParams& p, const DmaEngineParams& ep,
           const NvmeLayout& layout, DmaMapper* mapper, StatGroup& stats)
    : PerIoDevice(name, p, ep, layout, mapper, stats),
      list_pages_(p_.list_pages_per_command()),
      slot_bytes_(p_.slot_bytes()),
      cmds_(p_.queue_depth),
      state_(p_.seed) {}

Nvme::~Nvme() = default;

void Nvme::start() {
    t0_ = engine_.now();
    if (p_.duration_ns) stop_at_ = t0_ + p_.duration_ns * kTicksPerNs;
    for (uint32_t c = 0; c < p_.queue_depth; ++c) push(t0_, kSubmit, c);
}

void Nvme::submit(uint32_t c, Tick at) {
    if ((p_.count && submitted_ >= p_.count) || at >= stop_at_) return;  // the slot rests
    ++submitted_;
    ++s_->submitted;
    Cmd& k = cmds_[c];
    k.size = uint32_t(sizes_.draw(state_));
    k.read = draw_below(state_, 100) < p_.read_percent;
    k.issued = at;
    k.fail = false;
    Tick t = driver_start(at);
    const Tick from = t;
    t += sw_ps_;
    const Addr buf = lay_.buffers + Addr(c) * slot_bytes_ + p_.offset;
    if (p_.buffers == NvmeBufferPolicy::Pool) {
        k.iova = buf;
    } else {
        // One mapping for the whole buffer: iommu-dma maps a request's scatterlist into one
        // contiguous IOVA range (one allocation, one invalidation at unmap).
        ++s_->driver.maps;
        const auto m = mapper_->map(buf, k.size, k.read, t);
        if (!m) {
            // The command fails back to the application, which issues its next one at the
            // earliest 1 ns later, so that time advances whatever the costs.
            ++s_->driver.map_failures;
            ++s_->failed;
            driver_end(from, t);
            push(std::max(t, at + kTicksPerNs), kSubmit, c);
            return;
        }
        t = std::max(t, m->done);
        k.iova = m->iova;
    }
    nvme_build_prps(k.iova, k.size, p_.page_size,
                    lay_.prp_lists + Addr(c) * list_pages_ * p_.page_size, k.prps);
    k.sq_pos = uint32_t(sq_tail_++ % p_.queue_entries);
    driver_end(from, t);
    push(t, kSqe, c);  // the SQ tail doorbell
}

void Nvme::data_phase(uint32_t c, Tick at) {
    Cmd& k = cmds_[c];
    const uint32_t pages = uint32_t(k.prps.pages);
    if (k.read) {
        // Media first; then data and completion, posted writes that stay in order.
        const Tick ready = at + p_.media_read_ns * kTicksPerNs;
        for (uint32_t i = 0; i < pages; ++i) push(ready, kData, c, i);
        post_cqe(c, ready);
    } else {
        k.pages_left = pages;
        k.data_done = at;
        for (uint32_t i = 0; i < pages; ++i) push(at, kData, c, i);
    }
}

void Nvme::post_cqe(uint32_t c, Tick at) {
    cmds_[c].cq_pos = uint32_t(cq_tail_++ % p_.queue_entries);
    push(at, kCqe, c);
}

void Nvme::reap(uint32_t c, Tick at) {
    Cmd& k = cmds_[c];
    Tick t = driver_start(at);
    const Tick from = t;
    if (p_.buffers == NvmeBufferPolicy::PerIo) {
        ++s_->driver.unmaps;
        t = std::max(t, mapper_->unmap(k.iova, k.size, t));
    }
    driver_end(from, t);
    if (k.fail) {
        ++s_->failed;
    } else {
        ++s_->completed;
        ++(k.read ? s_->reads : s_->writes);
        (k.read ? s_->read_bytes : s_->write_bytes) += k.size;
        const uint64_t ns = (t - k.issued) / kTicksPerNs;
        s_->latency.add(ns);
        (k.read ? s_->read_latency : s_->write_latency).add(ns);
    }
    end_ = std::max(end_, t);
    push(t, kSubmit, c);
}

bool Nvme::handle(const Ev& e, DmaTransfer& t) {
    if (e.kind == kSubmit) return submit(e.slot, e.t), false;
    if (e.kind == kReap) return reap(e.slot, e.t), false;
    const Cmd& k = cmds_[e.slot];
    t = DmaTransfer{};
    t.req = req_;
    t.ready = e.t;
    t.id = (uint64_t(e.kind) << 48) | (uint64_t(e.idx) << 24) | e.slot;
    switch (e.kind) {
        case kSqe:
            t.iova = lay_.sq + Addr(k.sq_pos) * kNvmeSqeBytes;
            t.length = kNvmeSqeBytes;
            break;
        case kPrpList:
            t.iova = k.prps.list_reads[e.idx].addr;
            t.length = k.prps.list_reads[e.idx].bytes;
            break;
        case kData: {
            // Page idx of the buffer: PRP1 keeps the offset, the others start on a page.
            const Addr first = k.iova & ~Addr(p_.page_size - 1);
            const Addr lo = e.idx ? first + Addr(e.idx) * p_.page_size : k.iova;
            const Addr hi = std::min(first + Addr(e.idx + 1) * p_.page_size, k.iova + k.size);
            t.iova = lo;
            t.length = hi - lo;
            t.write = k.read;  // a read command writes host memory
            break;
        }
        default:
            t.iova = lay_.cq + Addr(k.cq_pos) * kNvmeCqeBytes;
            t.length = kNvmeCqeBytes;
            t.write = true;
            break;
    }
    return true;
}

void Nvme::completed(const DmaTransfer& t, const DmaResult& r) {
    const uint8_t kind = uint8_t(t.id >> 48);
    const uint32_t idx = uint32_t(t.id >> 24) & 0xffffff, c = uint32_t(t.id & 0xffffff);
    Cmd& k = cmds_[c];
    s_->faults += r.faults;
    if (r.faults) k.fail = true;
    switch (kind) {
        case kSqe:
        case kPrpList: {
            if (kind == kPrpList) ++s_->prp_list_reads;
            // A fault here leaves the controller without the data pointers: the command ends
            // with an error completion (Data Transfer Error).
            const uint32_t next = kind == kSqe ? 0 : idx + 1;
            if (r.faults)
                post_cqe(c, r.done);
            else if (next < k.prps.list_reads.size())
                push(r.done, kPrpList, c, next);  // its address is in the page just read
            else
                data_phase(c, r.done);
            break;
        }
        case kData:
            if (k.read) break;
            k.data_done = std::max(k.data_done, r.done);
            if (--k.pages_left == 0) post_cqe(c, k.data_done + p_.media_write_ns * kTicksPerNs);
            break;
        case kCqe: push(r.done, kReap, c); break;
        default: break;
    }
}

void Nvme::finish() {
    const NvmeResult r = result();
    s_->iops.set_rounded(r.iops());
    s_->bandwidth.set_rounded(r.bandwidth());
    s_->elapsed_ns.set_rounded(double(r.elapsed() / kTicksPerNs));
    finished_at(end_);
}

NvmeResult Nvme::result() const {
    const NvmeStats& s = *s_;
    NvmeResult r;
    r.submitted = s.submitted.value();
    r.completed = s.completed.value();
    r.failed = s.failed.value();
    r.reads = s.reads.value();
    r.writes = s.writes.value();
    r.read_bytes = s.read_bytes.value();
    r.write_bytes = s.write_bytes.value();
    r.prp_list_reads = s.prp_list_reads.value();
    r.faults = s.faults.value();
    r.maps = s.driver.maps.value();
    r.unmaps = s.driver.unmaps.value();
    r.map_failures = s.driver.map_failures.value();
    r.start = t0_;
    r.end = end_;
    return r;
}

double Nvme::progress() const {
    if (finished()) return 1.0;
    double f = p_.count ? double(submitted_) / double(p_.count) : 0.0;
    const Tick now = engine_.now();
    if (stop_at_ != kNever && now > t0_)
        f = std::max(f, double(now - t0_) / double(stop_at_ - t0_));
    return std::min(f, 1.0);
}

std::string Nvme::summary() const {
    const NvmeResult r = result();
    const Histogram& h = s_->latency;
    return fmt::format(
        "nvme sizes {} qd {} {}% read {}: {} commands, {:.1f} kIOPS, {:.3f} GB/s, latency us "
        "p50 {:.1f} p99 {:.1f} max {:.1f}, {} failed, {} faults",
        p_.sizes, p_.queue_depth, p_.read_percent, to_string(p_.buffers), r.completed,
        r.iops() / 1e3, r.bandwidth() / 1e9, double(h.percentile(50)) / 1e3,
        double(h.percentile(99)) / 1e3, double(h.max()) / 1e3, r.failed, r.faults);
}

}  // namespace iommusim
