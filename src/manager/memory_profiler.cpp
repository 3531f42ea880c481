#include "riptide/performance/manager/memory_profiler.hpp"

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/uuid.hpp"
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#endif

#include <chrono>
#include <unordered_map>

namespace riptide::performance {
namespace {

// The rate windows of the health verdict and the allocation statistics: the last minute against the
// retained history as its baseline.
constexpr std::chrono::minutes kRecentRateWindow{1};
constexpr std::chrono::hours kBaselineRateWindow{1};

std::optional<double> allocations_per_second(const std::optional<AllocationRate>& rate) {
  return rate ? std::optional<double>{rate->allocations_per_second} : std::nullopt;
}

std::optional<LeakFindings> findings_of([[maybe_unused]] const std::shared_ptr<const LeakReport>& report) {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING  // a report exists only then (its severity names live in that area)
  if (report && report->available) {
    return LeakFindings{to_string(report->severity), report->leak_count, report->total_leaked_bytes};
  }
#endif
  return std::nullopt;
}

#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
// Each top site's temporary share and median lifetime, where the lifetime view has the site (both group
// stacks by the same attribution, so a site's location names it in both).
void add_lifetimes(std::vector<AllocationSite>& sites, const std::shared_ptr<const AllocationLifetimes>& lifetimes) {
  if (!lifetimes || !lifetimes->available) return;
  std::unordered_map<std::string, const SiteLifetimes*> by_location;
  for (const auto& site : lifetimes->sites) by_location.emplace(site.location.location(), &site);
  for (auto& site : sites) {
    const auto it = by_location.find(site.location);
    if (it == by_location.end()) continue;
    if (it->second->sampled > it->second->undecided) site.temporary_share = it->second->temporary_share;
    site.lifetime_p50_ms = it->second->lifetime_p50_ms;
  }
}
#endif

}  // namespace

MemoryProfiler::MemoryProfiler() : MemoryProfiler(make_uuid_v4()) {}

MemoryProfiler::MemoryProfiler(std::string session_id) : MemoryProfiler(std::move(session_id), Config{}) {}

MemoryProfiler::MemoryProfiler(std::string session_id, const Config& config, const Clock& clock,
                               std::shared_ptr<PeriodicScheduler> scheduler)
    : session_id_(std::move(session_id)), config_(config) {
  if (session_id_.empty()) {
    throw ConfigError({.source = "code",
                       .key = "session_id",
                       .value = "",
                       .problem = "must not be empty",
                       .accepted = "any non-empty text, usually a UUID v4"});
  }
  tracker_ = std::make_unique<MemoryTracker>(MemoryTrackerOptions::from_config(config_), clock, scheduler);
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (config_.profiling.enabled) {
    heap_profiles_ = std::make_shared<HeapProfileCache>(config_.profiling.dump_directory, clock);
    leak_detector_ = std::make_shared<LeakDetector>(config_.profiling, clock, nullptr, heap_profiles_, scheduler);
    allocation_analyzer_ = std::make_shared<AllocationAnalyzer>(config_.profiling, clock, nullptr, 20, heap_profiles_);
    // At the leak observations' pace: the record changes as fast as the heap profile does.
    lifetime_recorder_ = std::make_shared<LifetimeRecorder>(
        config_.profiling.temporary_allocation_ms,
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(config_.profiling.leak_detection_interval_sec)),
        scheduler);
    if (config_.profiling.peak_profile_growth > 0) {
      // After every snapshot of the sampler (the same pace, on the same thread when a scheduler is given).
      peak_recorder_ = std::make_shared<PeakHeapRecorder>(
          config_.profiling, tracker_->options().sample_interval,
          [tracker = tracker_.get()] { return tracker->latest(); }, scheduler);
    }
  }
#endif
}

MemoryProfiler::~MemoryProfiler() {
  stop_profiling();
}

void MemoryProfiler::start_profiling() {
  tracker_->start();
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (leak_detector_ && HeapProfilingControl::available()) {
    leak_detector_->start();
  }
  if (peak_recorder_ && HeapProfilingControl::available()) {
    peak_recorder_->start();
  }
  if (lifetime_recorder_ && HeapProfilingControl::available()) {
    lifetime_recorder_->start();
  }
#endif
}

void MemoryProfiler::stop_profiling() noexcept {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING          // compiled out, the profiling library (and these members) stay empty
  if (peak_recorder_) peak_recorder_->stop();  // before the sampler whose snapshots it reads
  if (lifetime_recorder_) lifetime_recorder_->stop();
#endif
  tracker_->stop();
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (leak_detector_) {
    try {
      leak_detector_->stop();
    } catch (...) {  // joining cannot fail for a thread we started; never throw from a noexcept stop
    }
  }
#endif
}

bool MemoryProfiler::is_profiling() const noexcept {
  return tracker_->running();
}

MemorySnapshot MemoryProfiler::get_current_snapshot() {
  return tracker_->take_snapshot(/*refresh_epoch=*/true);
}

std::optional<SelfHeapEstimate> MemoryProfiler::self_heap() const {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (leak_detector_ && HeapProfilingControl::available()) {
    return leak_detector_->self_heap();
  }
#endif
  return std::nullopt;
}

std::optional<std::uint64_t> MemoryProfiler::self_heap_bytes() const {
  if (const auto estimate = self_heap()) return estimate->bytes;
  return std::nullopt;
}

LeakReport MemoryProfiler::detect_leaks() {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (leak_detector_) {
    return leak_detector_->detect();
  }
#endif
  LeakReport report;
  report.timestamp = std::chrono::system_clock::now();
  report.reason = RIPTIDE_PERF_HAS_MEMORY_PROFILING
                      ? "leak detection is off (profiling.enabled = false)"
                      : "built without heap profiling (RIPTIDE_PERF_MEMORY_PROFILING=OFF)";
  return report;
}

AllocationStats MemoryProfiler::get_allocation_stats() {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (allocation_analyzer_) {
    AllocationStats stats = allocation_analyzer_->analyze(tracker_->allocation_rate(kRecentRateWindow));
    if (lifetime_recorder_) {
      add_lifetimes(stats.top_allocators, lifetime_recorder_->latest());
      add_lifetimes(stats.top_allocators_by_bytes, lifetime_recorder_->latest());
    }
    return stats;
  }
#endif
  AllocationStats stats;
  stats.timestamp = std::chrono::system_clock::now();
  stats.reason = RIPTIDE_PERF_HAS_MEMORY_PROFILING ? "allocation analysis is off (profiling.enabled = false)"
                                                   : "built without heap profiling (RIPTIDE_PERF_MEMORY_PROFILING=OFF)";
  return stats;
}

ProfilingResult<HeapProfileDelta> MemoryProfiler::take_heap_profile_delta(
    [[maybe_unused]] std::chrono::nanoseconds duration, [[maybe_unused]] std::stop_token stop) {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (heap_profiles_) {
    return capture_heap_profile_delta(duration, config_.profiling.dump_directory, std::move(stop));
  }
  return ProfilingError{ProfilingErrorKind::unavailable, "heap profiles are off (profiling.enabled = false)",
                        "set profiling.enabled = true", 0};
#else
  return ProfilingError{ProfilingErrorKind::unavailable, "heap profiles are compiled out",
                        "build with RIPTIDE_PERF_MEMORY_PROFILING=ON", 0};
#endif
}

std::shared_ptr<const PeakHeapProfile> MemoryProfiler::peak_heap_profile() const {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (peak_recorder_) return peak_recorder_->latest();
#endif
  return nullptr;
}

std::shared_ptr<const MemorySnapshot> MemoryProfiler::latest_snapshot() {
  if (auto latest = tracker_->latest()) return latest;
  return std::make_shared<const MemorySnapshot>(get_current_snapshot());
}

MemoryState MemoryProfiler::assess(const PerformanceTargets& targets, std::shared_ptr<const MemorySnapshot> snapshot,
                                   [[maybe_unused]] const std::shared_ptr<LeakDetector>& leaks_from) {
  MemoryState state;
  state.taken_at = tracker_->clock().system_now();
  state.snapshot = snapshot ? std::move(snapshot) : latest_snapshot();
  state.allocation_rate = tracker_->allocation_rate(kRecentRateWindow);
  state.allocation_rate_baseline = tracker_->allocation_rate(kBaselineRateWindow);
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  state.heap_profiling_available = HeapProfilingControl::available();
  state.symbolizer = Symbolizer::shared().stats();
  const auto& detector = leaks_from ? leaks_from : leak_detector_;
  if (!detector) {
    state.leaks_unavailable_reason = "leak detection is off (profiling.enabled = false)";
  } else if (!state.heap_profiling_available) {
    state.leaks_unavailable_reason =
        "leak detection needs jemalloc's heap profiler: " + HeapProfilingControl::unavailable_error().to_string();
  } else {
    state.leaks = detector->latest();
    state.lifetimes = lifetime_recorder_ ? lifetime_recorder_->latest() : nullptr;
    if (!state.lifetimes) {
      state.lifetimes_unavailable_reason =
          "no lifetime reading yet: jemalloc's record of recent allocations is read every "
          "profiling.leak_detection_interval_sec while profiling runs";
    }
    if (!state.leaks) {
      state.leaks_unavailable_reason =
          "no leak observation yet: the leak detector observes every profiling.leak_detection_interval_sec while "
          "profiling runs (start_monitoring() or start_profiling() takes the first at once); detect_leaks() "
          "takes one now";
    }
  }
#else
  state.leaks_unavailable_reason = "leak detection is compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON";
#endif
  if (!state.lifetimes && state.lifetimes_unavailable_reason.empty()) {
    state.lifetimes_unavailable_reason =
        "allocation lifetimes come from jemalloc's heap profiler, as leaks do: " + state.leaks_unavailable_reason;
  }
  state.self_heap = self_heap();
  state.fragmentation = assess_fragmentation(*state.snapshot, allocator_tuning_);
  state.health =
      assess_memory_health({.snapshot = state.snapshot.get(),
                            .targets = targets,
                            .leaks = findings_of(state.leaks),
                            .allocation_rate = allocations_per_second(state.allocation_rate),
                            .allocation_rate_baseline = allocations_per_second(state.allocation_rate_baseline)});
  return state;
}

MemoryRelease MemoryProfiler::release_memory() {
  return release_free_memory(*tracker_);
}

}  // namespace riptide::performance
