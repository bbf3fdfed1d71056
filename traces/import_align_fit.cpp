// Clock fit of the guest's trace clock against QEMU's from qi_submit <-> vtd_inv_desc anchors.
#include "traces/import_align_fit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

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
    std::vector<std::pair<uint64_t, uint64_t>> kept = host_guest;
    if (!least_squares(kept, f.a, f.b)) return f;
    f.fitted = true;
    auto residual = [&f](const std::pair<uint64_t, uint64_t>& p) {
        return std::fabs(double(static_cast<long double>(f.host(p.second)) - p.first));
    };
    for (int round = 0; round < 8; ++round) {
        std::vector<double> r;
        for (const auto& p : kept) r.push_back(residual(p));
        std::nth_element(r.begin(), r.begin() + r.size() / 2, r.end());
        const double limit = std::max(4 * r[r.size() / 2], 1000.0);
        std::vector<std::pair<uint64_t, uint64_t>> next;
        for (const auto& p : kept)
            if (residual(p) <= limit) next.push_back(p);
        if (next.size() == kept.size()) break;
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

}  // namespace iommusim::trace::align
