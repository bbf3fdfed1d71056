// The NVMe device's parameters and its host-memory layout. Plain C++, header-only, so the
// unit tests check it without SystemC.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/types.h"
#include "nvme_prp.h"
#include "size_dist.h"

namespace iommusim {

enum class NvmeBufferPolicy : uint8_t { PerIo, Pool };

inline const char* to_string(NvmeBufferPolicy b) {
    return b == NvmeBufferPolicy::Pool ? "pool" : "per_io";
}

template <>
struct EnumParam<NvmeBufferPolicy> {
    static std::optional<NvmeBufferPolicy> parse(std::string_view s) {
        if (s == "per_io") return NvmeBufferPolicy::PerIo;
        if (s == "pool") return NvmeBufferPolicy::Pool;
        return std::nullopt;
    }
    static std::string name(NvmeBufferPolicy b) { return to_string(b); }
    static std::vector<NvmeBufferPolicy> values() {
        return {NvmeBufferPolicy::PerIo, NvmeBufferPolicy::Pool};
    }
};

constexpr uint32_t kNvmeSqeBytes = 64;  // submission queue entry
constexpr uint32_t kNvmeCqeBytes = 16;  // completion queue entry
constexpr uint64_t kNvmeMinIo = 4096, kNvmeMaxIo = uint64_t(1) << 20;

struct NvmeParams {
    std::string sizes = "4K";  // I/O sizes (SizeDist syntax)
    uint32_t queue_depth = 32;
    uint32_t queue_entries = 1024;  // entries of the SQ and of the CQ
    uint32_t read_percent = 100;
    uint64_t media_read_ns = 80000, media_write_ns = 20000;
    uint64_t count = 10000;    // commands; 0 = until duration_ns
    uint64_t duration_ns = 0;  // stop submitting after this long; 0 = until count
    uint64_t seed = 1;
    NvmeBufferPolicy buffers = NvmeBufferPolicy::PerIo;
    uint32_t page_size = 4096;  // CC.MPS
    uint32_t offset = 0;        // byte offset of each data buffer in its first page
    double sw_ns = 1000.0;      // driver software cost per command
    uint32_t bus = 3, device = 0, function = 0;

    template <typename V>
    void visit(V&& v) {
        v("sizes", sizes, "",
          "I/O sizes (4K..1M, multiples of 512): one size or a SIZE:WEIGHT list", 0, 0);
        v("queue_depth", queue_depth, "commands", "commands in flight (< queue_entries)", 1, 65535);
        v("queue_entries", queue_entries, "entries", "entries of the I/O SQ and CQ", 2, 65536);
        v("read_percent", read_percent, "%", "share of commands that are reads", 0, 100);
        v("media_read_ns", media_read_ns, "ns", "device-internal latency of a read", 0,
          uint64_t(1) << 40);
        v("media_write_ns", media_write_ns, "ns", "device-internal latency of a write", 0,
          uint64_t(1) << 40);
        v("count", count, "commands", "commands to submit; 0 = until duration_ns", 0,
          uint64_t(1) << 48);
        v("duration_ns", duration_ns, "ns", "stop submitting after this long; 0 = until count", 0,
          uint64_t(1) << 48);
        v("seed", seed, "", "seed of the size and read/write draws", 0, ~uint64_t(0));
        v("buffers", buffers, "",
          "per_io: map/unmap each command's buffer through the DMA API; pool: pre-mapped", 0, 1);
        v("page_size", page_size, "bytes", "memory page size (CC.MPS), a power of two", 4096,
          65536);
        v("offset", offset, "bytes", "offset of each data buffer in its first page (dword)", 0,
          65532);
        v("sw_ns", sw_ns, "ns", "driver software cost per command (besides map/unmap)", 0.0, 1e9);
        v("requester.bus", bus, "", "requester bus number", 0, 255);
        v("requester.device", device, "", "requester device number", 0, 31);
        v("requester.function", function, "", "requester function number", 0, 7);
    }

    static constexpr const char* kName = "nvme";  // in messages
    Requester requester() const { return Requester::bdf(bus, device, function); }
    bool maps_per_io() const { return buffers == NvmeBufferPolicy::PerIo; }
    std::optional<SizeDist> size_dist(std::string* why = nullptr) const {
        return SizeDist::parse(sizes, kNvmeMinIo, kNvmeMaxIo, why);
    }
    uint64_t max_size() const {
        const auto d = size_dist();
        return d ? d->max() : kNvmeMinIo;
    }
    // Host memory the platform provides (NvmeLayout).
    uint64_t sq_bytes() const { return uint64_t(queue_entries) * kNvmeSqeBytes; }
    uint64_t cq_bytes() const { return uint64_t(queue_entries) * kNvmeCqeBytes; }
    uint64_t list_pages_per_command() const {
        return nvme_prp_list_pages(nvme_data_pages(offset, max_size(), page_size), page_size);
    }
    uint64_t prp_list_bytes() const {
        return uint64_t(queue_depth) * list_pages_per_command() * page_size;
    }
    uint64_t slot_bytes() const {  // one command's buffer, whole pages
        return (offset + max_size() + page_size - 1) / page_size * page_size;
    }
    uint64_t buffer_region_bytes() const { return uint64_t(queue_depth) * slot_bytes(); }

    bool valid(std::string* why = nullptr) const {
        std::string e;
        const auto d = size_dist(&e);
        if (e.empty())
            for (const auto& s : d->entries())
                if (s.first % 512) e = "sizes must be multiples of 512 (the LBA size)";
        if (e.empty() && (queue_entries < 2 || queue_entries > 65536))
            e = "queue_entries out of 2..65536";
        if (e.empty() && (queue_depth < 1 || queue_depth >= queue_entries))
            e = "queue_depth out of 1..queue_entries - 1 (a full queue keeps one entry free)";
        if (e.empty() && read_percent > 100) e = "read_percent above 100";
        if (e.empty() && !count && !duration_ns) e = "count and duration_ns both 0";
        if (e.empty() && (page_size < 4096 || page_size > 65536 || (page_size & (page_size - 1))))
            e = "page_size not a power of two in 4096..65536";
        if (e.empty() && (offset >= page_size || offset % 4))
            e = "offset not dword-aligned within a page";
        if (e.empty() && !(sw_ns >= 0.0 && sw_ns <= 1e9)) e = "sw_ns out of range";
        if (e.empty() && (bus > 255 || device > 31 || function > 7)) e = "requester out of range";
        if (e.empty() && buffers > NvmeBufferPolicy::Pool) e = "bad buffers";
        if (!e.empty() && why) *why = "nvme: " + e;
        return e.empty();
    }
};

// Where the NVMe structures are in the device's DMA address space. The queues and PRP list
// pages are coherent allocations the platform maps once (dma_alloc_coherent, dma_pool).
// `buffers` is, with per_io, the physical base of the data buffers (the driver maps each
// command's buffer through the DmaMapper); with pool, the IOVA of the pre-mapped region.
struct NvmeLayout {
    Addr sq = 0;         // IOVA, NvmeParams::sq_bytes()
    Addr cq = 0;         // IOVA, NvmeParams::cq_bytes()
    Addr prp_lists = 0;  // IOVA, NvmeParams::prp_list_bytes(); list_pages_per_command() each
    Addr buffers = 0;    // NvmeParams::buffer_region_bytes(); slot_bytes() per command slot
};

}  // namespace iommusim
