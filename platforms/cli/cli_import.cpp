// `iommusim import FORMAT INPUT... -o OUT.trace`: convert recordings into the canonical trace.
//   qemu-vtd  QEMU_LOG [GUEST_FTRACE]  QEMU's log trace backend (vtd_*, pci_nvme_*) joined with
//                                      the guest's ftrace of iommu:map/unmap
//   ftrace    FTRACE...                a Linux ftrace dump of iommu:* (and dma:*) on its own
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <filesystem>

#include "cli.h"
#include "traces/import_ftrace.h"
#include "traces/import_qemu.h"

namespace iommusim::cli {

int import(const std::vector<std::string>& args) {
    std::vector<std::string> inputs;
    std::string format, out;
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "-o" || args[i] == "--out") {
            if (i + 1 == args.size()) throw std::invalid_argument("-o needs the output trace path");
            out = args[++i];
        } else if (args[i] == "-h" || args[i] == "--help") {
            fmt::print(
                "usage: iommusim import FORMAT INPUT... -o OUT.trace[.gz]\n"
                "  qemu-vtd QEMU_LOG [GUEST_FTRACE]  QEMU log backend (vtd_*, pci_nvme_*) + guest "
                "ftrace\n"
                "  ftrace FTRACE...                  Linux ftrace of iommu:* on its own\n");
            return 0;
        } else if (format.empty()) {
            format = args[i];
        } else {
            inputs.push_back(args[i]);
        }
    }
    if (format != "qemu-vtd" && format != "ftrace")
        throw std::invalid_argument(
            fmt::format("format '{}' (expected qemu-vtd or ftrace)", format));
    if (inputs.empty()) throw std::invalid_argument("no input files");
    if (out.empty()) throw std::invalid_argument("-o OUT.trace is required");
    if (format == "qemu-vtd" && inputs.size() > 2)
        throw std::invalid_argument("qemu-vtd takes QEMU_LOG and at most one GUEST_FTRACE");
    // Written under a temporary name in the same folder and renamed when complete, so that a
    // failed import leaves nothing at `out` (and an earlier file there stays as it was). The
    // name keeps `.gz` last: the writer compresses by the name. A pipe or a device
    // (`-o /dev/stdout`) cannot be renamed onto and is written in place.
    const std::filesystem::path final_path(out);
    std::error_code ec;
    const bool in_place = std::filesystem::exists(final_path, ec) &&
                          !std::filesystem::is_regular_file(final_path, ec);
    std::filesystem::path tmp = final_path;
    if (!in_place)
        tmp.replace_filename("." + final_path.filename().string() + ".tmp" +
                             std::to_string(::getpid()) +
                             (final_path.extension() == ".gz" ? ".gz" : ""));
    trace::ImportReport report;
    try {
        trace::Writer w(tmp.string(), fmt::format("imported by iommusim import {} from {}", format,
                                                  fmt::join(inputs, " ")));
        report = format == "qemu-vtd"
                     ? trace::import_qemu_vtd(inputs[0], inputs.size() > 1 ? inputs[1] : "", w)
                     : trace::import_ftrace(inputs, w);
        w.close();
        std::error_code renamed;
        if (!in_place) std::filesystem::rename(tmp, final_path, renamed);
        if (renamed) throw std::runtime_error("cannot write '" + out + "': " + renamed.message());
    } catch (const std::exception& e) {  // also a record the writer refuses (a bug)
        std::error_code ignored;
        if (!in_place) std::filesystem::remove(tmp, ignored);
        fmt::print(stderr, "iommusim import: {}\n", e.what());
        fmt::print(stderr, "iommusim import: nothing written to {}\n", out);
        return 2;
    }
    fmt::print("{}", report.summary());
    fmt::print("wrote {}\n", out);
    return report.ok() ? 0 : 1;
}

}  // namespace iommusim::cli
