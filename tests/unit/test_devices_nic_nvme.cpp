// The plain-C++ parts of the NIC and NVMe devices: size distributions, the Ethernet line
// pacer, PRP construction (NVMe Base 2.0, 4.1.1), parameter checks, layouts and binding
// through the configuration.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "devices/ethernet.h"
#include "devices/nic_params.h"
#include "devices/nvme_params.h"
#include "devices/nvme_prp.h"
#include "devices/size_dist.h"

using namespace iommusim;

namespace {

template <typename P>
std::vector<std::string> names(P p) {
    std::vector<std::string> out;
    p.visit([&](const char* n, auto&, const char*, const char*, auto, auto) { out.push_back(n); });
    return out;
}

NvmePrps prps(Addr data, uint64_t len, uint32_t page = 4096, Addr list = 0x9000'0000) {
    NvmePrps p;
    nvme_build_prps(data, len, page, list, p);
    return p;
}

}  // namespace

TEST_CASE("Size distributions: parsing", "[devices]") {
    auto one = SizeDist::parse("1500", 64, 9216);
    REQUIRE(one);
    CHECK(one->entries() == std::vector<std::pair<uint64_t, uint64_t>>{{1500, 1}});
    auto imix = SizeDist::parse("imix", 64, 9216);
    REQUIRE(imix);
    CHECK(imix->entries() ==
          std::vector<std::pair<uint64_t, uint64_t>>{{64, 7}, {576, 4}, {1500, 1}});
    CHECK(imix->min() == 64);
    CHECK(imix->max() == 1500);
    CHECK(imix->mean() == Approx((64.0 * 7 + 576 * 4 + 1500) / 12));
    auto io = SizeDist::parse(" 4K : 3 , 128Ki:1,1M ", 4096, 1 << 20);
    REQUIRE(io);
    CHECK(io->entries() ==
          std::vector<std::pair<uint64_t, uint64_t>>{{4096, 3}, {131072, 1}, {1 << 20, 1}});

    std::string why;
    CHECK_FALSE(SizeDist::parse("", 64, 9216, &why));
    CHECK(why.find("no sizes") != std::string::npos);
    CHECK_FALSE(SizeDist::parse("63", 64, 9216, &why));
    CHECK_FALSE(SizeDist::parse("64:0", 64, 9216, &why));
    CHECK_FALSE(SizeDist::parse("64:x", 64, 9216, &why));
    CHECK_FALSE(SizeDist::parse("64,,", 64, 9216, &why));
    CHECK_FALSE(SizeDist::parse("2M", 4096, 1 << 20, &why));
    CHECK(why.find("sizes '2M'") == 0);
}

TEST_CASE("Size distributions: draws follow the weights and the seed", "[devices]") {
    const SizeDist d = *SizeDist::parse("imix", 64, 9216);
    std::map<uint64_t, uint64_t> seen;
    uint64_t s = 1;
    const uint64_t n = 120000;
    for (uint64_t i = 0; i < n; ++i) ++seen[d.draw(s)];
    CHECK(seen.size() == 3);
    CHECK(double(seen[64]) / n == Approx(7.0 / 12).epsilon(0.02));
    CHECK(double(seen[576]) / n == Approx(4.0 / 12).epsilon(0.02));
    CHECK(double(seen[1500]) / n == Approx(1.0 / 12).epsilon(0.03));

    uint64_t a = 5, b = 5, c = 6;
    std::vector<uint64_t> x, y, z;
    for (int i = 0; i < 64; ++i)
        x.push_back(d.draw(a)), y.push_back(d.draw(b)), z.push_back(d.draw(c));
    CHECK(x == y);
    CHECK(x != z);

    // One size consumes no draw, so it leaves other users of the stream unchanged.
    uint64_t st = 9;
    CHECK(SizeDist::parse("4K", 4096, 1 << 20)->draw(st) == 4096);
    CHECK(st == 9);
    for (uint64_t i = 0; i < 1000; ++i) CHECK(draw_below(st, 7) < 7);
}

TEST_CASE("Ethernet line: back to back at the line rate, restarts when idle", "[devices]") {
    CHECK(eth_wire_bits(64) == 672);
    BandwidthServer l(eth_line_rate(100));
    CHECK(l.serve(0, 672).end == 6720);
    CHECK(l.serve(0, 672).end == 13440);      // queued behind the first
    CHECK(l.serve(10000, 672).end == 20160);  // still busy at 10 ns
    CHECK(l.serve(50000, 672).end == 56720);  // idle line: starts when offered
    // A fractional per-frame time (680 bits at 3 Gb/s = 226666.67 ps) never drifts.
    BandwidthServer f(eth_line_rate(3));
    Tick end = 0;
    for (int i = 0; i < 3000; ++i) end = f.serve(0, 680).end;
    CHECK(end == 680'000'000);
}

TEST_CASE("NVMe PRPs: PRP1, PRP2, PRP lists and their chaining", "[devices]") {
    CHECK(nvme_data_pages(0x1000, 4096, 4096) == 1);
    CHECK(nvme_data_pages(0x1200, 4096, 4096) == 2);
    CHECK(nvme_data_pages(0x1200, 8192, 4096) == 3);
    CHECK(nvme_data_pages(0x1ffc, 4, 4096) == 1);
    CHECK(nvme_data_pages(0x1ffc, 8, 4096) == 2);
    CHECK(nvme_prp_list_pages(2, 4096) == 0);
    CHECK(nvme_prp_list_pages(3, 4096) == 1);
    CHECK(nvme_prp_list_pages(513, 4096) == 1);   // 512 entries fill one list page
    CHECK(nvme_prp_list_pages(514, 4096) == 2);   // 511 + chain, then 2
    CHECK(nvme_prp_list_pages(1024, 4096) == 2);  // 511 + chain, then 512
    CHECK(nvme_prp_list_pages(1025, 4096) == 3);

    NvmePrps p = prps(0x1000, 4096);
    CHECK(p.prp1 == 0x1000);
    CHECK(p.prp2 == 0);
    CHECK(p.pages == 1);
    CHECK(p.list_reads.empty());

    p = prps(0x1000, 8192);  // two pages: PRP2 is the second page
    CHECK(p.prp2 == 0x2000);
    CHECK(p.list_reads.empty());
    p = prps(0x1200, 4096);  // an offset makes 4 KiB span two pages
    CHECK(p.prp1 == 0x1200);
    CHECK(p.prp2 == 0x2000);

    p = prps(0x1200, 8192);  // three pages: PRP2 points to a list of pages 2 and 3
    CHECK(p.prp1 == 0x1200);
    CHECK(p.prp2 == 0x9000'0000);
    CHECK(p.list == std::vector<uint64_t>{0x2000, 0x3000});
    REQUIRE(p.list_reads.size() == 1);
    CHECK(p.list_reads[0].addr == 0x9000'0000);
    CHECK(p.list_reads[0].bytes == 16);

    p = prps(0, 1 << 20);  // 1 MiB: 256 pages, 255 list entries in one list page
    CHECK(p.pages == 256);
    CHECK(p.prp2 == 0x9000'0000);
    REQUIRE(p.list_reads.size() == 1);
    CHECK(p.list_reads[0].bytes == 255 * 8);
    CHECK(p.list.back() == 255 * 4096);

    p = prps(0x10'0000, 600 * 4096);  // 599 entries: 511 + a chain pointer, then 88
    REQUIRE(p.list_reads.size() == 2);
    CHECK(p.list_reads[0].addr == 0x9000'0000);
    CHECK(p.list_reads[0].bytes == 4096);
    CHECK(p.list_reads[1].addr == 0x9000'1000);
    CHECK(p.list_reads[1].bytes == 88 * 8);
    REQUIRE(p.list.size() == 600);
    CHECK(p.list[510] == 0x10'0000 + 511 * 4096);
    CHECK(p.list[511] == 0x9000'1000);  // the chain pointer
    CHECK(p.list[512] == 0x10'0000 + 512 * 4096);
    CHECK(p.list.back() == 0x10'0000 + 599 * 4096);

    p = prps(0x2'0000, 1 << 20, 65536, 0x5'0000);  // 64 KiB pages: 16 pages
    CHECK(p.pages == 16);
    CHECK(p.list.size() == 15);
    CHECK(p.list[0] == 0x3'0000);
}

TEST_CASE("NIC parameters: checks, layout, names", "[devices]") {
    NicParams p;
    std::string why;
    CHECK(p.valid(&why));
    CHECK(p.ring_bytes() == 1024 * 16);
    CHECK(p.buffer_region_bytes() == 2 * 1024 * 2048);
    p.buffers = NicBufferPolicy::Pool;
    p.pool_buffers = 4096;
    CHECK(p.buffer_region_bytes() == 2 * 4096 * 2048);
    p.pool_buffers = 512;
    CHECK_FALSE(p.valid(&why));
    CHECK(why.find("pool_buffers") != std::string::npos);

    NicParams q;
    q.sizes = "9000";
    CHECK_FALSE(q.valid(&why));
    CHECK(why.find("buffer_size") != std::string::npos);
    q.buffer_size = 9216;
    CHECK(q.valid());
    q.sizes = "40";
    CHECK_FALSE(q.valid(&why));
    CHECK(why.find("sizes") != std::string::npos);
    NicParams r;
    r.count = 0;
    CHECK_FALSE(r.valid());
    r.duration_ns = 1000;
    CHECK(r.valid());
    r.rx_fifo = 1024;
    CHECK_FALSE(r.valid(&why));
    CHECK(why.find("rx_fifo") != std::string::npos);

    // Queues: each has its own rings and, per packet, its own buffers.
    NicParams m;
    m.queues = 8;
    m.ring_size = 256;
    CHECK(m.valid());
    CHECK(m.ring_bytes() == 8 * 256 * 16);
    m.desc_size = 64;  // mlx5's CQEs
    CHECK(m.valid());
    CHECK(m.ring_bytes() == 8 * 256 * 64);
    m.desc_size = 24;
    CHECK_FALSE(m.valid(&why));
    CHECK(why == "nic: desc_size 24 is not a power of 2 in 8..256");
    m.desc_size = 16;
    CHECK(m.buffer_region_bytes() == 2 * 8 * 256 * 2048);
    m.buffers = NicBufferPolicy::Pool;
    m.pool_buffers = 1024;
    CHECK_FALSE(m.valid(&why));
    CHECK(why.find("pool_buffers below ring_size x queues") != std::string::npos);
    m.pool_buffers = 2048;
    CHECK(m.valid());
    m.queues = 0;
    CHECK_FALSE(m.valid(&why));
    CHECK(why.find("queues") != std::string::npos);
    m.queues = 2;
    m.flows = 0;
    CHECK_FALSE(m.valid(&why));
    CHECK(why.find("flows") != std::string::npos);

    const auto n = names(NicParams{});
    CHECK(n.front() == "line_rate");
    CHECK(std::find(n.begin(), n.end(), "queues") != n.end());
    CHECK(std::find(n.begin(), n.end(), "requester.function") != n.end());
}

TEST_CASE("NVMe parameters: checks, layout, names", "[devices]") {
    NvmeParams p;
    std::string why;
    CHECK(p.valid(&why));
    CHECK(p.sq_bytes() == 1024 * 64);
    CHECK(p.cq_bytes() == 1024 * 16);
    CHECK(p.list_pages_per_command() == 0);
    CHECK(p.slot_bytes() == 4096);
    p.sizes = "4K:1,1M:1";
    p.offset = 512;
    CHECK(p.valid());
    CHECK(p.slot_bytes() == (1 << 20) + 4096);
    CHECK(p.list_pages_per_command() == 1);
    CHECK(p.prp_list_bytes() == 32 * 4096);
    CHECK(p.buffer_region_bytes() == 32 * ((1 << 20) + 4096));

    NvmeParams q;
    q.sizes = "6000";
    CHECK_FALSE(q.valid(&why));
    CHECK(why.find("512") != std::string::npos);
    q.sizes = "2K";
    CHECK_FALSE(q.valid());
    q = NvmeParams{};
    q.queue_depth = q.queue_entries;
    CHECK_FALSE(q.valid(&why));
    CHECK(why.find("queue_depth") != std::string::npos);
    q = NvmeParams{};
    q.offset = 6;
    CHECK_FALSE(q.valid(&why));
    q.offset = 8;
    CHECK(q.valid());
    q.page_size = 8192 + 4096;
    CHECK_FALSE(q.valid(&why));
    CHECK(why.find("page_size") != std::string::npos);
    CHECK(names(NvmeParams{}).front() == "sizes");
}

TEST_CASE("NIC and NVMe parameters bind through the configuration", "[devices]") {
    NicParams n;
    NvmeParams d;
    ParamRegistry reg;
    reg.bind("system.nic0", n);
    reg.bind("system.nvme0", d);
    Config c;
    c.load_string(
        "[system.nic0]\nline_rate = 200\nsizes = imix\ndirection = both\nbuffers = pool\n"
        "sw_ns = 2.5\nring_size = 4K\nqueues = 4\nflows = 16\nsteering = flow\n"
        "[system.nvme0]\nsizes = 4K:7,128K:1\nbuffers = pool\n"
        "queue_depth = 128\nread_percent = 70\n",
        "test.ini");
    reg.apply(c);
    CHECK(n.line_rate == 200);
    CHECK(n.sizes == "imix");
    CHECK(n.direction == NicDirection::Both);
    CHECK(n.buffers == NicBufferPolicy::Pool);
    CHECK(n.sw_ns == 2.5);
    CHECK(n.ring_size == 4000);  // a count, not bytes: K is 1000
    CHECK(n.queues == 4);
    CHECK(n.flows == 16);
    CHECK(n.steering == NicSteering::Flow);
    CHECK(n.valid());
    CHECK(d.sizes == "4K:7,128K:1");
    CHECK(d.buffers == NvmeBufferPolicy::Pool);
    CHECK(d.queue_depth == 128);
    CHECK(d.read_percent == 70);
    CHECK(d.valid());
    Config bad;
    bad.load_string("[system.nic0]\ndirection = sideways\n[system.nvme0]\nbuffers = per_packet\n",
                    "bad.ini");
    CHECK_THROWS_AS(reg.apply(bad), ConfigError);
}
