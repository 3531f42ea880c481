#include "riptide/performance/http/memory_metrics_router.hpp"

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/time_format.hpp"
#include "riptide/performance/http/cooldown.hpp"
#include "riptide/performance/http/http_error.hpp"
#include "riptide/performance/http/prometheus.hpp"
#include "riptide/performance/http/query.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/memory/memory_json.hpp"
#include "riptide/performance/timing/cpu_profiler.hpp"

#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
#include "riptide/performance/profiling/allocation_analyzer.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"
#include "riptide/performance/profiling/profiling_json.hpp"
#include "riptide/performance/profiling/self_heap.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace riptide::performance::http {
namespace {

using namespace std::chrono_literals;
constexpr double kMiB = 1024.0 * 1024.0;
// Without the background observation, a leak report younger than this is served as is instead of taking
// another heap dump: repeated polling must not turn into repeated dumps.
constexpr auto kFreshLeakReport = 1s;

std::chrono::nanoseconds seconds_to_ns(double seconds) {
  return std::chrono::nanoseconds{static_cast<std::int64_t>(seconds * 1e9)};
}

template <typename T>
nlohmann::json optional_json(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

double rate_between(const MemorySample& first, const MemorySample& last) {
  const double seconds = std::chrono::duration<double>(last.last_steady_time - first.last_steady_time).count();
  if (seconds <= 0 || !first.allocation_count || !last.allocation_count) return std::nan("");
  return static_cast<double>(*last.allocation_count - std::min(*last.allocation_count, *first.allocation_count)) /
         seconds;
}

// Allocations per second between the first and last samples (with counts) of `samples`.
std::optional<double> allocation_rate(const std::vector<MemorySample>& samples) {
  const MemorySample* first = nullptr;
  const MemorySample* last = nullptr;
  for (const auto& sample : samples) {
    if (!sample.allocation_count) continue;
    if (first == nullptr) first = &sample;
    last = &sample;
  }
  if (first == nullptr || first == last) return std::nullopt;
  const double rate = rate_between(*first, *last);
  return std::isnan(rate) ? std::nullopt : std::optional<double>{rate};
}

}  // namespace

struct MemoryMetricsRouter::State {
  std::shared_ptr<MemoryProfiler> profiler;
  std::string session_id;
  HttpConfig http;
  MemoryMetricsOptions options;
  Cooldown gc_cooldown;
  Cooldown cpu_cooldown;
  bool owns_leak_detector = false;
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  // GET /debug/pprof/heap's encoded body for the shared profile it was written from: polls between two
  // dumps cost neither symbolization nor compression.
  std::mutex pprof_mutex;
  std::weak_ptr<const HeapProfile> pprof_body_profile;  // names the profile without keeping it alive
  std::string pprof_body;
#endif

  // Allocation rates for /health and /metrics, recomputed at most once per second: the hour's baseline
  // walks up to 3,600 samples, which must not happen on every poll.
  struct Rates {
    std::optional<double> recent;    // last minute
    std::optional<double> baseline;  // retained hour
  };
  std::mutex rates_mutex;
  std::optional<std::chrono::steady_clock::time_point> rates_at;
  Rates rates_cache;

  Rates allocation_rates() {
    const auto now = std::chrono::steady_clock::now();
    const std::lock_guard lock(rates_mutex);
    if (!rates_at || now - *rates_at >= 1s) {
      rates_cache.recent = allocation_rate(profiler->tracker().history(1min));
      rates_cache.baseline = allocation_rate(profiler->tracker().history(1h));
      rates_at = now;
    }
    return rates_cache;
  }

  State(std::shared_ptr<MemoryProfiler> profiler_in, std::string session, MemoryMetricsOptions options_in)
      : profiler(std::move(profiler_in)),
        session_id(std::move(session)),
        http(options_in.http.value_or(profiler->config().http)),
        options(std::move(options_in)),
        gc_cooldown(seconds_to_ns(http.gc_cooldown_sec)),
        cpu_cooldown(seconds_to_ns(options.cpu_profile_cooldown_sec)) {}

  ~State() {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
    if (owns_leak_detector && options.leak_detector) options.leak_detector->stop();
#endif
  }

  nlohmann::json envelope(std::chrono::system_clock::time_point timestamp) const {
    nlohmann::json body = nlohmann::json::object();
    body["timestamp"] = format_rfc3339_utc(timestamp);
    body["session_id"] = session_id;
    return body;
  }

  // The library's own heap from the leak detector's latest profile; empty when heap profiling is unavailable
  // or before the first observation (never a made-up 0).
  std::optional<SelfHeapEstimate> self_heap() const {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
    if (options.leak_detector && HeapProfilingControl::available()) return options.leak_detector->self_heap();
#endif
    return std::nullopt;
  }

  // The sampler's latest snapshot (cheap); a fresh one when the sampler has not produced any yet.
  std::shared_ptr<const MemorySnapshot> latest_snapshot() const {
    auto latest = profiler->tracker().latest();
    if (!latest) latest = std::make_shared<const MemorySnapshot>(profiler->get_current_snapshot());
    return latest;
  }

  Response snapshot(const Request& request) {
    Query::parse(request.query()).allow_only({});
    const MemorySnapshot snapshot = profiler->get_current_snapshot();
    nlohmann::json body = snapshot_to_json(snapshot);
    body["session_id"] = session_id;
    const auto self = self_heap();
    body["self_heap_bytes"] = self ? nlohmann::json(self->bytes) : nlohmann::json(nullptr);
    body["self_heap_error_bytes"] = self ? nlohmann::json(self->error_bytes) : nlohmann::json(nullptr);
    return json_response(body);
  }

  Response trend(const Request& request) {
    const Query query = Query::parse(request.query());
    query.allow_only({"duration", "interval"});
    const auto& tracker_options = profiler->tracker().options();
    const auto retained = std::max(tracker_options.history, tracker_options.long_history);
    const auto duration = query.duration("duration", std::min<std::chrono::nanoseconds>(1h, retained), 1s, retained);
    const auto interval = query.duration("interval", std::min<std::chrono::nanoseconds>(1min, duration), 1ms, duration);
    const MemoryTrend trend =
        profiler->tracker().trend(duration, interval, std::max<std::size_t>(1, http.max_trend_points));
    nlohmann::json body = envelope(profiler->tracker().clock().system_now());
    nlohmann::json fields = trend_to_json(trend);  // named: items() of a temporary would dangle
    for (auto& [key, value] : fields.items()) body[key] = std::move(value);
    body["max_points"] = http.max_trend_points;
    return json_response(body);
  }

#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  // The background observation keeps the published report at most one interval old, so requests read it;
  // only without it (detector not running) does a request take a profile, at most one per kFreshLeakReport.
  std::shared_ptr<const LeakReport> leak_report(bool fresh) {
    auto latest = options.leak_detector->latest();
    if (!fresh || (latest && options.leak_detector->running())) return latest;
    const auto now = std::chrono::system_clock::now();
    if (latest && now - latest->timestamp < kFreshLeakReport) return latest;
    return std::make_shared<const LeakReport>(options.leak_detector->detect());
  }

#endif

  Response leaks(const Request& request) {
    Query::parse(request.query()).allow_only({});
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
    const auto report = leak_report(true);
    if (!report || !report->available) {
      // With the profiler on, the failure is the dump itself (directory missing, unwritable or full): say
      // so instead of blaming the profiler.
      throw HttpError::unavailable((HeapProfilingControl::available()
                                        ? "leak detection failed: "
                                        : "leak detection needs jemalloc's heap profiler: ") +
                                   (report ? report->reason : HeapProfilingControl::status().reason));
    }
    nlohmann::json body = to_json(*report);
    body["session_id"] = session_id;
    return json_response(body);
#else
    throw HttpError::unavailable("leak detection is compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
  }

  Response allocations(const Request& request) {
    Query::parse(request.query()).allow_only({});
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
    const AllocationStats stats = options.allocation_analyzer->analyze();
    if (!stats.available) {
      throw HttpError::unavailable("allocation statistics need jemalloc as the process allocator: " + stats.reason);
    }
    nlohmann::json body = to_json(stats);
    body["session_id"] = session_id;
    return json_response(body);
#else
    throw HttpError::unavailable("allocation analysis is compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
  }

  Response health(const Request& request) {
    Query::parse(request.query()).allow_only({});
    const auto snapshot = latest_snapshot();
    const auto now = profiler->tracker().clock().system_now();
    const PerformanceTargets targets = options.targets ? options.targets() : profiler->config().targets;

    std::uint64_t limit = targets.max_memory_mb * 1024 * 1024;
    std::uint64_t alert = targets.memory_alert_mb * 1024 * 1024;
    std::string limit_source = "targets.max_memory_mb";
    if (snapshot->cgroup_limit_bytes && *snapshot->cgroup_limit_bytes < limit) {
      limit = *snapshot->cgroup_limit_bytes;
      limit_source = "cgroup";
    }
    if (snapshot->cgroup_limit_bytes) {
      // The kernel's OOM killer acts at the cgroup limit: alert before it, whatever the target says.
      alert = std::min(alert, *snapshot->cgroup_limit_bytes / 100 * 95);
    }
    const auto current = snapshot->rss_bytes ? snapshot->rss_bytes : snapshot->heap_bytes;
    const double percent =
        current && limit > 0 ? 100.0 * static_cast<double>(*current) / static_cast<double>(limit) : 0;

    std::vector<std::string> warnings;
    std::vector<std::string> recommendations;
    int level = 0;  // 0 healthy, 1 degraded, 2 critical
    const auto raise = [&level](int to) { level = std::max(level, to); };

    if (!current) {
      warnings.push_back("memory usage is unknown: neither RSS nor heap figures could be read");
    } else if (*current >= alert) {
      raise(2);
      warnings.push_back("memory " + std::to_string(*current / (1024 * 1024)) + " MiB is above the alert threshold " +
                         std::to_string(alert / (1024 * 1024)) + " MiB");
      recommendations.push_back(
          "reduce concurrency or cache sizes now; POST /metrics/memory/gc returns free pages "
          "to the OS if the allocator holds them");
    } else if (percent >= 90.0) {
      raise(1);
      warnings.push_back("memory at " + std::to_string(static_cast<int>(percent)) + "% of the limit (" + limit_source +
                         ")");
      recommendations.push_back(
          "check GET /metrics/memory/trend for growth and GET /metrics/memory/leaks for "
          "suspect allocation sites");
    }

    std::string leak_severity = "unknown";
    std::optional<std::uint32_t> leak_count;
    std::optional<std::uint64_t> leaked_bytes;
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
    if (const auto report = leak_report(false); report && report->available) {
      leak_severity = to_string(report->severity);
      leak_count = report->leak_count;
      leaked_bytes = report->total_leaked_bytes;
      if (report->severity == LeakSeverity::high) {
        raise(2);
      } else if (report->severity == LeakSeverity::medium) {
        raise(1);
      }
      if (report->leak_count > 0) {
        warnings.push_back(std::to_string(report->leak_count) + " allocation site(s) grow steadily (severity " +
                           leak_severity + ")");
        recommendations.push_back(
            "inspect GET /metrics/memory/leaks (locations, growth rate) or load "
            "/debug/pprof/heap into pprof");
      }
    }
#endif
    if (leak_severity == "unknown") {
      recommendations.push_back(
          "enable jemalloc's heap profiler to detect leaks: start with MALLOC_CONF=prof:true "
          "or use RIPTIDE_PERF_ENABLE_HEAP_PROFILING()");
    }

    // Allocation rate: the last minute against the retained history as a baseline.
    const auto [recent, baseline] = allocation_rates();
    std::string rate_status = "unknown";
    if (recent) {
      rate_status = "normal";
      if (baseline && *baseline > 0) {
        const double ratio = *recent / *baseline;
        if (ratio >= 5.0) {
          rate_status = "high";
          raise(1);
        } else if (ratio >= 2.0) {
          rate_status = "elevated";
        }
        if (rate_status != "normal") {
          warnings.push_back("allocation rate " + std::to_string(static_cast<long long>(*recent)) + "/s is " +
                             std::to_string(static_cast<int>(ratio)) + "x the hour's average");
          recommendations.push_back("see GET /metrics/memory/allocations for the sites allocating most");
        }
      }
    }

    nlohmann::json body = envelope(now);
    static constexpr const char* kStatus[] = {"healthy", "degraded", "critical"};
    body["status"] = kStatus[level];
    body["memory_usage_percent"] = std::round(percent * 10.0) / 10.0;
    body["leak_severity"] = leak_severity;
    body["allocation_rate_status"] = rate_status;
    body["details"] = {
        {"current_memory", optional_json(current)},
        {"memory_limit", limit},
        {"memory_limit_source", limit_source},
        {"memory_alert", alert},
        {"rss_bytes", optional_json(snapshot->rss_bytes)},
        {"heap_bytes", optional_json(snapshot->heap_bytes)},
        {"cgroup_limit_bytes", optional_json(snapshot->cgroup_limit_bytes)},
        {"leak_count", leak_count ? nlohmann::json(*leak_count) : nlohmann::json(0)},
        {"leaked_bytes", leaked_bytes ? nlohmann::json(*leaked_bytes) : nlohmann::json(0)},
        {"allocation_rate", recent ? nlohmann::json(*recent) : nlohmann::json(0.0)},
        {"allocation_rate_baseline", optional_json(baseline)},
        {"warnings", warnings},
        {"recommendations", recommendations},
    };
    return json_response(body);
  }

  struct PurgeReading {
    std::optional<std::uint64_t> rss;
    std::optional<std::uint64_t> resident;
    std::optional<std::uint64_t> mapped;
    std::optional<std::uint64_t> heap;
    [[nodiscard]] nlohmann::json to_json() const {
      return {{"rss_bytes", optional_json(rss)},
              {"resident_bytes", optional_json(resident)},
              {"mapped_bytes", optional_json(mapped)},
              {"heap_bytes", optional_json(heap)}};
    }
  };

  PurgeReading read_for_purge() {
    const MemorySnapshot snapshot = profiler->tracker().take_snapshot(/*refresh_epoch=*/true);
    return {snapshot.rss_bytes, snapshot.resident_bytes, snapshot.mapped_bytes, snapshot.heap_bytes};
  }

  Response gc(const Request& request) {
    Query::parse(request.query()).allow_only({});
    const bool jemalloc = JemallocCtl::usable();
    bool glibc = false;
#if defined(__GLIBC__)
    glibc = !jemalloc && profiler->tracker().allocator() == AllocatorKind::glibc;
#endif
    if (!jemalloc && !glibc) {
      throw HttpError::unavailable(
          "returning memory needs jemalloc (or glibc malloc) as the allocator; this process "
          "uses " +
          std::string{allocator_name(profiler->tracker().allocator())});
    }
    const auto ticket = gc_cooldown.acquire_or_throw("memory purge");
    const auto start = std::chrono::steady_clock::now();
    const PurgeReading before = read_for_purge();
    std::vector<std::string> steps;
    if (jemalloc) {
      // Flush this thread's cache, then purge every arena's dirty and muzzy pages.
      steps.push_back(JemallocCtl::run("thread.tcache.flush") == 0 ? "thread.tcache.flush"
                                                                   : "thread.tcache.flush failed");
      steps.push_back(JemallocCtl::run("arena.4096.purge") == 0 ? "arena.4096.purge" : "arena.4096.purge failed");
    } else {
#if defined(__GLIBC__)
      malloc_trim(0);
      steps.push_back("malloc_trim(0)");
#endif
    }
    const PurgeReading after = read_for_purge();
    const auto elapsed = std::chrono::steady_clock::now() - start;

    nlohmann::json body = envelope(std::chrono::system_clock::now());
    const auto memory_before = before.rss ? before.rss : before.resident;
    const auto memory_after = after.rss ? after.rss : after.resident;
    body["triggered"] = true;
    body["memory_before"] = optional_json(memory_before);
    body["memory_after"] = optional_json(memory_after);
    body["freed_bytes"] = memory_before && memory_after && *memory_before > *memory_after
                              ? *memory_before - *memory_after
                              : std::uint64_t{0};
    body["duration_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    body["duration_seconds"] = std::chrono::duration<double>(elapsed).count();
    body["memory_basis"] = before.rss ? "rss_bytes" : "resident_bytes";
    body["before"] = before.to_json();
    body["after"] = after.to_json();
    body["steps"] = steps;
    body["note"] = "retained virtual memory is never unmapped; freed_bytes is the drop in resident memory";
    return json_response(body);
  }

  Response pprof_heap(const Request& request) {
    Query::parse(request.query()).allow_only({"gc", "debug"});  // accepted and ignored, as Go's handler does
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
    if (!HeapProfilingControl::available()) {
      throw HttpError::unavailable("heap profiling is off in this process: " + HeapProfilingControl::status().reason +
                                   "; fix: " + HeapProfilingControl::status().fix);
    }
    // The profile the leak detector took at most one leak interval ago (or a fresh one): one dump serves
    // every reader. X-Heap-Profile-Age-Seconds says how old it is.
    const auto& profiles = options.leak_detector->heap_profiles();
    auto profile = profiles->get(shared_profile_max_age(profiler->config().profiling));
    if (!profile) throw HttpError(500, "profile_failed", profile.error().to_string());
    Response response;
    response.content_type = "application/octet-stream";
    {
      const std::lock_guard lock(pprof_mutex);
      const auto& current = profile.value();
      if (pprof_body_profile.owner_before(current) || current.owner_before(pprof_body_profile) ||
          pprof_body_profile.expired()) {
        pprof_body = write_pprof_heap_profile(*profile.value(), Symbolizer::shared());
        pprof_body_profile = profile.value();
      }
      response.body = pprof_body;
    }
    const auto age = profiles->age().value_or(std::chrono::nanoseconds{0});
    response.set_header("X-Heap-Profile-Age-Seconds",
                        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()));
    response.set_header("Content-Disposition", "attachment; filename=\"heap.pb.gz\"");
    return response;
#else
    throw HttpError::unavailable("heap profiles are compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
  }

  Response pprof_profile(const Request& request) {
    const Query query = Query::parse(request.query());
    query.allow_only({"seconds"});
    const auto max_seconds = static_cast<std::int64_t>(std::max<std::uint32_t>(1, http.cpu_profile_max_sec));
    const auto seconds = query.integer("seconds", std::min<std::int64_t>(30, max_seconds), 1, max_seconds);
    if (!CpuProfiler::available()) {
      throw HttpError::unavailable(
          "CPU profiles are compiled out: build with RIPTIDE_PERF_BOTTLENECK_ANALYSIS=ON (gperftools)");
    }
    auto ticket = cpu_cooldown.acquire_or_throw("a CPU profile");
    ticket.expect_end(std::chrono::steady_clock::now() + std::chrono::seconds{seconds});
    const CpuProfileResult result = CpuProfiler::profile(std::chrono::seconds{seconds});
    switch (result.status) {
      case CpuProfileResult::Status::ok:
        break;
      case CpuProfileResult::Status::busy:
        throw HttpError::too_many_requests("another CPU profile is running in this process", seconds);
      case CpuProfileResult::Status::unavailable:
        throw HttpError::unavailable(result.reason);
      case CpuProfileResult::Status::failed:
        throw HttpError(500, "profile_failed", result.reason);
    }
    Response response;
    response.content_type = "application/octet-stream";
    response.body = result.profile;
    response.set_header("Content-Disposition", "attachment; filename=\"profile\"");
    return response;
  }

  Response performance(const Request& request) {
    Query::parse(request.query()).allow_only({});
    if (!options.performance_json) {
      throw HttpError::unavailable(
          "no PerformanceManager is attached to this router: pass "
          "MemoryMetricsOptions::performance_json");
    }
    nlohmann::json body = options.performance_json();
    if (body.is_object() && !body.contains("session_id")) body["session_id"] = session_id;
    return json_response(body);
  }

  Response metrics(const Request& request, const Router& router) {
    Query::parse(request.query()).allow_only({});
    const auto snapshot = latest_snapshot();
    PrometheusWriter out;
    const auto gauge = [&out](const char* name, const char* help, const std::optional<std::uint64_t>& value) {
      if (!value) return;
      out.family(name, MetricType::gauge, help);
      out.sample(*value);
    };
    const auto counter = [&out](const char* name, const char* help, const std::optional<std::uint64_t>& value) {
      if (!value) return;
      out.family(name, MetricType::counter, help);
      out.sample(*value);
    };
    out.family("info", MetricType::gauge, "Build and session of riptide-performance; the value is always 1.");
    out.sample(std::uint64_t{1},
               {{"version", RIPTIDE_PERF_VERSION}, {"allocator", snapshot->allocator}, {"session_id", session_id}});
    gauge("process_resident_memory_bytes", "Resident set size of the process (/proc/self/statm).", snapshot->rss_bytes);
    gauge("process_virtual_memory_bytes", "Virtual address space size of the process.", snapshot->virtual_bytes);
    gauge("process_resident_memory_max_bytes", "Highest resident set size since the process started (VmHWM).",
          snapshot->peak_rss_bytes);
    gauge("process_cgroup_memory_limit_bytes", "Memory limit of the process's cgroup (absent when unlimited).",
          snapshot->cgroup_limit_bytes);
    gauge("process_cgroup_memory_usage_bytes", "Memory usage of the process's cgroup, page cache included.",
          snapshot->cgroup_usage_bytes);
    gauge("heap_bytes", "Bytes the application holds on the heap (jemalloc stats.allocated).", snapshot->heap_bytes);
    gauge("heap_max_bytes", "Highest heap bytes seen by any snapshot (sampled peak).", snapshot->peak_heap_bytes);
    gauge("jemalloc_active_bytes", "jemalloc stats.active: bytes in active pages.", snapshot->active_bytes);
    gauge("jemalloc_metadata_bytes", "jemalloc stats.metadata: allocator metadata.", snapshot->metadata_bytes);
    gauge("jemalloc_resident_bytes", "jemalloc stats.resident: physically resident allocator pages.",
          snapshot->resident_bytes);
    gauge("jemalloc_mapped_bytes", "jemalloc stats.mapped: bytes in active extents mapped by the allocator.",
          snapshot->mapped_bytes);
    gauge("jemalloc_retained_bytes", "jemalloc stats.retained: virtual memory kept for reuse, not resident.",
          snapshot->retained_bytes);
    gauge("jemalloc_tcache_bytes", "Bytes parked in jemalloc's thread caches.", snapshot->tcache_bytes);
    counter("allocations_total", "Objects allocated since the process started (jemalloc nmalloc, exact).",
            snapshot->allocation_count);
    counter("deallocations_total", "Objects freed since the process started (jemalloc ndalloc, exact).",
            snapshot->deallocation_count);
    counter("allocated_bytes_total", "Bytes allocated since the process started (size class x nmalloc).",
            snapshot->total_allocated_bytes);
    counter("deallocated_bytes_total", "Bytes freed since the process started (size class x ndalloc).",
            snapshot->total_deallocated_bytes);
    if (const auto rate = allocation_rates().recent) {
      out.family("allocation_rate_per_second", MetricType::gauge, "Allocations per second over the last minute.");
      out.sample(*rate);
    }
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
    const bool profiling = HeapProfilingControl::available();
    out.family("heap_profiling_available", MetricType::gauge,
               "1 when jemalloc's heap profiler runs in this process (leak figures need it).");
    out.sample(std::uint64_t{profiling ? 1U : 0U});
    if (const auto self = self_heap()) {
      out.family("self_heap_bytes", MetricType::gauge,
                 "Heap bytes held by riptide-performance itself, not the host's values in its caches: a sampled "
                 "estimate from jemalloc's heap profile (one standard deviation: riptide_self_heap_error_bytes).");
      out.sample(self->bytes);
      out.family("self_heap_error_bytes", MetricType::gauge,
                 "One standard deviation of the sampling error of riptide_self_heap_bytes.");
      out.sample(self->error_bytes);
    }
    const SymbolizerStats symbols = Symbolizer::shared().stats();
    out.family("symbolizer_cache_bytes", MetricType::gauge,
               "Estimated bytes of the symbolizer's frame cache (bounded by profiling.symbolizer_cache_max_bytes).");
    out.sample(symbols.cache_bytes);
    out.family("symbolizer_cache_evictions_total", MetricType::counter,
               "Symbolized frames evicted to stay within profiling.symbolizer_cache_max_bytes.");
    out.sample(symbols.evicted_frames);
    if (symbols.dwarf_bytes) {
      out.family("symbolizer_dwarf_bytes", MetricType::gauge,
                 "Heap bytes libdw holds for the symbolizer's current session (bounded by "
                 "profiling.symbolizer_dwarf_max_bytes).");
      out.sample(*symbols.dwarf_bytes);
    }
    out.family("symbolizer_dwarf_rebuilds_total", MetricType::counter,
               "Symbolizer sessions ended to free libdw's state at profiling.symbolizer_dwarf_max_bytes.");
    out.sample(symbols.dwarf_rebuilds);
    out.family("symbolizer_lookup_cpu_seconds_total", MetricType::counter,
               "CPU time the symbolizer spent in libdw lookups (cache misses), all threads.");
    out.sample(symbols.lookup_cpu_seconds);
    if (const auto report = leak_report(false); report && report->available) {
      out.family("leak_suspects", MetricType::gauge, "Allocation sites whose in-use bytes grow steadily.");
      out.sample(std::uint64_t{report->leak_count});
      out.family("leaked_bytes", MetricType::gauge, "Estimated in-use bytes of the leak suspects (sampled).");
      out.sample(report->total_leaked_bytes);
      out.family("leak_growth_bytes_per_second", MetricType::gauge, "Summed growth rate of the leak suspects.");
      out.sample(report->total_growth_rate);
      out.family("leak_severity", MetricType::gauge, "Leak severity: 0 none, 1 low, 2 medium, 3 high.");
      out.sample(std::uint64_t{static_cast<std::uint64_t>(report->severity)});
      out.family("leak_observations_total", MetricType::counter, "Heap profiles the leak detector has taken.");
      out.sample(std::uint64_t{report->observations});
      out.family("leak_tracked_sites", MetricType::gauge,
                 "Allocation sites with leak history (bounded by profiling.max_tracked_sites).");
      out.sample(std::uint64_t{report->tracked_sites});
      out.family("leak_dropped_sites_total", MetricType::counter,
                 "Allocation sites whose leak history profiling.max_tracked_sites dropped (smallest first).");
      out.sample(report->dropped_sites);
    }
#endif
    router.write_transport_metrics(out);  // riptide_http_*: the serving http::Server's connection counters
    for (const auto& collect : options.prometheus_collectors) {
      if (collect) collect(out);
    }
    Response response;
    response.content_type = PrometheusWriter::kContentType;
    response.body = out.text();
    return response;
  }
};

MemoryMetricsRouter::MemoryMetricsRouter(std::shared_ptr<MemoryProfiler> profiler, std::string session_id,
                                         MemoryMetricsOptions options) {
  if (!profiler) {
    throw ConfigError({"code", "profiler", "null", "must not be null", "a std::shared_ptr<MemoryProfiler>"});
  }
  if (session_id.empty()) session_id = profiler->session_id();
  state_ = std::make_shared<State>(std::move(profiler), std::move(session_id), std::move(options));
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  auto& state = *state_;
  const ProfilingConfig& profiling = state.profiler->config().profiling;
  if (!state.options.leak_detector) {
    // One detector per process: a second one would dump the heap twice and keep a second history.
    state.options.leak_detector = state.profiler->leak_detector();
  }
  if (!state.options.leak_detector) {
    state.options.leak_detector = std::make_shared<LeakDetector>(profiling);
    state.owns_leak_detector = true;
    if (profiling.enabled && HeapProfilingControl::available()) state.options.leak_detector->start();
  }
  if (!state.options.allocation_analyzer) state.options.allocation_analyzer = state.profiler->allocation_analyzer();
  if (!state.options.allocation_analyzer) {
    // Sites from the detector's profiles: the router's readers of the heap share one dump per interval.
    state.options.allocation_analyzer = std::make_shared<AllocationAnalyzer>(
        profiling, system_clock(), nullptr, 20, state.options.leak_detector->heap_profiles());
  }
#endif
  register_routes();
}

MemoryMetricsRouter::MemoryMetricsRouter(std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options)
    : MemoryMetricsRouter(manager ? std::shared_ptr<MemoryProfiler>(manager, &manager->memory_profiler()) : nullptr, "",
                          with_manager(manager, std::move(options))) {}

MemoryMetricsOptions MemoryMetricsRouter::with_manager(const std::shared_ptr<PerformanceManager>& manager,
                                                       MemoryMetricsOptions options) {
  if (!manager) return options;
  if (!options.performance_json) {
    options.performance_json = [manager] { return manager->performance_json(); };
  }
  if (!options.targets) {
    options.targets = [manager] { return manager->targets(); };
  }
  options.prometheus_collectors.insert(options.prometheus_collectors.begin(), [manager](PrometheusWriter& out) {
    const Metrics metrics = manager->get_metrics();
    const auto seconds = [&out](const char* name, const char* help, const std::optional<double>& ms) {
      if (!ms) return;
      out.family(name, MetricType::gauge, help);
      out.sample(*ms / 1000.0);
    };
    out.family("requests_total", MetricType::counter, "Requests (pages) recorded by the host since start.");
    out.sample(metrics.total_requests);
    out.family("throughput_pages_per_second", MetricType::gauge, "Pages per second over the sliding window.");
    out.sample(metrics.throughput_pps);
    seconds("request_latency_p50_seconds", "Median request latency over the window.", metrics.p50_latency_ms);
    seconds("request_latency_p95_seconds", "95th percentile request latency over the window.", metrics.p95_latency_ms);
    seconds("request_latency_p99_seconds", "99th percentile request latency over the window.", metrics.p99_latency_ms);
    seconds("request_latency_mean_seconds", "Mean request latency over the window.", metrics.mean_latency_ms);
    if (metrics.ai_overhead_percent) {
      out.family("ai_overhead_ratio", MetricType::gauge, "Share of request time spent in the \"ai\" stage (0-1).");
      out.sample(*metrics.ai_overhead_percent / 100.0);
    }
    const ConfigReloadCounts reloads = manager->config_reloads();
    out.family("config_reloads_total", MetricType::counter,
               "Configuration reloads by result (refused: a bad value, nothing changed).");
    out.sample(reloads.applied, {{"result", "applied"}});
    out.sample(reloads.refused, {{"result", "refused"}});
    out.family("config_last_reload_successful", MetricType::gauge,
               "0 when the latest configuration reload was refused (the previous configuration runs), else 1.");
    out.sample(std::uint64_t{reloads.last_refused ? 0U : 1U});
#if RIPTIDE_PERF_HAS_CACHE
    if (metrics.cache) write_prometheus(out, *metrics.cache);
#endif
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
    write_prometheus(out, manager->get_resource_usage());
#endif
  });
  return options;
}

void MemoryMetricsRouter::register_routes() {
  State* s = state_.get();
  const auto bind = [s](Response (State::*method)(const Request&)) {
    return [s, method](const Request& request) { return (s->*method)(request); };
  };
  add_route("GET", "/metrics/memory/snapshot", bind(&State::snapshot));
  add_route("GET", "/metrics/memory/leaks", bind(&State::leaks), {.blocking = true});
  add_route("GET", "/metrics/memory/allocations", bind(&State::allocations), {.blocking = true});
  add_route("GET", "/metrics/memory/trend", bind(&State::trend));
  add_route("GET", "/metrics/memory/health", bind(&State::health));
  add_route("POST", "/metrics/memory/gc", bind(&State::gc), {.sensitive = true, .blocking = true});
  add_route("GET", "/metrics", [s, this](const Request& request) { return s->metrics(request, *this); });
  add_route("GET", "/metrics/performance", bind(&State::performance));
  add_route("GET", "/debug/pprof/heap", bind(&State::pprof_heap), {.sensitive = true, .blocking = true});
  add_route("GET", "/debug/pprof/profile", bind(&State::pprof_profile), {.sensitive = true, .blocking = true});
}

MemoryMetricsRouter::~MemoryMetricsRouter() = default;

const std::string& MemoryMetricsRouter::session_id() const noexcept {
  return state_->session_id;
}

}  // namespace riptide::performance::http
