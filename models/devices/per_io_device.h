// The shared skeleton of devices whose host driver is modelled inside the device and maps
// each I/O through the DMA API (the NIC per packet, NVMe per command): a DmaEngine that pulls
// transfers from one time-ordered event queue, and one serial driver CPU whose busy time is
// counted. A device adds its events, what they do, and its statistics. See docs/devices.md.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <stdexcept>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/dma_mapper.h"
#include "core/stats.h"
#include "core/time.h"
#include "dma_engine.h"
#include "size_dist.h"

namespace iommusim {

// One event of a device: driver work or a DMA transfer to hand to the engine.
struct DeviceEvent {
    Tick t;
    uint64_t seq;  // ties in time keep their order of creation
    uint8_t kind;  // the device's own numbering
    uint32_t slot;
    uint32_t idx;  // a part of the slot's work (NVMe: PRP list page or data page)
    bool operator>(const DeviceEvent& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

// `Params` has valid(why), requester(), size_dist(), sw_ns, `buffers`, maps_per_io() (the
// driver maps each I/O through the DmaMapper) and kName. `Stats` is the device's statistics,
// built from its StatGroup before the engine's (so they come first in the output), with a
// `DriverStats driver` member.
template <typename Params, typename Layout, typename Stats>
class PerIoDevice : public sc_core::sc_module {
public:
    tlm::tlm_initiator_socket<> dma;  // the engine's requests (bound through to it)

    const Params& params() const { return p_; }
    DmaEngine& engine() { return engine_; }
    // Every I/O done; the event is notified at the last completion.
    bool finished() const { return finished_; }
    const sc_core::sc_event& finished_event() const { return finished_ev_; }

protected:
    using Ev = DeviceEvent;

    // Throws std::invalid_argument when a parameter is invalid, or when the driver maps per
    // I/O and `mapper` is null; before anything is built or registered.
    PerIoDevice(sc_core::sc_module_name name, const Params& p, const DmaEngineParams& ep,
                const Layout& layout, DmaMapper* mapper, StatGroup& stats)
        : sc_module(name),
          dma("dma"),
          p_(checked(p, mapper)),
          lay_(layout),
          mapper_(mapper),
          s_(std::make_unique<Stats>(stats)),
          engine_("engine", ep, stats.child("engine")),
          sizes_(*p_.size_dist()),
          req_(p_.requester()),
          sw_ps_(ticks_from_ns(p_.sw_ns)) {
        engine_.dma.bind(dma);  // hierarchical: the platform binds the device's socket
        engine_.set_source([this](DmaTransfer& t) { return next(t); });
        engine_.on_complete([this](const DmaTransfer& t, const DmaResult& r) { completed(t, r); });
    }

    // The device's behaviour. start() runs at the engine's first pull; handle() does an
    // internal event, or fills `t` for a DMA event and returns true; completed() follows a
    // transfer's end; finish() runs once the queue is empty (and calls finished_at()).
    virtual void start() = 0;
    virtual bool handle(const Ev& e, DmaTransfer& t) = 0;
    virtual void completed(const DmaTransfer& t, const DmaResult& r) = 0;
    virtual void finish() = 0;

    void push(Tick t, uint8_t kind, uint32_t slot = 0, uint32_t idx = 0) {
        evq_.push(Ev{t, seq_++, kind, slot, idx});
    }
    // The driver CPU: work triggered at `at` starts when the CPU is free; driver_end() books
    // the time [from, to) (busy_ns keeps sub-ns remainders) and frees the CPU at `to`.
    Tick driver_start(Tick at) const { return at > drv_ ? at : drv_; }
    void driver_end(Tick from, Tick to) {
        const Tick before = busy_ps_ / kTicksPerNs;
        busy_ps_ += to - from;
        s_->driver.busy_ns += busy_ps_ / kTicksPerNs - before;
        drv_ = to;
    }
    // Marks the device finished; finished_event() fires at `end` (now if that has passed).
    void finished_at(Tick end) {
        finished_ = true;
        const Tick stamp = to_ticks(sc_core::sc_time_stamp());
        finished_ev_.notify(to_sc_time(end > stamp ? end - stamp : 0));
    }

    const Params p_;
    const Layout lay_;
    DmaMapper* mapper_;
    std::unique_ptr<Stats> s_;
    DmaEngine engine_;
    SizeDist sizes_;
    Requester req_;
    Tick sw_ps_;  // driver software cost per I/O

private:
    static const Params& checked(const Params& p, const DmaMapper* mapper) {
        std::string why;
        if (!p.valid(&why)) throw std::invalid_argument(why);
        if (p.maps_per_io() && !mapper)
            throw std::invalid_argument(std::string(Params::kName) + ": buffers = " +
                                        to_string(p.buffers) + " needs a DmaMapper");
        return p;
    }

    // Events are taken in time order, so whatever an event decides only depends on events at
    // or before its time; every DMA it creates is ready no earlier than that time.
    bool next(DmaTransfer& t) {
        if (!started_) {
            started_ = true;
            start();
        }
        while (!evq_.empty()) {
            const Ev e = evq_.top();
            evq_.pop();
            if (handle(e, t)) return true;
        }
        if (!finished_) finish();
        return false;
    }

    std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> evq_;
    uint64_t seq_ = 0;
    Tick drv_ = 0, busy_ps_ = 0;
    bool started_ = false, finished_ = false;
    sc_core::sc_event finished_ev_;
};

}  // namespace iommusim
