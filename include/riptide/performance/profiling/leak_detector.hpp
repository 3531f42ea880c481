#pragma once
// Leak detection from jemalloc's sampling heap profiler: each observation records every allocation site's
// estimated in-use bytes; a site whose in-use bytes keep growing steadily (least-squares slope, fit
// quality R², enough observations and bytes) is reported as a leak suspect.
//
// Severity of a report (documented thresholds, see docs/profiling.md):
//   none   no suspects
//   low    suspects, total leaked < 16 MiB and total growth < 64 KiB/s
//   medium total leaked >= 16 MiB or total growth >= 64 KiB/s
//   high   total leaked >= 256 MiB or total growth >= 1 MiB/s

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/periodic_worker.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profile_cache.hpp"
#include "riptide/performance/profiling/profiling_error.hpp"
#include "riptide/performance/profiling/self_heap.hpp"

namespace riptide::performance {

class Symbolizer;

enum class LeakSeverity { none, low, medium, high };
[[nodiscard]] const char* to_string(LeakSeverity severity) noexcept;
/// The thresholds in the header comment, applied to a report's totals.
[[nodiscard]] LeakSeverity classify_leak_severity(std::uint64_t total_leaked_bytes,
                                                  double total_growth_bytes_per_sec) noexcept;

/// One suspected leak: an allocation site whose in-use bytes grow steadily.
struct MemoryLeak {
  std::string location;         ///< "function (file:line)": the program's own line that allocated
  std::string function;         ///< readable function name (templates and parameters elided)
  std::string function_full;    ///< the full demangled name (JSON function_full)
  std::string file;             ///< source file (empty without debug info)
  std::uint32_t line = 0;       ///< source line (0 without debug info)
  std::uint64_t size = 0;       ///< estimated bytes in use now (unbiased sample; see relative_error)
  std::uint64_t objects = 0;    ///< estimated objects in use now
  std::chrono::seconds age{0};  ///< now - allocation_time (JSON age_seconds)
  std::chrono::system_clock::time_point allocation_time{};  ///< earliest of: first seen growing, oldest live
                                                            ///< sampled allocation in prof_recent
  double growth_rate =
      0;                 ///< bytes per second (least-squares slope over the judged part of the history, leak_trend.hpp)
  double r_squared = 0;  ///< fit quality of the slope, 0-1; churn scores low, steady leaks near 1
  double confidence = 0;               ///< 0-1: r_squared weighted by observation count and sampling error
  double relative_error = 0;           ///< ~1/sqrt(samples behind `size`)
  std::uint64_t size_error_bytes = 0;  ///< one standard deviation of `size` from sampling (see UnbiasedCounts)
  std::uint32_t observations = 0;      ///< history points the verdict rests on (since the last release or change)
  std::vector<std::string> stack;      ///< symbolized frames, allocating call first
};

struct LeakReport {
  std::chrono::system_clock::time_point timestamp{};  ///< when the analysis ran
  bool available = false;                             ///< heap profiling works in this process
  std::string reason;                                 ///< why not (with the fix) when unavailable
  std::uint32_t leak_count = 0;                       ///< leaks.size()
  std::uint64_t total_leaked_bytes = 0;               ///< sum of leaks[i].size
  double total_growth_rate = 0;                       ///< sum of leaks[i].growth_rate, bytes/s
  LeakSeverity severity = LeakSeverity::none;         ///< see classify_leak_severity
  std::vector<MemoryLeak> leaks;                      ///< by size, largest first
  std::uint32_t observations = 0;                     ///< heap profiles taken so far (history depth)
  std::uint32_t tracked_sites = 0;                    ///< sites with history (bounded by max_tracked_sites)
  std::uint32_t max_tracked_sites = 0;                ///< the bound (profiling.max_tracked_sites)
  std::uint64_t dropped_sites = 0;                    ///< sites whose history the bound dropped (or never kept), so far
  std::uint32_t max_history_per_site = 0;             ///< observations kept per site (profiling.max_history_per_site)
  std::uint64_t dropped_history_points = 0;           ///< observations that bound pushed out of site histories, so far
  std::uint64_t sample_interval_bytes = 0;            ///< R of the profiles
  double interval_sec = 0;                            ///< configured observation period
};

class LeakDetector {
 public:
  /// `symbolizer` defaults to Symbolizer::shared(). Each observation is published to `profiles` so other
  /// readers of the heap reuse it; null: a private cache. `scheduler`: the thread the background
  /// observations run on (a PerformanceManager's); null: a thread of its own, `riptide-leaks`.
  explicit LeakDetector(ProfilingConfig config, const Clock& clock = system_clock(), Symbolizer* symbolizer = nullptr,
                        std::shared_ptr<HeapProfileCache> profiles = nullptr,
                        std::shared_ptr<PeriodicScheduler> scheduler = nullptr);
  ~LeakDetector();
  LeakDetector(const LeakDetector&) = delete;
  LeakDetector& operator=(const LeakDetector&) = delete;

  /// Takes a heap profile now and adds it to the history.
  [[nodiscard]] std::optional<ProfilingError> observe();
  /// Adds an already captured profile to the history, timed by the clock's now (tests, shared dumps).
  void observe(const HeapProfile& profile);

  /// Analyses the history so far. Does not take a profile.
  [[nodiscard]] LeakReport analyze() const;

  /// An explicit request: a fresh observation, then the analysis, published as latest()
  /// (MemoryProfiler::detect_leaks()).
  [[nodiscard]] LeakReport detect();

  /// Observes every config.leak_detection_interval_sec on an own thread and publishes the analysis.
  void start();
  void stop();
  /// The latest published analysis (background or detect()); null before the first.
  [[nodiscard]] std::shared_ptr<const LeakReport> latest() const;

  /// True while the background thread observes (start() called, stop() not yet).
  [[nodiscard]] bool running() const;
  /// Where the observations' profiles are published.
  [[nodiscard]] const std::shared_ptr<HeapProfileCache>& heap_profiles() const noexcept { return profiles_; }
  /// Forget all history (e.g. after HeapProfilingControl::reset changed the sampling interval).
  void clear();

  /// The library's own heap in the latest observation's profile (self_heap.hpp has the rule and its
  /// error); empty before the first observation.
  [[nodiscard]] std::optional<SelfHeapEstimate> self_heap() const;

 private:
  // One observation of a site: unbiased estimates, as float (their sampling error is percent, not 1e-7).
  struct Sample {
    float live_bytes = 0;
    float live_objects = 0;
  };
  // Every tracked site has one sample per observation since it was first seen (0 when absent from a dump),
  // so the samples are those of the last min(n, max_history_per_site) observations and their times come
  // from observation_times_.
  struct SiteHistory {
    std::vector<Sample> samples;  // ring of at most max_history_per_site; `head` is the oldest once full
    std::uint32_t head = 0;
    std::vector<std::uint64_t> stack;  // at most kMaxSiteStackFrames
    SiteLocation location;             // what the site is named by
    std::uint64_t sampled_live_objects = 0;
    double live_bytes_variance = 0;  // of the latest sample's bytes (UnbiasedCounts::live_bytes_variance)
    double first_seen_t_sec = 0;
    std::uint64_t last_seen_observation = 0;

    [[nodiscard]] std::size_t size() const { return samples.size(); }
    [[nodiscard]] const Sample& at(std::size_t i) const { return samples[(head + i) % samples.size()]; }
    [[nodiscard]] const Sample& back() const { return at(samples.size() - 1); }
  };

  void record_locked(const std::vector<HeapSite>& sites, double t_sec, std::uint64_t period);
  // Adds `sample` to the ring; true when the bound pushed the oldest out.
  bool push_locked(SiteHistory& history, Sample sample) const;
  // Drops histories so this dump's sites fit max_tracked_sites; returns this dump's sites not to record.
  std::unordered_set<std::uint64_t> make_room_locked(const std::vector<HeapSite>& sites);
  [[nodiscard]] double time_of_locked(const SiteHistory& history, std::size_t i) const;
  LeakReport analyze_locked() const;
  // The analysis after an observation that returned `error` (unavailable when no observation ever succeeded).
  [[nodiscard]] LeakReport analysis_after(const std::optional<ProfilingError>& error) const;
  void publish(LeakReport report);
  void observe_and_publish();

  ProfilingConfig config_;
  const Clock& clock_;
  Symbolizer* symbolizer_;
  std::shared_ptr<HeapProfileCache> profiles_;
  std::chrono::steady_clock::time_point origin_;

  mutable std::mutex mutex_;  // guards the history below
  std::unordered_map<std::uint64_t, SiteHistory> sites_;
  std::vector<double> observation_times_;  // t_sec of observation n at n % max_history_per_site
  std::uint64_t observations_ = 0;
  std::uint64_t sample_period_ = 0;
  std::uint64_t dropped_sites_ = 0;
  std::uint64_t dropped_points_ = 0;
  std::optional<SelfHeapEstimate> self_heap_;

  mutable std::mutex published_mutex_;
  std::shared_ptr<const LeakReport> latest_;

  PeriodicWorker observer_;  // last: stopped before the history it fills is destroyed
};

}  // namespace riptide::performance
