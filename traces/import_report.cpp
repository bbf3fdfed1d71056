// ImportReport: counting, errors and the summary printed by `iommusim import`.
#include "traces/import_report.h"

namespace iommusim::trace {

namespace {
constexpr const char* kKindNames[] = {"map", "unmap", "inval", "dma", "fault"};
}  // namespace

uint64_t ImportReport::total() const {
    uint64_t n = 0;
    for (uint64_t c : records) n += c;
    return n;
}

std::string ImportReport::summary(size_t max_errors) const {
    std::string s = std::to_string(total()) + " records (";
    for (size_t k = 0; k < records.size(); ++k)
        s += (k ? ", " : "") + std::to_string(records[k]) + " " + kKindNames[k];
    s += ") from " + std::to_string(lines) + " lines, " + std::to_string(skipped) + " skipped, " +
         std::to_string(errors.size() + errors_unlisted) + " errors\n";
    if (records[size_t(Kind::Dma)])
        s += "dma: " + std::to_string(dma_sized) + " with size, " + std::to_string(dma_unsized) +
             " size=?; " + std::to_string(dma_dir_known) + " with direction, " +
             std::to_string(dma_dir_unknown) + " dir=?\n";
    if (ops_anchored || ops_interpolated)
        s += "guest map/unmap placement: " + std::to_string(ops_anchored) +
             " at their invalidation, " + std::to_string(ops_interpolated) + " by clock offset\n";
    if (ops_unattributed)
        s += std::to_string(ops_unattributed) + " map/unmap not attributed (see the notes)\n";
    if (ops_kprobe || kprobes_unpaired)
        s += "kprobes: " + std::to_string(ops_kprobe) + " map/unmap paired with their kprobe, " +
             std::to_string(ops_by_kprobe) + " written in the domain it names, " +
             std::to_string(ops_without_kprobe) + " without one, " +
             std::to_string(kprobes_unpaired) + " kprobes without their event\n";
    if (ambiguous_total() || ops_kprobe || ops_anchored || ops_interpolated) {
        s += "ambiguous domains: " + std::to_string(ambiguous_total());
        if (ambiguous_total())
            s += " (" + std::to_string(ambiguous_unmaps) + " unmaps over several domains' " +
                 "mappings took the most recent, " + std::to_string(ambiguous_maps) +
                 " maps translated in several domains, " + std::to_string(ambiguous_none) +
                 " map/unmap in no known domain)";
        s += "\n";
        for (const std::string& e : ambiguous_examples) s += "  ambiguous: " + e + "\n";
    }
    for (size_t i = 0; i < errors.size() && i < max_errors; ++i)
        s += "error: " + errors[i].str() + "\n";
    if (errors.size() + errors_unlisted > max_errors)
        s += "(" + std::to_string(errors.size() + errors_unlisted - max_errors) + " more errors)\n";
    for (const std::string& n : notes) s += "note: " + n + "\n";
    return s;
}

void ImportReport::error(const std::string& file, uint64_t line, std::string what) {
    if (errors.size() < kMaxErrors)
        errors.push_back({file, line, std::move(what)});
    else
        ++errors_unlisted;
}

void ImportReport::ambiguous(uint64_t& counter, std::string example) {
    ++counter;
    if (ambiguous_examples.size() < kMaxExamples) ambiguous_examples.push_back(std::move(example));
}

void emit(const Record& r, const RecordSink& sink, ImportReport& report) {
    ++report.records[size_t(r.kind)];
    if (r.kind == Kind::Dma) {
        ++(r.size_known ? report.dma_sized : report.dma_unsized);
        ++(r.dir != Dir::Unknown ? report.dma_dir_known : report.dma_dir_unknown);
    }
    sink(r);
}

}  // namespace iommusim::trace
