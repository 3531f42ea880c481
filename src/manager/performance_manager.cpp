#include "riptide/performance/manager/performance_manager.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "riptide/performance/core/duration.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/core/time_format.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/manager/memory_capture_monitor.hpp"
#include "riptide/performance/manager/performance_json.hpp"
#include "riptide/performance/manager/performance_state.hpp"
#if RIPTIDE_PERF_HAS_CACHE
#include "riptide/performance/cache/cache_advisor.hpp"
#endif
#include "riptide/performance/memory/memory_trend.hpp"
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS && RIPTIDE_PERF_HAS_REDIS
#include "riptide/performance/redis/redis_client.hpp"
#endif

namespace riptide::performance {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
// The distributed rate limit's own connection pool (limits.distributed with a redis.url); null otherwise,
// and ResourceLimits then limits per process.
std::shared_ptr<RedisClient> limits_redis_client(const Config& config) {
#if RIPTIDE_PERF_HAS_REDIS
  if (config.limits.distributed && !config.redis.url.empty()) return std::make_shared<RedisClient>(config.redis);
#else
  (void)config;
#endif
  return nullptr;
}
#endif

std::optional<double> to_mb(const std::optional<std::uint64_t>& bytes) {
  if (!bytes) {
    return std::nullopt;
  }
  return static_cast<double>(*bytes) / kMiB;
}

LatencyHistogram::Options histogram_options(const Config& config) {
  LatencyHistogram::Options options;
  options.window = seconds_to_duration(config.monitoring.throughput_window_sec);
  options.sub_windows = 6;
  return options;
}

std::string fixed1(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1f", value);
  return buffer;
}

std::string join(const std::vector<std::string>& keys) {
  std::string text;
  for (const auto& key : keys) {
    if (!text.empty()) text += ", ";
    text += key;
  }
  return text;
}

const TargetCheck* find_check(const TargetStatus& status, std::string_view key) {
  for (const auto& check : status.checks) {
    if (check.target == key) {
      return &check;
    }
  }
  return nullptr;
}

std::vector<std::string> make_recommendations(const PerformanceReport& report) {
  std::vector<std::string> tips;
  const auto violated = [&](std::string_view key) {
    const auto* check = find_check(report.final_status, key);
    if (check != nullptr && check->state == TargetState::violated) {
      return true;
    }
    return std::any_of(report.violations_over_time.begin(), report.violations_over_time.end(),
                       [&](const ViolationRecord& r) { return r.target == key; });
  };
  const StageStats* bottleneck = nullptr;
  if (report.stages.bottleneck) {
    for (const auto& stage : report.stages.stages) {
      if (stage.name == *report.stages.bottleneck) {
        bottleneck = &stage;
      }
    }
  }
  const auto bottleneck_text = [&]() -> std::string {
    if (bottleneck == nullptr) {
      return "time the work of a request with time_stage(\"fetch\"), time_stage(\"parse\"), ... to see where it goes";
    }
    std::string text = "stage \"" + bottleneck->name + "\" is the bottleneck";
    if (bottleneck->share_percent) {
      text += " (" + fixed1(*bottleneck->share_percent) + "% of request time";
      if (bottleneck->p95_ms) {
        text += ", p95 " + fixed1(*bottleneck->p95_ms) + " ms";
      }
      text += ")";
    }
    return text + ": start there";
  };

  if (report.latency.count == 0) {
    tips.push_back(
        "No requests were recorded: call record_request(latency) once per page so latency and throughput "
        "targets can be judged.");
  }
  if (violated("p50_latency_ms") || violated("p95_latency_ms")) {
    tips.push_back("Request latency exceeded its target: " + bottleneck_text() + ".");
  }
  if (violated("max_ai_overhead_percent")) {
    std::string text =
        "The \"ai\" stage took more than " + fixed1(report.targets.max_ai_overhead_percent) + "% of request time";
    if (report.stages.ai_overhead_percent) {
      text += " (" + fixed1(*report.stages.ai_overhead_percent) + "% overall)";
    }
    tips.push_back(text + ": cache AI results, batch calls, or skip AI for pages that do not need it.");
  }
  if (violated("min_throughput_pps")) {
    tips.push_back("Throughput fell below " + fixed1(report.targets.min_throughput_pps) +
                   " pages/s: if CPU is not saturated raise limits.max_concurrent_requests; otherwise " +
                   bottleneck_text() + ".");
  }
  if (violated("max_memory_mb")) {
    std::string text = "RSS went above the " + std::to_string(report.targets.max_memory_mb) + " MB target";
    if (report.memory.rss_peak_mb) {
      text += " (peak " + fixed1(*report.memory.rss_peak_mb) + " MB)";
    }
    tips.push_back(text +
                   ": lower cache.max_size_mb or limits.max_concurrent_requests, and check "
                   "GET /metrics/memory/leaks for sites that keep growing.");
  }
  if (report.leaks && report.leaks->leak_count > 0 && !report.leaks->leaks.empty()) {
    const auto& largest = report.leaks->leaks.front();
    tips.push_back(std::to_string(report.leaks->leak_count) + " suspected leak(s), " +
                   fixed1(static_cast<double>(report.leaks->total_leaked_bytes) / kMiB) +
                   " MB in all; the largest at " + largest.location + " grows by " +
                   fixed1(largest.growth_rate / 1024.0) + " KiB/s: see GET /metrics/memory/leaks.");
  }
  if (report.memory.trend == "growing") {
    tips.push_back("The heap grew steadily during the session (" +
                   fixed1(report.memory.heap_growth_bytes_per_sec * 60.0 / kMiB) + " MB/min, R² " +
                   fixed1(report.memory.heap_growth_r_squared) +
                   "): look for leaks with detect_leaks() or GET /metrics/memory/leaks.");
  }
  if (report.stages.dropped_records > 0) {
    tips.push_back(std::to_string(report.stages.dropped_records) + " stage timings were dropped: use at most " +
                   std::to_string(StageRegistry::kMaxStages) + " stage names of at most " +
                   std::to_string(StageRegistry::kMaxNameLength) + " characters.");
  }
  return tips;
}

}  // namespace

std::shared_ptr<PerformanceManager> PerformanceManager::create(
    const std::optional<std::filesystem::path>& config_path) {
  auto manager = with_config(Config::load(config_path));
  manager->config_path_ = config_path;  // before anyone else sees the manager
  return manager;
}

std::shared_ptr<PerformanceManager> PerformanceManager::with_targets(const PerformanceTargets& targets) {
  Config config = Config::load();
  config.targets = targets;
  return with_config(config);
}

std::shared_ptr<PerformanceManager> PerformanceManager::with_config(const Config& config, const Clock& clock) {
  config.validate("code");
  return std::make_shared<PerformanceManager>(PrivateTag{}, config, clock);
}

PerformanceManager::PerformanceManager(PrivateTag, const Config& config, const Clock& clock)
    : config_(config),
      clock_(clock),
      scheduler_(std::make_shared<PeriodicScheduler>("riptide-periodic")),
      profiler_(make_uuid_v4(), config, clock, scheduler_),
      requests_(clock, histogram_options(config)),
      stages_(clock, histogram_options(config)),
      captures_(std::make_unique<MemoryCaptureMonitor>(config, profiler_, profiler_.session_id(), clock, scheduler_,
                                                       [this] { return targets(); })),
#if RIPTIDE_PERF_HAS_CACHE
      cache_(config.cache.enabled ? TieredCache::from_config(config.cache, config.redis) : nullptr),
#endif
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
      limits_(std::make_unique<ResourceLimits>(config.limits, clock, limits_redis_client(config))),
#endif
      started_at_(clock.system_now()),
      started_steady_(clock.steady_now()),
      checker_(
          scheduler_, "riptide-checker",
          std::max(seconds_to_duration(config.monitoring.sample_interval_sec),
                   std::chrono::nanoseconds{std::chrono::milliseconds{10}}),
          [this] { tick(); }, PeriodicWorker::FirstRun::after_interval) {
}

PerformanceManager::~PerformanceManager() {
  checker_.stop();
  captures_->stop();
  profiler_.stop_profiling();
}

void PerformanceManager::start_monitoring() {
  {
    const std::lock_guard lock(state_mutex_);
    if (monitoring_) {
      return;
    }
    monitoring_ = true;
    started_at_ = clock_.system_now();
    started_steady_ = clock_.steady_now();
    violations_.clear();
    last_states_.clear();
    memory_alert_active_ = false;
  }
  {
    const std::lock_guard lock(published_mutex_);
    published_.reset();  // a new session: nothing published yet
  }
  if (config_.monitoring.enabled) {
    profiler_.start_profiling();
  }
  try {
    checker_.start();
    captures_->start();
  } catch (const Error&) {
    checker_.stop();
    const std::lock_guard state(state_mutex_);
    monitoring_ = false;
    throw;
  }
}

bool PerformanceManager::is_monitoring() const {
  const std::lock_guard lock(state_mutex_);
  return monitoring_;
}

void PerformanceManager::tick() {
  requests_.advance();
  stages_.advance();
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
  limits_->advance_window();
#endif
  if (is_monitoring()) publish(assemble(StateKind::periodic_check));
}

void PerformanceManager::republish() {
  // Not monitoring: readers assemble their own reading until the next session's first check.
  if (is_monitoring()) publish(assemble(StateKind::after_reload));
}

void PerformanceManager::publish(std::shared_ptr<const PerformanceState> state) {
  const std::lock_guard lock(published_mutex_);
  published_ = std::move(state);
}

std::shared_ptr<const PerformanceState> PerformanceManager::state() {
  if (is_monitoring()) {
    const std::lock_guard lock(published_mutex_);
    if (published_) return published_;
  }
  return assemble(StateKind::reading);
}

std::shared_ptr<const PerformanceState> PerformanceManager::assemble(StateKind kind) {
  // One memory reading serves the metrics and the memory state, so both describe the same moment.
  const std::shared_ptr<const MemorySnapshot> snapshot = profiler_.latest_snapshot();
  PerformanceState state;
  state.metrics = metrics_of(*snapshot);
  state.targets = targets();
  // Only the periodic check counts violations and logs alerts; a reload or a reading judges without noting.
  state.status = kind == StateKind::periodic_check ? check_and_note(state.metrics, state.targets)
                                                   : evaluate(state.metrics, state.targets);
  state.taken_at = state.metrics.timestamp;
  state.published = kind != StateKind::reading;
  state.session_id = session_id();
  const HistogramSnapshot cumulative = requests_.cumulative();
  state.stages = stages_.breakdown(std::chrono::nanoseconds{static_cast<std::int64_t>(cumulative.sum_ns)});
  {
    const std::lock_guard lock(state_mutex_);
    state.monitoring = monitoring_;
    for (const auto& [key, record] : violations_) state.violations.push_back(record);
  }
  state.reloads = config_reloads();
  state.memory = profiler_.assess(state.targets, snapshot);
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
  state.resources = limits_->get_resource_usage();
#endif
  return std::make_shared<const PerformanceState>(std::move(state));
}

void PerformanceManager::write_prometheus(PrometheusWriter& out) {
  riptide::performance::write_prometheus(out, *state());
}

Metrics PerformanceManager::get_metrics() {
  return metrics_of(*profiler_.latest_snapshot());
}

Metrics PerformanceManager::metrics_of(const MemorySnapshot& snapshot) {
  Metrics m;
  m.timestamp = clock_.system_now();
  m.allocator = snapshot.allocator;
  m.memory_rss_mb = to_mb(snapshot.rss_bytes);
  m.memory_virtual_mb = to_mb(snapshot.virtual_bytes);
  m.heap_bytes = snapshot.heap_bytes;
  m.heap_mb = to_mb(snapshot.heap_bytes);
  if (snapshot.allocator == "jemalloc") {
    m.jemalloc_allocated_bytes = snapshot.heap_bytes;
    m.jemalloc_active_bytes = snapshot.active_bytes;
    m.jemalloc_metadata_bytes = snapshot.metadata_bytes;
    m.jemalloc_resident_bytes = snapshot.resident_bytes;
    m.jemalloc_mapped_bytes = snapshot.mapped_bytes;
    m.jemalloc_retained_bytes = snapshot.retained_bytes;
  }
  m.self_heap_bytes = profiler_.self_heap_bytes();

  const HistogramSnapshot window = requests_.window();
  const HistogramSnapshot cumulative = requests_.cumulative();
  m.p50_latency_ms = window.percentile_ms(50);
  m.p95_latency_ms = window.percentile_ms(95);
  m.p99_latency_ms = window.percentile_ms(99);
  if (const auto mean = window.mean_ns()) {
    m.mean_latency_ms = *mean / 1e6;
  }
  const Throughput throughput = measure_throughput(window, cumulative);
  m.throughput_pps = throughput.window_pps.value_or(0.0);
  m.throughput_since_start_pps = throughput.since_start_pps;
  m.window_requests = window.count;
  m.total_requests = cumulative.count;
  m.window = window.span;

  const StageBreakdown stages =
      stages_.window_breakdown(std::chrono::nanoseconds{static_cast<std::int64_t>(window.sum_ns)});
  m.ai_overhead_percent = stages.ai_overhead_percent;
  m.bottleneck_stage = stages.bottleneck;
#if RIPTIDE_PERF_HAS_CACHE
  if (cache_) m.cache = cache_->stats();
#endif
  return m;
}

std::vector<std::string> PerformanceManager::optimize_cache() const {
#if RIPTIDE_PERF_HAS_CACHE
  if (cache_) return CacheAdvisor::optimize_cache(cache_->stats());
  return {"The cache is disabled (cache.enabled = false): nothing to optimize."};
#else
  return {"This build has no cache (RIPTIDE_PERF_CACHE=OFF): nothing to optimize."};
#endif
}

TargetMeasurements PerformanceManager::measurements_from(const Metrics& metrics) const {
  TargetMeasurements measured;
  measured.p50_latency_ms = metrics.p50_latency_ms;
  measured.p95_latency_ms = metrics.p95_latency_ms;
  measured.memory_rss_mb = metrics.memory_rss_mb;
  measured.ai_overhead_percent = metrics.ai_overhead_percent;
  // A rate over a few seconds says little: throughput is judged once requests were recorded and the
  // window spans at least one sub-window (10 s by default).
  const auto min_span = requests_.options().window / requests_.options().sub_windows;
  if (metrics.total_requests > 0 && metrics.window >= min_span) {
    measured.throughput_pps = metrics.throughput_pps;
  }
  return measured;
}

TargetStatus PerformanceManager::evaluate(const Metrics& metrics, const PerformanceTargets& targets) const {
  return TargetChecker{targets}.check(measurements_from(metrics));
}

TargetStatus PerformanceManager::check_targets() {
  return evaluate(get_metrics(), targets());
}

TargetStatus PerformanceManager::check_and_note(const Metrics& metrics, const PerformanceTargets& targets) {
  TargetStatus status = evaluate(metrics, targets);
  note_status(status, metrics.timestamp);
  return status;
}

void PerformanceManager::note_status(const TargetStatus& status, std::chrono::system_clock::time_point now) {
  const bool log = alert_on_violations();
  const std::lock_guard lock(state_mutex_);
  for (const auto& check : status.checks) {
    const TargetState previous = last_states_.count(check.target) ? last_states_[check.target] : TargetState::met;
    last_states_[check.target] = check.state;
    if (check.state == TargetState::violated) {
      auto [it, inserted] = violations_.try_emplace(check.target);
      ViolationRecord& record = it->second;
      if (inserted) {
        record.target = check.target;
        record.first_seen = now;
      }
      record.limit = check.limit;
      record.last_seen = now;
      ++record.checks_violated;
      record.last_message = check.message;
      if (check.measured) {
        // For the throughput floor the worst figure is the lowest; for ceilings the highest.
        const bool floor = check.target == "min_throughput_pps";
        if (!record.worst_measured ||
            (floor ? *check.measured < *record.worst_measured : *check.measured > *record.worst_measured)) {
          record.worst_measured = check.measured;
        }
      }
      if (log && previous != TargetState::violated) {
        logger()->warn("performance target violated: {}", check.message);
      }
    } else if (log && previous == TargetState::violated && check.state != TargetState::not_measured) {
      logger()->info("performance target met again: {}", check.message);
    }
  }
  if (status.memory_alert && !memory_alert_active_ && log) {
    const auto* memory = find_check(status, "max_memory_mb");
    logger()->error("MEMORY ALERT: {}", memory != nullptr ? memory->message : std::string("RSS above memory_alert_mb"));
  }
  memory_alert_active_ = status.memory_alert;
}

MemorySummary PerformanceManager::memory_summary(std::chrono::nanoseconds duration) const {
  MemorySummary summary;
  const std::vector<MemorySample> samples =
      profiler_.tracker().history(std::max(duration, std::chrono::nanoseconds{std::chrono::seconds{1}}));
  summary.samples = samples.size();
  std::vector<double> heap_t;
  std::vector<double> heap_y;
  double rss_sum = 0;
  std::size_t rss_count = 0;
  for (const auto& sample : samples) {
    if (const auto rss = to_mb(sample.rss_bytes)) {
      if (!summary.rss_start_mb) {
        summary.rss_start_mb = rss;
      }
      summary.rss_end_mb = rss;
      summary.rss_peak_mb = std::max(summary.rss_peak_mb.value_or(0.0), *rss);
      rss_sum += *rss;
      ++rss_count;
    }
    if (const auto heap = to_mb(sample.heap_bytes)) {
      if (!summary.heap_start_mb) {
        summary.heap_start_mb = heap;
      }
      summary.heap_end_mb = heap;
      const auto heap_peak = to_mb(sample.heap_max_bytes).value_or(*heap);
      summary.heap_peak_mb = std::max(summary.heap_peak_mb.value_or(0.0), heap_peak);
      heap_t.push_back(std::chrono::duration<double>(sample.steady_time - samples.front().steady_time).count());
      heap_y.push_back(static_cast<double>(*sample.heap_bytes));
    }
  }
  if (rss_count > 0) {
    summary.rss_mean_mb = rss_sum / static_cast<double>(rss_count);
  }
  summary.trend = "unknown";
  if (heap_y.size() >= 3) {
    const LineFit fit = fit_line(heap_t, heap_y);
    summary.heap_growth_bytes_per_sec = fit.slope;
    summary.heap_growth_r_squared = fit.r_squared;
    double mean = 0;
    for (double y : heap_y) {
      mean += y;
    }
    mean /= static_cast<double>(heap_y.size());
    const double span_sec = heap_t.back() - heap_t.front();
    // A change is a trend when the line explains it and it amounts to at least 1 MiB or 5% of the heap.
    const double change = std::fabs(fit.slope) * span_sec;
    if (fit.r_squared >= 0.5 && change >= std::max(kMiB, 0.05 * mean)) {
      summary.trend = fit.slope > 0 ? "growing" : "shrinking";
    } else {
      summary.trend = "stable";
    }
  }
  return summary;
}

PerformanceReport PerformanceManager::stop_monitoring() {
  checker_.stop();
  captures_->stop();
  profiler_.stop_profiling();
  PerformanceReport report;
  report.targets = targets();
  report.final_status = check_and_note(get_metrics(), report.targets);  // also lands in the violation history
  {
    const std::lock_guard lock(state_mutex_);
    monitoring_ = false;
    report.started_at = started_at_;
    report.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.steady_now() - started_steady_);
    for (const auto& [key, record] : violations_) {
      report.violations_over_time.push_back(record);
    }
  }
  report.session_id = profiler_.session_id();
  report.ended_at = clock_.system_now();
  report.memory = memory_summary(report.duration);

  const HistogramSnapshot window = requests_.window();
  const HistogramSnapshot cumulative = requests_.cumulative();
  report.latency.count = cumulative.count;
  if (const auto mean = cumulative.mean_ns()) {
    report.latency.mean_ms = *mean / 1e6;
  }
  report.latency.p50_ms = cumulative.percentile_ms(50);
  report.latency.p95_ms = cumulative.percentile_ms(95);
  report.latency.p99_ms = cumulative.percentile_ms(99);
  report.latency.max_ms = cumulative.percentile_ms(100);
  report.throughput = measure_throughput(window, cumulative);
  report.stages = stages_.breakdown(std::chrono::nanoseconds{static_cast<std::int64_t>(cumulative.sum_ns)});
  if (RIPTIDE_PERF_HAS_MEMORY_PROFILING && config_.profiling.enabled) {
    // An explicit observation, as detect_leaks(): the report should not show stale suspects.
    report.leaks = profiler_.detect_leaks();
    if (config_.profiling.allocation_tracking) {
      AllocationStats stats = profiler_.get_allocation_stats();
      const std::size_t n = std::min<std::size_t>(stats.top_allocators_by_bytes.size(), 10);
      report.top_allocation_sites.assign(stats.top_allocators_by_bytes.begin(),
                                         stats.top_allocators_by_bytes.begin() + static_cast<std::ptrdiff_t>(n));
    }
  }
  report.recommendations = make_recommendations(report);
  return report;
}

CaptureOutcome PerformanceManager::capture_now(const std::string& reason) {
  return captures_->capture_now(reason);
}

nlohmann::json PerformanceManager::performance_json() {
  nlohmann::json body = *state();
  return body;
}

Config PerformanceManager::config() const {
  const std::lock_guard lock(config_mutex_);
  return config_;
}

PerformanceTargets PerformanceManager::targets() const {
  const std::lock_guard lock(config_mutex_);
  return config_.targets;
}

bool PerformanceManager::alert_on_violations() const {
  const std::lock_guard lock(config_mutex_);
  return config_.monitoring.alert_on_violations;
}

bool PerformanceManager::is_reloadable_key(std::string_view dotted_key) noexcept {
  return dotted_key.starts_with("targets.") || dotted_key == "monitoring.alert_on_violations";
}

ConfigReloadCounts PerformanceManager::config_reloads() const {
  const std::lock_guard lock(config_mutex_);
  return reloads_;
}

ConfigReload PerformanceManager::reload_config(const Config& candidate) {
  return reload_from([&] {
    candidate.validate("reload_config");
    return candidate;
  });
}

ConfigReload PerformanceManager::reload_config_file(const std::optional<std::filesystem::path>& path) {
  return reload_from([&] { return Config::load(path ? path : config_path_); });  // load() validates
}

ConfigReload PerformanceManager::reload_from(const std::function<Config()>& validated_candidate) {
  Config candidate;
  try {
    candidate = validated_candidate();
  } catch (const ConfigError&) {
    const std::lock_guard lock(config_mutex_);
    ++reloads_.refused;
    reloads_.last_refused = true;
    throw;
  }
  return apply_validated(candidate);
}

ConfigReload PerformanceManager::apply_validated(const Config& candidate) {
  ConfigReload reload;
  {
    const std::lock_guard lock(config_mutex_);
    ++reloads_.applied;
    reloads_.last_refused = false;
    for (std::string& key : config_.changed_keys(candidate)) {
      (is_reloadable_key(key) ? reload.applied : reload.restart_required).push_back(std::move(key));
    }
    // Exactly the keys is_reloadable_key() accepts (config_reload_test changes every key alone to hold this).
    config_.targets = candidate.targets;
    config_.monitoring.alert_on_violations = candidate.monitoring.alert_on_violations;
  }
  if (!reload.applied.empty()) {
    logger()->info("configuration reloaded: {} now in effect", join(reload.applied));
    republish();
  }
  if (!reload.restart_required.empty()) {
    logger()->warn(
        "configuration reload: {} changed but take effect only in a new PerformanceManager; "
        "the running values stay",
        join(reload.restart_required));
  }
  return reload;
}

nlohmann::json PerformanceReport::to_json() const {
  nlohmann::json out = *this;
  return out;
}

std::string PerformanceReport::to_markdown() const {
  return report_to_markdown(*this);
}

}  // namespace riptide::performance
