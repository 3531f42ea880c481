#include "riptide/performance/profiling/leak_detector.hpp"
#include "riptide/performance/profiling/recent_allocations.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <cstdlib>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/leak_trend.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

#if RIPTIDE_PERF_HAS_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace riptide::performance {
namespace {

// Records of recent sampled allocations kept by jemalloc for ages; each costs ~100 bytes plus its stack.

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kMediumLeakedBytes = 16 * kMiB;
constexpr std::uint64_t kHighLeakedBytes = 256 * kMiB;
constexpr double kMediumGrowth = 64.0 * 1024.0;  // bytes/s
constexpr double kHighGrowth = 1024.0 * 1024.0;  // bytes/s

// Oldest live sampled allocation per site (HeapSite::id) from jemalloc's record of recent sampled
// allocations, as wall time. The first call turns the record on: it holds nothing yet.
std::unordered_map<std::uint64_t, std::chrono::system_clock::time_point> oldest_live_recent(Symbolizer& symbolizer) {
  std::unordered_map<std::uint64_t, std::chrono::system_clock::time_point> result;
  const auto recorded = ensure_recent_allocations_recorded();
  if (!recorded || !recorded.value()) return result;
  const auto recent = read_recent_allocations();
  if (!recent) return result;
  // Record times are CLOCK_MONOTONIC; map them onto the wall clock.
  const auto monotonic_now = recent_allocation_clock_now();
  const auto system_now = std::chrono::system_clock::now();
  SiteAttributor attribute(symbolizer);
  for (const auto& allocation : recent.value().records) {
    if (allocation.freed_at) continue;
    const std::uint64_t site = std::hash<std::string>{}(attribute(allocation.frames).key());
    const auto wall = system_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                       monotonic_now - allocation.allocated_at);
    auto [it, inserted] = result.try_emplace(site, wall);
    if (!inserted && wall < it->second) it->second = wall;
  }
  return result;
}

}  // namespace

const char* to_string(LeakSeverity severity) noexcept {
  switch (severity) {
    case LeakSeverity::none:
      return "none";
    case LeakSeverity::low:
      return "low";
    case LeakSeverity::medium:
      return "medium";
    case LeakSeverity::high:
      return "high";
  }
  return "none";
}

LeakSeverity classify_leak_severity(std::uint64_t total_leaked_bytes, double total_growth_bytes_per_sec) noexcept {
  if (total_leaked_bytes == 0 && total_growth_bytes_per_sec <= 0) {
    return LeakSeverity::none;
  }
  if (total_leaked_bytes >= kHighLeakedBytes || total_growth_bytes_per_sec >= kHighGrowth) {
    return LeakSeverity::high;
  }
  if (total_leaked_bytes >= kMediumLeakedBytes || total_growth_bytes_per_sec >= kMediumGrowth) {
    return LeakSeverity::medium;
  }
  return LeakSeverity::low;
}

LeakDetector::LeakDetector(ProfilingConfig config, const Clock& clock, Symbolizer* symbolizer,
                           std::shared_ptr<HeapProfileCache> profiles, std::shared_ptr<PeriodicScheduler> scheduler)
    : config_(std::move(config)),
      clock_(clock),
      symbolizer_(symbolizer != nullptr ? symbolizer : &Symbolizer::shared()),
      profiles_(profiles ? std::move(profiles) : std::make_shared<HeapProfileCache>(config_.dump_directory, clock)),
      origin_(clock.steady_now()),
      observer_(std::move(scheduler), "riptide-leaks",
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                    std::chrono::duration<double>(std::max(config_.leak_detection_interval_sec, 0.001))),
                [this] { observe_and_publish(); }) {
  observation_times_.resize(config_.max_history_per_site);
  if (symbolizer == nullptr) {
    Symbolizer::shared().set_limits(symbolizer_limits(config_));
  }
}

LeakDetector::~LeakDetector() {
  stop();
}

std::optional<ProfilingError> LeakDetector::observe() {
  const auto profile = profiles_->refresh();
  if (!profile) {
    return profile.error();
  }
  observe(*profile.value());
  return std::nullopt;
}

void LeakDetector::observe(const HeapProfile& profile) {
  // Symbolization and classification run outside the history lock.
  const auto sites = aggregate_by_site(profile, *symbolizer_);
  auto self = estimate_self_heap(profile, *symbolizer_);
  symbolizer_->trim();
  const double t_sec = std::chrono::duration<double>(clock_.steady_now() - origin_).count();
  std::lock_guard lock(mutex_);
  record_locked(sites, t_sec, profile.sample_period);
  self_heap_ = std::move(self);
}

std::optional<SelfHeapEstimate> LeakDetector::self_heap() const {
  std::lock_guard lock(mutex_);
  return self_heap_;
}

bool LeakDetector::push_locked(SiteHistory& history, Sample sample) const {
  const std::size_t cap = config_.max_history_per_site;
  if (history.samples.size() < cap) {
    if (history.samples.size() == history.samples.capacity()) {
      history.samples.reserve(std::min(cap, std::max<std::size_t>(4, 2 * history.samples.size())));
    }
    history.samples.push_back(sample);
    return false;
  }
  history.samples[history.head] = sample;
  history.head = static_cast<std::uint32_t>((history.head + 1) % cap);
  return true;
}

double LeakDetector::time_of_locked(const SiteHistory& history, std::size_t i) const {
  // The i-th oldest sample belongs to observation observations_ - size + 1 + i.
  const std::uint64_t observation = observations_ - history.size() + 1 + i;
  return observation_times_[observation % observation_times_.size()];
}

void LeakDetector::record_locked(const std::vector<HeapSite>& sites, double t_sec, std::uint64_t period) {
  if (period != sample_period_) {
    sites_.clear();  // counts sampled at another rate are not comparable (prof.reset also zeroes them)
    sample_period_ = period;
  }
  const auto refused = make_room_locked(sites);
  ++observations_;
  observation_times_[observations_ % observation_times_.size()] = t_sec;
  for (const auto& site : sites) {
    if (!(site.counts.live_bytes > 0) || refused.contains(site.id)) {
      continue;
    }
    auto it = sites_.find(site.id);
    if (it == sites_.end()) {
      it = sites_.emplace(site.id, SiteHistory{}).first;
      it->second.first_seen_t_sec = t_sec;
    }
    auto& history = it->second;
    if (push_locked(history,
                    Sample{static_cast<float>(site.counts.live_bytes), static_cast<float>(site.counts.live_objects)})) {
      ++dropped_points_;
    }
    if (history.stack != site.stack) {
      history.stack = site.stack;  // at most kMaxSiteStackFrames
    }
    if (history.location.address != site.location.address) history.location = site.location;
    history.sampled_live_objects = site.counts.sampled_live_objects;
    history.live_bytes_variance = site.counts.live_bytes_variance;
    history.last_seen_observation = observations_;
  }
  // Sites absent from this dump hold nothing now; record the zero so a freed site's slope falls. A site
  // absent for a whole history holds only zeros: forget it.
  for (auto it = sites_.begin(); it != sites_.end();) {
    auto& history = it->second;
    if (history.last_seen_observation != observations_) {
      if (observations_ - history.last_seen_observation > config_.max_history_per_site) {
        it = sites_.erase(it);
        continue;
      }
      if (push_locked(history, Sample{})) {
        ++dropped_points_;
      }
      history.sampled_live_objects = 0;
      history.live_bytes_variance = 0;
    }
    ++it;
  }
}

// Frees room for this dump's new sites in one pass (O(n log n), not one scan per newcomer), dropping the
// least useful histories first: sites absent from the dump (least recently seen, then smallest), then the
// sites holding the fewest bytes now, tracked or new (a newcomer loses a tie). Every drop is counted.
std::unordered_set<std::uint64_t> LeakDetector::make_room_locked(const std::vector<HeapSite>& sites) {
  std::unordered_set<std::uint64_t> refused;
  std::size_t live = 0;
  std::size_t newcomers = 0;
  for (const auto& site : sites) {
    if (!(site.counts.live_bytes > 0)) continue;
    ++live;
    if (!sites_.contains(site.id)) ++newcomers;
  }
  if (sites_.size() + newcomers <= config_.max_tracked_sites) return refused;
  std::size_t excess = sites_.size() + newcomers - config_.max_tracked_sites;
  dropped_sites_ += excess;

  std::unordered_set<std::uint64_t> live_addresses;
  live_addresses.reserve(live);
  for (const auto& site : sites) {
    if (site.counts.live_bytes > 0) live_addresses.insert(site.id);
  }
  using Iterator = std::unordered_map<std::uint64_t, SiteHistory>::iterator;
  std::vector<Iterator> absent;
  for (auto it = sites_.begin(); it != sites_.end(); ++it) {
    if (!live_addresses.contains(it->first)) absent.push_back(it);
  }
  const std::size_t from_absent = std::min(excess, absent.size());
  std::partial_sort(absent.begin(), absent.begin() + static_cast<std::ptrdiff_t>(from_absent), absent.end(),
                    [](const Iterator& a, const Iterator& b) {
                      if (a->second.last_seen_observation != b->second.last_seen_observation) {
                        return a->second.last_seen_observation < b->second.last_seen_observation;
                      }
                      return a->second.back().live_bytes < b->second.back().live_bytes;
                    });
  for (std::size_t i = 0; i < from_absent; ++i) sites_.erase(absent[i]);
  excess -= from_absent;
  if (excess == 0) return refused;

  // Every remaining history is live in this dump: the smallest now go, newcomers before tracked sites.
  struct Candidate {
    double bytes;
    bool newcomer;
    std::uint64_t address;
  };
  std::vector<Candidate> candidates;
  candidates.reserve(live);
  for (const auto& site : sites) {
    if (!(site.counts.live_bytes > 0)) continue;
    candidates.push_back({site.counts.live_bytes, !sites_.contains(site.id), site.id});
  }
  const std::size_t drop = std::min(excess, candidates.size());
  std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(drop), candidates.end(),
                   [](const Candidate& a, const Candidate& b) {
                     if (a.bytes != b.bytes) return a.bytes < b.bytes;
                     return a.newcomer && !b.newcomer;
                   });
  for (std::size_t i = 0; i < drop; ++i) {
    refused.insert(candidates[i].address);  // not re-admitted by this dump
    if (!candidates[i].newcomer) sites_.erase(candidates[i].address);
  }
  return refused;
}

LeakReport LeakDetector::analyze() const {
  std::lock_guard lock(mutex_);
  return analyze_locked();
}

LeakReport LeakDetector::analyze_locked() const {
  LeakReport report;
  report.timestamp = clock_.system_now();
  report.observations = static_cast<std::uint32_t>(observations_);
  report.tracked_sites = static_cast<std::uint32_t>(sites_.size());
  report.max_tracked_sites = config_.max_tracked_sites;
  report.dropped_sites = dropped_sites_;
  report.max_history_per_site = config_.max_history_per_site;
  report.dropped_history_points = dropped_points_;
  report.sample_interval_bytes = sample_period_;
  report.interval_sec = config_.leak_detection_interval_sec;
  report.available = observations_ > 0 || HeapProfilingControl::available();
  if (!report.available) {
    report.reason = HeapProfilingControl::unavailable_error().to_string();
    return report;
  }
  const double now_sec = std::chrono::duration<double>(clock_.steady_now() - origin_).count();
  // prof_recent's JSON (thousands of records) only dates suspects: read it once, when the first one shows.
  std::optional<std::unordered_map<std::uint64_t, std::chrono::system_clock::time_point>> recent;
  const auto recent_records = [&]() -> const auto& {
    if (!recent) {
      recent.emplace();
      try {
        *recent = oldest_live_recent(*symbolizer_);
      } catch (const std::exception&) {
        // Unexpected prof_recent JSON: ages then rest on the observation history alone.
      }
    }
    return *recent;
  };
  const GrowthRules rules{.min_growth_bytes_per_sec = config_.leak_min_growth_bytes_per_sec,
                          .min_r_squared = config_.leak_min_r_squared,
                          .min_observations = config_.leak_min_observations};
  std::vector<GrowthPoint> points;
  points.reserve(config_.max_history_per_site);
  for (const auto& [id, history] : sites_) {
    if (history.size() < std::max<std::uint32_t>(config_.leak_min_observations, 2)) {
      continue;
    }
    const double current = history.back().live_bytes;
    if (current < static_cast<double>(config_.leak_min_bytes)) {
      continue;
    }
    points.clear();
    for (std::size_t i = 0; i < history.size(); ++i) {
      points.push_back({time_of_locked(history, i), history.at(i).live_bytes});
    }
    // What one sample stands for: about R for objects much smaller than R, their size for larger ones.
    const double bytes_per_sample = history.sampled_live_objects > 0
                                        ? current / static_cast<double>(history.sampled_live_objects)
                                        : static_cast<double>(sample_period_);
    const GrowthAssessment fit = assess_growth(points, rules, bytes_per_sample);
    if (!fit.suspect()) {
      continue;
    }
    MemoryLeak leak;
    leak.location = history.location.location();
    leak.function = history.location.display_name;
    leak.function_full = history.location.function;
    leak.file = history.location.file;
    leak.line = history.location.line;
    leak.size = static_cast<std::uint64_t>(std::llround(current));
    leak.objects = static_cast<std::uint64_t>(std::llround(history.back().live_objects));
    leak.growth_rate = fit.slope;
    leak.r_squared = fit.r_squared;
    leak.observations = static_cast<std::uint32_t>(fit.regime_points);
    leak.size_error_bytes = static_cast<std::uint64_t>(std::llround(std::sqrt(history.live_bytes_variance)));
    leak.relative_error =
        history.sampled_live_objects > 0 ? 1.0 / std::sqrt(static_cast<double>(history.sampled_live_objects)) : 1.0;
    // More observations and more samples make the verdict firmer; the fit quality caps it.
    const double depth = 1.0 - std::exp(-static_cast<double>(fit.regime_points) /
                                        static_cast<double>(std::max<std::uint32_t>(config_.leak_min_observations, 1)));
    leak.confidence = std::clamp(fit.r_squared * depth * (1.0 - std::min(leak.relative_error, 1.0)), 0.0, 1.0);
    const double first_sec = history.first_seen_t_sec;
    auto allocation_time = report.timestamp - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                  std::chrono::duration<double>(now_sec - first_sec));
    if (const auto found = recent_records().find(id);
        found != recent_records().end() && found->second < allocation_time) {
      allocation_time = found->second;
    }
    leak.allocation_time = allocation_time;
    leak.age = std::chrono::duration_cast<std::chrono::seconds>(report.timestamp - allocation_time);
    leak.stack = describe_stack(history.stack, *symbolizer_, kMaxSiteStackFrames);
    report.total_leaked_bytes += leak.size;
    report.total_growth_rate += leak.growth_rate;
    report.leaks.push_back(std::move(leak));
  }
  symbolizer_->trim();
  std::sort(report.leaks.begin(), report.leaks.end(),
            [](const MemoryLeak& a, const MemoryLeak& b) { return a.size > b.size; });
  report.leak_count = static_cast<std::uint32_t>(report.leaks.size());
  report.severity = report.leaks.empty() ? LeakSeverity::none
                                         : classify_leak_severity(report.total_leaked_bytes, report.total_growth_rate);
  return report;
}

LeakReport LeakDetector::detect() {
  LeakReport report = analysis_after(observe());
  publish(report);
  return report;
}

LeakReport LeakDetector::analysis_after(const std::optional<ProfilingError>& error) const {
  LeakReport report = analyze();
  if (error) {
    // The history still stands when a later dump fails; without any, there is nothing to report on.
    if (report.observations == 0) report.available = false;
    report.reason = error->to_string();
  }
  return report;
}

void LeakDetector::publish(LeakReport report) {
  auto shared = std::make_shared<const LeakReport>(std::move(report));
  std::lock_guard lock(published_mutex_);
  latest_ = std::move(shared);
}

std::shared_ptr<const LeakReport> LeakDetector::latest() const {
  std::lock_guard lock(published_mutex_);
  return latest_;
}

void LeakDetector::clear() {
  std::lock_guard lock(mutex_);
  sites_.clear();
  observations_ = 0;
  self_heap_.reset();
}

bool LeakDetector::running() const {
  return observer_.running();
}

void LeakDetector::start() {
  observer_.start();
}

void LeakDetector::stop() {
  observer_.stop();
}

void LeakDetector::observe_and_publish() {
  publish(analysis_after(observe()));
}

}  // namespace riptide::performance
