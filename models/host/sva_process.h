// Process address spaces for shared virtual addressing (SVA): a process (Linux's mm) owns a
// VT-d first-level page table, built by the driver model as a first-level domain (or, for a
// process in a guest, a nested domain whose first level the guest owns at guest-physical
// addresses over the host's second level), bound to (RID, PASID) of one or more devices.
// Its VMAs start partly unpopulated: a page is present in the table only once it is faulted
// in (by the page request service, or by the process itself), and the driver's intent
// (vtd::Driver::expect) says at every moment what a translation should give.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "phys_alloc.h"
#include "vtd_driver.h"

namespace iommusim::sva {

// [start, start + size) with the rights its pages get when faulted in.
struct Vma {
    Addr start = 0;
    Addr size = 0;
    Perm perm = kPermNone;
    bool contains(Addr va) const { return va >= start && va - start < size; }
};

// What handle_mm_fault made of one page.
enum class FaultOutcome : uint8_t {
    Populated,     // the page was not present: a frame was allocated and mapped
    Present,       // already present with the rights asked for (another request won)
    NoVma,         // no VMA holds the address
    NoPermission,  // the VMA does not grant the access
    NoMemory,      // the frame pool is exhausted
};
const char* to_string(FaultOutcome o);

struct ProcessOptions {
    std::string name = "process";
    // Frames for the process's pages: host-physical, or guest-physical for a process in a
    // guest (inside guest RAM the parent domain maps).
    Addr frames_base = 0;
    Addr frames_size = 0;
    // mmap() without an address places VMAs upwards from here (4 KiB aligned, below 2^47).
    Addr mmap_base = Addr(1) << 32;
    // A process in a guest: the host's second-level domain (GPA -> HPA) under its first level.
    std::optional<uint16_t> guest_parent;
};

class Process {
public:
    static constexpr Addr kPage = 4096;

    // nullptr and `why` when the options are unusable (no frames, frames outside guest RAM,
    // the driver refuses the domain).
    static std::unique_ptr<Process> create(vtd::Driver& drv, const ProcessOptions& o,
                                           std::string* why = nullptr);

    const std::string& name() const { return o_.name; }
    uint16_t did() const { return did_; }
    bool in_guest() const { return o_.guest_parent.has_value(); }

    // A VMA of `size` bytes (rounded up to pages) at `va`, or at the next free address above
    // mmap_base when `va` is 0. Each page is populated now with probability `populated`
    // (0..1), decided by `seed` and the page's index, so the same seed gives the same pages.
    std::optional<Addr> mmap(Addr size, Perm perm, double populated, uint64_t seed, Addr va = 0,
                             std::string* why = nullptr);
    // The fault handler's work for the page holding `va` (handle_mm_fault): checks the VMA
    // and rights, then allocates a frame and maps it with the VMA's rights.
    FaultOutcome fault(Addr va, Perm need);
    // Reclaim: make the pages of [va, + size) not present again, frames freed. The driver
    // emits the invalidations (PASID-selective, per bound PASID) for the caller to submit.
    // Returns the bytes that were present.
    Addr evict(Addr va, Addr size);

    const Vma* find_vma(Addr va) const;
    const std::map<Addr, Vma>& vmas() const { return vmas_; }
    // The frame behind the page holding `va` (guest-physical in a guest), if present.
    std::optional<Addr> frame(Addr va) const;
    size_t pages_present() const { return pages_.size(); }

private:
    Process(vtd::Driver& drv, const ProcessOptions& o, uint16_t did);
    bool populate(Addr page, Perm perm);

    vtd::Driver& drv_;
    ProcessOptions o_;
    uint16_t did_;
    PhysAllocator frames_;
    std::map<Addr, Vma> vmas_;              // by start
    std::unordered_map<Addr, Addr> pages_;  // present page -> frame
    Addr next_va_;
};

// The processes and the devices bound to them: (RID, PASID) -> process, as Linux's SVA bind
// (iommu_sva_bind_device) attaches the mm's PASID on each device.
class ProcessTable {
public:
    explicit ProcessTable(vtd::Driver& drv) : drv_(drv) {}

    Process* create(const ProcessOptions& o, std::string* why = nullptr);
    // Attach the process's first level to (rid, pasid) in scalable mode (user requests).
    bool bind(Process& p, uint16_t rid, uint32_t pasid, std::string* why = nullptr);
    Process* find(uint16_t rid, uint32_t pasid) const;
    const std::vector<std::unique_ptr<Process>>& processes() const { return procs_; }
    // Every (rid, pasid) -> process binding, in bind order.
    const std::vector<std::pair<std::pair<uint16_t, uint32_t>, Process*>>& bindings() const {
        return order_;
    }
    vtd::Driver& driver() { return drv_; }

private:
    vtd::Driver& drv_;
    std::vector<std::unique_ptr<Process>> procs_;
    std::map<std::pair<uint16_t, uint32_t>, Process*> bound_;
    std::vector<std::pair<std::pair<uint16_t, uint32_t>, Process*>> order_;
};

}  // namespace iommusim::sva
