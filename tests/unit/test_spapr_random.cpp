// The TCE walker on random tables and random window configurations: every walk ends in a
// translation or a fault, never a crash, and translations agree with a separate reference
// lookup written the way QEMU's PHB models walk (one loop over the bus address).
#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "arch/spapr/spapr_walker.h"
#include "core/sparse_memory.h"

using namespace iommusim;
using namespace iommusim::spapr;

namespace {

constexpr Addr kRegion = 0x100'0000;  // random tables live here
constexpr Addr kRegionBytes = 4ULL << 20;
constexpr uint16_t kPe = 7;
const Requester kDev = Requester::bdf(3, 1, 2);

// Reference lookup for a valid translated window: the output and rights, or nullopt for
// any fault.
std::optional<std::pair<Addr, Perm>> reference(const SparseMemory& mem, const PhbCaps& caps,
                                               const TceWindow& w, Addr iova, Access acc) {
    const Addr off = iova - w.bus_offset;
    const auto too_high = [&](Addr a) {
        return caps.real_addr_bits < 64 && (a >> caps.real_addr_bits) != 0;
    };
    Addr base = w.table;
    for (int lev = w.levels; lev >= 1; --lev) {
        const unsigned sh = w.page_shift + (lev - 1) * w.level_bits;
        const unsigned nbits = lev == w.levels ? w.top_bits : w.level_bits;
        const Addr taddr = base | (((off >> sh) & ((Addr(1) << nbits) - 1)) << 3);
        uint8_t b[8];
        if (!mem.read(taddr, b, 8)) return std::nullopt;
        uint64_t tce = 0;
        for (uint8_t byte : b) tce = (tce << 8) | byte;
        if ((tce & 3) == 0) return std::nullopt;
        const unsigned addr_shift = lev > 1 ? 12 : w.page_shift;
        const Addr low = ((Addr(1) << addr_shift) - 1);
        if (too_high(tce & ~low)) return std::nullopt;
        if (caps.strict_reserved && (tce & low & ~Addr(3))) return std::nullopt;
        if (lev > 1) {
            base = tce & ~low;
            continue;
        }
        const bool r = tce & 1, wr = tce & 2;
        if ((acc != Access::Read && !wr) || (acc != Access::Write && !r)) return std::nullopt;
        return std::make_pair((tce & ~low) | (off & low),
                              Perm((r ? kPermR : 0) | (wr ? kPermW : 0)));
    }
    return std::nullopt;
}

// Random words (one in eight) among words that look like TCEs pointing into the region.
void fill_region(SparseMemory& mem, std::mt19937_64& rng) {
    for (Addr a = kRegion; a < kRegion + kRegionBytes; a += 8) {
        const uint64_t v = rng();
        if ((v & 7) == 0) {
            mem.write64(a, v);
        } else {
            Addr target = kRegion + ((v >> 8) % (kRegionBytes >> 12)) * 4096;
            if (((v >> 40) & 15) == 0) target |= Addr(1) << 53;   // beyond SparseMemory
            const uint64_t low = ((v >> 3) & 7) == 0 ? 0x10 : 0;  // reserved in strict mode
            mem.write64(a, tce_to_mem(target | ((v >> 1) & 3) | low));
        }
    }
}

TceWindow random_window(std::mt19937_64& rng, Addr bus_offset) {
    const auto pick = [&](uint64_t n) { return rng() % n; };
    TceWindow w;
    switch (pick(10)) {
        case 0: return w;  // disabled
        case 1: {
            const Addr size = Addr(1) << (12 + pick(30));
            const Addr phys = pick(4) ? (pick(1 << 20) << 12) : pick(1ULL << 40);
            return TceWindow::bypass(bus_offset, size, phys);
        }
        default: break;
    }
    static const unsigned kShifts[] = {12, 12, 16, 16, 21, 24, 28, 30, 13};
    w.mode = TceWindow::Mode::Translate;
    w.bus_offset = bus_offset;
    w.levels = uint8_t(pick(20) ? 1 + pick(4) : pick(8));
    w.page_shift = uint8_t(kShifts[pick(9)]);
    w.level_bits = uint8_t(pick(20) ? 9 + pick(4) : pick(64));
    w.top_bits = uint8_t(pick(3) ? w.level_bits : 1 + pick(w.level_bits ? w.level_bits : 1));
    const Addr top_bytes = Addr(8) << (w.top_bits & 63);
    const Addr align = pick(10) ? std::max<Addr>(top_bytes, 4096) : 4096;
    w.table = kRegion + (pick(kRegionBytes / align + 1) * align) % kRegionBytes;
    // reach_bits() assumes 1..5 levels; other level counts get an arbitrary size.
    unsigned reach = w.levels >= 1 && w.levels <= kMaxLevels ? w.reach_bits() : 40;
    reach = std::min(std::max(reach, unsigned(w.page_shift)), 59u);
    const unsigned size_shift = w.page_shift + unsigned(pick(reach - w.page_shift + 1));
    w.size = pick(16) ? Addr(1) << size_shift : (Addr(1) << size_shift) + 4096;
    return w;
}

}  // namespace

TEST_CASE("random tables and windows give only translations or faults", "[spapr][walker][random]") {
    std::mt19937_64 rng(0x5EED'7CE0);
    SparseMemory mem;
    fill_region(mem, rng);

    PhbCaps variants[3];
    variants[1].strict_reserved = true;
    variants[2].real_addr_bits = 56;
    variants[2].page_sizes = kIoda2PageSizes;
    unsigned translated = 0, bypassed = 0, faults = 0, deep = 0;
    unsigned by_reason[kTceReservedBits + 1] = {};

    for (const PhbCaps& caps : variants) {
        PhbConfig phb(caps);
        phb.set_pe(kDev.rid, kPe);
        SpaprWalker walker(phb);
        for (int config = 0; config < 200; ++config) {
            phb.set_window(kPe, 0, random_window(rng, 0));
            phb.set_window(kPe, 1, random_window(rng, kDdwBusOffset));
            for (int i = 0; i < 20; ++i) {
                const TceWindow& w = phb.window(kPe, rng() % 2);
                Addr iova = rng();
                if (rng() % 10 < 7 && w.size) iova = w.bus_offset + rng() % w.size;
                Requester req = kDev;
                if (rng() % 20 == 0) req = Requester::bdf(9, 9, 1);
                if (rng() % 40 == 0) req = req.with_pasid(1);
                const Access acc = Access(rng() % 3);
                CAPTURE(config, i, iova, int(acc), int(w.mode), int(w.levels), int(w.page_shift));

                const WalkResult& r = walk_functional(walker, mem, req, iova, acc);
                CHECK(r.reads <= kMaxLevels);
                if (!r.ok()) {
                    ++faults;
                    REQUIRE(r.fault.reason >= kTceNoPe);
                    REQUIRE(r.fault.reason <= kTceReservedBits);
                    ++by_reason[r.fault.reason];
                    CHECK(r.fault.addr == iova);
                    CHECK(r.tr.out == 0);
                } else {
                    const Addr page_mask = (Addr(1) << r.tr.page_shift) - 1;
                    CHECK((r.tr.out & page_mask) == (iova & page_mask));
                    CHECK(permits(r.tr.perm, perm_needed(acc, false)));
                    CHECK((r.tr.perm & ~kPermRW) == 0);
                    REQUIRE(walker.window_num() >= 0);
                    const TceWindow& used = phb.window(kPe, unsigned(walker.window_num()));
                    if (used.mode == TceWindow::Mode::Bypass) {
                        ++bypassed;
                        CHECK(r.reads == 0);
                        CHECK(r.tr.out == iova - used.bus_offset + used.phys_base);
                        continue;
                    }
                    ++translated;
                    if (used.levels > 1) ++deep;
                    CHECK(r.reads == used.levels);
                    CHECK(r.tr.page_shift == used.page_shift);
                }
                // Cross-check every walk of a usable translated window with the reference.
                const int wn = walker.window_num();
                if (wn < 0) continue;
                const TceWindow& used = phb.window(kPe, unsigned(wn));
                if (used.mode != TceWindow::Mode::Translate || check_window(caps, used)) continue;
                const auto ref = reference(mem, caps, used, iova, acc);
                REQUIRE(ref.has_value() == r.ok());
                if (ref) {
                    CHECK(ref->first == r.tr.out);
                    CHECK(ref->second == r.tr.perm);
                }
            }
        }
    }
    INFO("translated " << translated << " (" << deep << " multi-level) bypassed " << bypassed
                       << " faults " << faults);
    std::string reasons;
    for (unsigned x : by_reason) reasons += std::to_string(x) + " ";
    INFO("faults by reason " << reasons);
    CHECK(translated > 400);
    CHECK(deep > 100);
    CHECK(bypassed > 200);
    for (uint16_t reason = kTceNoPe; reason <= kTceReservedBits; ++reason) {
        CAPTURE(reason);
        CHECK(by_reason[reason] > 0);
    }
}
