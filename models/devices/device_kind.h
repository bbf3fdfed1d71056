// The kinds of device a platform file may declare (`system.<dev>.type`), each a small adapter
// that owns the device's own parameters, names its requester and builds the model: the
// platform lays out and maps memory through DeviceMemory and wires the result, without
// knowing what the device is.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/ats.h"
#include "core/config.h"
#include "core/dma_mapper.h"
#include "core/stats.h"
#include "core/sva_space.h"
#include "dma_engine.h"

namespace iommusim {

// A device's host memory, as the platform gives it out: physical memory, page-rounded, in the
// device's own span, and its mappings on the device's IOMMU (or none). A failure is recorded
// by the platform (and reported after the build), never thrown: the call returns 0 then.
class DeviceMemory {
public:
    virtual ~DeviceMemory() = default;
    virtual Addr alloc(uint64_t len) = 0;       // physical memory the device's driver owns
    virtual Addr map_long(uint64_t len) = 0;    // allocated and mapped for the run: bus address
    virtual Addr map_buffer(uint64_t len) = 0;  // a benchmark buffer, mapped at a fixed address
    virtual DmaMapper* dma_api() = 0;           // per-I/O mappings (null: none)
    // Process address spaces bound to the device's PASIDs (SVA); null when its IOMMU's
    // architecture (or mode) has none. Owned by the host; lives as long as the system.
    virtual SvaSpaces* sva() { return nullptr; }
};

// A built device: its module, the socket its DMA leaves by, and the platform's view of it.
struct BuiltDevice {
    std::unique_ptr<sc_core::sc_module> module;
    tlm::tlm_initiator_socket<>* dma = nullptr;
    std::function<bool()> finished;
    const sc_core::sc_event* finished_event = nullptr;  // notified at its last completion
    std::function<std::string()> summary;
    std::function<double()> progress;  // 0..1 of its work
    ats::Function* ats = nullptr;      // its ATS function, if enabled: attached to its unit
    bool pri = false;                  // ... with PRI enabled
};

// One declared device of some kind, from its parameters to its model.
class DeviceKind {
public:
    virtual ~DeviceKind() = default;
    // Declare the device's own parameters under `key` (system.<dev>).
    virtual void bind(ParamRegistry& r, const std::string& key) = 0;
    virtual Requester requester() const = 0;
    // Its random seed (so the platform can derive one from the run's when not set).
    virtual uint64_t& seed() = 0;
    virtual bool valid(std::string* why) const = 0;
    // The key to blame when its buffers do not fit the memory it is given.
    virtual const char* size_key() const = 0;
    // Throws std::invalid_argument on parameters the model refuses.
    virtual BuiltDevice build(const std::string& name, const DmaEngineParams& engine,
                              DeviceMemory& mem, StatGroup& stats) = 0;

    // The kinds, by `type` name; `device` is the default requester's device number.
    struct Entry {
        std::string name;
        std::function<std::unique_ptr<DeviceKind>(uint8_t device)> make;
    };
    static const std::vector<Entry>& all();
    static std::unique_ptr<DeviceKind> create(const std::string& type, uint8_t device);
    static std::string names();  // "a, b or c"
};

}  // namespace iommusim
