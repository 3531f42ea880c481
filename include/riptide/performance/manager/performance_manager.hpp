#pragma once
// The facade of the README's Quick Start: one object the host creates, starts, feeds with request and stage
// timings, asks for metrics and target status, and stops for a report.
//   auto manager = rp::PerformanceManager::create();       // defaults <- performance.toml <- env
//   manager->start_monitoring();
//   manager->record_request(latency);  { auto t = manager->time_stage("parse"); ... }
//   rp::Metrics m = manager->get_metrics();
//   rp::TargetStatus s = manager->check_targets();
//   rp::PerformanceReport r = manager->stop_monitoring();   // r.to_markdown()
//   nlohmann::json j = r;   // every value type here, with performance_json.hpp (ADL to_json)
//   manager->reload_config_file();   // e.g. on SIGHUP: new targets take effect, a bad file changes nothing
// Thread-safe. The hot-path calls (record_request, record_stage, time_stage) are noexcept, take no lock
// and allocate nothing once a stage name has been seen.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/periodic_worker.hpp"
#if RIPTIDE_PERF_HAS_CACHE
#include "riptide/performance/cache/cache_stats.hpp"
#include "riptide/performance/cache/tiered_cache.hpp"
#endif
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
#include "riptide/performance/limits/resource_limits.hpp"
#endif
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/memory/capture_store.hpp"
#include "riptide/performance/timing/cpu_profiler.hpp"
#include "riptide/performance/timing/latency_histogram.hpp"
#include "riptide/performance/timing/stage_timer.hpp"
#include "riptide/performance/timing/target_checker.hpp"
#include "riptide/performance/timing/throughput.hpp"

namespace riptide::performance {

struct PerformanceState;     // performance_state.hpp
class MemoryCaptureMonitor;  // memory_capture_monitor.hpp
class PrometheusWriter;

/// A reading of everything the targets are about. Latency, throughput and AI share cover the sliding
/// window (monitoring.throughput_window_sec); memory is the latest sampler snapshot. MB are MiB.
struct Metrics {
  std::chrono::system_clock::time_point timestamp;  ///< when the reading was made
  std::string allocator;                            ///< where heap figures come from ("jemalloc", "glibc", ...)

  std::optional<double> memory_rss_mb;      ///< resident set size
  std::optional<double> memory_virtual_mb;  ///< address space size
  std::optional<double> heap_mb;            ///< bytes the application holds (jemalloc stats.allocated)
  std::optional<std::uint64_t> heap_bytes;  ///< the same in bytes
  // jemalloc counters (empty under other allocators).
  std::optional<std::uint64_t> jemalloc_allocated_bytes;  ///< stats.allocated
  std::optional<std::uint64_t> jemalloc_active_bytes;     ///< stats.active
  std::optional<std::uint64_t> jemalloc_metadata_bytes;   ///< stats.metadata
  std::optional<std::uint64_t> jemalloc_resident_bytes;   ///< stats.resident
  std::optional<std::uint64_t> jemalloc_mapped_bytes;     ///< stats.mapped
  std::optional<std::uint64_t> jemalloc_retained_bytes;   ///< stats.retained
  /// Heap bytes held by riptide-performance itself: a sampled estimate (MemoryProfiler::self_heap_bytes);
  /// empty when heap profiling is unavailable or before the leak detector's first observation.
  std::optional<std::uint64_t> self_heap_bytes;

  std::optional<double> p50_latency_ms;              ///< windowed median request latency; empty without requests
  std::optional<double> p95_latency_ms;              ///< windowed tail latency
  std::optional<double> p99_latency_ms;              ///< windowed far tail
  std::optional<double> mean_latency_ms;             ///< windowed mean
  double throughput_pps = 0.0;                       ///< pages/s over the window (0 when nothing was recorded)
  std::optional<double> throughput_since_start_pps;  ///< pages/s since the manager was created
  std::uint64_t window_requests = 0;                 ///< requests in the window
  std::uint64_t total_requests = 0;                  ///< requests since the manager was created
  std::chrono::nanoseconds window{0};                ///< the window's real length
  std::optional<double> ai_overhead_percent;         ///< time in stage "ai" / request time * 100 (docs/timing.md)
  std::optional<std::string> bottleneck_stage;       ///< the stage with the most total time
#if RIPTIDE_PERF_HAS_CACHE
  std::optional<CacheStats> cache;  ///< the manager's cache (L1 + Redis); empty when cache.enabled is false
#endif
};

/// One target's violations seen over a monitoring session (by the periodic checks and the final one).
struct ViolationRecord {
  std::string target;                                ///< config key, e.g. "p95_latency_ms"
  std::chrono::system_clock::time_point first_seen;  ///< first check that found it violated
  std::chrono::system_clock::time_point last_seen;   ///< latest such check
  std::uint64_t checks_violated = 0;                 ///< checks that found it violated
  std::optional<double> worst_measured;              ///< furthest from the target
  double limit = 0;                                  ///< the target at the latest violation (reloads change it)
  std::string last_message;                          ///< sentence of the latest violation
};

/// Memory over a monitoring session, from the sampler's history. MB are MiB.
struct MemorySummary {
  std::size_t samples = 0;                 ///< snapshots the figures rest on
  std::optional<double> rss_start_mb;      ///< first sample of the session
  std::optional<double> rss_end_mb;        ///< last sample
  std::optional<double> rss_peak_mb;       ///< highest sample
  std::optional<double> rss_mean_mb;       ///< mean of the samples
  std::optional<double> heap_start_mb;     ///< first heap figure
  std::optional<double> heap_end_mb;       ///< last heap figure
  std::optional<double> heap_peak_mb;      ///< highest heap figure
  double heap_growth_bytes_per_sec = 0.0;  ///< least-squares slope of heap bytes over the session
  double heap_growth_r_squared = 0.0;      ///< how steady that slope is (1: a straight line)
  std::string trend;                       ///< "growing", "shrinking", "stable" or "unknown" (too few samples)
};

/// Request latency since the manager was created.
struct LatencySummary {
  std::uint64_t count = 0;        ///< requests recorded
  std::optional<double> mean_ms;  ///< exact mean
  std::optional<double> p50_ms;   ///< within 0.8%
  std::optional<double> p95_ms;   ///< within 0.8%
  std::optional<double> p99_ms;   ///< within 0.8%
  std::optional<double> max_ms;   ///< exact
};

struct PerformanceReport {
  std::string session_id;                             ///< the memory profiler's session (UUID v4)
  std::chrono::system_clock::time_point started_at;   ///< start_monitoring()
  std::chrono::system_clock::time_point ended_at;     ///< stop_monitoring()
  std::chrono::nanoseconds duration{0};               ///< ended_at - started_at (monotonic)
  PerformanceTargets targets;                         ///< what was judged against
  MemorySummary memory;                               ///< memory over the session
  LatencySummary latency;                             ///< request latency (cumulative)
  Throughput throughput;                              ///< window and since-start rates at the end
  StageBreakdown stages;                              ///< per-stage figures and the bottleneck
  TargetStatus final_status;                          ///< the check at stop time
  std::vector<ViolationRecord> violations_over_time;  ///< every target violated during the session
  /// Leak suspects at stop time when heap profiling is compiled in and profiling.enabled (else empty);
  /// `leaks->available` false with the reason when the process was not started with prof:true.
  std::optional<LeakReport> leaks;
  /// The heaviest allocation sites by estimated bytes (at most 10), same conditions as `leaks`.
  std::vector<AllocationSite> top_allocation_sites;
  std::vector<std::string> recommendations;  ///< what to look at first, most important first

  /// The report as JSON, the same as `nlohmann::json j = report;` (performance_json.hpp has the field list),
  /// the spelling every other type shares. Kept for one release as a forward.
  [[deprecated("use nlohmann::json j = report (ADL to_json)")]] [[nodiscard]] nlohmann::json to_json() const;
  /// The report as a Markdown document for people (tables and lists).
  [[nodiscard]] std::string to_markdown() const;
};

/// What reload_config() changed. Keys are dotted ("targets.p95_latency_ms"), in the order of the key table.
struct ConfigReload {
  std::vector<std::string> applied;           ///< changed keys now in effect
  std::vector<std::string> restart_required;  ///< changed keys fixed for the manager's lifetime: old values stay
};

/// Reload attempts since the manager was created (GET /metrics: riptide_config_reloads_total and
/// riptide_config_last_reload_successful, so an alert can fire on a refused reload).
struct ConfigReloadCounts {
  std::uint64_t applied = 0;  ///< reloads that validated (whatever they changed)
  std::uint64_t refused = 0;  ///< reloads refused with a ConfigError (nothing changed)
  bool last_refused = false;  ///< the latest reload was refused; false before any
};

class PerformanceManager {
 public:
  /// Configuration from Config::load(path): defaults <- performance.toml <- RIPTIDE_PERF_* variables.
  /// Throws ConfigError naming source, key, value and what is accepted.
  [[nodiscard]] static std::shared_ptr<PerformanceManager> create(
      const std::optional<std::filesystem::path>& config_path = std::nullopt);
  /// As create(), then `targets` (values set in code win); throws ConfigError when they are inconsistent.
  [[nodiscard]] static std::shared_ptr<PerformanceManager> with_targets(const PerformanceTargets& targets);
  /// Everything explicit (tests drive `clock`, which must outlive the manager). Validates `config`.
  [[nodiscard]] static std::shared_ptr<PerformanceManager> with_config(const Config& config,
                                                                       const Clock& clock = system_clock());

  ~PerformanceManager();
  PerformanceManager(const PerformanceManager&) = delete;
  PerformanceManager& operator=(const PerformanceManager&) = delete;

  /// Starts the memory sampler (when monitoring.enabled) and the checker thread, which every
  /// sample_interval advances the latency windows and checks the targets. Idempotent.
  void start_monitoring();
  /// Stops both threads and returns the report of the session. Safe to call when not monitoring.
  PerformanceReport stop_monitoring();
  [[nodiscard]] bool is_monitoring() const;

  [[nodiscard]] Metrics get_metrics();
  /// Every target judged against get_metrics() now. A read: the violation history of the report and the
  /// logged alerts come from the periodic checks (tick()) and the final check of stop_monitoring() only,
  /// so however often the host, /metrics/performance or a scraper asks, the history counts the same.
  [[nodiscard]] TargetStatus check_targets();

  /// Hot path: one request (= one page) took `latency`.
  void record_request(std::chrono::nanoseconds latency) noexcept { requests_.record(latency); }
  /// Hot path: stage `name` took `duration` (e.g. "fetch", "parse", "ai").
  void record_stage(std::string_view name, std::chrono::nanoseconds duration) noexcept {
    stages_.record(name, duration);
  }
  /// Hot path: times stage `name` until the returned timer is destroyed.
  [[nodiscard]] StageTimer time_stage(std::string_view name) noexcept { return stages_.time(name); }

  /// One step of the checker thread: advance the latency and limit windows; while monitoring, check the
  /// targets, remember violations, log those that start (monitoring.alert_on_violations) and publish the
  /// new state. The only periodic writer of what readers see. Tests call it on a driven clock.
  void tick();

  /// What every reader serializes (performance_state.hpp): while monitoring, the state the latest periodic
  /// check or reload published (at most monitoring.sample_interval_sec old); otherwise, or before the first check, a
  /// reading assembled now (`published` false). A read: it never changes the violation history, the limit
  /// windows, the leak history or the logs, however often it is called. Thread-safe.
  [[nodiscard]] std::shared_ptr<const PerformanceState> state();
  /// Every riptide_* family of state() in the Prometheus text format (what GET /metrics serves).
  void write_prometheus(PrometheusWriter& out);

  // Actions: each changes something on purpose, and the HTTP routes that trigger them only call these.
  /// Asks the allocator to return free pages to the OS (POST /metrics/memory/gc); `performed` false with the
  /// reason under an allocator that cannot.
  [[nodiscard]] MemoryRelease release_memory() { return profiler_.release_memory(); }
  /// A heap profile taken now, added to the leak history and analysed (MemoryProfiler::detect_leaks()).
  [[nodiscard]] LeakReport detect_leaks_now() { return profiler_.detect_leaks(); }
  /// A CPU profile of the whole process over `duration` (gperftools; GET /debug/pprof/profile). Blocks for
  /// `duration`; one at a time per process (`busy` otherwise).
  [[nodiscard]] CpuProfileResult take_cpu_profile(std::chrono::nanoseconds duration) {
    return CpuProfiler::profile(duration);
  }
  /// What changed on the heap over `duration`: two fresh heap profiles and their difference
  /// (MemoryProfiler::take_heap_profile_delta; GET /debug/pprof/heap?seconds=N). Blocks for `duration`.
  [[nodiscard]] ProfilingResult<HeapProfileDelta> take_heap_profile_delta(std::chrono::nanoseconds duration,
                                                                          std::stop_token stop = {}) {
    return profiler_.take_heap_profile_delta(duration, std::move(stop));
  }

  /// Writes a memory capture now (heap profile, snapshot and leak report in profiling.capture_dir;
  /// docs/captures.md), whatever the thresholds; it starts the interval before the next automatic one.
  /// `performed` false with the reason when captures are off or the disk bounds refuse it; throws Error
  /// when writing fails.
  CaptureOutcome capture_now(const std::string& reason = {});
  /// The captures: their published list, status and files (GET /metrics/memory/captures reads these).
  [[nodiscard]] const MemoryCaptureMonitor& memory_captures() const noexcept { return *captures_; }

#if RIPTIDE_PERF_HAS_CACHE
  /// The manager's two-level cache, built from [cache] and [redis] (null when cache.enabled is false).
  /// The host caches through it so its figures reach get_metrics() and optimize_cache().
  [[nodiscard]] TieredCache* cache() noexcept {
    return cache_.get();
  }
#endif
  /// Recommendations from the cache statistics (CacheAdvisor), most important first.
  [[nodiscard]] std::vector<std::string> optimize_cache() const;

#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
  // Resource limits of [limits] (docs/limits.md); thread-safe.
  /// A request slot plus a global rate cell, waiting as long as needed; RAII, move-only.
  [[nodiscard]] RequestPermit acquire_request_permit() {
    return limits_->acquire_request_permit();
  }
  /// The same, giving up after `timeout` (an empty permit; `rate_limited` says which limit refused).
  [[nodiscard]] RequestPermit acquire_request_permit(std::chrono::nanoseconds timeout) {
    return limits_->acquire_request_permit(timeout);
  }
  [[nodiscard]] RequestPermit try_acquire_request_permit() noexcept {
    return limits_->try_acquire_request_permit();
  }
  /// Per-client limit of `client`; without one, a cell of the global limit.
  [[nodiscard]] RateDecision check_rate_limits(std::optional<std::string_view> client = std::nullopt) noexcept {
    return limits_->check_rate_limits(client);
  }
  /// Outcome of a call to `service` for its circuit breaker (durations decide "slow").
  void record_success(std::string_view service, std::chrono::nanoseconds duration = {}) {
    limits_->record_success(service, duration);
  }
  void record_failure(std::string_view service, std::chrono::nanoseconds duration = {}) {
    limits_->record_failure(service, duration);
  }
  /// Whether `service`'s circuit breaker lets a call through now.
  [[nodiscard]] bool allow_call(std::string_view service) {
    return limits_->allow_call(service);
  }
  /// Concurrency, rates, breakers now, and the refusals of the latest window the checker closed. A read.
  [[nodiscard]] ResourceUsage get_resource_usage() const {
    return limits_->get_resource_usage();
  }
  [[nodiscard]] ResourceLimits& resource_limits() noexcept {
    return *limits_;
  }
#endif

  /// The body of GET /metrics/performance: state() as JSON. A read.
  [[nodiscard]] nlohmann::json performance_json();

  // Reloading. Keys that can change while running: every targets.* key and monitoring.alert_on_violations
  // (is_reloadable_key). The others size or wire components built once (sampler, histograms, cache, limits,
  // server) and need a new manager; a reload reports them and keeps their old values.
  /// Validates `candidate` as a whole, then applies its reloadable keys at once: the next check judges against
  /// them. Throws ConfigError (naming key, value and what is accepted) and changes nothing when any key of
  /// `candidate` is invalid, including keys that would need a restart. Logs what changed.
  ConfigReload reload_config(const Config& candidate);
  /// Config::load(path) (defaults <- file <- RIPTIDE_PERF_* variables), then reload_config(). Without
  /// `path`: the path given to create(), else $RIPTIDE_PERF_CONFIG or ./performance.toml, as a load looks
  /// them up. A missing, unreadable or invalid file throws ConfigError; the running values stay.
  ConfigReload reload_config_file(const std::optional<std::filesystem::path>& path = std::nullopt);
  /// Whether reload_config() applies `dotted_key` ("targets.p50_latency_ms") to a running manager.
  [[nodiscard]] static bool is_reloadable_key(std::string_view dotted_key) noexcept;
  /// Reloads applied and refused so far.
  [[nodiscard]] ConfigReloadCounts config_reloads() const;

  /// The configuration in effect now (a copy: a reload may change the targets at any time).
  [[nodiscard]] Config config() const;
  /// The targets in effect now.
  [[nodiscard]] PerformanceTargets targets() const;
  [[nodiscard]] const std::string& session_id() const noexcept {
    return profiler_.session_id();
  }
  /// Heap bytes held by riptide-performance itself (MemoryProfiler::self_heap_bytes): a sampled estimate,
  /// empty (never 0) when heap profiling is unavailable.
  [[nodiscard]] std::optional<std::uint64_t> self_heap_bytes() const {
    return profiler_.self_heap_bytes();
  }
  [[nodiscard]] MemoryProfiler& memory_profiler() noexcept {
    return profiler_;
  }
  [[nodiscard]] LatencyHistogram& request_histogram() noexcept {
    return requests_;
  }
  [[nodiscard]] StageRegistry& stages() noexcept {
    return stages_;
  }
  [[nodiscard]] const Clock& clock() const noexcept {
    return clock_;
  }

 private:
  struct PrivateTag {};

 public:
  PerformanceManager(PrivateTag, const Config& config, const Clock& clock);

 private:
  [[nodiscard]] TargetMeasurements measurements_from(const Metrics& metrics) const;
  [[nodiscard]] TargetStatus evaluate(const Metrics& metrics, const PerformanceTargets& targets) const;
  // The only place that changes the violation history and logs alerts: the periodic check and the final one.
  TargetStatus check_and_note(const Metrics& metrics, const PerformanceTargets& targets);
  [[nodiscard]] bool alert_on_violations() const;
  // Counts a ConfigError from `validated_candidate` as a refused reload (and rethrows it), else applies.
  ConfigReload reload_from(const std::function<Config()>& validated_candidate);
  ConfigReload apply_validated(const Config& candidate);
  void note_status(const TargetStatus& status, std::chrono::system_clock::time_point now);
  [[nodiscard]] MemorySummary memory_summary(std::chrono::nanoseconds duration) const;
  // What a state is assembled for: the periodic check (notes violations, logs alerts), a reload (publishes
  // the new targets at once, judged without noting) or a reader's own reading (not published).
  enum class StateKind { periodic_check, after_reload, reading };
  void republish();
  void publish(std::shared_ptr<const PerformanceState> state);
  [[nodiscard]] std::shared_ptr<const PerformanceState> assemble(StateKind kind);
  // The metrics of one memory reading (get_metrics() and every assembled state).
  [[nodiscard]] Metrics metrics_of(const MemorySnapshot& snapshot);

  mutable std::mutex config_mutex_;  // guards config_ against reload_config()
  Config config_;                    // only reloadable keys ever change; the rest may be read without the lock
  ConfigReloadCounts reloads_;       // guarded by config_mutex_
  std::optional<std::filesystem::path> config_path_;  // create()'s explicit file, for reload_config_file()
  const Clock& clock_;
  // The one thread of the periodic work: memory sampling, leak observations and the checks that publish.
  std::shared_ptr<PeriodicScheduler> scheduler_;
  MemoryProfiler profiler_;
  LatencyHistogram requests_;
  StageRegistry stages_;
  // The check before the OOM killer: a job on scheduler_; destroyed (and stopped) before profiler_.
  std::unique_ptr<MemoryCaptureMonitor> captures_;
#if RIPTIDE_PERF_HAS_CACHE
  std::unique_ptr<TieredCache> cache_;  // built before the threads start; never replaced
#endif
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
  std::unique_ptr<ResourceLimits> limits_;  // never null; never replaced
#endif

  mutable std::mutex state_mutex_;  // session times, violation history, previous states
  bool monitoring_ = false;
  std::chrono::system_clock::time_point started_at_;
  std::chrono::steady_clock::time_point started_steady_;
  std::map<std::string, ViolationRecord> violations_;
  std::map<std::string, TargetState> last_states_;
  bool memory_alert_active_ = false;

  mutable std::mutex published_mutex_;
  std::shared_ptr<const PerformanceState> published_;  // the latest periodic check's; null between sessions

  PeriodicWorker checker_;  // last: stopped before the state its ticks read
};

}  // namespace riptide::performance
