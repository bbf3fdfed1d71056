// The Linux ftrace text format, line by line: where a line's timestamp and event are, and
// which events and kprobes the ftrace importer (import_ftrace.cpp) reads.
#pragma once
#include <cstdint>
#include <string_view>

namespace iommusim::trace::ftrace {

// The events the importer reads (iommu:*, dma:*, block:*, the VT-d queued invalidation).
enum class Ev {
    None,
    Map,
    Unmap,
    Fault,
    QiSubmit,
    BlockIssue,
    BlockComplete,
    DmaMap,
    DmaUnmap,
    DmaMapSg,
    DmaUnmapSg,
    DmaOther
};

// An event name's kind.
Ev classify(std::string_view name);

// The kprobes the importer uses, recognised by the probed function (the event name is the
// user's choice): "(__iommu_map+0x0/0x1a0) domain=0x.. iova=0x.. ...".
enum class Probe : uint8_t { None, Map, Unmap, Attach };

struct Located {
    uint64_t ns = 0;
    std::string_view name, payload;
    std::string_view who;  // "TASK-PID [CPU]" (empty in printk lines)
    Probe probe = Probe::None;
};

// Finds the timestamp and event of a line: "TASK-PID [CPU] FLAGS SECONDS: name: payload" (the
// ftrace text format, with or without the flags column) or "[ SECONDS] name: payload" (printk,
// with tp_printk). Task names may themselves contain ':' and ": ". A line that has an event
// where a timestamp should be but the timestamp is not one sets `bad_time` to it (an event
// with a NaN, negative or out-of-range time must not be skipped silently).
bool locate(std::string_view line, Located& out, std::string_view& bad_time, bool raw);

}  // namespace iommusim::trace::ftrace
