#pragma once
// The lower-level API: a profiling session with its own id that watches the process's memory.
//   rp::MemoryProfiler profiler;               // session id: a fresh UUID v4
//   profiler.start_profiling();                // starts the background sampler
//   rp::MemorySnapshot s = profiler.get_current_snapshot();   // s.rss_bytes, s.heap_bytes
//   auto trend = profiler.tracker().trend(std::chrono::hours{1}, std::chrono::minutes{1});
//   rp::LeakReport leaks = profiler.detect_leaks();            // leaks.leak_count, leaks.leaks[i].location
//   rp::AllocationStats stats = profiler.get_allocation_stats();  // stats.top_allocators[i].count

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/periodic_scheduler.hpp"
#include "riptide/performance/manager/memory_state.hpp"
#include "riptide/performance/memory/memory_release.hpp"
#include "riptide/performance/memory/memory_snapshot.hpp"
#include "riptide/performance/memory/memory_tracker.hpp"
#include "riptide/performance/profiling/allocation_analyzer.hpp"
#include "riptide/performance/profiling/heap_profile_delta.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"
#include "riptide/performance/profiling/peak_heap_profile.hpp"
#include "riptide/performance/profiling/self_heap.hpp"

namespace riptide::performance {

class MemoryProfiler {
 public:
  /// A session with a fresh UUID v4 id and the built-in defaults.
  MemoryProfiler();
  /// A session with the host's id (any non-empty text; MemoryProfiler's own are UUID v4) and the built-in defaults.
  explicit MemoryProfiler(std::string session_id);
  /// Everything explicit; `clock` must outlive the profiler. Throws ConfigError for bad monitoring values
  /// or an empty session id. `scheduler`: the thread the sampler and the leak observations run on (a
  /// PerformanceManager passes its own); null: each on a thread of its own.
  MemoryProfiler(std::string session_id, const Config& config, const Clock& clock = system_clock(),
                 std::shared_ptr<PeriodicScheduler> scheduler = nullptr);
  ~MemoryProfiler();
  MemoryProfiler(const MemoryProfiler&) = delete;
  MemoryProfiler& operator=(const MemoryProfiler&) = delete;

  /// Starts the background sampler (idempotent).
  void start_profiling();
  /// Stops the sampler and joins it; history stays readable (idempotent).
  void stop_profiling() noexcept;
  [[nodiscard]] bool is_profiling() const noexcept;

  /// A fresh snapshot taken now (jemalloc epoch refreshed: it is an explicit request), not recorded in
  /// the history. Works whether or not profiling was started.
  [[nodiscard]] MemorySnapshot get_current_snapshot();

  /// The sampler's latest snapshot; before its first (or without the sampler), a fresh reading. Not recorded in
  /// the history.
  [[nodiscard]] std::shared_ptr<const MemorySnapshot> latest_snapshot();
  /// Everything the memory endpoints show, assembled now and judged against `targets`: `snapshot` (empty:
  /// latest_snapshot()), allocation rates over the last minute and the retained history, the leak detector's
  /// latest report (never a new observation; `leaks_from`: a detector the host runs itself instead of the
  /// profiler's), the library's own heap and the health verdict. A read: it changes nothing any later reading
  /// reports.
  [[nodiscard]] MemoryState assess(const PerformanceTargets& targets,
                                   std::shared_ptr<const MemorySnapshot> snapshot = nullptr,
                                   const std::shared_ptr<LeakDetector>& leaks_from = nullptr);
  /// The action behind POST /metrics/memory/gc: asks the allocator to return free pages to the OS
  /// (memory_release.hpp). `performed` is false, with the reason, under an allocator that cannot.
  [[nodiscard]] MemoryRelease release_memory();

  /// Takes a heap profile now and analyses it with the history gathered every
  /// profiling.leak_detection_interval_sec while profiling runs. Without jemalloc's profiler (or with
  /// profiling.enabled = false) the report says available = false with the reason and the fix.
  [[nodiscard]] LeakReport detect_leaks();
  /// Exact totals, rates (over the last minute of the sampler's history; over the process lifetime before
  /// two samples exist) and size distribution from jemalloc's counters plus the top allocation sites from
  /// the sampled heap profile. A read: asking twice gives the same rates.
  [[nodiscard]] AllocationStats get_allocation_stats();
  /// Heap bytes held by riptide-performance itself (its own allocations, not the host's values in its cache
  /// containers): a sampled estimate from the leak detector's latest heap profile (self_heap.hpp has the
  /// rule; its error is about 1/sqrt(samples), see self_heap()). Empty, never 0, when heap profiling is not
  /// available (compiled out, profiling.enabled = false, process not started with prof:true) or before the
  /// detector's first observation (start_profiling() takes one at once).
  [[nodiscard]] std::optional<std::uint64_t> self_heap_bytes() const;
  /// The same estimate with its error, samples and heaviest library call sites.
  [[nodiscard]] std::optional<SelfHeapEstimate> self_heap() const;
  /// The leak detector behind detect_leaks(); null when heap profiling is compiled out or disabled.
  [[nodiscard]] std::shared_ptr<LeakDetector> leak_detector() const noexcept { return leak_detector_; }
  /// The analyzer behind get_allocation_stats(); null when heap profiling is compiled out or disabled.
  [[nodiscard]] std::shared_ptr<AllocationAnalyzer> allocation_analyzer() const noexcept {
    return allocation_analyzer_;
  }
  /// The heap profile shared by leak detection, allocation analysis and /debug/pprof/heap; null when heap
  /// profiling is compiled out or disabled.
  [[nodiscard]] std::shared_ptr<HeapProfileCache> heap_profiles() const noexcept { return heap_profiles_; }
  /// The action behind GET /debug/pprof/heap?seconds=N: a fresh heap profile now, another after `duration`,
  /// and their difference (heap_profile_delta.hpp). Blocks for `duration`; `stop` ends the wait early
  /// (`interrupted`). Unavailable, with the reason, when heap profiling is off or compiled out.
  [[nodiscard]] ProfilingResult<HeapProfileDelta> take_heap_profile_delta(std::chrono::nanoseconds duration,
                                                                          std::stop_token stop = {});
  /// The heap profile taken at the highest heap the sampler has seen (peak_heap_profile.hpp): captured on the
  /// sampler's thread while profiling runs, each time the heap rises above the last one by
  /// profiling.peak_profile_growth. Null before the first capture.
  [[nodiscard]] std::shared_ptr<const PeakHeapProfile> peak_heap_profile() const;
  /// The recorder behind peak_heap_profile(); null when heap profiling is compiled out or disabled, or
  /// profiling.peak_profile_growth is 0.
  [[nodiscard]] std::shared_ptr<PeakHeapRecorder> peak_recorder() const noexcept { return peak_recorder_; }

  [[nodiscard]] MemoryTracker& tracker() noexcept { return *tracker_; }
  [[nodiscard]] const MemoryTracker& tracker() const noexcept { return *tracker_; }
  [[nodiscard]] const std::string& session_id() const noexcept { return session_id_; }
  /// The configuration the profiler was built with. It sizes the sampler and the leak detector, which are
  /// built once; targets come from the caller of assess() (a PerformanceManager passes the reloaded ones).
  [[nodiscard]] const Config& config() const noexcept { return config_; }

 private:
  std::string session_id_;
  Config config_;
  std::unique_ptr<MemoryTracker> tracker_;
  AllocatorTuning allocator_tuning_ = AllocatorTuning::read();  // jemalloc's options: fixed at start
  // shared_ptr: its deleter is bound where it is created, so builds without the profiling area still link.
  std::shared_ptr<HeapProfileCache> heap_profiles_;
  std::shared_ptr<LeakDetector> leak_detector_;
  std::shared_ptr<AllocationAnalyzer> allocation_analyzer_;
  std::shared_ptr<PeakHeapRecorder> peak_recorder_;
  std::shared_ptr<LifetimeRecorder> lifetime_recorder_;  // reads tracker_: declared after it, stopped first
};

}  // namespace riptide::performance
