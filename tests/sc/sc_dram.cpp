// SystemC bench: DMA streams through the Dram module. A device with many tags saturates the
// channels (4 x 16 GB/s gives 64 GB/s, one channel 16 GB/s), data written through `target`
// reads back intact through `target` and `walk`, a lone access costs exactly one line plus
// the latency, walk reads hit the LLC at about the configured fraction, and malformed
// requests get TLM error responses while the simulation carries on.
#include <algorithm>
#include <systemc>
#include <vector>

#include "memory/dram.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;

namespace {
const Requester kDev = Requester::bdf(0, 4, 0);
constexpr Addr kBase = 0x2'0000'0000;

DramParams params(uint32_t channels, double llc_hit) {
    DramParams p;
    p.latency_ns = 80;
    p.channels = channels;
    p.channel_gbps = 16.0;  // a 64-byte line is 4 ns
    p.line_bytes = 64;
    p.walk_llc_hit = llc_hit;
    p.llc_latency_ns = 20;
    return p;
}

uint8_t pattern(Addr a) {
    return uint8_t((a >> 6) * 31 + (a & 63) * 7 + 1);
}

struct Bench : sc_module {
    SparseMemory store;
    StatGroup stats{"system"};
    Dram mem4, mem1;
    test::Initiator dev4{"dev4"}, dev1{"dev1"}, iommu{"iommu"};
    test::Checker check{test::Checker::Where::Thread};
    uint64_t stream_errors = 0;  // failed DMAs and wrong bytes read back

    SC_HAS_PROCESS(Bench);
    explicit Bench(sc_module_name n)
        : sc_module(n),
          mem4("mem4", store, params(4, 0.5), stats.child("mem4"), 42),
          mem1("mem1", store, params(1, 0.0), stats.child("mem1")) {
        dev4.socket.bind(mem4.target);
        iommu.socket.bind(mem4.walk);
        dev1.socket.bind(mem1.target);
        SC_THREAD(run);
    }

    // Stream `total` bytes in DMAs of `size` from `tags` outstanding tags: each DMA is issued
    // when its tag frees (the completion time b_transport returned). Returns bytes per ns.
    double stream(test::Initiator& dev, Addr base, uint64_t total, unsigned size, unsigned tags,
                  bool write) {
        const Tick start = to_ticks(sc_time_stamp());
        std::vector<Tick> tag_free(tags, start);
        std::vector<uint8_t> buf(size);
        Tick end = start;
        for (uint64_t off = 0; off < total; off += size) {
            auto tag = std::min_element(tag_free.begin(), tag_free.end());
            const Tick now = to_ticks(sc_time_stamp());
            if (write)
                for (unsigned i = 0; i < size; ++i) buf[i] = pattern(base + off + i);
            tlm::tlm_generic_payload p;
            p.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
            p.set_address(base + off);
            p.set_data_ptr(buf.data());
            p.set_data_length(size);
            p.set_streaming_width(size);
            sc_time delay = to_sc_time(*tag - now);
            dev.socket->b_transport(p, delay);
            stream_errors += !p.is_response_ok();
            if (!write)
                for (unsigned i = 0; i < size; ++i)
                    stream_errors += buf[i] != pattern(base + off + i);
            *tag = now + to_ticks(delay);
            end = std::max(end, *tag);
            // Keep local time within a 1 us quantum of simulation time.
            const Tick next = *std::min_element(tag_free.begin(), tag_free.end());
            if (next > now + 1000 * kTicksPerNs) wait(to_sc_time(next - now));
        }
        wait(to_sc_time(end - to_ticks(sc_time_stamp())));
        return double(total) * double(kTicksPerNs) / double(end - start);
    }

    tlm::tlm_response_status raw(tlm_utils::simple_initiator_socket<test::Initiator>& s, Addr a,
                                 uint8_t* data, unsigned len, unsigned width, uint8_t* be,
                                 sc_time* delay) {
        tlm::tlm_generic_payload p;
        p.set_command(tlm::TLM_READ_COMMAND);
        p.set_address(a);
        p.set_data_ptr(data);
        p.set_data_length(len);
        p.set_streaming_width(width);
        p.set_byte_enable_ptr(be);
        p.set_byte_enable_length(be ? len : 0);
        *delay = SC_ZERO_TIME;
        s->b_transport(p, *delay);
        return p.get_response_status();
    }

    void run() {
        tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_time(1, SC_US));
        constexpr uint64_t kMiB = 1 << 20;

        // Write 4 MiB with 64 tags of 256 B: the four channels saturate.
        const double w4 = stream(dev4, kBase, 4 * kMiB, 256, 64, true);
        fmt::print("4 channels x 16 GB/s: writes {:.2f} GB/s\n", w4);
        check(std::abs(w4 - 64.0) < 0.64, fmt::format("4-channel write bandwidth {} ~ 64", w4));
        const double r4 = stream(dev4, kBase, 4 * kMiB, 256, 64, false);
        fmt::print("4 channels x 16 GB/s: reads  {:.2f} GB/s\n", r4);
        check(std::abs(r4 - 64.0) < 0.64, fmt::format("4-channel read bandwidth {} ~ 64", r4));
        // The one-channel memory shares the store: it reads the same bytes at a quarter.
        const double r1 = stream(dev1, kBase, kMiB, 256, 64, false);
        fmt::print("1 channel  x 16 GB/s: reads  {:.2f} GB/s\n", r1);
        check(std::abs(r1 - 16.0) < 0.16, fmt::format("1-channel read bandwidth {} ~ 16", r1));
        check(stream_errors == 0, fmt::format("streams: {} errors or wrong bytes", stream_errors));
        StatGroup& m4 = stats.child("mem4");
        check(m4.counter("bytes_written", "").value() == 4 * kMiB, "bytes written counted");
        for (int c = 0; c < 4; ++c)
            check(m4.child(fmt::format("ch{}", c)).counter("bytes", "").value() == 2 * kMiB,
                  "each channel moved a quarter of the traffic");
        check(m4.histogram("queueing", "ns", "").max() > 0, "saturation shows as queueing");

        // A lone access on an idle memory: one line plus the latency, exactly.
        wait(1, SC_US);
        uint8_t buf[64];
        sc_time lat;
        check(dev4.dma(kDev, kBase + 0x40, buf, 64, false, &lat) == tlm::TLM_OK_RESPONSE &&
                  lat == sc_time(84, SC_NS),
              fmt::format("idle 64-byte read takes 84 ns ({})", lat.to_string()));
        int wrong = 0;
        for (unsigned i = 0; i < 64; ++i) wrong += buf[i] != pattern(kBase + 0x40 + i);
        check(wrong == 0, "single read returns the streamed data");

        // Walk reads see the DMA-written bytes; about half hit the LLC (20 ns), the rest
        // go to DRAM (84 ns on an idle channel).
        int hits = 0, bad = 0;
        for (int i = 0; i < 2000; ++i) {
            wait(200, SC_NS);
            uint64_t e = 0;
            const Addr a = kBase + Addr(i % 256) * 8;
            iommu.dma(kDev, a, reinterpret_cast<uint8_t*>(&e), 8, false, &lat);
            hits += lat == sc_time(20, SC_NS);
            bad += lat != sc_time(20, SC_NS) && lat != sc_time(84, SC_NS);
            for (unsigned b = 0; b < 8; ++b) bad += uint8_t(e >> (8 * b)) != pattern(a + b);
        }
        check(bad == 0, "walk reads return memory contents with LLC or DRAM latency");
        check(hits > 850 && hits < 1150, fmt::format("LLC hits {} of 2000 at 0.5", hits));
        check(m4.counter("llc_hits", "").value() == uint64_t(hits), "llc_hits counted");
        check(m4.counter("walk_reads", "").value() == 2000, "walk reads counted");
        uint64_t entry = 0x1234'5678'9abc'def1ULL;
        check(iommu.dma(kDev, 0x1000, reinterpret_cast<uint8_t*>(&entry), 8, true, &lat) ==
                      tlm::TLM_OK_RESPONSE &&
                  lat == sc_time(84, SC_NS),
              "walk writes go to DRAM");
        uint64_t seen = 0;
        check(dev4.dbg(kDev, 0x1000, reinterpret_cast<uint8_t*>(&seen), 8) == 8 && seen == entry,
              "a walk write is visible to DMA (one store)");

        // Malformed requests: error responses, no abort, no state change.
        sc_time d;
        uint8_t be[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        const uint64_t errors = m4.counter("errors", "").value();
        check(raw(dev4.socket, SparseMemory::kLimit - 4, buf, 8, 8, nullptr, &d) ==
                  tlm::TLM_ADDRESS_ERROR_RESPONSE,
              "access beyond 2^52 is an address error");
        check(raw(dev4.socket, kBase, buf, 8, 8, be, &d) == tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE,
              "byte enables are refused");
        check(raw(iommu.socket, kBase, buf, 8, 4, nullptr, &d) == tlm::TLM_BURST_ERROR_RESPONSE,
              "streaming width below the length is refused");
        check(
            raw(dev4.socket, kBase, nullptr, 8, 8, nullptr, &d) == tlm::TLM_GENERIC_ERROR_RESPONSE,
            "a missing data pointer is refused");
        check(m4.counter("errors", "").value() == errors + 4, "errors counted");
        check(d == sc_time(80, SC_NS), "an error costs the fixed latency");
        check(dev4.dbg(kDev, SparseMemory::kLimit - 4, buf, 8) == 0,
              "debug access beyond 2^52 reads nothing");
        check(dev4.dma(kDev, kBase, buf, 64, false, &lat) == tlm::TLM_OK_RESPONSE,
              "memory keeps working after errors");
        check(store.pages_touched() == 4 * kMiB / SparseMemory::kPageSize + 1,
              "only the streamed pages and the walk write's page were allocated");
        check.reached_end();
    }
};
}  // namespace

int sc_main(int, char*[]) {
    Bench b("bench");
    sc_start();
    return b.check.finish();
}
