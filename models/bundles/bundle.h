// An IOMMU architecture as a platform assembles it: one bundle per architecture owns its
// parameters (translation unit, register file, host driver and DMA API costs), builds its
// unit with its walker and register file, its host driver model and the DMA API devices call,
// and registers itself by name. The platform picks a bundle by the unit's `arch` key and
// wires it by configuration only; it never names an architecture.
//
//   class MyBundle final : public IommuBundle { ... };
//   namespace my_lookup { options(), run(const LookupRequest&), demo() }  // `iommusim lookup`
//   IOMMUSIM_REGISTER_ARCH(myarch, "one line for --help", MyBundle, my_lookup);
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/dma_mapper.h"
#include "core/sparse_memory.h"
#include "core/stats.h"
#include "core/sva_space.h"
#include "iommu/iommu_unit.h"
#include "lookup.h"

namespace iommusim {

struct ViommuHost;  // host/viommu.h

// What the platform gives a bundle to build its unit with.
struct BundleEnv {
    SparseMemory& store;  // simulated physical memory: the driver model's tables go here
    Addr struct_base;     // the unit's host structures lie in [struct_base, + struct_span)
    Addr struct_span;
    bool replay = false;       // `iommusim replay`: the devices' maps follow a recording
    bool large_pages = false;  // replay: the driver may map recorded ranges with large pages
    StatGroup& stats;          // system.<unit>
};

// One device's DMA address space on a unit (a VT-d domain, a POWER PE and its window).
class DeviceDomain {
public:
    virtual ~DeviceDomain() = default;
    // A long-lived mapping of [pa, pa + len) (rings, buffer pools): its bus address, or
    // nullopt and `why`.
    virtual std::optional<Addr> map_long(Addr pa, uint64_t len, std::string* why) = 0;
    // A benchmark buffer of `len` bytes at `pa` (length and alignment a multiple of the
    // domain's page size), mapped at an address aligned to that page size; `slot` (0, 1, ...)
    // keeps the buffers of different devices on one unit apart.
    virtual std::optional<Addr> map_buffer(Addr pa, uint64_t len, size_t slot,
                                           std::string* why) = 0;
    // The DMA API for devices that map per I/O.
    virtual std::unique_ptr<DmaMapper> dma_api() = 0;
    // The driver as a trace replay drives it; null when the architecture cannot take a
    // recording's maps (its address layout is another architecture's).
    virtual std::unique_ptr<RecordedDomain> recorded() { return nullptr; }
    // The host side a guest IOMMU emulated over this domain works on (docs/viommu.md);
    // false when the architecture cannot host one.
    virtual bool viommu_host(ViommuHost*) { return false; }
    // Process address spaces bound to this requester's PASIDs (SVA), their frames from
    // `alloc` (host-physical; called only while the device is being built); null when the
    // architecture or its mode has none. Owned by the bundle.
    virtual SvaSpaces* sva(std::function<Addr(uint64_t)> /*alloc*/) { return nullptr; }
};

class IommuBundle {
public:
    virtual ~IommuBundle() = default;
    // Declare every parameter under `key` (system.<unit>) in `r`, before values are applied.
    virtual void bind(ParamRegistry& r, const std::string& key) = 0;
    // The translation unit's parameters (the platform checks their cache geometry and seeds
    // their replacement).
    virtual UnitParams& unit_params() = 0;
    // Build the unit, its driver model and whatever else it needs, after values are applied.
    virtual void build(const std::string& name, const BundleEnv& env) = 0;
    virtual IommuUnit& unit() = 0;
    // Give requester `req` its own address space, mapped with `page_size` pages.
    virtual std::unique_ptr<DeviceDomain> attach(const Requester& req, uint64_t page_size,
                                                 std::string* why) = 0;
    // At time 0, before any device runs: what the host does at boot (tables, enable
    // translation, invalidations of the attaches) and the checking oracle.
    virtual void bring_up() = 0;
    // After the run: what the host software left undone that is a defect (a page request
    // never answered), one line each.
    virtual std::vector<std::string> defects() const { return {}; }
};

// The architectures linked into the program, by name.
class ArchRegistry {
public:
    using Factory = std::function<std::unique_ptr<IommuBundle>()>;
    // `iommusim lookup --arch NAME` and `iommusim demo` (bundles/lookup.h).
    struct Lookup {
        std::vector<LookupOption> options;  // the architecture's own
        std::function<int(const LookupRequest&)> run;
        std::function<int()> demo;
    };
    struct Entry {
        std::string name, doc;
        Factory make;
        Lookup lookup;
        bool is_default = false;  // a unit that does not say its `arch` has this one
    };
    static bool add(Entry e);
    static const Entry* find(const std::string& name);  // null when unknown
    // Null when no architecture has that name.
    static std::unique_ptr<IommuBundle> create(const std::string& name);
    static const std::vector<Entry>& all();  // sorted by name
    static std::string names();              // "a, b or c", for messages
    static std::string default_name();       // "" when none is the default
};

#define IOMMUSIM_REGISTER_ARCH_AS(name, doc, Type, lookup_ns, is_default)              \
    static const bool iommusim_arch_registered_##name = ::iommusim::ArchRegistry::add( \
        {#name,                                                                        \
         doc,                                                                          \
         [] { return std::unique_ptr<::iommusim::IommuBundle>(new Type()); },          \
         {lookup_ns::options(), lookup_ns::run, lookup_ns::demo},                      \
         is_default})
#define IOMMUSIM_REGISTER_ARCH(name, doc, Type, lookup_ns) \
    IOMMUSIM_REGISTER_ARCH_AS(name, doc, Type, lookup_ns, false)
// The architecture of units whose configuration names none (one per program).
#define IOMMUSIM_REGISTER_DEFAULT_ARCH(name, doc, Type, lookup_ns) \
    IOMMUSIM_REGISTER_ARCH_AS(name, doc, Type, lookup_ns, true)

}  // namespace iommusim
