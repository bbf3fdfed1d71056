#include "bundle.h"

#include <algorithm>

namespace iommusim {

namespace {
// A function-local static: registrations run during static initialisation, in any order.
std::vector<ArchRegistry::Entry>& entries() {
    static std::vector<ArchRegistry::Entry> e;
    return e;
}
}  // namespace

bool ArchRegistry::add(Entry x) {
    auto& e = entries();
    const auto at =
        std::lower_bound(e.begin(), e.end(), x.name,
                         [](const Entry& y, const std::string& n) { return y.name < n; });
    e.insert(at, std::move(x));
    return true;
}

const ArchRegistry::Entry* ArchRegistry::find(const std::string& name) {
    for (const Entry& x : entries())
        if (x.name == name) return &x;
    return nullptr;
}

std::unique_ptr<IommuBundle> ArchRegistry::create(const std::string& name) {
    const Entry* x = find(name);
    return x ? x->make() : nullptr;
}

const std::vector<ArchRegistry::Entry>& ArchRegistry::all() {
    return entries();
}

std::string ArchRegistry::names() {
    const auto& e = entries();
    std::string out;
    for (size_t i = 0; i < e.size(); ++i)
        out += (i == 0 ? "" : i + 1 == e.size() ? " or " : ", ") + e[i].name;
    return out;
}

std::string ArchRegistry::default_name() {
    for (const Entry& x : entries())
        if (x.is_default) return x.name;
    return "";
}

}  // namespace iommusim
