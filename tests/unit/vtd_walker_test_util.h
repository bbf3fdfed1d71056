// Test-only builders for the VT-d walker tests: legacy and scalable-mode structures written
// by hand with the vtd_format.h encoders, nested first-level tables behind a second level,
// a step-by-step driver that can fail a chosen read, and the walker's contract check.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "arch/vtd/vtd_fault.h"
#include "arch/vtd/vtd_format.h"
#include "arch/vtd/vtd_walker.h"
#include "core/sparse_memory.h"
#include "core/walker.h"

namespace iommusim::test {

using namespace iommusim::vtd;

constexpr Addr kRootTable = 0x10000;
constexpr Addr kTablePool = 0x100000;  // hand-built tables are allocated upwards from here
constexpr uint64_t kAddrBits = 0x000F'FFFF'FFFF'F000;

inline unsigned index_of(Addr a, unsigned level) {
    return unsigned((a >> (3 + 9 * level)) & 0x1ff);
}

using Entries = std::array<Addr, 6>;  // address of the entry used at each level

#define CHECK_FAULT(result, fault_kind, code)          \
    do {                                               \
        const WalkResult& r_ = (result);               \
        CHECK_FALSE(r_.ok());                          \
        CHECK(r_.fault.kind == FaultKind::fault_kind); \
        CHECK(r_.fault.reason == (code));              \
    } while (0)

inline const SecondLevelFormat kSl4(4, true, true);
inline const FirstLevelFormat kFl4(4, true);
inline const FirstLevelFormat kFl4NoAd(4, true, false);  // A/D left for the hardware to set
inline const FirstLevelFormat kFl5(5, true);

// Tables in one SparseMemory, allocated page by page from kTablePool.
struct TableMemory {
    SparseMemory mem;
    WalkerConfig cfg;
    Addr next = kTablePool;
    WalkResult res;

    TableMemory() { cfg.rtaddr = kRootTable; }
    Addr page(Addr n = 1) {
        Addr a = next;
        next += 0x1000 * n;
        return a;
    }
    // Maps iova -> pa with a leaf at `leaf_level`; returns the entry used at each level.
    Entries map(const PteFormat& fmt, Addr root, Addr iova, Addr pa, unsigned leaf_level,
                Perm perm) {
        Entries at{};
        Addr table = root;
        for (unsigned l = fmt.levels(); l > leaf_level; --l) {
            at[l] = table + index_of(iova, l) * 8;
            if (!mem.read64(at[l])) mem.write64(at[l], fmt.make_table(page(), l));
            table = mem.read64(at[l]) & kAddrBits;
        }
        at[leaf_level] = table + index_of(iova, leaf_level) * 8;
        mem.write64(at[leaf_level], fmt.make_leaf(pa, perm, leaf_level));
        return at;
    }
    const WalkResult& walk(Requester r, Addr iova, Access a = Access::Read) {
        VtdWalker w(cfg);
        res = walk_functional(w, mem, r, iova, a);
        return res;
    }
};

// Legacy mode: the root table and one context table per bus.
struct Legacy : TableMemory {
    std::map<unsigned, Addr> ctx_tables;

    Addr context_slot(Requester r) {
        auto [it, fresh] = ctx_tables.try_emplace(r.bus(), 0);
        if (fresh) {
            it->second = page();
            store_entry(mem, kRootTable + Addr(r.bus()) * 16, make_root_entry(it->second));
        }
        return it->second + Addr(r.devfn()) * 16;
    }
    // Points `r` at a fresh second-level table with address-width encoding `aw`.
    Addr attach(Requester r, unsigned aw, uint16_t did, bool fpd = false) {
        Addr root = page();
        store_entry(mem, context_slot(r),
                    make_context_entry(root, aw, did, TranslationType::Untranslated, fpd));
        return root;
    }
    Entries map(Addr root, unsigned levels, Addr iova, Addr pa, unsigned leaf_level, Perm perm) {
        return TableMemory::map(SecondLevelFormat(levels, true, true), root, iova, pa, leaf_level,
                                perm);
    }
};

inline ScalableContextFields context_fields(unsigned pdts = 7) {
    ScalableContextFields f;
    f.pdts = pdts;
    return f;
}

inline PasidEntryFields pasid_fields(Pgtt pgtt, uint16_t did, Addr slpt, Addr flpt = 0) {
    PasidEntryFields f;
    f.pgtt = pgtt;
    f.did = did;
    f.slptptr = slpt;
    f.flptr = flpt;
    return f;
}

// Scalable mode: root-entry halves, context tables, PASID directories and tables.
struct Scalable : TableMemory {
    std::map<unsigned, Addr> ctx_tables;  // bus * 2 + upper half -> context table
    std::map<uint16_t, Addr> dirs;        // rid -> PASID directory

    Scalable() { cfg.scalable = true; }
    Addr context_slot(Requester r) {
        const unsigned key = r.bus() * 2u + (r.devfn() >= 128);
        auto [it, fresh] = ctx_tables.try_emplace(key, 0);
        if (fresh) {
            it->second = page();
            auto half = [&](unsigned k) {
                auto h = ctx_tables.find(k);
                return h == ctx_tables.end() ? Addr(0) : h->second;
            };
            store_entry(mem, kRootTable + Addr(r.bus()) * 16,
                        make_sm_root_entry(half(r.bus() * 2u), half(r.bus() * 2u + 1)));
        }
        return it->second + Addr(r.devfn() & 0x7f) * 32;
    }
    // Writes the context entry of `r` with a fresh PASID directory of 2^(pdts+7) entries.
    void context(Requester r, ScalableContextFields f) {
        f.pasid_dir = page(std::max<Addr>(1, (Addr(8) << (f.pdts + 7)) / 0x1000));
        dirs[r.rid] = f.pasid_dir;
        store_entry(mem, context_slot(r), make_sm_context_entry(f));
    }
    Addr pasid_slot(Requester r, uint32_t pasid) {
        if (!dirs.count(r.rid)) context(r, context_fields());
        const Addr de = dirs[r.rid] + Addr(pasid >> 6) * 8;
        if (!(mem.read64(de) & 1)) store_entry(mem, de, make_pasid_dir_entry(page()));
        return (mem.read64(de) & kAddrBits) + Addr(pasid & 0x3f) * 64;
    }
    void attach(Requester r, uint32_t pasid, const PasidEntryFields& f) {
        store_entry(mem, pasid_slot(r, pasid), make_pasid_entry(f));
    }
};

// Nested translation: first-level tables live at guest-physical pages that the second level
// maps 4 KiB at a time to unrelated host pages, so every first-level access needs it.
struct Nested {
    Scalable& t;
    Addr sl_root;
    Perm table_perm;
    Addr next_gpa = 0x4000'0000;
    std::map<Addr, Addr> host;  // guest page -> host page

    explicit Nested(Scalable& tables, Perm perm = kPermRW)
        : t(tables), sl_root(tables.page()), table_perm(perm) {}
    Addr guest_page() {
        const Addr g = next_gpa, h = t.page();
        next_gpa += 0x1000;
        host[g] = h;
        t.map(kSl4, sl_root, g, h, 1, table_perm);
        return g;
    }
    // Maps iova -> gpa in the first level; returns the host address of each entry used.
    Entries map(const FirstLevelFormat& fmt, Addr fl_root, Addr iova, Addr gpa, unsigned leaf_level,
                Perm perm) {
        Entries at{};
        Addr table = fl_root;
        for (unsigned l = fmt.levels(); l > leaf_level; --l) {
            at[l] = host.at(table) + index_of(iova, l) * 8;
            if (!t.mem.read64(at[l])) t.mem.write64(at[l], fmt.make_table(guest_page(), l));
            table = t.mem.read64(at[l]) & kAddrBits;
        }
        at[leaf_level] = host.at(table) + index_of(iova, leaf_level) * 8;
        t.mem.write64(at[leaf_level], fmt.make_leaf(gpa, perm, leaf_level));
        return at;
    }
};

// Drives a started walk like walk_functional, failing the read numbered `fail_read`
// (1-based) with feed_error() and recording every step.
inline const WalkResult& drive(VtdWalker& w, SparseMemory& mem, unsigned fail_read = 0,
                               std::vector<WalkStep>* steps = nullptr) {
    uint8_t buf[64];
    unsigned reads = 0;
    for (;;) {
        WalkStep s = w.next();
        if (steps) steps->push_back(s);
        if (s.kind == WalkStep::Kind::Done) return w.result();
        if (s.kind == WalkStep::Kind::Write) {
            mem.write64(s.addr, s.wdata);
        } else if (++reads == fail_read || !mem.read(s.addr, buf, s.size)) {
            w.feed_error();
        } else {
            w.feed(buf);
        }
    }
}

// Reads plus one accessed/dirty write per paging read in the longest (5-on-5 nested) walk:
// 4 structure reads + 5 x (5 + 1) + 5 = 39 reads, at most 35 of them paging reads.
constexpr unsigned kMaxSteps = 39 + 35;

// Walks with a read failing now and then, logging overwritten quadwords in `undo`; returns
// why the outcome breaks the walker's contract, or "".
inline std::string checked_walk(VtdWalker& w, SparseMemory& mem, const Requester& req, Addr iova,
                                Access a, std::mt19937_64& rng,
                                std::vector<std::pair<Addr, uint64_t>>* undo = nullptr) {
    w.start(req, iova, a);
    std::vector<Addr> read_at;
    uint8_t buf[64];
    for (unsigned steps = 0;; ++steps) {
        if (steps > kMaxSteps) return "walk did not finish";
        WalkStep s = w.next();
        if (s.kind == WalkStep::Kind::Done) break;
        if (s.kind == WalkStep::Kind::Write) {
            if (std::find(read_at.begin(), read_at.end(), s.addr) == read_at.end())
                return "wrote an entry it never read";
            if (undo) undo->push_back({s.addr, mem.read64(s.addr)});
            mem.write64(s.addr, s.wdata);
            continue;
        }
        if (s.size == 0 || s.size > 64 || s.size % 8) return "bad read size";
        read_at.push_back(s.addr);
        if (rng() % 64 == 0 || !mem.read(s.addr, buf, s.size))
            w.feed_error();
        else
            w.feed(buf);
    }
    const WalkResult& r = w.result();
    if (r.reads != read_at.size()) return "read count differs from the reads issued";
    if (r.ok()) {
        if (r.tr.out >> 52) return "output beyond 52 bits";
        if (r.tr.page_shift != 12 && r.tr.page_shift != 21 && r.tr.page_shift != 30)
            return "odd page size";
        if (!permits(r.tr.perm, perm_needed(a, false))) return "granted without the right";
        return "";
    }
    if (r.fault.kind == FaultKind::None || r.fault.kind > FaultKind::Blocked)
        return "unknown fault kind";
    if (r.fault.reason == 0 || std::string(fault_reason_text(r.fault.reason)) == "Unknown")
        return "reason " + std::to_string(r.fault.reason) + " is not a VT-d code";
    return "";
}

}  // namespace iommusim::test
