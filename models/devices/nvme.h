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
#include <string>
#include <systemc>
#include <vector>

#include "core/dma_mapper.h"
#include "core/stats.h"
#include "nvme_params.h"
#include "nvme_prp.h"
#include "per_io_device.h"

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

struct NvmeStats;  // nvme.cpp

class Nvme : public PerIoDevice<NvmeParams, NvmeLayout, NvmeStats> {
public:
    // `mapper` is called by the driver model with per_io buffers (required then; unused with
    // pool). Throws std::invalid_argument when a parameter is invalid. Statistics go to
    // `stats` (and its driver child), the engine's to stats.child("engine").
    Nvme(sc_core::sc_module_name name, const NvmeParams& p, const DmaEngineParams& ep,
         const NvmeLayout& layout, DmaMapper* mapper, StatGroup& stats);
    ~Nvme() override;

    NvmeResult result() const;
    // One line: configuration, IOPS, bandwidth, latency percentiles, failures.
    std::string summary() const;
    double progress() const;  // 0..1 of the commands to submit

private:
    struct Cmd;
    void start() override;
    bool handle(const Ev& e, DmaTransfer& t) override;
    void completed(const DmaTransfer& t, const DmaResult& r) override;
    void finish() override;
    void submit(uint32_t c, Tick at);
    void data_phase(uint32_t c, Tick at);
    void post_cqe(uint32_t c, Tick at);
    void reap(uint32_t c, Tick at);

    uint64_t list_pages_, slot_bytes_;
    std::vector<Cmd> cmds_;
    uint64_t state_, submitted_ = 0, sq_tail_ = 0, cq_tail_ = 0;
    Tick t0_ = 0, end_ = 0, stop_at_ = kNever;
};

}  // namespace iommusim
