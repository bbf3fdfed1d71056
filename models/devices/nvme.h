// An NVMe controller with one I/O submission/completion queue pair in host memory. Per
// command: the controller reads the 64-byte SQ entry, then, for a transfer over more than two
// memory pages, the PRP list; a read waits for the media, writes the data into the host
// pages and then the 16-byte CQ entry (posted writes, in order); a write reads the data,
// waits for the media, then writes the CQ entry. Every DMA goes through the owned DmaEngine
// with the controller's requester.
//
// The host side (submitting, mapping the buffer through DmaMapper with per_io, reaping
// completions) is modelled inside the device as one serial CPU with a software cost per
// command, keeping `queue_depth` commands in flight. See docs/devices.md, "NVMe".
#pragma once
#include <memory>
#include <queue>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/stats.h"
#include "dma_engine.h"
#include "core/dma_mapper.h"
#include "nvme_params.h"

namespace iommusim {

struct NvmeResult {
    uint64_t submitted = 0;  // commands the application issued
    uint64_t completed = 0;  // commands completed successfully
    uint64_t failed = 0;     // commands that ended in an error (mapping failed, DMA fault)
    uint64_t reads = 0, writes = 0, read_bytes = 0, write_bytes = 0;  // of the completed
    uint64_t prp_list_reads = 0, faults = 0, maps = 0, unmaps = 0, map_failures = 0;
    Tick start = 0, end = 0;  // first submission, last completion processed
    Tick elapsed() const { return end > start ? end - start : 0; }
    double iops() const { return elapsed() ? double(completed) * 1e12 / double(elapsed()) : 0; }
    double bandwidth() const {  // bytes/s
        return elapsed() ? double(read_bytes + write_bytes) * 1e12 / double(elapsed()) : 0.0;
    }
};

class Nvme : public sc_core::sc_module {
public:
    tlm::tlm_initiator_socket<> dma;  // the engine's requests (bound through to it)

    // `mapper` is called by the driver model with per_io buffers (required then; unused with
    // pool). Throws std::invalid_argument when a parameter is invalid. Statistics go to
    // `stats` (and its driver child), the engine's to stats.child("engine").
    Nvme(sc_core::sc_module_name name, const NvmeParams& p, const DmaEngineParams& ep,
         const NvmeLayout& layout, DmaMapper* mapper, StatGroup& stats);
    ~Nvme() override;

    DmaEngine& engine() { return engine_; }
    const NvmeParams& params() const { return p_; }
    bool finished() const { return finished_; }
    const sc_core::sc_event& finished_event() const { return finished_ev_; }
    NvmeResult result() const;
    // One line: configuration, IOPS, bandwidth, latency percentiles, failures.
    std::string summary() const;
    double progress() const;  // 0..1 of the commands to submit

private:
    struct Ev {
        Tick t;
        uint64_t seq;  // ties in time keep their order of creation
        uint8_t kind;
        uint32_t slot;  // command slot (0..queue_depth-1)
        uint32_t idx;   // PRP list page or data page
        bool operator>(const Ev& o) const { return t != o.t ? t > o.t : seq > o.seq; }
    };
    struct Cmd;
    struct Stats;
    bool next(DmaTransfer& t);
    void completed(const DmaTransfer& t, const DmaResult& r);
    void finish();
    void push(Tick t, uint8_t kind, uint32_t slot, uint32_t idx = 0);
    bool handle(const Ev& e, DmaTransfer& t);
    void submit(uint32_t c, Tick at);
    void data_phase(uint32_t c, Tick at);
    void post_cqe(uint32_t c, Tick at);
    void reap(uint32_t c, Tick at);
    Tick driver_start(Tick at) const { return at > drv_ ? at : drv_; }
    void driver_end(Tick from, Tick to);

    NvmeParams p_;
    NvmeLayout lay_;
    DmaMapper* mapper_;
    std::unique_ptr<Stats> s_;
    DmaEngine engine_;
    SizeDist sizes_;
    Requester req_;
    Tick sw_ps_;
    uint64_t list_pages_, slot_bytes_;
    std::vector<Cmd> cmds_;
    std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> evq_;
    uint64_t seq_ = 0, state_, submitted_ = 0, sq_tail_ = 0, cq_tail_ = 0;
    Tick drv_ = 0, t0_ = 0, end_ = 0, stop_at_ = kNever, busy_ps_ = 0;
    bool started_ = false, finished_ = false;
    sc_core::sc_event finished_ev_;
};

}  // namespace iommusim
