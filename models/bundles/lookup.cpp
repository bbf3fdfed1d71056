#include "lookup.h"

#include <fmt/format.h>

#include <cstdio>
#include <stdexcept>

#include "core/config.h"
#include "core/quote.h"

namespace iommusim {

const std::string& LookupRequest::opt(const std::string& name) const {
    static const std::string kNone;
    auto it = opts.find(name);
    return it == opts.end() || it->second.empty() ? kNone : it->second.back();
}

namespace lookup {

uint64_t number(const std::string& t, const std::string& what) {
    // A sign, a fraction or a value past 2^64 is an error rather than wrapped or cut.
    uint64_t v = 0;
    const std::string e = config_detail::parse_unsigned(t, true, 0, ~uint64_t(0), &v);
    if (!e.empty()) throw std::invalid_argument(fmt::format("{}: {}", what, e));
    return v;
}

uint16_t bdf(const std::string& t) {
    unsigned b, d, f;
    char tail;
    if (std::sscanf(t.c_str(), "%x:%x.%x%c", &b, &d, &f, &tail) != 3 || b > 255 || d > 31 || f > 7)
        throw std::invalid_argument(fmt::format(
            "--rid: {} is not a PCI address (expected BB:DD.F, e.g. 00:02.0)", quote(t)));
    return Requester::bdf(b, d, f).rid;
}

MapSpec map(const std::string& t, const char* opt) {
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t i = 0; i <= t.size(); ++i)
        if (i == t.size() || t[i] == ':') f.push_back(t.substr(start, i - start)), start = i + 1;
    if (f.size() < 3 || f.size() > 4)
        throw std::invalid_argument(
            fmt::format("{}: {} should be IOVA:PA:SIZE[:r|rw]", opt, quote(t)));
    MapSpec m{number(f[0], opt), number(f[1], opt), number(f[2], opt), kPermRW};
    if (f.size() == 4) {
        if (f[3] == "r")
            m.perm = kPermR;
        else if (f[3] == "rw")
            m.perm = kPermRW;
        else if (f[3] == "w")
            m.perm = kPermW;
        else
            throw std::invalid_argument(
                fmt::format("{}: permission {} (expected r, w or rw)", opt, quote(f[3])));
    }
    return m;
}

Access access(const std::string& a) {
    if (a == "read") return Access::Read;
    if (a == "write") return Access::Write;
    if (a == "atomic") return Access::ReadWrite;
    throw std::invalid_argument(
        fmt::format("--access: {} (expected read, write or atomic)", quote(a)));
}

LookupRequest with_defaults(const LookupRequest& r, const std::vector<LookupOption>& options) {
    LookupRequest q = r;
    for (const LookupOption& x : options)
        if (!x.flag && !x.repeated && !q.opts.count(x.name)) q.opts[x.name] = {x.default_value};
    return q;
}

int report(Walker& walker, SparseMemory& mem, const Requester& req, Addr iova, Access acc,
           const Expectation& e) {
    fmt::print("{}", explain_walk(walker, mem, req, iova, acc));
    if (e.mapped)
        fmt::print("  driver intent: {:#x} -> {:#x} ({})\n", iova, e.pa, perm_string(e.perm));
    else
        fmt::print("  driver intent: {:#x} is not mapped for {}\n", iova, to_string(req));
    std::string bad = check_translation(walker.result(), e, acc, false);
    fmt::print("  check: {}\n\n", bad.empty() ? "consistent with the intent" : "MISMATCH: " + bad);
    return bad.empty() ? 0 : 1;
}

}  // namespace lookup
}  // namespace iommusim
