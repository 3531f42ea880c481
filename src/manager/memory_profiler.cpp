#include "riptide/performance/manager/memory_profiler.hpp"

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/uuid.hpp"
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#endif

namespace riptide::performance {

MemoryProfiler::MemoryProfiler() : MemoryProfiler(make_uuid_v4()) {}

MemoryProfiler::MemoryProfiler(std::string session_id) : MemoryProfiler(std::move(session_id), Config{}) {}

MemoryProfiler::MemoryProfiler(std::string session_id, const Config& config, const Clock& clock)
    : session_id_(std::move(session_id)), config_(config) {
  if (session_id_.empty()) {
    throw ConfigError({.source = "code",
                       .key = "session_id",
                       .value = "",
                       .problem = "must not be empty",
                       .accepted = "any non-empty text, usually a UUID v4"});
  }
  tracker_ = std::make_unique<MemoryTracker>(MemoryTrackerOptions::from_config(config_), clock);
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (config_.profiling.enabled) {
    heap_profiles_ = std::make_shared<HeapProfileCache>(config_.profiling.dump_directory, clock);
    leak_detector_ = std::make_shared<LeakDetector>(config_.profiling, clock, nullptr, heap_profiles_);
    allocation_analyzer_ = std::make_shared<AllocationAnalyzer>(config_.profiling, clock, nullptr, 20, heap_profiles_);
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
#endif
}

void MemoryProfiler::stop_profiling() noexcept {
  tracker_->stop();
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING  // compiled out, the profiling library (and these members) stay empty
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
    return allocation_analyzer_->analyze();
  }
#endif
  AllocationStats stats;
  stats.timestamp = std::chrono::system_clock::now();
  stats.reason = RIPTIDE_PERF_HAS_MEMORY_PROFILING ? "allocation analysis is off (profiling.enabled = false)"
                                                   : "built without heap profiling (RIPTIDE_PERF_MEMORY_PROFILING=OFF)";
  return stats;
}

}  // namespace riptide::performance
