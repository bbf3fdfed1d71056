#define SC_INCLUDE_DYNAMIC_PROCESSES  // sc_spawn
#include "vtd_sva.h"

#include <fmt/format.h>

#include "core/pcie_ext.h"

namespace iommusim {

// One device's processes: each bound to (rid, its PASID); a guest's processes share one host
// second-level domain that maps their guest RAM.
class VtdSvaHost::Spaces final : public SvaSpaces {
public:
    Spaces(VtdSvaHost& h, uint16_t rid, std::function<Addr(uint64_t)> alloc)
        : h_(h), rid_(rid), alloc_(std::move(alloc)) {}

    std::optional<size_t> create_process(const SvaProcessSpec& s, std::string* why) override {
        const Addr frames = (s.frames + 4095) & ~Addr(4095);
        const Addr hpa = alloc_(frames);
        sva::ProcessOptions o;
        o.name = s.name;
        o.frames_size = frames;
        o.frames_base = hpa;
        if (s.guest) {
            vtd::Driver& drv = h_.drv_;
            if (!parent_ && !(parent_ = drv.create_domain({}, why))) return std::nullopt;
            // The guest's RAM for this process: guest-physical next_gpa_.. on the host's hpa.
            if (!drv.map(*parent_, next_gpa_, hpa, frames, kPermRW, why)) return std::nullopt;
            o.frames_base = next_gpa_;
            o.guest_parent = parent_;
            next_gpa_ += frames;
        }
        sva::Process* p = h_.procs_.create(o, why);
        if (!p || !h_.procs_.bind(*p, rid_, s.pasid, why)) return std::nullopt;
        procs_.push_back({p, s.pasid});
        return procs_.size() - 1;
    }
    std::optional<Addr> mmap(size_t proc, uint64_t size, Perm perm, double populated, uint64_t seed,
                             std::string* why) override {
        return procs_.at(proc).first->mmap(size, perm, populated, seed, 0, why);
    }
    Expectation intent(size_t proc, Addr va) const override {
        return h_.drv_.expect(Requester{rid_}.with_pasid(procs_.at(proc).second), va);
    }

private:
    VtdSvaHost& h_;
    uint16_t rid_;
    std::function<Addr(uint64_t)> alloc_;
    std::vector<std::pair<sva::Process*, uint32_t>> procs_;
    std::optional<uint16_t> parent_;
    Addr next_gpa_ = Addr(1) << 30;  // guest RAM for process frames starts at 1 GiB
};

VtdSvaHost::VtdSvaHost(sc_core::sc_module_name name, vtd::Driver& drv, VtdIommu& iommu,
                       SparseMemory& store, vtd::InvQueueWriter& iq, VtdQueueFeeder& feeder,
                       const sva::PrqParams& p, StatGroup& stats)
    : sc_module(name),
      drv_(drv),
      procs_(drv),
      svc_(procs_, iommu, store, iq, feeder, p, stats),
      read_wait_(stats.histogram("read_wait_ns", "ns",
                                 "request written to the PRQ until the handler read it (queueing: "
                                 "interrupt, handler wake-up, earlier descriptors)")) {
    svc_.set_log_name(stats.path());
    // Interrupts are handed to the service from its own thread: the unit may raise one while
    // the service is writing its registers.
    iommu.on_interrupt([this](vtd::Interrupt i, Tick at) {
        if (i != vtd::Interrupt::PageRequest) return;
        irqs_.push_back(at);
        kick_.notify(sc_core::SC_ZERO_TIME);
    });
    iommu.on_page_request([this](const vtd::PageRequest& pr, const vtd::PageRequestResult& r) {
        svc_.note_sent(pr, r);
    });
    sc_core::sc_spawn([this] { run(); }, "prq_service");
}

VtdSvaHost::~VtdSvaHost() = default;

SvaSpaces* VtdSvaHost::spaces(uint16_t rid, std::function<Addr(uint64_t)> alloc) {
    spaces_.push_back(std::make_unique<Spaces>(*this, rid, std::move(alloc)));
    return spaces_.back().get();
}

void VtdSvaHost::run() {
    for (;;) {
        const Tick now = sim_now();
        for (size_t i = 0; i < irqs_.size(); ++i) svc_.interrupt(std::max(irqs_[i], now));
        irqs_.clear();
        const Tick next = svc_.next_event();
        if (next <= now) {
            svc_.run_until(now);
            note_reads();
            continue;
        }
        if (next == kNever)
            sc_core::wait(kick_);
        else
            sc_core::wait(to_sc_time(next - now), kick_);
    }
}

void VtdSvaHost::note_reads() {
    // The handler reads in queue order, so the ledger's order of reads only grows. A request
    // read and answered within one step (all of the service's costs zero) is not seen.
    const sva::PrqLedger& l = svc_.ledger();
    if (l.pending() == 0) return;
    for (const sva::PrqLedger::Entry& e : l.unanswered()) {
        if (e.seq < read_seq_ || e.read == kNever) continue;
        // A device running ahead of SystemC time may write a request the handler reads at an
        // earlier time (loosely timed): that wait counts as none.
        if (e.sent != kNever) read_wait_.add(e.read > e.sent ? (e.read - e.sent) / kTicksPerNs : 0);
        read_seq_ = e.seq + 1;
    }
}

std::vector<std::string> VtdSvaHost::defects() const {
    std::vector<std::string> out = svc_.ledger().report();
    if (std::string b = svc_.ledger().balance(); !b.empty()) out.push_back(b);
    return out;
}

}  // namespace iommusim
