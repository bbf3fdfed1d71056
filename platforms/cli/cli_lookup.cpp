// `iommusim lookup` and `iommusim demo`: build an address space with an architecture's driver
// model, then walk one IOVA functionally and print every entry read, next to the driver's
// intent (bundles/lookup.h; each architecture registers its own options and runner).
#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <iostream>
#include <stdexcept>

#include "bundles/bundle.h"
#include "cli.h"
#include "core/quote.h"

namespace po = boost::program_options;

namespace iommusim::cli {

uint64_t parse_number(const std::string& t, const std::string& what) {
    return lookup::number(t, what);
}

uint16_t parse_bdf(const std::string& t) {
    return lookup::bdf(t);
}

int lookup(const std::vector<std::string>& args) {
    LookupRequest o;
    std::string arch = ArchRegistry::default_name();
    po::options_description d("iommusim lookup [options]");
    d.add_options()("help,h", "this text")("arch", po::value(&arch)->default_value(arch),
                                           ("architecture: " + ArchRegistry::names()).c_str())(
        "rid", po::value(&o.rid)->default_value(o.rid), "requester BB:DD.F")(
        "pasid", po::value(&o.pasid), "PASID carried by the request")(
        "priv", po::bool_switch(&o.priv), "privileged (supervisor) request")(
        "map", po::value(&o.maps)->composing(), "IOVA:PA:SIZE[:r|rw] to map first (repeatable)")(
        "iova", po::value(&o.iova), "address to look up")(
        "access", po::value(&o.access)->default_value(o.access), "read, write or atomic");
    // Every architecture's own options (an option two of them declare is declared once).
    std::vector<std::string> declared;
    for (const ArchRegistry::Entry& e : ArchRegistry::all())
        for (const LookupOption& x : e.lookup.options) {
            if (std::find(declared.begin(), declared.end(), x.name) != declared.end()) continue;
            declared.push_back(x.name);
            if (x.flag)
                d.add_options()(x.name.c_str(), po::bool_switch(), x.help.c_str());
            else if (x.repeated)
                d.add_options()(x.name.c_str(), po::value<std::vector<std::string>>()->composing(),
                                x.help.c_str());
            else
                d.add_options()(x.name.c_str(),
                                po::value<std::string>()->default_value(x.default_value),
                                x.help.c_str());
        }
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(d).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw std::invalid_argument(std::string(e.what()) + " (see iommusim lookup --help)");
    }
    if (vm.count("help")) {
        std::cout << d;
        return 0;
    }
    const ArchRegistry::Entry* a = ArchRegistry::find(arch);
    if (!a)
        throw std::invalid_argument(
            fmt::format("--arch: {} (expected {})", quote(arch), ArchRegistry::names()));
    // An option of another architecture is a mistake, not something to ignore.
    for (const std::string& n : declared) {
        bool own = false;
        for (const LookupOption& x : a->lookup.options) own |= x.name == n;
        const bool given = vm.count(n) && !vm[n].defaulted() &&
                           !(vm[n].value().type() == typeid(bool) && !vm[n].as<bool>());
        if (!own && given)
            throw std::invalid_argument(
                fmt::format("--{} is not an option of --arch {}", n, a->name));
    }
    for (const LookupOption& x : a->lookup.options) {
        if (!vm.count(x.name)) continue;
        if (x.flag)
            o.opts[x.name] = {vm[x.name].as<bool>() ? "1" : ""};
        else if (x.repeated)
            o.opts[x.name] = vm[x.name].as<std::vector<std::string>>();
        else
            o.opts[x.name] = {vm[x.name].as<std::string>()};
    }
    return a->lookup.run(o);
}

// Every architecture's examples, default architecture first.
int demo(const std::vector<std::string>& args) {
    if (!args.empty())
        throw std::invalid_argument(fmt::format("unexpected argument {}", quote(args[0])));
    int rc = 0;
    const std::string first = ArchRegistry::default_name();
    if (const ArchRegistry::Entry* e = ArchRegistry::find(first)) rc |= e->lookup.demo();
    for (const ArchRegistry::Entry& e : ArchRegistry::all())
        if (e.name != first) rc |= e.lookup.demo();
    return rc;
}

}  // namespace iommusim::cli
