#include "sva_process.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/why.h"

namespace iommusim::sva {

namespace {
// The lower canonical half of a 4-level first level: user VAs lie below it.
constexpr Addr kUserTop = Addr(1) << 47;

// splitmix64: a per-page draw from (seed, page index), independent of call order.
uint64_t mix(uint64_t x) {
    x += 0x9e37'79b9'7f4a'7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58'476d'1ce4'e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d0'49bb'1331'11ebULL;
    return x ^ (x >> 31);
}
}  // namespace

const char* to_string(FaultOutcome o) {
    switch (o) {
        case FaultOutcome::Populated: return "populated";
        case FaultOutcome::Present: return "present";
        case FaultOutcome::NoVma: return "no VMA";
        case FaultOutcome::NoPermission: return "no permission";
        case FaultOutcome::NoMemory: return "no memory";
    }
    return "?";
}

Process::Process(vtd::Driver& drv, const ProcessOptions& o, uint16_t did)
    : drv_(drv), o_(o), did_(did), frames_(o.frames_base, o.frames_size), next_va_(o.mmap_base) {}

std::unique_ptr<Process> Process::create(vtd::Driver& drv, const ProcessOptions& o,
                                         std::string* why) {
    if (o.frames_size < kPage || (o.frames_base | o.frames_size) % kPage) {
        fail(why, fmt::format("{}: frames [{:#x}, + {:#x}) must hold whole 4 KiB pages (expected "
                              "a 4 KiB-aligned base and a non-zero multiple of 4 KiB)",
                              o.name, o.frames_base, o.frames_size));
        return nullptr;
    }
    if (o.mmap_base % kPage || o.mmap_base >= kUserTop) {
        fail(why, fmt::format("{}: mmap_base {:#x} must be 4 KiB aligned and below 2^47", o.name,
                              o.mmap_base));
        return nullptr;
    }
    std::optional<uint16_t> did;
    vtd::DomainOptions opt;
    opt.stage = vtd::Stage::FirstLevel;
    if (o.guest_parent) {
        // The guest's frames must be guest RAM the host maps, or every fault would populate
        // a page the device cannot reach.
        AddressSpace* parent = drv.space(*o.guest_parent);
        if (!parent) {
            fail(why, fmt::format("{}: guest parent domain {} has no second level", o.name,
                                  *o.guest_parent));
            return nullptr;
        }
        // The parent maps RAM in 2 MiB or larger pieces: one probe per 2 MiB and the last
        // page find a hole.
        auto unmapped = [&](Addr gpa) { return !parent->intent().translate(gpa); };
        std::optional<Addr> hole;
        const Addr last = o.frames_base + o.frames_size - kPage;
        for (Addr gpa = o.frames_base; gpa <= last && !hole;
             gpa = (gpa | ((Addr(2) << 20) - 1)) + 1)
            if (unmapped(gpa)) hole = gpa;
        if (!hole && unmapped(last)) hole = last;
        if (hole) {
            fail(why, fmt::format("{}: guest frame {:#x} is not guest RAM: domain {} does not "
                                  "map it",
                                  o.name, *hole, *o.guest_parent));
            return nullptr;
        }
        did = drv.create_nested_domain(*o.guest_parent, opt, why);
    } else {
        did = drv.create_domain(opt, why);
    }
    if (!did) return nullptr;
    return std::unique_ptr<Process>(new Process(drv, o, *did));
}

std::optional<Addr> Process::mmap(Addr size, Perm perm, double populated, uint64_t seed, Addr va,
                                  std::string* why) {
    if (size == 0 || size > kUserTop) {
        fail(why, fmt::format("{}: mmap of {:#x} bytes (expected 1 byte to 2^47)", name(), size));
        return std::nullopt;
    }
    if (!(populated >= 0.0 && populated <= 1.0)) {
        fail(why, fmt::format("{}: populated fraction {} (expected 0 to 1)", name(), populated));
        return std::nullopt;
    }
    const Addr len = (size + kPage - 1) & ~(kPage - 1);
    const Addr start = va ? va : next_va_;
    if (start % kPage || start >= kUserTop || kUserTop - start < len) {
        fail(why, fmt::format("{}: VMA [{:#x}, + {:#x}) must be 4 KiB aligned and below 2^47",
                              name(), start, len));
        return std::nullopt;
    }
    // No overlap with the VMA before or after.
    auto after = vmas_.lower_bound(start);
    if (after != vmas_.end() && after->second.start < start + len) {
        fail(why, fmt::format("{}: VMA [{:#x}, + {:#x}) overlaps the VMA at {:#x}", name(), start,
                              len, after->second.start));
        return std::nullopt;
    }
    if (after != vmas_.begin()) {
        const Vma& before = std::prev(after)->second;
        if (before.start + before.size > start) {
            fail(why, fmt::format("{}: VMA [{:#x}, + {:#x}) overlaps the VMA at {:#x}", name(),
                                  start, len, before.start));
            return std::nullopt;
        }
    }
    vmas_[start] = Vma{start, len, perm};
    if (!va) next_va_ = start + len + kPage;  // a guard page between VMAs, as mmap leaves
    const uint64_t threshold = uint64_t(populated * double(uint64_t(1) << 53));
    for (Addr off = 0; off < len; off += kPage) {
        const bool take = populated >= 1.0 || (mix(seed ^ mix(start + off)) >> 11) < threshold;
        if (take && !populate(start + off, perm)) {
            fail(why, fmt::format("{}: frames exhausted populating {:#x}", name(), start + off));
            return std::nullopt;
        }
    }
    return start;
}

bool Process::populate(Addr page, Perm perm) {
    auto pa = frames_.alloc(kPage, kPage);
    if (!pa) return false;
    std::string why;
    if (!drv_.map(did_, page, *pa, kPage, perm, &why)) {
        frames_.free(*pa, kPage);
        // The VMA checks keep addresses inside the window: a refusal is a model bug.
        throw std::logic_error(fmt::format("{}: driver refused {:#x}: {}", name(), page, why));
    }
    pages_[page] = *pa;
    return true;
}

const Vma* Process::find_vma(Addr va) const {
    auto it = vmas_.upper_bound(va);
    if (it == vmas_.begin()) return nullptr;
    --it;
    return it->second.contains(va) ? &it->second : nullptr;
}

FaultOutcome Process::fault(Addr va, Perm need) {
    const Vma* v = find_vma(va);
    if (!v) return FaultOutcome::NoVma;
    if (!permits(v->perm, need)) return FaultOutcome::NoPermission;
    const Addr page = va & ~(kPage - 1);
    // Present pages carry the VMA's rights, which were just checked.
    if (pages_.count(page)) return FaultOutcome::Present;
    return populate(page, v->perm) ? FaultOutcome::Populated : FaultOutcome::NoMemory;
}

Addr Process::evict(Addr va, Addr size) {
    Addr bytes = 0;
    const Addr first = va & ~(kPage - 1);
    for (Addr page = first; page - first < size; page += kPage) {
        auto it = pages_.find(page);
        if (it == pages_.end()) continue;
        bytes += drv_.unmap(did_, page, kPage);
        frames_.free(it->second, kPage);
        pages_.erase(it);
    }
    return bytes;
}

std::optional<Addr> Process::frame(Addr va) const {
    auto it = pages_.find(va & ~(kPage - 1));
    if (it == pages_.end()) return std::nullopt;
    return it->second;
}

Process* ProcessTable::create(const ProcessOptions& o, std::string* why) {
    auto p = Process::create(drv_, o, why);
    if (!p) return nullptr;
    procs_.push_back(std::move(p));
    return procs_.back().get();
}

bool ProcessTable::bind(Process& p, uint16_t rid, uint32_t pasid, std::string* why) {
    if (bound_.count({rid, pasid}))
        return fail(why, fmt::format("{:02x}:{:02x}.{:x} PASID {:#x} is already bound", rid >> 8,
                                     (rid >> 3) & 0x1f, rid & 7, pasid));
    if (!drv_.attach_pasid(rid, pasid, p.did(), false, why)) return false;
    bound_[{rid, pasid}] = &p;
    order_.push_back({{rid, pasid}, &p});
    return true;
}

Process* ProcessTable::find(uint16_t rid, uint32_t pasid) const {
    auto it = bound_.find({rid, pasid});
    return it == bound_.end() ? nullptr : it->second;
}

}  // namespace iommusim::sva
