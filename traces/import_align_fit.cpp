// Clock fit of the guest's trace clock against QEMU's from qi_submit <-> vtd_inv_desc anchors.
#include "traces/import_align_fit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

namespace iommusim::trace::align {

namespace {
constexpr size_t kLook = 64;  // QEMU lines searched for the next guest descriptor
}

uint64_t ClockFit::host(uint64_t guest) const {
    if (!fitted) return guest;
    const long double h = (static_cast<long double>(guest) - b) / a;
    return h <= 0 ? 0 : h >= 1.8e19L ? UINT64_MAX : static_cast<uint64_t>(std::llround(h));
}

std::string ClockFit::describe(bool raw_counts) const {
    char buf[512];
    if (!fitted) {
        // Fewer than two anchors: the guest traced no intel_iommu:qi_submit, or QEMU logged
        // none of its descriptors.
        std::snprintf(buf, sizeof buf,
                      "clock: no fit (%zu qi_submit/vtd_inv_desc anchors; %zu guest "
                      "descriptors unmatched, %zu PASID): guest events placed by the ordering "
                      "method alone%s",
                      anchors, unmatched, pasid,
                      raw_counts ? "; the guest's raw clock counts have no known rate" : "");
        return buf;
    }
    char rate[64];
    if (raw_counts)
        std::snprintf(rate, sizeof rate, "%.6f MHz of guest counts", a * 1e3);
    else
        std::snprintf(rate, sizeof rate, "a = %.9f guest s per QEMU s", a);
    std::snprintf(buf, sizeof buf,
                  "clock fit: guest = a*host + b from %zu of %zu qi_submit/vtd_inv_desc "
                  "anchors: rate %s, error bound %.1f us (%zu outliers up to %.1f us; %zu "
                  "PASID descriptors QEMU does not log, %zu not found); every guest event "
                  "kept between its anchors",
                  anchors - outliers, anchors, rate, bound_ns / 1e3, outliers, worst_ns / 1e3,
                  pasid, unmatched);
    return buf;
}

std::vector<std::pair<size_t, size_t>> match(const std::vector<GuestDesc>& guest,
                                             const std::vector<HostDesc>& host) {
    std::vector<std::pair<size_t, size_t>> out;
    size_t h = 0;
    for (size_t g = 0; g < guest.size() && h < host.size(); ++g) {
        const uint64_t type = guest[g].qw0 & 0xf;
        if (type == 6 || type == 7) continue;
        for (size_t j = h; j < host.size() && j - h < kLook; ++j)
            if (host[j].lo == guest[g].qw0 && host[j].hi == guest[g].qw1) {
                out.push_back({g, j});
                h = j + 1;
                break;
            }
    }
    return out;
}

namespace {

// Plain least squares; false when the pairs give no positive rate.
bool least_squares(const std::vector<std::pair<uint64_t, uint64_t>>& v, double& a, double& b) {
    if (v.size() < 2) return false;
    // Centred sums: epoch nanoseconds squared do not fit a double's mantissa.
    const long double h0 = v.front().first, g0 = v.front().second;
    long double sh = 0, sg = 0;
    for (const auto& [h, g] : v) sh += h - h0, sg += g - g0;
    const long double n = v.size(), mh = sh / n, mg = sg / n;
    long double shh = 0, shg = 0;
    for (const auto& [h, g] : v) {
        const long double dh = h - h0 - mh, dg = g - g0 - mg;
        shh += dh * dh;
        shg += dh * dg;
    }
    if (shh <= 0 || shg <= 0) return false;
    const long double sa = shg / shh;
    a = double(sa);
    b = double(g0 + mg - sa * (h0 + mh));
    return true;
}

}  // namespace

ClockFit fit(const std::vector<std::pair<uint64_t, uint64_t>>& host_guest) {
    ClockFit f;
    f.anchors = host_guest.size();
    if (!least_squares(host_guest, f.a, f.b)) return f;
    f.fitted = true;
    std::vector<std::pair<uint64_t, uint64_t>> kept;  // refitted in the first round
    // Start from a robust line (Theil-Sen over anchors half the run apart): the guest clock
    // may run at another rate during boot, and least squares would follow it.
    const size_t n = host_guest.size(), half = n / 2;
    std::vector<long double> slopes;
    for (size_t i = 0; i + half < n; ++i) {
        const auto& [h1, g1] = host_guest[i];
        const auto& [h2, g2] = host_guest[i + half];
        if (h2 > h1) slopes.push_back((static_cast<long double>(g2) - g1) / (h2 - h1));
    }
    if (!slopes.empty()) {
        std::nth_element(slopes.begin(), slopes.begin() + slopes.size() / 2, slopes.end());
        const long double a = slopes[slopes.size() / 2];
        if (a > 0) {
            const long double h0 = host_guest.front().first;
            std::vector<long double> off;
            for (const auto& [h, g] : host_guest) off.push_back(g - a * (h - h0));
            std::nth_element(off.begin(), off.begin() + off.size() / 2, off.end());
            f.a = double(a);
            f.b = double(off[off.size() / 2] - a * h0);
        }
    }
    auto residual = [&f](const std::pair<uint64_t, uint64_t>& p) {
        return std::fabs(double(int64_t(f.host(p.second) - p.first)));  // exact: epoch ns
    };
    // The median over all anchors, each round against the current line: trimming only what
    // was kept would shrink the median and the kept set round after round.
    for (int round = 0; round < 8; ++round) {
        std::vector<double> r;
        for (const auto& p : host_guest) r.push_back(residual(p));
        std::nth_element(r.begin(), r.begin() + r.size() / 2, r.end());
        const double limit = std::max(4 * r[r.size() / 2], 1000.0);
        std::vector<std::pair<uint64_t, uint64_t>> next;
        for (const auto& p : host_guest)
            if (residual(p) <= limit) next.push_back(p);
        if (next == kept) break;
        double a = 0, b = 0;
        if (!least_squares(next, a, b)) break;
        kept = std::move(next);
        f.a = a, f.b = b;
    }
    f.outliers = host_guest.size() - kept.size();
    for (const auto& p : kept) f.bound_ns = std::max(f.bound_ns, residual(p));
    for (const auto& p : host_guest) f.worst_ns = std::max(f.worst_ns, residual(p));
    return f;
}

std::vector<std::pair<size_t, size_t>> causal_windows(
    const std::vector<uint64_t>& guest_times, const std::vector<GuestDesc>& guest,
    const std::vector<HostDesc>& host, const std::vector<std::pair<size_t, size_t>>& pairs,
    size_t timeline_size) {
    std::vector<std::pair<size_t, size_t>> w(guest_times.size(), {0, timeline_size});
    // An event at the same guest time as a descriptor is not ordered against it.
    size_t p = 0;
    for (size_t k = 0; k < guest_times.size(); ++k) {
        while (p < pairs.size() && guest[pairs[p].first].t < guest_times[k]) ++p;
        if (p > 0) w[k].first = host[pairs[p - 1].second].after;
        size_t q = p;
        while (q < pairs.size() && guest[pairs[q].first].t <= guest_times[k]) ++q;
        if (q < pairs.size()) w[k].second = host[pairs[q].second].before;
    }
    return w;
}

BlockCheck check_block(const ClockFit& f, const std::vector<GuestBlock>& guest,
                       const std::vector<HostBlock>& host) {
    BlockCheck c;
    if (!f.fitted) return c;
    std::vector<bool> used(host.size(), false);
    // Device commands by (sector, sectors, direction): heavy captures have thousands.
    std::map<std::tuple<uint64_t, uint64_t, bool>, std::vector<size_t>> by_key;
    for (size_t j = 0; j < host.size(); ++j)
        by_key[{host[j].sector, host[j].sectors, host[j].write}].push_back(j);
    for (const GuestBlock& g : guest) {
        if (g.complete < g.issue) continue;  // never completed in the trace
        ++c.requests;
        // In exact integer ns: doubles of epoch nanoseconds are 256 ns apart.
        const uint64_t lo = f.host(g.issue), hi = f.host(g.complete);
        auto twice_off_mid = [&](size_t j) {  // 2 * |command - fitted midpoint|
            const int64_t d = int64_t(host[j].ns - lo) + int64_t(host[j].ns - hi);
            return d < 0 ? -d : d;
        };
        const auto it = by_key.find({g.sector, g.sectors, g.write});
        if (it == by_key.end()) continue;
        std::optional<size_t> best;
        for (size_t j : it->second) {
            if (used[j]) continue;
            if (!best || twice_off_mid(j) < twice_off_mid(*best)) best = j;
        }
        if (!best) continue;
        used[*best] = true;
        ++c.matched;
        const uint64_t t = host[*best].ns;
        const double slack = double(std::max({int64_t(lo - t), int64_t(t - hi), int64_t(0)}));
        if (slack > f.bound_ns) ++c.outside;
        c.slack_ns = std::max(c.slack_ns, slack);
    }
    return c;
}

std::string BlockCheck::describe(const ClockFit& f) const {
    char buf[256];
    if (!outside)
        std::snprintf(buf, sizeof buf,
                      "clock check: %zu of %zu guest block requests found in QEMU's log, every "
                      "device command between the request's fitted issue and completion",
                      matched, requests);
    else
        std::snprintf(buf, sizeof buf,
                      "clock check: %zu of %zu guest block requests found in QEMU's log; %zu "
                      "device commands outside the request's fitted window by more than the "
                      "bound: error bound raised from %.1f to %.1f us",
                      matched, requests, outside, f.bound_ns / 1e3, slack_ns / 1e3);
    return buf;
}

}  // namespace iommusim::trace::align
