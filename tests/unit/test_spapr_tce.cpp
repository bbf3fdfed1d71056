// sPAPR / IODA TCE formats: TCE bits, big-endian memory image, TVE encoding, window checks,
// the TCE PteFormat.
#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "arch/spapr/tce.h"
#include "arch/spapr/tce_format.h"
#include "core/sparse_memory.h"

using namespace iommusim;
using namespace iommusim::spapr;

TEST_CASE("TCE permission bits and real address by page size", "[spapr][tce]") {
    CHECK(kTcePciRead == 0x1);   // asm/tce.h TCE_PCI_READ
    CHECK(kTcePciWrite == 0x2);  // TCE_PCI_WRITE
    CHECK(tce_make(0x7654'3000, kPermR) == 0x7654'3001);
    CHECK(tce_make(0x7654'3000, kPermW) == 0x7654'3002);
    CHECK(tce_make(0x7654'3000, kPermRW | kPermX) == 0x7654'3003);  // no execute bit
    CHECK(tce_make(0x7654'3000, kPermNone) == 0x7654'3000);
    CHECK_FALSE(tce_valid(0x7654'3000));
    CHECK(tce_perm(0x7654'3001) == kPermR);
    CHECK(tce_perm(0x7654'3003) == kPermRW);

    const uint64_t tce = 0x0000'0123'4567'8FF3;  // low bits set below every page size
    CHECK(tce_rpn_addr(tce, 12) == 0x0000'0123'4567'8000);
    CHECK(tce_rpn_addr(tce, 16) == 0x0000'0123'4567'0000);
    CHECK(tce_rpn_addr(tce, 21) == 0x0000'0123'4560'0000);
    CHECK(tce_rpn_addr(tce, 24) == 0x0000'0123'4500'0000);
    CHECK(tce_low_reserved(tce, 12) == 0xFF0);
    CHECK(tce_low_reserved(0x1003, 12) == 0);
    CHECK(tce_make_indirect(0x0000'0040'0000'1000) == 0x0000'0040'0000'1003);
    CHECK(tce_indirect_addr(0x0000'0040'0000'1FF3) == 0x0000'0040'0000'1000);
}

TEST_CASE("TCE tables are big-endian in memory", "[spapr][tce]") {
    SparseMemory mem;
    const uint64_t tce = 0x0000'0012'3456'7003;
    mem.write64(0x1000, tce_to_mem(tce));
    uint8_t b[8];
    REQUIRE(mem.read(0x1000, b, 8));
    const uint8_t expect[8] = {0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x70, 0x03};
    CHECK(std::memcmp(b, expect, 8) == 0);
    CHECK(load_be64(b) == tce);
    CHECK(tce_from_mem(mem.read64(0x1000)) == tce);
}

TEST_CASE("DDW page size flags follow ibm,query-pe-dma-window", "[spapr][tce]") {
    CHECK(ddw_page_size_mask(page_bit(12) | page_bit(16)) == 0x03);
    CHECK(ddw_page_size_mask(kIoda2PageSizes) ==
          (kDdwPgsize4K | kDdwPgsize64K | kDdwPgsize16M | kDdwPgsize256M));
    CHECK(ddw_page_size_mask(page_bit(21) | page_bit(30)) == 0);  // PAPR cannot express them
    CHECK(ddw_page_size_mask(page_bit(34)) == kDdwPgsize16G);
}

TEST_CASE("Linux splits the TCE index evenly across levels", "[spapr][tce]") {
    CHECK(linux_level_bits(1ULL << 30, 12, 1) == 18);
    CHECK(linux_level_bits(1ULL << 30, 12, 2) == 9);
    CHECK(linux_level_bits(1ULL << 30, 12, 3) == 9);  // at least one 4 KiB table
    CHECK(linux_level_bits(1ULL << 36, 16, 2) == 10);
    CHECK(linux_level_bits(1ULL << 40, 16, 3, 16) == 13);  // 64 KiB kernel pages
    const TceWindow w = TceWindow::translated(kDdwBusOffset, 1ULL << 40, 0x8000'0000, 24, 3);
    CHECK(w.level_bits == 9);
    CHECK(w.top_bits == 9);
    CHECK(w.reach_bits() == 24 + 27);
    CHECK(w.level_shift(1) == 24);
    CHECK(w.level_shift(3) == 42);
    CHECK(w.table_bytes(3) == 4096);
}

TEST_CASE("IODA TVE fields round-trip", "[spapr][tce][tve]") {
    // 1 GiB window, 4 KiB pages, one 2 MiB table at 0x2000'0000.
    const TceWindow w = TceWindow::translated(0, 1ULL << 30, 0x2000'0000, 12, 1);
    const uint64_t tve = tve_encode(w);
    // TTA = addr >> 12 in PPC bits 0:47, NUM_LEVELS 0, TTS = log2(2 MiB) - 11 = 10, PSIZE 1.
    CHECK(tve == ((0x2000'0000ULL >> 12) << 16 | (10ULL << 8) | 1));
    const TceWindow d = tve_decode(tve, 0);
    CHECK(d.mode == TceWindow::Mode::Translate);
    CHECK(d.table == 0x2000'0000);
    CHECK(d.levels == 1);
    CHECK(d.page_shift == 12);
    CHECK(d.top_bits == 18);
    CHECK(d.size == (1ULL << 30));

    // IO_PSIZE codes as OPAL writes them: 64K -> 5, 2M -> 10, 16M -> 13, 256M -> 17, 1G -> 19.
    const std::pair<unsigned, unsigned> psize[] = {{16, 5}, {21, 10}, {24, 13}, {28, 17}, {30, 19}};
    for (auto [shift, code] : psize) {
        TceWindow t = TceWindow::translated(kDdwBusOffset, 1ULL << 40, 0x4000'0000, shift, 2);
        uint64_t v = tve_encode(t);
        CHECK(bits(v, 4, 0) == code);
        CHECK(bits(v, 15, 13) == 1);  // two levels
        TceWindow back = tve_decode(v, kDdwBusOffset);
        CHECK(back.page_shift == shift);
        CHECK(back.levels == 2);
        CHECK(back.level_bits == t.level_bits);
        CHECK(back.bus_offset == kDdwBusOffset);
    }
    CHECK(tve_decode(0, 0).mode == TceWindow::Mode::Disabled);
    CHECK(tve_encode(TceWindow::bypass(kDdwBusOffset, 1ULL << 40)) == 0);
}

TEST_CASE("window checks reject what OPAL would refuse", "[spapr][tce]") {
    PhbCaps caps;
    TceWindow ok = TceWindow::translated(0, 1ULL << 30, 0x20'0000, 12, 1);
    CHECK(check_window(caps, ok) == nullptr);
    CHECK(check_window(caps, TceWindow{}) == nullptr);  // disabled

    TceWindow w = ok;
    w.levels = 6;
    CHECK(check_window(caps, w) != nullptr);
    w = ok;
    w.levels = 0;
    CHECK(check_window(caps, w) != nullptr);
    w = ok;
    w.page_shift = 13;
    CHECK(check_window(caps, w) != nullptr);
    w = ok;
    w.table = 0x20'1000;  // 2 MiB table only 4 KiB aligned
    CHECK(check_window(caps, w) != nullptr);
    w = ok;
    w.size = 1ULL << 31;  // beyond 2^18 TCEs of 4 KiB
    CHECK(check_window(caps, w) != nullptr);
    w = ok;
    w.bus_offset = 0x800;  // not page aligned
    CHECK(check_window(caps, w) != nullptr);
    w = TceWindow::translated(0, 1ULL << 30, 0x20'0000, 12, 2);
    w.level_bits = 8;  // below a 4 KiB table
    CHECK(check_window(caps, w) != nullptr);
    w = TceWindow::translated(0, 1ULL << 30, 0x20'0000, 12, 2);
    w.top_bits = 4;  // a smaller top table is allowed when the window fits
    w.size = 1ULL << (12 + 9 + 4);
    CHECK(check_window(caps, w) == nullptr);
    w = TceWindow::translated(0, 1ULL << 30, 0x10ULL << 52, 12, 1);
    CHECK(check_window(caps, w) != nullptr);  // table beyond 52 bits

    PhbCaps ioda2;
    ioda2.page_sizes = kIoda2PageSizes;
    CHECK(check_window(ioda2, TceWindow::translated(kDdwBusOffset, 1ULL << 40, 0, 21, 2)));
    CHECK_FALSE(check_window(ioda2, TceWindow::translated(kDdwBusOffset, 1ULL << 40, 0, 24, 2)));

    CHECK(check_window(caps, TceWindow::bypass(kDdwBusOffset, 1ULL << 40)) == nullptr);
    CHECK(check_window(caps, TceWindow::bypass(kDdwBusOffset, 1ULL << 40, 0x800)) != nullptr);
    CHECK(check_window(caps, TceWindow::bypass(kDdwBusOffset, 1ULL << 53)) != nullptr);
    CHECK(check_window(caps, TceWindow::bypass(~0ULL - 0xFFF, 0x2000)) != nullptr);  // wraps
}

TEST_CASE("PHB config: RTT and two TVEs per PE", "[spapr][tce]") {
    PhbConfig phb;
    const uint16_t rid = Requester::bdf(1, 0, 0).rid;
    CHECK(phb.pe(rid) == PhbConfig::kNoPe);
    phb.set_pe(rid, 5);
    CHECK(phb.pe(rid) == 5);
    const TceWindow w = TceWindow::translated(0, 1ULL << 30, 0x20'0000, 12, 1);
    phb.set_window(5, 0, w);
    CHECK(phb.window(5, 0).table == 0x20'0000);
    CHECK_FALSE(phb.window(5, 1).enabled());
    phb.set_window(5, 2, w);     // no third window: ignored
    phb.set_window(4096, 0, w);  // no such PE: ignored
    CHECK_FALSE(phb.window(5, 2).enabled());
    CHECK_FALSE(phb.window(4096, 0).enabled());
    phb.disable_window(5, 0);
    CHECK_FALSE(phb.window(5, 0).enabled());
    phb.clear_pe(rid);
    CHECK(phb.pe(rid) == PhbConfig::kNoPe);
}

TEST_CASE("fault codes have distinct texts", "[spapr][tce]") {
    std::set<std::string> texts;
    for (uint16_t r = kTceNoPe; r <= kTceReservedBits; ++r) {
        std::string t = tce_fault_text(r);
        CHECK(t != "Unknown");
        texts.insert(t);
    }
    CHECK(texts.size() == kTceReservedBits);
    CHECK(std::string(tce_fault_text(0x77)) == "Unknown");
}

TEST_CASE("TCE PteFormat geometry and encoders", "[spapr][tce][format]") {
    const TcePteFormat f(16, 3, 10, 6);
    CHECK(std::string(f.name()) == "spapr-tce");
    CHECK(f.levels() == 3);
    CHECK(f.index_bits(3) == 6);
    CHECK(f.index_bits(2) == 10);
    CHECK(f.index_bits(1) == 10);
    CHECK(f.level_shift(1) == 16);
    CHECK(f.level_shift(2) == 26);
    CHECK(f.level_shift(3) == 36);
    CHECK(f.table_bytes(3) == 512);
    CHECK(f.leaf_allowed(1));
    CHECK_FALSE(f.leaf_allowed(2));
    CHECK_FALSE(f.leaf_allowed(3));

    // Entries are memory words: the hardware TCE byte-swapped.
    const uint64_t leaf = f.make_leaf(0x0000'0042'0001'0000, kPermR, 1);
    CHECK(tce_from_mem(leaf) == 0x0000'0042'0001'0001);
    CHECK(f.is_present(leaf, 1));
    CHECK(f.is_leaf(leaf, 1));
    CHECK(f.address(leaf, 1) == 0x0000'0042'0001'0000);
    CHECK(f.leaf_perm(leaf, 1) == kPermR);
    CHECK_FALSE(f.is_present(f.make_leaf(0x10000, kPermNone, 1), 1));

    const uint64_t table = f.make_table(0x0000'0001'2345'6000, 2);
    CHECK(tce_from_mem(table) == 0x0000'0001'2345'6003);
    CHECK(f.is_present(table, 2));
    CHECK_FALSE(f.is_leaf(table, 2));
    CHECK(f.address(table, 2) == 0x0000'0001'2345'6000);

    const TcePteFormat one(TceWindow::translated(0, 1ULL << 30, 0, 12, 1));
    CHECK(one.levels() == 1);
    CHECK(one.index_bits(1) == 18);
    CHECK(one.level_shift(1) == 12);

    CHECK_THROWS(TcePteFormat(12, 0, 9));
    CHECK_THROWS(TcePteFormat(12, 6, 9));
    CHECK_THROWS(TcePteFormat(8, 1, 9));
    CHECK_THROWS(TcePteFormat(12, 2, 9, 10));  // top larger than a level
    CHECK_THROWS(TcePteFormat(30, 5, 39));     // reaches beyond 64 bits
}
