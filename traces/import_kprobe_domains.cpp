// Domain pointers of the guest's kprobes -> VT-d domain IDs of QEMU's translations.
#include "traces/import_kprobe_domains.h"

#include <cstdio>
#include <map>

#include "traces/import_align_pieces.h"

namespace iommusim::trace::align {

namespace {

std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

// The key with the most votes.
template <class K>
std::pair<K, uint64_t> best(const std::map<K, uint64_t>& votes) {
    std::pair<K, uint64_t> b{};
    for (const auto& [k, n] : votes)
        if (n > b.second) b = {k, n};
    return b;
}

}  // namespace

KprobeDomains kprobe_domains(const std::vector<GuestOp>& ops, const GuestTrace& guest,
                             const std::vector<Point>& tl) {
    KprobeDomains out;
    out.domain.resize(ops.size());
    out.rid.resize(ops.size());
    // What QEMU saw: each device's domain IDs, and each domain ID's devices.
    std::map<uint16_t, std::map<uint32_t, uint64_t>> rid_dids;
    std::map<uint32_t, std::map<uint16_t, uint64_t>> did_rids;
    for (const Point& p : tl)
        if (p.type == Point::Type::Translation && p.domain) {
            ++rid_dids[p.rid][*p.domain];
            ++did_rids[*p.domain][p.rid];
        }
    // Votes per pointer: its attached devices' domain IDs (by their translations), else the
    // domain IDs in which its maps' pages were translated.
    struct Votes {
        std::map<uint32_t, uint64_t> attached, translated;
        uint64_t ops = 0;
    };
    std::map<uint64_t, Votes> votes;
    const detail::Domains labels = detail::static_labels(ops, tl);
    std::vector<std::vector<uint16_t>> devs(ops.size());
    std::map<std::pair<uint64_t, uint64_t>, std::vector<uint16_t>> seen;  // (ptr, ns) -> devices
    for (size_t k = 0; k < ops.size(); ++k) {
        if (!ops[k].domain_ptr) continue;
        const uint64_t ptr = *ops[k].domain_ptr;
        Votes& v = votes[ptr];
        ++v.ops;
        if (!guest.attach.empty()) {
            auto [it, fresh] = seen.try_emplace({ptr, ops[k].guest_ns});
            if (fresh) it->second = attached(guest, ptr, ops[k].guest_ns);
            devs[k] = it->second;
        }
        for (uint16_t rid : devs[k]) {
            const auto d = rid_dids.find(rid);
            if (d != rid_dids.end())
                for (const auto& [did, n] : d->second) v.attached[did] += n;
        }
        if (labels[k]) ++v.translated[*labels[k]];
    }
    out.pointers = votes.size();
    std::map<uint64_t, uint32_t> did_of;
    uint64_t untied = 0, untied_ops = 0;
    std::string first_untied;
    for (const auto& [ptr, v] : votes) {
        const auto& from = v.attached.empty() ? v.translated : v.attached;
        if (from.empty()) {
            ++untied, untied_ops += v.ops;
            if (first_untied.empty()) first_untied = hex(ptr);
            continue;
        }
        const auto [did, n] = best(from);
        did_of[ptr] = did;
        uint64_t total = 0;
        for (const auto& [d, c] : from) total += c;
        if (n != total)
            out.notes.push_back("kprobe domain " + hex(ptr) + ": " + std::to_string(total - n) +
                                " of " + std::to_string(total) + " " +
                                (v.attached.empty() ? "translated pages of its maps"
                                                    : "translations of its attached devices") +
                                " name another domain than " + std::to_string(did) +
                                ", which was taken");
    }
    if (untied)
        out.notes.push_back(std::to_string(untied) + " kprobe domains (first " + first_untied +
                            ", " + std::to_string(untied_ops) +
                            " map/unmap) match no VT-d domain: no translation through their "
                            "mappings or of their attached devices; found as without kprobes");
    for (size_t k = 0; k < ops.size(); ++k) {
        if (!ops[k].domain_ptr) continue;
        const auto d = did_of.find(*ops[k].domain_ptr);
        if (d != did_of.end()) out.domain[k] = d->second;
        if (!devs[k].empty())
            out.rid[k] = devs[k].front();
        else if (d != did_of.end() && did_rids.count(d->second))
            out.rid[k] = best(did_rids[d->second]).first;
    }
    return out;
}

}  // namespace iommusim::trace::align
