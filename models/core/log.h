// Per-module logging, off by default (docs/user-guide.md, "Debugging with logs"). A module
// holds a log::Channel named by its place in the hierarchy (system.iommu0,
// system.bench0.engine); rules such as `system.iommu0=debug` give a level to a module and
// everything below it. A disabled call costs one predictable branch on the channel's cached
// level and evaluates none of its arguments, not even the time:
//
//   IOMMUSIM_LOG(log_, Debug, at, "IOTLB miss {:#x}", iova);
//   IOMMUSIM_LOG_IF(log_, Trace, log::wants(req), at, "walk {}", to_string(req));
//
// Every line carries simulated time: the caller's Tick, or log::now() from the clock the
// SystemC shell installs (the functional core has no SystemC):
//   [   12.345678 us] system.iommu0 debug: IOTLB miss 0x1000
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "invalidation.h"
#include "time.h"
#include "types.h"

namespace iommusim::log {

enum class Level : uint8_t { Off = 0, Error, Warn, Info, Debug, Trace };
const char* to_string(Level l);
// "off", "error", "warn", "info", "debug", "trace" (any case); nullopt otherwise.
std::optional<Level> parse_level(std::string_view s);

namespace detail {
struct Entry {
    uint8_t level = 0;  // the Level this channel writes up to
    std::string name;
};
void emit(const Entry& e, Level l, Tick t, fmt::string_view f, fmt::format_args args);
}  // namespace detail

// A module's handle. Channels of one name share their level; copying one is copying a
// pointer. The default channel has no name and never writes.
class Channel {
public:
    Channel();
    explicit Channel(std::string_view name);
    bool on(Level l) const { return e_->level >= uint8_t(l); }
    const std::string& name() const { return e_->name; }

    // Writes one line; callers go through the macros, which test on() first.
    template <typename... A>
    [[gnu::noinline, gnu::cold]] void write(Level l, Tick t, fmt::format_string<A...> f,
                                            A&&... a) const {
        detail::emit(*e_, l, t, f, fmt::make_format_args(a...));
    }

private:
    const detail::Entry* e_;
};

// One rule: `module` and every module below it (module + ".") log up to `level`; the
// longest matching rule wins. `origin` names where it was given, for messages.
struct Rule {
    std::string module;
    Level level = Level::Debug;
    std::string origin;
};
// "MODULE=LEVEL" or "MODULE" (debug): "" and *out set (its origin left empty), or what was
// wrong.
std::string parse_rule(std::string_view text, Rule* out);
// Replaces the rules; every channel's level follows at once.
void set_rules(std::vector<Rule> rules);
const std::vector<Rule>& rules();
// Names of every channel that exists, sorted.
std::vector<std::string> channel_names();
// One message per rule whose module names no channel (a typo, or a module that does not
// log), with the closest channel names: "origin: ...".
std::vector<std::string> unmatched_rules();

// Simulated time for lines whose caller has no Tick at hand: the installed clock's, or kNever
// (printed as "-") without one.
using ClockFn = Tick (*)();
void set_clock(ClockFn clock);
Tick now();

// Where lines go: stderr by default. open_file throws std::runtime_error when it cannot.
void set_output(std::FILE* f);
void open_file(const std::string& path);
void flush();

// Following one requester: lines about other requesters are dropped. `pasid` kNoPasid
// means every PASID of the RID.
struct RequesterFilter {
    uint16_t rid = 0;
    uint32_t pasid = Requester::kNoPasid;
};
// "BB:DD.F" or "BB:DD.F/PASID" (PASID decimal or 0x hex): "" and *out set, or what was wrong.
std::string parse_requester(std::string_view text, RequesterFilter* out);
void set_requester_filter(std::optional<RequesterFilter> f);
// Whether a line about `req` is wanted (always, without a filter).
bool wants(const Requester& req);
// The translation unit tells which domain tag the followed requester's context gave, so that
// invalidations can be filtered by domain too.
void note_domain(const Requester& req, uint32_t tag);
// Whether domain `tag` may be the followed requester's (always while none is known yet).
bool wants_domain(uint32_t tag);
// Whether an invalidation may concern the followed requester: global ones, those naming its
// RID or one of its domains; any domain-scoped one while no domain is known yet.
bool wants(const InvalidationScope& s);

// Back to the defaults: no rules, stderr, no clock, no filter (tests).
void reset();

}  // namespace iommusim::log

#define IOMMUSIM_LOG_ON(ch, lvl) __builtin_expect((ch).on(::iommusim::log::Level::lvl), 0)

// A line at `lvl` (Error, Warn, Info, Debug, Trace) at simulated time `tick`; nothing
// after `ch` is evaluated unless the channel is on at that level.
#define IOMMUSIM_LOG(ch, lvl, tick, ...)                                                  \
    do {                                                                                  \
        if (IOMMUSIM_LOG_ON(ch, lvl))                                                     \
            (ch).write(::iommusim::log::Level::lvl, ::iommusim::Tick(tick), __VA_ARGS__); \
    } while (0)

// The same, written only when `cond` holds (evaluated only when the channel is on).
#define IOMMUSIM_LOG_IF(ch, lvl, cond, tick, ...)                                         \
    do {                                                                                  \
        if (IOMMUSIM_LOG_ON(ch, lvl) && (cond))                                           \
            (ch).write(::iommusim::log::Level::lvl, ::iommusim::Tick(tick), __VA_ARGS__); \
    } while (0)
