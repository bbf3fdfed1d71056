#include "dram.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/pcie_ext.h"
#include "payload_data.h"

namespace iommusim {

namespace {

// splitmix64's finaliser: a cheap, well-mixed hash for the per-access LLC decision.
uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

}  // namespace

bool DramParams::valid(std::string* why) const {
    std::string bad;
    DramParams copy = *this;  // visit() hands out mutable references
    copy.visit(
        [&](const char* name, const auto& field, const char*, const char*, auto lo, auto hi) {
            const double v = double(field);
            if (bad.empty() && !(v >= double(lo) && v <= double(hi)))  // also catches NaN
                bad = fmt::format("memory parameter {} = {} is outside [{}, {}]", name, v, lo, hi);
        });
    if (bad.empty()) return true;
    if (why) *why = bad;
    return false;
}

DramTiming::DramTiming(const DramParams& p, StatGroup& stats, uint64_t seed)
    : p_(p),
      seed_(seed),
      reads_(stats.counter("reads", "accesses that read memory (DMA and walk)")),
      writes_(stats.counter("writes", "accesses that wrote memory (DMA and walk)")),
      bytes_read_(stats.counter("bytes_read", "bytes requested by reads")),
      bytes_written_(stats.counter("bytes_written", "bytes requested by writes")),
      walk_reads_(stats.counter("walk_reads", "translation-structure reads from the IOMMU")),
      walk_writes_(stats.counter("walk_writes", "translation-structure writes from the IOMMU")),
      llc_hits_(stats.counter("llc_hits", "walk reads served by the last-level cache")),
      latency_h_(stats.histogram("latency", "ns", "access latency, arrival to completion")),
      walk_latency_h_(stats.histogram("walk_latency", "ns", "latency of walk reads")),
      queueing_h_(stats.histogram("queueing", "ns",
                                  "wait for busy channels before the first line's transfer")) {
    std::string why;
    if (!p.valid(&why)) throw std::invalid_argument(why);
    // 1 GB/s is 1 byte/ns, so a line takes line_bytes / gbps ns = 1000 * line_bytes / gbps ps.
    line_ = Rate::ps_per_unit(double(p.line_bytes) * 1000.0 / p.channel_gbps);
    latency_ = Tick(p.latency_ns) * kTicksPerNs;
    llc_latency_ = Tick(p.llc_latency_ns) * kTicksPerNs;
    if ((p.line_bytes & (p.line_bytes - 1)) == 0)
        line_shift_ = unsigned(__builtin_ctz(p.line_bytes));
    if ((p.channels & (p.channels - 1)) == 0) channel_mask_ = p.channels - 1;
    ch_.resize(p.channels);
    for (unsigned i = 0; i < p.channels; ++i) {
        ch_[i].server = BandwidthServer(line_);
        StatGroup& g = stats.child(fmt::format("ch{}", i));
        ch_[i].reads = &g.counter("reads", "lines read on this channel");
        ch_[i].writes = &g.counter("writes", "lines written on this channel");
        // Whole lines read and written: counted once, as lines, not again per access in bytes.
        g.counter("bytes", "bytes transferred (whole lines)")
            .include({{ch_[i].reads, p.line_bytes}, {ch_[i].writes, p.line_bytes}});
        ch_[i].busy = &g.counter("busy_ps", "time spent transferring, ps");
    }
}

bool DramTiming::llc_hit(Addr addr) {
    const uint64_t n = walk_reads_seen_++;
    if (p_.walk_llc_hit <= 0.0) return false;
    if (p_.walk_llc_hit >= 1.0) return true;
    const uint64_t h = mix(seed_ ^ mix(addr ^ mix(n)));
    return double(h >> 11) * 0x1p-53 < p_.walk_llc_hit;  // uniform in [0, 1)
}

Tick DramTiming::access_llc(Tick at) {
    ++llc_hits_;
    latency_h_.add(ns(llc_latency_));
    walk_latency_h_.add(ns(llc_latency_));
    return at + llc_latency_;
}

Tick DramTiming::access_lines(uint64_t first, uint64_t lines, bool is_write, bool is_walk,
                              Tick at) {
    const uint64_t C = p_.channels;
    const uint64_t used = std::min(lines, C);
    Tick end = at, wait = 0;
    // Lines j, j+C, j+2C, ... of the access share channel (first+j) % C and follow each other
    // back to back, so each channel is acquired once for all of its lines.
    unsigned ch = line_channel(first);
    for (uint64_t j = 0; j < used; ++j, ch = ch + 1 == C ? 0 : ch + 1) {
        Channel& c = ch_[ch];
        const uint64_t k = used == lines ? 1 : (lines - j + C - 1) / C;
        c.server.forget_before(floor_);
        const BandwidthServer::Span s = c.server.serve(at, k);
        wait = std::max(wait, s.start - at);
        end = std::max(end, s.end);
        *(is_write ? c.writes : c.reads) += k;
        *c.busy += s.end - s.start;
    }
    const Tick done = end + latency_;
    queueing_h_.add(ns(wait));
    latency_h_.add(ns(done - at));
    if (is_walk && !is_write) walk_latency_h_.add(ns(done - at));
    return done;
}

Dram::Dram(sc_core::sc_module_name name, SparseMemory& store, const DramParams& p, StatGroup& stats,
           uint64_t seed)
    : sc_module(name),
      target("target", this),
      walk("walk", this),
      store_(store),
      timing_(p, stats, seed),
      errors_(stats.counter("errors", "requests answered with a TLM error response")) {}

bool Dram::check(tlm::tlm_generic_payload& p) {
    const Addr a = p.get_address();
    const uint64_t n = p.get_data_length();
    const unsigned width = p.get_streaming_width();  // 0: left unset, as debug initiators do
    tlm::tlm_response_status st = tlm::TLM_OK_RESPONSE;
    if (p.get_byte_enable_ptr())
        st = tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE;
    else if (width && width < n)
        st = tlm::TLM_BURST_ERROR_RESPONSE;
    else if (a >= SparseMemory::kLimit || n > SparseMemory::kLimit - a)
        st = tlm::TLM_ADDRESS_ERROR_RESPONSE;
    else if (n && !p.get_data_ptr())
        st = tlm::TLM_GENERIC_ERROR_RESPONSE;
    p.set_response_status(st);
    return st == tlm::TLM_OK_RESPONSE;
}

bool Dram::move_data(tlm::tlm_generic_payload& p) {
    return move_payload_data(store_, p);
}

template <bool is_walk>
void Dram::serve(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    if (p.is_read() || p.is_write()) {
        if (check(p) && move_data(p)) {
            // Read inline: sc_time_stamp() is a library call, and this is once per access.
            const Tick now = to_ticks(sc_core::sc_get_curr_simcontext()->time_stamp());
            timing_.forget_before(now);  // every initiator's local time is at or after it
            const Tick at = now + to_ticks(delay);
            const Tick done =
                timing_.access(p.get_address(), p.get_data_length(), p.is_write(), is_walk, at);
            delay += to_sc_time(done - at);
            return;
        }
        // The request reached the controller before being refused: charge the fixed latency
        // (no channel time), so an error is never faster than a good access.
        ++errors_;
        delay += to_sc_time(Tick(timing_.params().latency_ns) * kTicksPerNs);
        return;
    }
    p.set_response_status(tlm::TLM_OK_RESPONSE);  // TLM_IGNORE_COMMAND: nothing to do
}

void Dram::b_transport_data(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    serve<false>(p, delay);
}

void Dram::b_transport_walk(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    serve<true>(p, delay);
}

unsigned int Dram::transport_dbg(tlm::tlm_generic_payload& p) {
    if (!p.is_read() && !p.is_write()) return 0;
    return check(p) && move_data(p) ? p.get_data_length() : 0;
}

}  // namespace iommusim
