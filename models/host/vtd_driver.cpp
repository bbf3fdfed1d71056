#include "vtd_driver.h"

#include <fmt/format.h>

#include "core/why.h"

#include <set>

#include "arch/vtd/vtd_invdesc.h"

namespace iommusim::vtd {

struct Driver::Domain {
    uint16_t did = 0;
    Stage stage = Stage::SecondLevel;
    bool identity = false;
    uint16_t parent = 0;                         // nested: the second-level domain below
    std::unique_ptr<PhysAllocator> guest_alloc;  // nested: guest-physical table region
    std::unique_ptr<AddressSpace> as;            // null for identity domains
};

namespace {
// An unmap clears leaves and frees no table (RadixPageTable::unmap keeps them), so its
// page-selective invalidation sets IH: Linux's intel_iommu_tlb_sync passes
// ih = list_empty(&gather->freelist), i.e. IH = 1 unless page-table pages were freed. The
// unit may then keep its paging-structure caches (VT-d 6.5.2.3).
constexpr bool kUnmapLeafOnly = true;

// Second-level widths: input addresses below 2^(30 + 9 * AW).
Addr width_limit(unsigned bits) {
    return bits >= 64 ? ~Addr(0) : (Addr(1) << bits) - 1;
}
}  // namespace

Driver::Driver(SparseMemory& mem, const DriverConfig& cfg)
    : mem_(mem),
      cfg_(cfg),
      hw_(cfg.hw),
      alloc_(cfg.table_base, cfg.table_size),
      sl_fmt_(cfg.sl_levels, cfg.large_pages && cfg.hw.sl_2m, cfg.large_pages && cfg.hw.sl_1g,
              cfg.hw.snoop_control),
      fl_fmt_(cfg.fl_levels, cfg.large_pages && cfg.hw.fl_1g, cfg.fl_preset_ad),
      fq_(cfg.lazy) {
    root_ = alloc_zeroed(4096);
    hw_.rtaddr = root_;
    wait_status_ = alloc_zeroed(4096);
}

void Driver::emit(const InvalidationScope& s) {
    using K = InvalidationScope::Kind;
    inv_.push_back(s);
    IOMMUSIM_LOG_IF(log_, Debug, log::wants(s), log::now(), "invalidation submitted: {}",
                    to_string(s));
    const uint16_t did = uint16_t(s.domain);
    InvDesc d;
    switch (s.kind) {
        case K::Global: d = iotlb_global(true, true); break;
        case K::Domain: d = iotlb_domain(did, true, true); break;
        case K::Page: d = iotlb_page(did, s.addr, s.order, s.leaf_only, true, true); break;
        case K::Pasid: d = piotlb_pasid(did, s.pasid); break;
        case K::PasidPage: d = piotlb_page(did, s.pasid, s.addr, s.order, s.leaf_only); break;
        case K::ContextGlobal: d = cc_global(); break;
        case K::ContextDomain: d = cc_domain(did); break;
        case K::ContextDevice: d = cc_device(did, s.rid); break;
        case K::PasidCache: d = pc_pasid(did, s.pasid); break;
        case K::Wait: d = inv_wait(wait_status_, uint32_t(++wait_seq_)); break;
        case K::DeviceTlb: {  // ATS: the ATC of s.rid, PASID-based when the scope has one
            const Addr a = ats_encode(s.addr, s.order);
            if (s.pasid != Requester::kNoPasid)
                d = encode(PasidDeviceTlbInv{s.rid, s.rid, 0, s.pasid, false, s.order > 0, a});
            else
                d = encode(DeviceTlbInv{s.rid, s.rid, 0, a, s.order > 0});
            break;
        }
    }
    queue_.push_back(d);
}

Driver::~Driver() = default;

Addr Driver::alloc_zeroed(Addr bytes) {
    auto pa = alloc_.alloc(bytes, 4096);
    if (!pa) throw std::runtime_error("vtd driver: table region exhausted");
    static const uint8_t zero[4096] = {};
    for (Addr off = 0; off < bytes; off += 4096) mem_.write(*pa + off, zero, 4096);
    return *pa;
}

Driver::Domain* Driver::domain(uint16_t did) {
    auto it = domains_.find(did);
    return it == domains_.end() ? nullptr : it->second.get();
}
const Driver::Domain* Driver::domain(uint16_t did) const {
    auto it = domains_.find(did);
    return it == domains_.end() ? nullptr : it->second.get();
}
AddressSpace* Driver::space(uint16_t did) {
    Domain* d = domain(did);
    return d ? d->as.get() : nullptr;
}

std::optional<uint16_t> Driver::create_domain(const DomainOptions& opt, std::string* why) {
    if (opt.stage == Stage::FirstLevel && !hw_.scalable) {
        fail(why, "first-level domains need scalable mode");
        return std::nullopt;
    }
    if (next_did_ == 0) {
        fail(why, "domain IDs exhausted");
        return std::nullopt;
    }
    auto d = std::make_unique<Domain>();
    d->did = next_did_++;
    d->stage = opt.stage;
    d->identity = opt.identity;
    if (!opt.identity) {
        const PteFormat& fmt =
            opt.stage == Stage::FirstLevel ? static_cast<const PteFormat&>(fl_fmt_) : sl_fmt_;
        d->as = std::make_unique<AddressSpace>(mem_, alloc_, fmt);
        // Default window: the whole input width (first level: the lower canonical half).
        unsigned width = opt.stage == Stage::FirstLevel
                             ? 12 + 9 * cfg_.fl_levels - 1
                             : std::min(aw_bits(levels_to_aw(cfg_.sl_levels)), hw_.mgaw);
        if (opt.windows.empty()) d->as->iova().add_window({0, width_limit(width) + 1, "all"});
        for (const auto& w : opt.windows) d->as->iova().add_window(w);
        d->as->iova().add_reserved(x86_msi_region());
        for (const auto& r : opt.reserved) d->as->iova().add_reserved(r);
    }
    uint16_t did = d->did;
    domains_[did] = std::move(d);
    return did;
}

std::optional<uint16_t> Driver::create_nested_domain(uint16_t parent, const DomainOptions& opt,
                                                     std::string* why) {
    Domain* p = domain(parent);
    if (!hw_.scalable || !hw_.nested) {
        fail(why, "nested translation needs scalable mode with ECAP.NEST");
        return std::nullopt;
    }
    if (!p || p->identity || p->stage != Stage::SecondLevel || p->parent) {
        fail(why, fmt::format("domain {} is not a second-level paging domain", parent));
        return std::nullopt;
    }
    // The guest's stage-1 tables: a region the parent maps one-to-one, so the tables'
    // guest-physical addresses are where the driver writes them.
    constexpr Addr kGuestTables = 16 << 20;
    auto region = alloc_.alloc(kGuestTables, 2 << 20);
    std::string err = "table region exhausted";
    if (!region || !p->as->map(*region, *region, kGuestTables, kPermRW, &err)) {
        if (region) alloc_.free(*region, kGuestTables);
        fail(why, "stage-1 table region: " + err);
        return std::nullopt;
    }
    DomainOptions s1 = opt;
    s1.stage = Stage::FirstLevel;
    s1.identity = false;
    auto did = create_domain(s1, why);
    if (!did) return std::nullopt;
    Domain* d = domain(*did);
    d->parent = parent;
    d->guest_alloc = std::make_unique<PhysAllocator>(*region, kGuestTables);
    static const uint8_t zero[4096] = {};
    for (Addr off = 0; off < kGuestTables; off += 4096) mem_.write(*region + off, zero, 4096);
    d->as = std::make_unique<AddressSpace>(mem_, *d->guest_alloc, fl_fmt_);
    unsigned width = 12 + 9 * cfg_.fl_levels - 1;
    if (opt.windows.empty()) d->as->iova().add_window({0, width_limit(width) + 1, "all"});
    for (const auto& w : opt.windows) d->as->iova().add_window(w);
    d->as->iova().add_reserved(x86_msi_region());
    for (const auto& r : opt.reserved) d->as->iova().add_reserved(r);
    return did;
}

Addr Driver::context_entry_addr(uint16_t rid) {
    const unsigned bus = rid >> 8, devfn = rid & 0xff;
    if (!hw_.scalable) {
        auto [it, fresh] = context_tables_.try_emplace(bus, 0);
        if (fresh) {
            it->second = alloc_zeroed(4096);
            store_entry(mem_, root_ + Addr(bus) * 16, make_root_entry(it->second));
        }
        return it->second + Addr(devfn) * 16;
    }
    const bool upper = devfn >= 128;
    auto [it, fresh] = context_tables_.try_emplace(bus * 2 + upper, 0);
    if (fresh) {
        it->second = alloc_zeroed(4096);
        auto lo = context_tables_.find(bus * 2), hi = context_tables_.find(bus * 2 + 1);
        store_entry(mem_, root_ + Addr(bus) * 16,
                    make_sm_root_entry(lo == context_tables_.end() ? 0 : lo->second,
                                       hi == context_tables_.end() ? 0 : hi->second));
    }
    return it->second + Addr(devfn & 0x7f) * 32;
}

Addr Driver::pasid_entry_addr(uint16_t rid, uint32_t pasid) {
    auto [it, fresh] = pasid_dirs_.try_emplace(rid, 0);
    const unsigned pdts = cfg_.pasid_bits > 13 ? cfg_.pasid_bits - 13 : 0;
    if (fresh) {
        it->second = alloc_zeroed(std::max<Addr>(4096, Addr(8) << (pdts + 7)));
        ScalableContextFields f;
        f.pasid_dir = it->second;
        f.pdts = pdts;
        store_entry(mem_, context_entry_addr(rid), make_sm_context_entry(f));
    }
    Addr de_addr = it->second + Addr(pasid >> 6) * 8;
    auto de = load_entry<PasidDirEntry>(mem_, de_addr);
    if (!de.p()) {
        de = make_pasid_dir_entry(alloc_zeroed(4096));
        store_entry(mem_, de_addr, de);
    }
    return de.smptblptr() + Addr(pasid & 0x3f) * 64;
}

void Driver::write_pasid_entry(uint16_t rid, uint32_t pasid, const Domain& d, bool supervisor) {
    PasidEntryFields f;
    f.did = d.did;
    f.aw = levels_to_aw(cfg_.sl_levels);
    f.fl5 = cfg_.fl_levels == 5;
    f.sre = supervisor;
    f.wpe = supervisor;  // supervisor writes honour R/W, so the intent's rights hold
    if (d.identity) {
        f.pgtt = Pgtt::PassThrough;
    } else if (d.parent) {
        f.pgtt = Pgtt::Nested;
        f.flptr = d.as->table().root();
        f.slptptr = domain(d.parent)->as->table().root();
    } else if (d.stage == Stage::FirstLevel) {
        f.pgtt = Pgtt::FirstLevel;
        f.flptr = d.as->table().root();
    } else {
        f.pgtt = Pgtt::SecondLevel;
        f.slptptr = d.as->table().root();
    }
    store_entry(mem_, pasid_entry_addr(rid, pasid), make_pasid_entry(f));
    emit({InvalidationScope::Kind::PasidCache, d.did, pasid, rid});
}

bool Driver::attach(uint16_t rid, uint16_t did, std::string* why) {
    Domain* d = domain(did);
    if (!d) return fail(why, fmt::format("no domain {}", did));
    if (!hw_.scalable) {
        if (d->stage != Stage::SecondLevel || d->parent)
            return fail(why, "legacy mode attaches second-level domains only");
        TranslationType tt =
            d->identity ? TranslationType::PassThrough : TranslationType::Untranslated;
        Addr slpt = d->identity ? 0 : d->as->table().root();
        store_entry(mem_, context_entry_addr(rid),
                    make_context_entry(slpt, levels_to_aw(cfg_.sl_levels), did, tt));
    } else {
        write_pasid_entry(rid, 0, *d, false);  // RID_PASID 0 serves requests without PASID
    }
    log::note_domain(Requester{rid}, did);
    IOMMUSIM_LOG_IF(log_, Info, log::wants(Requester{rid}), log::now(),
                    "{} attached to domain {}{}", to_string(Requester{rid}), did,
                    d->identity ? " (pass-through)" : "");
    emit({InvalidationScope::Kind::ContextDevice, did, Requester::kNoPasid, rid});
    emit({InvalidationScope::Kind::Wait});
    rid_domain_[rid] = did;
    expect_memo_ = {};
    return true;
}

bool Driver::attach_pasid(uint16_t rid, uint32_t pasid, uint16_t did, bool supervisor,
                          std::string* why) {
    Domain* d = domain(did);
    if (!d) return fail(why, fmt::format("no domain {}", did));
    if (!hw_.scalable) return fail(why, "PASID attachment needs scalable mode");
    if (pasid == 0 || pasid >= (1u << cfg_.pasid_bits))
        return fail(why, fmt::format("PASID {:#x} outside 1..2^{}-1", pasid, cfg_.pasid_bits));
    write_pasid_entry(rid, pasid, *d, supervisor);
    log::note_domain(Requester{rid}.with_pasid(pasid), did);
    IOMMUSIM_LOG_IF(log_, Info, log::wants(Requester{rid}.with_pasid(pasid)), log::now(),
                    "{} attached to domain {}", to_string(Requester{rid}.with_pasid(pasid)), did);
    emit({InvalidationScope::Kind::Wait});
    pasid_domain_[{rid, pasid}] = did;
    expect_memo_ = {};
    return true;
}

void Driver::set_ats(uint16_t rid, bool enabled) {
    if (enabled)
        ats_.insert(rid);
    else
        ats_.erase(rid);
}

void Driver::detach(uint16_t rid) {
    auto it = rid_domain_.find(rid);
    if (it == rid_domain_.end()) return;
    uint16_t did = it->second;
    rid_domain_.erase(it);
    expect_memo_ = {};
    if (!hw_.scalable) {
        store_entry(mem_, context_entry_addr(rid), ContextEntry{});
    } else {
        store_entry(mem_, pasid_entry_addr(rid, 0), PasidEntry{});
        emit({InvalidationScope::Kind::PasidCache, did, 0, rid});
    }
    emit({InvalidationScope::Kind::ContextDevice, did, Requester::kNoPasid, rid});
    emit({InvalidationScope::Kind::Domain, did});
    emit({InvalidationScope::Kind::Wait});
}

void Driver::detach_pasid(uint16_t rid, uint32_t pasid) {
    auto it = pasid_domain_.find({rid, pasid});
    if (it == pasid_domain_.end()) return;
    uint16_t did = it->second;
    pasid_domain_.erase(it);
    expect_memo_ = {};
    store_entry(mem_, pasid_entry_addr(rid, pasid), PasidEntry{});
    emit({InvalidationScope::Kind::PasidCache, did, pasid, rid});
    emit({InvalidationScope::Kind::Pasid, did, pasid, rid});
    emit({InvalidationScope::Kind::Wait});
}

// The output range must be addressable by the unit: the entries' address fields hold bits
// HAW-1:12, so a larger address would be cut silently by the encoder.
static bool check_output(Addr pa, Addr size, unsigned haw, std::string* why) {
    const Addr last = size ? pa + (size - 1) : pa;
    if (size && last < pa)
        return fail(why, fmt::format("pa {:#x} size {:#x} passes 2^64", pa, size));
    if (haw < 64 && (last >> haw))
        return fail(why, fmt::format("pa {:#x} size {:#x} ends beyond the unit's {}-bit host "
                                     "address width (expected an end below {:#x})",
                                     pa, size, haw, Addr(1) << haw));
    return true;
}

bool Driver::map(uint16_t did, Addr iova, Addr pa, Addr size, Perm perm, std::string* why) {
    Domain* d = domain(did);
    if (!d) return fail(why, fmt::format("no domain {}", did));
    if (!d->as) return fail(why, fmt::format("domain {} is pass-through: nothing to map", did));
    if (!check_output(pa, size, hw_.haw, why)) return false;
    IOMMUSIM_LOG_IF(log_, Debug, log::wants_domain(did), log::now(),
                    "domain {}: map {:#x}+{:#x} -> {:#x} {}", did, iova, size, pa,
                    perm_string(perm));
    const size_t replaced = d->as->table().tables_replaced();
    if (!d->as->map(iova, pa, size, perm, why)) return false;
    // A large page replaced a (now empty) lower table: the walk caches may hold the old table
    // pointer, so invalidate the range at once, in lazy mode too (as Linux does).
    if (d->as->table().tables_replaced() != replaced) invalidate_range(*d, iova, size);
    return true;
}

std::optional<Addr> Driver::map_alloc(uint16_t did, Addr pa, Addr size, Perm perm, Addr limit,
                                      std::string* why) {
    Domain* d = domain(did);
    if (!d || !d->as) {
        fail(why, fmt::format("domain {} has no IOVA space", did));
        return std::nullopt;
    }
    Addr page = Addr(1) << d->as->min_page_shift();
    if (!check_output(pa, size, hw_.haw, why)) return std::nullopt;
    Addr len = (size + (pa & (page - 1)) + page - 1) & ~(page - 1);
    auto iova = d->as->iova().alloc(len, limit);
    if (!iova) {
        fail(why, fmt::format("no free IOVA range of {:#x} bytes below {:#x}", len, limit));
        return std::nullopt;
    }
    const size_t replaced = d->as->table().tables_replaced();
    if (!d->as->map(*iova, pa & ~(page - 1), len, perm, why)) {
        d->as->iova().free(*iova);
        return std::nullopt;
    }
    IOMMUSIM_LOG_IF(log_, Debug, log::wants_domain(did), log::now(),
                    "domain {}: map {:#x}+{:#x} -> {:#x} {}", did, *iova, len, pa & ~(page - 1),
                    perm_string(perm));
    if (d->as->table().tables_replaced() != replaced) invalidate_range(*d, *iova, len);
    return *iova + (pa & (page - 1));
}

// The ATC entries of `rid` (with `pasid`) over [iova, + size), as one ATS range.
static InvalidationScope device_tlb_scope(uint16_t rid, uint32_t pasid, Addr iova, Addr size) {
    InvalidationScope s =
        InvalidationScope::covering(InvalidationScope::Kind::DeviceTlb, 0, iova, size);
    s.rid = rid;
    s.pasid = pasid;
    return s;
}

void Driver::invalidate_range(const Domain& d, Addr iova, Addr size, bool leaf_only) {
    using K = InvalidationScope::Kind;
    InvalidationScope s = InvalidationScope::covering(K::Page, d.did, iova, size);
    s.leaf_only = leaf_only;
    const bool too_big = s.order > 18;  // beyond CAP.MAMV: flush the domain
    if (d.stage == Stage::FirstLevel && hw_.scalable) {
        std::set<uint32_t> pasids;
        for (const auto& [key, did] : pasid_domain_)
            if (did == d.did) pasids.insert(key.second);
        for (const auto& [rid, did] : rid_domain_)
            if (did == d.did) pasids.insert(0);
        for (uint32_t p : pasids) {
            s.kind = too_big ? K::Pasid : K::PasidPage;
            s.pasid = p;
            emit(s);
        }
        // After the IOTLB, the ATCs of ATS devices (Linux's qi_flush_dev_iotlb_pasid).
        for (const auto& [key, did] : pasid_domain_)
            if (did == d.did && ats_.count(key.first))
                emit(device_tlb_scope(key.first, key.second, iova, size));
        for (const auto& [rid, did] : rid_domain_)
            if (did == d.did && ats_.count(rid))
                emit(device_tlb_scope(rid, Requester::kNoPasid, iova, size));
    } else {
        s.kind = too_big ? K::Domain : K::Page;
        emit(s);
        for (const auto& [rid, did] : rid_domain_)
            if (did == d.did && ats_.count(rid))
                emit(device_tlb_scope(rid, Requester::kNoPasid, iova, size));
        // Combined (nested) entries are tagged by stage-1 input: flush the nested domains.
        for (const auto& [did, child] : domains_)
            if (child->parent == d.did) emit({K::Domain, did});
    }
    emit({K::Wait});
}

Addr Driver::unmap(uint16_t did, Addr iova, Addr size, uint64_t now_ns) {
    Domain* d = domain(did);
    if (!d || !d->as || size == 0) return 0;
    Addr bytes = d->as->unmap(iova, size);
    if (!bytes) return 0;
    IOMMUSIM_LOG_IF(log_, Debug, log::wants_domain(did), log::now(),
                    "domain {}: unmap {:#x}+{:#x}{}", did, iova, size,
                    cfg_.strict ? "" : ", invalidation deferred to the flush queue");
    if (cfg_.strict) {
        invalidate_range(*d, iova, size, kUnmapLeafOnly);
    } else if (fq_.push({did, iova, size, now_ns, false})) {
        drain(now_ns);
    }
    return bytes;
}

Addr Driver::unmap_free(uint16_t did, Addr iova, Addr size, uint64_t now_ns) {
    Domain* d = domain(did);
    if (!d || !d->as) return 0;
    Addr page = Addr(1) << d->as->min_page_shift();
    Addr base = iova & ~(page - 1);
    Addr len = (size + (iova - base) + page - 1) & ~(page - 1);
    Addr bytes = d->as->unmap(base, len);
    IOMMUSIM_LOG_IF(log_, Debug, log::wants_domain(did), log::now(),
                    "domain {}: unmap {:#x}+{:#x}{}", did, base, len,
                    cfg_.strict ? "" : ", invalidation deferred to the flush queue");
    if (cfg_.strict) {
        invalidate_range(*d, base, len, kUnmapLeafOnly);
        d->as->iova().free(base);
    } else if (fq_.push({did, base, len, now_ns, true})) {
        drain(now_ns);
    }
    return bytes;
}

void Driver::invalidate(uint16_t did, Addr iova, Addr size) {
    if (const Domain* d = domain(did)) invalidate_range(*d, iova, size);
}

void Driver::tick(uint64_t now_ns) {
    if (fq_.due(now_ns)) drain(now_ns);
}

void Driver::flush_all() {
    drain(0);
}

void Driver::drain(uint64_t) {
    using K = InvalidationScope::Kind;
    auto pending = fq_.drain();
    if (pending.empty()) return;
    IOMMUSIM_LOG(log_, Debug, log::now(), "flush queue: {} deferred unmaps invalidated",
                 pending.size());
    // One flush per domain for the whole queue, as Linux's flush queue does.
    std::set<uint32_t> dids;
    for (const auto& u : pending) dids.insert(u.space);
    for (uint32_t did : dids) {
        const Domain* d = domain(uint16_t(did));
        if (!d) continue;
        if (d->stage == Stage::FirstLevel && hw_.scalable) {
            for (const auto& [key, owner] : pasid_domain_)
                if (owner == did) emit({K::Pasid, did, key.second});
            for (const auto& [rid, owner] : rid_domain_)
                if (owner == did) emit({K::Pasid, did, 0});
        } else {
            emit({K::Domain, did});
        }
    }
    emit({K::Wait});
    for (const auto& u : pending)
        if (u.release_iova)
            if (Domain* d = domain(uint16_t(u.space))) d->as->iova().free(u.iova);
}

Expectation Driver::expect_slow(const Requester& req, Addr iova) const {
    Expectation e;
    const uint64_t key = expect_key(req);
    if (key != expect_memo_.key) {
        const Domain* found = nullptr;
        if (req.has_pasid()) {
            auto it = pasid_domain_.find({req.rid, req.pasid});
            if (it != pasid_domain_.end()) found = domain(it->second);
        } else {
            auto it = rid_domain_.find(req.rid);
            if (it != rid_domain_.end()) found = domain(it->second);
        }
        const bool plain = found && !found->identity && !found->parent;
        expect_memo_ = {key, found, plain ? &found->as->intent() : nullptr};
    }
    const Domain* d = expect_memo_.domain;
    if (!d) return e;
    if (d->identity) {
        if (hw_.haw < 64 && (iova >> hw_.haw)) return e;
        return {true, iova, kPermR | kPermW | kPermX};
    }
    auto hit = d->as->intent().translate(iova);
    if (!hit) return e;
    if (d->parent) {  // stage 1 gives a guest-physical address; stage 2 takes it to host
        auto s2 = domain(d->parent)->as->intent().translate(hit->pa);
        if (!s2) return e;
        return {true, s2->pa, Perm(hit->perm & s2->perm)};
    }
    return {true, hit->pa, hit->perm};
}

}  // namespace iommusim::vtd
