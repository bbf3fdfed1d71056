// A timeline of one run as a Chrome/Perfetto trace-event file (ui.perfetto.dev,
// chrome://tracing): spans ("X" events) on tracks, instants and counters, for a window of
// simulated time and up to a maximum number of events. Off unless a run asks for it: models
// test `if (Timeline* t = timeline())`, one predictable branch on a null pointer.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "time.h"

namespace iommusim {

class Timeline {
public:
    struct Options {
        std::string file;
        Tick start = 0, end = kNever;  // the window [start, end) of simulated time
        uint64_t max_events = 1'000'000;
    };
    using Args = std::vector<std::pair<const char*, std::string>>;  // values as JSON text

    explicit Timeline(Options o);

    const Options& options() const { return o_; }
    bool in_window(Tick t) const { return t >= o_.start && t < o_.end; }
    // Whether anything in [from, to] can be recorded: hooks test it before building names
    // and arguments, so a run costs little outside the window.
    bool near(Tick from, Tick to) const { return to >= o_.start && from < o_.end; }

    // A track: `process` names the module (system.iommu0), `thread` the track within it
    // (walker 0, upstream). Spans of one track that overlap go to further lanes ("thread #2",
    // up to kMaxLanes, as many as a device has tags) so that each lane's spans follow one
    // another; past the last lane they overlap there.
    static constexpr unsigned kMaxLanes = 256;
    int track(const std::string& process, const std::string& thread);

    // A span [start, end) on a lane of `track`, recorded when it starts inside the window;
    // returns its lane (for child()), or -1 when not recorded.
    int span(int track, const char* name, Tick start, Tick end, const Args& args = {});
    // A span inside one span() returned (the steps of a walk): same lane, no lane search.
    void child(int lane, const char* name, Tick start, Tick end, const Args& args = {});
    void instant(int track, const char* name, Tick at, const Args& args = {});
    // A counter of `process` (IOTLB occupancy, queue depth) taking `value` at `at`; recorded
    // only when the value changed.
    void counter(const std::string& process, const char* name, Tick at, double value);

    // Models know their own module's name only; an engine without one (the translation
    // unit) finds it through a key its module registered (its walker).
    void name_key(const void* key, const std::string& process) { keys_[key] = process; }
    const std::string& process_of(const void* key) const;

    uint64_t events() const { return uint64_t(events_.size()); }
    uint64_t dropped() const { return dropped_; }  // events past the limit (in the window)
    std::string json() const;
    // Writes the file (temporary name, then rename); throws std::runtime_error on failure.
    void write() const;

private:
    struct Event {
        char ph;
        int pid, tid;
        Tick ts, dur;
        const char* name;
        Args args;  // a counter's: its "value"
    };
    struct Lane {
        int tid;
        Tick end;
    };
    struct Track {
        int pid;
        std::string thread;
        std::vector<Lane> lanes;
    };
    bool admit(Tick at);
    int pid(const std::string& process);
    int new_lane(Track& t);

    Options o_;
    std::vector<Event> events_;
    uint64_t dropped_ = 0;
    Tick first_dropped_ = 0;
    std::map<std::string, int> pids_;
    std::map<std::pair<std::string, std::string>, int> track_ids_;
    std::vector<Track> tracks_;
    std::vector<std::pair<int, std::string>> threads_;  // tid -> (pid, name); tid = index + 1
    std::map<const void*, std::string> keys_;
    std::map<std::pair<int, std::string>, double> counters_;  // last value recorded
};

namespace timeline_detail {
extern Timeline* g_timeline;
}
// The run's timeline, or null (the default): what every hook tests first.
inline Timeline* timeline() {
    return timeline_detail::g_timeline;
}
// Installs `t` (null: off). The caller owns it.
void set_timeline(Timeline* t);

}  // namespace iommusim
