#include "timeline.h"

#include <fmt/format.h>

#include <stdexcept>

#include "stats_output.h"

namespace iommusim {

namespace timeline_detail {
Timeline* g_timeline = nullptr;
}

void set_timeline(Timeline* t) {
    timeline_detail::g_timeline = t;
}

namespace {
std::string escaped(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\')
            out += '\\', out += c;
        else if (static_cast<unsigned char>(c) < 0x20)
            out += fmt::format("\\u{:04x}", unsigned(c));
        else
            out += c;
    }
    return out;
}
// Trace-event times are microseconds; six decimals keep every picosecond.
std::string us(Tick ps) {
    return fmt::format("{}.{:06}", ps / 1'000'000, ps % 1'000'000);
}
}  // namespace

Timeline::Timeline(Options o) : o_(std::move(o)) {
    if (o_.start >= o_.end) throw std::invalid_argument("timeline: the window is empty");
}

bool Timeline::admit(Tick at) {
    if (!in_window(at)) return false;
    if (events_.size() < o_.max_events) return true;
    if (dropped_++ == 0) {
        first_dropped_ = at;
        // Never silently: say so now, and again in the file.
        fmt::print(stderr,
                   "iommusim: timeline: the limit of {} events was reached at {}; later events "
                   "are not recorded (--timeline-max-events, --timeline-window)\n",
                   o_.max_events, format_time_ps(at));
    }
    return false;
}

int Timeline::pid(const std::string& process) {
    auto it = pids_.find(process);
    if (it != pids_.end()) return it->second;
    return pids_.emplace(process, int(pids_.size()) + 1).first->second;
}

int Timeline::new_lane(Track& t) {
    const unsigned n = unsigned(t.lanes.size());
    threads_.push_back({t.pid, n ? fmt::format("{} #{}", t.thread, n + 1) : t.thread});
    t.lanes.push_back({int(threads_.size()), 0});
    return int(n);
}

int Timeline::track(const std::string& process, const std::string& thread) {
    auto key = std::make_pair(process, thread);
    auto it = track_ids_.find(key);
    if (it != track_ids_.end()) return it->second;
    tracks_.push_back({pid(process), thread, {}});
    new_lane(tracks_.back());
    return track_ids_.emplace(std::move(key), int(tracks_.size()) - 1).first->second;
}

const std::string& Timeline::process_of(const void* key) const {
    static const std::string unknown = "unnamed";
    auto it = keys_.find(key);
    return it == keys_.end() ? unknown : it->second;
}

std::string Timeline::args_json(const Args& args) {
    std::string out;
    for (const auto& [k, v] : args) out += fmt::format("{}\"{}\":{}", out.empty() ? "" : ",", k, v);
    return out;
}

int Timeline::span(int track, const char* name, Tick start, Tick end, const Args& args) {
    if (!admit(start)) return -1;
    Track& t = tracks_[size_t(track)];
    // The first lane free at `start`: its spans all end by then, so nothing overlaps.
    size_t lane = 0;
    while (lane < t.lanes.size() && t.lanes[lane].end > start) ++lane;
    if (lane == t.lanes.size()) lane = t.lanes.size() < kMaxLanes ? size_t(new_lane(t)) : lane - 1;
    Lane& l = t.lanes[lane];
    if (end > l.end) l.end = end;
    events_.push_back(
        {'X', t.pid, l.tid, start, end > start ? end - start : 0, name, args_json(args)});
    return l.tid;
}

void Timeline::child(int lane, const char* name, Tick start, Tick end, const Args& args) {
    if (lane < 0 || !admit(start)) return;
    events_.push_back({'X', threads_[size_t(lane) - 1].first, lane, start,
                       end > start ? end - start : 0, name, args_json(args)});
}

void Timeline::instant(int track, const char* name, Tick at, const Args& args) {
    if (!admit(at)) return;
    const Track& t = tracks_[size_t(track)];
    events_.push_back({'i', t.pid, t.lanes[0].tid, at, 0, name, args_json(args)});
}

void Timeline::counter(const std::string& process, const char* name, Tick at, double value) {
    if (!in_window(at)) return;
    const int p = pid(process);
    auto [it, fresh] = counters_.try_emplace({p, name}, value);
    if (!fresh && it->second == value) return;
    if (!admit(at)) return;
    it->second = value;
    events_.push_back({'C', p, 0, at, 0, name, fmt::format("\"value\":{}", value)});
}

std::string Timeline::json() const {
    std::string out = "{\"traceEvents\":[\n";
    bool first = true;
    auto line = [&](const std::string& s) {
        out += first ? "" : ",\n";
        out += s;
        first = false;
    };
    // Metadata first: names of processes (modules) and threads (tracks), in creation order.
    for (const auto& [name, id] : pids_) {
        line(fmt::format(
            "{{\"ph\":\"M\",\"pid\":{},\"tid\":0,\"name\":\"process_name\",\"args\":{{\"name\":"
            "\"{}\"}}}}",
            id, escaped(name)));
        line(
            fmt::format("{{\"ph\":\"M\",\"pid\":{},\"tid\":0,\"name\":\"process_sort_index\","
                        "\"args\":{{\"sort_index\":{}}}}}",
                        id, id));
    }
    for (size_t i = 0; i < threads_.size(); ++i) {
        line(fmt::format(
            "{{\"ph\":\"M\",\"pid\":{},\"tid\":{},\"name\":\"thread_name\",\"args\":{{\"name\":"
            "\"{}\"}}}}",
            threads_[i].first, i + 1, escaped(threads_[i].second)));
        line(
            fmt::format("{{\"ph\":\"M\",\"pid\":{},\"tid\":{},\"name\":\"thread_sort_index\","
                        "\"args\":{{\"sort_index\":{}}}}}",
                        threads_[i].first, i + 1, i + 1));
    }
    for (const Event& e : events_) {
        std::string s = fmt::format("{{\"ph\":\"{}\",\"pid\":{},\"tid\":{},\"ts\":{},", e.ph, e.pid,
                                    e.tid, us(e.ts));
        if (e.ph == 'X') s += fmt::format("\"dur\":{},", us(e.dur));
        if (e.ph == 'i') s += "\"s\":\"t\",";
        s += fmt::format("\"name\":\"{}\",\"args\":{{{}}}}}", escaped(e.name), e.args);
        line(s);
    }
    out += "\n],\n\"displayTimeUnit\":\"ns\",\n";
    out += fmt::format(
        "\"otherData\":{{\"generator\":\"iommusim\",\"time\":\"simulated; ts and dur in us\","
        "\"window_start_us\":{},\"window_end_us\":{},\"max_events\":{},\"events\":{},"
        "\"truncated\":{},\"dropped_events\":{}{}}}\n}}\n",
        us(o_.start), o_.end == kNever ? std::string("null") : us(o_.end), o_.max_events,
        events_.size(), dropped_ ? "true" : "false", dropped_,
        dropped_ ? fmt::format(",\"truncated_at_us\":{}", us(first_dropped_)) : std::string());
    return out;
}

void Timeline::write() const {
    write_files({{o_.file, json()}});
}

}  // namespace iommusim
