#include "timeline.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "json.h"
#include "stats_output.h"

namespace iommusim {

namespace timeline_detail {
Timeline* g_timeline = nullptr;
}

void set_timeline(Timeline* t) {
    timeline_detail::g_timeline = t;
}

namespace {
// Trace-event times are microseconds. A double holds every picosecond exactly up to 10^15 ps
// (1000 s of simulated time): nlohmann writes the shortest text that reads back the same.
Json us(Tick ps) {
    return Json(double(ps) / 1e6);
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

int Timeline::span(int track, const char* name, Tick start, Tick end, const Args& args) {
    if (!admit(start)) return -1;
    Track& t = tracks_[size_t(track)];
    // The first lane free at `start`: its spans all end by then, so nothing overlaps.
    size_t lane = 0;
    while (lane < t.lanes.size() && t.lanes[lane].end > start) ++lane;
    if (lane == t.lanes.size()) lane = t.lanes.size() < kMaxLanes ? size_t(new_lane(t)) : lane - 1;
    Lane& l = t.lanes[lane];
    if (end > l.end) l.end = end;
    events_.push_back({'X', t.pid, l.tid, start, end > start ? end - start : 0, name, args});
    return l.tid;
}

void Timeline::child(int lane, const char* name, Tick start, Tick end, const Args& args) {
    if (lane < 0 || !admit(start)) return;
    events_.push_back({'X', threads_[size_t(lane) - 1].first, lane, start,
                       end > start ? end - start : 0, name, args});
}

void Timeline::instant(int track, const char* name, Tick at, const Args& args) {
    if (!admit(at)) return;
    const Track& t = tracks_[size_t(track)];
    events_.push_back({'i', t.pid, t.lanes[0].tid, at, 0, name, args});
}

void Timeline::counter(const std::string& process, const char* name, Tick at, double value) {
    if (!in_window(at)) return;
    if (!std::isfinite(value))
        throw std::invalid_argument(
            fmt::format("timeline: counter '{}' of {} at {} is {}, which "
                        "JSON cannot represent",
                        name, process, format_time_ps(at), value));
    const int p = pid(process);
    auto [it, fresh] = counters_.try_emplace({p, name}, value);
    if (!fresh && it->second == value) return;
    if (!admit(at)) return;
    it->second = value;
    events_.push_back({'C', p, 0, at, 0, name, {{"value", json_dump(Json(value), -1)}}});
}

std::string Timeline::json() const {
    // One event per line, each written by the library: the file stays easy to grep and to
    // split, and every name is escaped the same way.
    std::string out = "{\"traceEvents\":[\n";
    bool first = true;
    auto line = [&](const Json& j) {
        out += first ? "" : ",\n";
        out += json_dump(j, -1);
        first = false;
    };
    auto meta = [&](int pid, size_t tid, const char* name, Json args) {
        line(Json{{"ph", "M"}, {"pid", pid}, {"tid", tid}, {"name", name}, {"args", args}});
    };
    // Metadata first: names of processes (modules) and threads (tracks), in creation order.
    for (const auto& [name, id] : pids_) {
        meta(id, 0, "process_name", {{"name", json_string(name, "a timeline module name")}});
        meta(id, 0, "process_sort_index", {{"sort_index", id}});
    }
    for (size_t i = 0; i < threads_.size(); ++i) {
        const auto& [pid, name] = threads_[i];
        meta(pid, i + 1, "thread_name", {{"name", json_string(name, "a timeline track name")}});
        meta(pid, i + 1, "thread_sort_index", {{"sort_index", i + 1}});
    }
    // One object per kind of event, refilled for each: a million events are written in
    // seconds, not allocated a million times.
    Json span = {{"ph", "X"},
                 {"pid", 0},
                 {"tid", 0},
                 {"ts", 0.0},
                 {"dur", 0.0},
                 {"name", ""},
                 {"args", Json::object()}};
    Json instant = {{"ph", "i"},
                    {"pid", 0},
                    {"tid", 0},
                    {"ts", 0.0},
                    {"s", "t"},
                    {"name", ""},
                    {"args", Json::object()}};
    Json counter = {{"ph", "C"}, {"pid", 0},   {"tid", 0},
                    {"ts", 0.0}, {"name", ""}, {"args", Json::object()}};
    for (const Event& e : events_) {
        Json& j = e.ph == 'X' ? span : e.ph == 'i' ? instant : counter;
        j["pid"] = e.pid;
        j["tid"] = e.tid;
        j["ts"] = us(e.ts);
        if (e.ph == 'X') j["dur"] = us(e.dur);
        j["name"] = json_string(e.name, "a timeline event name");
        // Argument values come from the models as JSON text; the library reads (and so
        // checks) each one.
        Json& args = j["args"];
        args.clear();
        for (const auto& [k, v] : e.args) {
            json_string(k, "a timeline argument name");  // checks the key
            Json value = Json::parse(v, nullptr, false);
            if (value.is_discarded())
                json_parse(v, fmt::format("argument '{}' of timeline event '{}' at {}", k, e.name,
                                          format_time_ps(e.ts)));  // throws, saying why
            args[k] = std::move(value);
        }
        line(j);
    }
    Json other = {{"generator", "iommusim"},
                  {"time", "simulated; ts and dur in us"},
                  {"window_start_us", us(o_.start)},
                  {"window_end_us", o_.end == kNever ? Json(nullptr) : us(o_.end)},
                  {"max_events", o_.max_events},
                  {"events", events_.size()},
                  {"truncated", dropped_ != 0},
                  {"dropped_events", dropped_}};
    if (dropped_) other["truncated_at_us"] = us(first_dropped_);
    out += "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":" + json_dump(other, -1) + "\n}\n";
    return out;
}

void Timeline::write() const {
    write_files({{o_.file, json()}});
}

}  // namespace iommusim
