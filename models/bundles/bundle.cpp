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

bool ArchRegistry::add(std::string name, std::string doc, Factory make, bool is_default) {
    auto& e = entries();
    const auto at = std::lower_bound(
        e.begin(), e.end(), name, [](const Entry& x, const std::string& n) { return x.name < n; });
    e.insert(at, Entry{std::move(name), std::move(doc), std::move(make), is_default});
    return true;
}

std::unique_ptr<IommuBundle> ArchRegistry::create(const std::string& name) {
    for (const Entry& x : entries())
        if (x.name == name) return x.make();
    return nullptr;
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
