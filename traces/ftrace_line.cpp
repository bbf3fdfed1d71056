#include "traces/ftrace_line.h"

#include <optional>
#include <string>

#include "traces/import_fields.h"

namespace iommusim::trace::ftrace {

using import::seconds_ns;
using import::trim;

Ev classify(std::string_view name) {
    if (name == "map") return Ev::Map;
    if (name == "unmap") return Ev::Unmap;
    if (name == "io_page_fault") return Ev::Fault;
    if (name == "qi_submit") return Ev::QiSubmit;
    if (name == "block_rq_issue") return Ev::BlockIssue;
    if (name == "block_rq_complete") return Ev::BlockComplete;
    if (name == "dma_map_page" || name == "dma_map_resource" || name.substr(0, 9) == "dma_alloc")
        return Ev::DmaMap;
    if (name == "dma_unmap_page" || name == "dma_unmap_resource" || name.substr(0, 8) == "dma_free")
        return Ev::DmaUnmap;
    if (name == "dma_map_sg") return Ev::DmaMapSg;
    if (name == "dma_unmap_sg") return Ev::DmaUnmapSg;
    if (name.substr(0, 4) == "dma_") return Ev::DmaOther;
    return Ev::None;
}

namespace {

Probe probe_of(std::string_view payload) {
    if (payload.empty() || payload[0] != '(') return Probe::None;
    const size_t end = payload.find_first_of("+)");
    if (end == std::string_view::npos) return Probe::None;
    const size_t close = payload.find(')');
    // A return probe prints "(caller+0x../0x.. <- function)": not one of these.
    if (close == std::string_view::npos ||
        payload.substr(0, close).find(" <- ") != std::string_view::npos)
        return Probe::None;
    const std::string_view fn = payload.substr(1, end - 1);
    if (fn == "__iommu_map") return Probe::Map;
    if (fn == "__iommu_unmap") return Probe::Unmap;
    if (fn == "intel_iommu_attach_device") return Probe::Attach;
    return Probe::None;
}

// "<name>: <payload>" at the start of `rest`, with a known event name or a kprobe of a known
// function.
bool event_at(std::string_view rest, Located& out) {
    const size_t colon = rest.find(':');
    if (colon == 0 || colon == std::string_view::npos) return false;
    out.name = rest.substr(0, colon);
    out.payload = trim(rest.substr(colon + 1));
    out.probe = probe_of(out.payload);
    return out.probe != Probe::None || classify(out.name) != Ev::None;
}

// The task and CPU of an ftrace line: what precedes the timestamp, without the flags column.
std::string_view task_cpu(std::string_view prefix) {
    const size_t close = prefix.rfind(']');
    return trim(close == std::string_view::npos ? prefix : prefix.substr(0, close + 1));
}

// A word standing where a timestamp goes that tries to be a number but is not SECONDS.FRACTION
// within 64 bits of ns: "nan", "-1.5", "1e30", "12", "99999999999999999999.0".
bool number_like(std::string_view w) {
    std::string lower;
    for (char c : w) lower += char(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    std::string_view v = lower;
    if (!v.empty() && (v[0] == '-' || v[0] == '+')) v.remove_prefix(1);
    if (v == "nan" || v == "inf" || v == "infinity") return true;
    bool digit = false;
    for (char c : v) {
        if (c >= '0' && c <= '9')
            digit = true;
        else if (c != '.' && c != 'e' && c != '-' && c != '+')
            return false;
    }
    return digit;
}

// A timestamp of the given kind: SECONDS.FRACTION in ns, or a raw count (all digits).
std::optional<uint64_t> stamp(std::string_view w, bool raw) {
    if (!raw) return seconds_ns(w);
    if (w.empty() || w.size() > 20) return std::nullopt;
    for (char c : w)
        if (c < '0' || c > '9') return std::nullopt;
    size_t used = 0;
    const auto v = import::number(w, &used);
    return v && used == w.size() ? v : std::nullopt;
}

}  // namespace

// Finds the timestamp and event of a line: "TASK-PID [CPU] FLAGS SECONDS: name: payload" (the
// ftrace text format, with or without the flags column) or "[ SECONDS] name: payload" (printk,
// with tp_printk). Task names may themselves contain ':' and ": ". A line that has an event
// where a timestamp should be but the timestamp is not one sets `bad_time` to it (an event
// with a NaN, negative or out-of-range time must not be skipped silently).
bool locate(std::string_view line, Located& out, std::string_view& bad_time, bool raw) {
    Located ev;
    for (size_t p = line.find(": "); p != std::string_view::npos; p = line.find(": ", p + 1)) {
        size_t b = p;
        while (b > 0 && line[b - 1] != ' ' && line[b - 1] != ']') --b;
        const std::string_view word = line.substr(b, p - b);
        const auto ns = stamp(word, raw);
        if (ns && event_at(line.substr(p + 2), out)) {
            out.ns = *ns;
            out.who = task_cpu(line.substr(0, b));
            return true;
        }
        if (!ns && bad_time.empty() && number_like(word) && event_at(line.substr(p + 2), ev))
            bad_time = word;
    }
    for (size_t p = line.find('['); p != std::string_view::npos; p = line.find('[', p + 1)) {
        const size_t close = line.find(']', p);
        if (close == std::string_view::npos) break;
        const std::string_view word = trim(line.substr(p + 1, close - p - 1));
        const auto ns = stamp(word, raw);
        if (ns && event_at(trim(line.substr(close + 1)), out)) {
            out.ns = *ns;
            out.who = trim(line.substr(0, p));
            return true;
        }
        if (!ns && bad_time.empty() && number_like(word) &&
            event_at(trim(line.substr(close + 1)), ev))
            bad_time = word;
    }
    return false;
}

}  // namespace iommusim::trace::ftrace
