// System while it runs: bring-up, progress, the end of the run, derived statistics (the
// assembly is system_config.cpp and system_build.cpp).
#include "system_parts.h"

namespace iommusim {

// Drivers free their tables through the simulated memory (in the fabric): they go first.
System::~System() {
    devices_.clear();
    iommus_.clear();
    switches_.clear();
    rcs_.clear();
    fabric_.reset();
}

// The host brings its units up as its driver would at boot (bundles/bundle.h). At time 0 of
// the simulation, before any device runs: sockets are only usable once elaboration is complete.
void System::bring_up() {
    for (auto& m : iommus_) m->bundle->bring_up();
}

void System::start_of_simulation() {
    bring_up();
}

bool System::devices_done() const {
    for (const auto& h : replay_hosts_)
        if (!h->finished()) return false;
    for (const auto& d : devices_)
        if (!d->ended) return false;
    return true;
}

double System::progress() const {
    if (replay_hosts_.size() == 1) return replay_hosts_[0]->progress();
    if (!replay_hosts_.empty()) {  // the tenants' records done, weighted by their length
        double done = 0, all = 0;
        for (size_t t = 0; t < replay_hosts_.size(); ++t) {
            const double n = double(replay_spec_->tenants[t].summary.records);
            done += n * replay_hosts_[t]->progress(), all += n;
        }
        return all > 0 ? done / all : 1.0;
    }
    double sum = 0;
    for (const auto& d : devices_) sum += d->finished() ? 1.0 : d->progress();
    return devices_.empty() ? 1.0 : sum / double(devices_.size());
}

std::vector<std::string> System::device_summaries() const {
    std::vector<std::string> out;
    for (const auto& d : devices_) out.push_back(d->name + ": " + d->summary());
    return out;
}

void System::finish_stats() {
    for (auto& [name, total] : replay_totals_) {
        total->reset();
        for (size_t t = 0; t < replay_hosts_.size(); ++t)
            for (const auto& e : stats_.child("replay").child(fmt::format("tenant{}", t)).entries())
                if (e.name == name && e.counter) *total += e.counter->value();
    }
    for (auto& m : iommus_) {
        if (!m->hit_rate) continue;
        const StatGroup& g = stats_.child(m->name).child("iotlb");
        uint64_t lookups = 0, hits = 0;
        for (const auto& e : g.entries()) {
            if (e.name == "lookups" && e.counter) lookups = e.counter->value();
            if (e.name == "hits" && e.counter) hits = e.counter->value();
        }
        m->hit_rate->set_rounded(lookups ? 1e6 * double(hits) / double(lookups) : 0.0);
    }
}

std::vector<std::string> System::defects() const {
    std::vector<std::string> out;
    for (const auto& m : iommus_)
        for (const std::string& d : m->bundle->defects()) out.push_back(m->name + ": " + d);
    return out;
}

std::vector<std::string> System::iommu_names() const {
    std::vector<std::string> out;
    for (const auto& m : iommus_) out.push_back(m->name);
    return out;
}

void System::supervise() {
    const sc_core::sc_time limit(double(params_.max_time_us), sc_core::SC_US);
    PollPeriod poll;
    while (!devices_done() && !stop_requested_ &&
           (!params_.max_time_us || sc_core::sc_time_stamp() < limit)) {
        sc_core::sc_time t = poll.next();
        if (params_.max_time_us) t = std::min(t, limit - sc_core::sc_time_stamp());
        wait(t, device_ended_);
    }
    done_.notify(sc_core::SC_ZERO_TIME);
    sc_core::sc_stop();
}

sc_core::sc_time System::PollPeriod::next() {
    const auto now = std::chrono::steady_clock::now();
    const auto wall = now - last_;
    last_ = now;
    const sc_core::sc_time lo(10, sc_core::SC_US), hi(1, sc_core::SC_SEC);
    if (wall < std::chrono::milliseconds(50) && period_ < hi)
        period_ = period_ * 2;
    else if (wall > std::chrono::milliseconds(200) && period_ > lo)
        period_ = period_ / 2;
    return period_;
}

}  // namespace iommusim
