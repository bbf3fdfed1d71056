// DRAM timing over the sparse store: a fixed access latency plus channels that are bandwidth
// servers, with cache lines interleaved across the channels. Translation-structure reads from
// the IOMMU may instead hit the last-level cache (VT-d walks are coherent), decided per access
// by a seeded hash so runs are reproducible. DramTiming is the plain-C++ core (unit-tested
// without sc_start); Dram is its SystemC shell with a `target` socket for DMA data and a
// `walk` socket for the IOMMU's translation-structure accesses.
#pragma once
#include <cassert>
#include <cstdint>
#include <string>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/direct_target_socket.h"
#include "core/resource.h"
#include "core/sparse_memory.h"
#include "core/stats.h"
#include "core/time.h"

namespace iommusim {

struct DramParams {
    uint32_t latency_ns = 80;    // fixed part: controller, activate, CAS, return path
    uint32_t channels = 4;       // lines are interleaved across them
    double channel_gbps = 19.2;  // per channel (DDR4-2400 x64: 19.2 GB/s)
    uint32_t line_bytes = 64;    // transfer and interleaving granule
    double walk_llc_hit = 0.0;   // fraction of walk reads served by the LLC
    uint32_t llc_latency_ns = 20;

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("latency_ns", latency_ns, "ns", "fixed DRAM access latency (added after the transfer)", 0,
          100000);
        v("channels", channels, "channels", "memory channels; lines interleave across them", 1,
          256);
        v("channel_gbps", channel_gbps, "GB/s", "bandwidth of one channel (1 GB/s = 1 byte/ns)",
          0.1, 10000.0);
        v("line_bytes", line_bytes, "bytes", "cache-line size: transfer and interleave granule", 16,
          4096);
        v("walk_llc_hit", walk_llc_hit, "fraction",
          "fraction of IOMMU walk reads that hit the last-level cache", 0.0, 1.0);
        v("llc_latency_ns", llc_latency_ns, "ns", "latency of a walk read that hits the LLC", 0,
          100000);
    }
    // Every field within its declared range; otherwise false with the offending name in *why.
    bool valid(std::string* why = nullptr) const;
};

// The timing core. Each channel is a BandwidthServer (core/resource.h) in lines: an access's
// lines on one channel are served back to back in the first gap from its arrival on, so
// callers that arrive out of time order under a quantum find the gaps they would have found.
class DramTiming {
public:
    // Throws std::invalid_argument (naming the parameter) when `p` is out of range.
    DramTiming(const DramParams& p, StatGroup& stats, uint64_t seed = 1);

    // Time the access [addr, addr+bytes) arriving at `at` and return its completion: the
    // last line's transfer end plus the fixed latency (or `at` + LLC latency for a walk read
    // that hits the LLC). bytes == 0 costs one line (a zero-length read still goes to memory).
    // Inline (below): Dram's sockets each get a copy that knows whether it serves walks.
    Tick access(Addr addr, uint64_t bytes, bool is_write, bool is_walk, Tick at);

    // No access will arrive before t (the SystemC time): the channels may forget before it.
    // Kept here and handed to a channel when it serves (all a channel does with it).
    void forget_before(Tick t) {
        if (t > floor_) floor_ = t;
    }
    unsigned channel_of(Addr addr) const { return line_channel(line_of(addr)); }
    // Transfer time of one line on an idle channel, in ps (rounded up; a busy channel keeps
    // the exact rate).
    Tick line_ticks() const { return line_.time(1); }
    const DramParams& params() const { return p_; }

private:
    struct Channel {
        BandwidthServer server{Rate()};
        Counter *reads, *writes, *busy;  // its bytes are lines x line_bytes, read from these
    };
    bool llc_hit(Addr addr);
    // A walk read that hits the LLC (off the data path).
    [[gnu::noinline]] Tick access_llc(Tick at);
    static Tick ns(Tick t) { return t / kTicksPerNs; }
    // The channel of a line: by mask when the channel count is a power of two (no 64-bit
    // division), else modulo.
    unsigned line_channel(uint64_t line) const {
        return unsigned(channel_mask_ != kNoMask ? line & channel_mask_ : line % p_.channels);
    }
    // An access over several lines: rare (large DMA), out of line so that the single-line
    // path keeps a small frame.
    [[gnu::noinline]] Tick access_lines(uint64_t first, uint64_t lines, bool is_write, bool is_walk,
                                        Tick at);
    // addr / line_bytes, a shift when line_bytes is a power of two: 64-bit divisions are slow
    // and every access needs a few.
    uint64_t line_of(Addr addr) const {
        return line_shift_ ? addr >> line_shift_ : addr / p_.line_bytes;
    }

    DramParams p_;
    uint64_t seed_;
    Rate line_;  // one line's transfer time on a channel
    Tick latency_, llc_latency_;
    unsigned line_shift_ = 0;  // log2(line_bytes) when a power of two, else 0
    // channels - 1 when a power of two (a line's channel by mask, not 64-bit division).
    static constexpr uint64_t kNoMask = ~uint64_t(0);
    uint64_t channel_mask_ = kNoMask;
    Tick floor_ = 0;  // forget_before()
    uint64_t walk_reads_seen_ = 0;
    std::vector<Channel> ch_;
    Counter &reads_, &writes_, &bytes_read_, &bytes_written_, &walk_reads_, &walk_writes_,
        &llc_hits_;
    Histogram &latency_h_, &walk_latency_h_, &queueing_h_;
};

[[gnu::always_inline]] inline Tick DramTiming::access(Addr addr, uint64_t bytes, bool is_write,
                                                      bool is_walk, Tick at) {
    // TLM lengths are 32-bit: with the parameter ranges a channel's service fits a Tick.
    assert(bytes <= (uint64_t(1) << 32));
    ++(is_write ? writes_ : reads_);
    (is_write ? bytes_written_ : bytes_read_) += bytes;
    if (is_walk) {
        ++(is_write ? walk_writes_ : walk_reads_);
        if (!is_write && llc_hit(addr)) return access_llc(at);
    }

    const uint64_t first = line_of(addr);
    const uint64_t lines = (bytes ? line_of(addr + bytes - 1) : first) - first + 1;
    if (lines != 1) return access_lines(first, lines, is_write, is_walk, at);
    // Most accesses (small DMA, every walk read): access_lines()'s loop, once.
    Channel& c = ch_[line_channel(first)];
    c.server.forget_before(floor_);
    const BandwidthServer::Span s = c.server.serve(at, 1);
    ++*(is_write ? c.writes : c.reads);
    *c.busy += s.end - s.start;
    const Tick done = s.end + latency_;  // s.end >= s.start >= at
    queueing_h_.add(ns(s.start - at));
    latency_h_.add(ns(done - at));
    if (is_walk && !is_write) walk_latency_h_.add(ns(done - at));
    return done;
}

// The SystemC shell: both sockets reach the one store and the one timing core. b_transport
// performs the data access and adds the memory's delay; transport_dbg is untimed. Bad
// requests (beyond 2^52, byte enables, streaming width below the length, no data pointer)
// get TLM error responses and leave the store and the channels untouched.
class Dram : public sc_core::sc_module {
    // Declared before the sockets, whose types name them.
    void b_transport_data(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    void b_transport_walk(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    unsigned int transport_dbg(tlm::tlm_generic_payload& p);

public:
    // DMA data (IOMMU downstream, bypass).
    DirectTargetSocket<Dram, &Dram::b_transport_data, &Dram::transport_dbg> target;
    // IOMMU translation-structure accesses; may stay unbound (a memory serving only DMA).
    DirectTargetSocket<Dram, &Dram::b_transport_walk, &Dram::transport_dbg, 1,
                       sc_core::SC_ZERO_OR_MORE_BOUND>
        walk;

    Dram(sc_core::sc_module_name name, SparseMemory& store, const DramParams& p, StatGroup& stats,
         uint64_t seed = 1);

    DramTiming& timing() { return timing_; }
    SparseMemory& store() { return store_; }

private:
    // One copy per socket, so that the data path carries no walk tests.
    template <bool is_walk>
    void serve(tlm::tlm_generic_payload& p, sc_core::sc_time& delay);
    bool check(tlm::tlm_generic_payload& p);
    bool move_data(tlm::tlm_generic_payload& p);

    SparseMemory& store_;
    DramTiming timing_;
    Counter& errors_;
};

}  // namespace iommusim
