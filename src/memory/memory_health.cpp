#include "riptide/performance/memory/memory_health.hpp"

#include "riptide/performance/core/json_optional.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace riptide::performance {
namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

// The limit memory is judged against and the alert threshold: the target, or the cgroup's limit where it is lower
// (the kernel's OOM killer acts there, whatever the target says). Returns the usage in percent of the limit.
double judge_against_limits(const MemorySnapshot& snapshot, const PerformanceTargets& targets, MemoryHealth& health) {
  health.memory_limit = targets.max_memory_mb * kMiB;
  health.memory_alert = targets.memory_alert_mb * kMiB;
  health.memory_limit_source = "targets.max_memory_mb";
  if (snapshot.cgroup_limit_bytes) {
    if (*snapshot.cgroup_limit_bytes < health.memory_limit) {
      health.memory_limit = *snapshot.cgroup_limit_bytes;
      health.memory_limit_source = "cgroup";
    }
    health.memory_alert = std::min(health.memory_alert, *snapshot.cgroup_limit_bytes / 100 * 95);
  }
  health.current_memory = snapshot.rss_bytes ? snapshot.rss_bytes : snapshot.heap_bytes;
  const double percent =
      health.current_memory && health.memory_limit > 0
          ? 100.0 * static_cast<double>(*health.current_memory) / static_cast<double>(health.memory_limit)
          : 0;
  health.memory_usage_percent = std::round(percent * 10.0) / 10.0;
  return percent;
}

}  // namespace

const char* to_string(HealthStatus status) noexcept {
  switch (status) {
    case HealthStatus::healthy:
      return "healthy";
    case HealthStatus::degraded:
      return "degraded";
    case HealthStatus::critical:
      return "critical";
  }
  return "unknown";
}

MemoryHealth assess_memory_health(const MemoryHealthInputs& inputs) {
  const MemorySnapshot& snapshot = *inputs.snapshot;
  MemoryHealth health;
  health.rss_bytes = snapshot.rss_bytes;
  health.heap_bytes = snapshot.heap_bytes;
  health.cgroup_limit_bytes = snapshot.cgroup_limit_bytes;
  const double percent = judge_against_limits(snapshot, inputs.targets, health);
  const auto raise = [&health](HealthStatus to) { health.status = std::max(health.status, to); };
  auto& warnings = health.warnings;
  auto& recommendations = health.recommendations;

  if (!health.current_memory) {
    warnings.push_back("memory usage is unknown: neither RSS nor heap figures could be read");
  } else if (*health.current_memory >= health.memory_alert) {
    raise(HealthStatus::critical);
    warnings.push_back("memory " + std::to_string(*health.current_memory / kMiB) +
                       " MiB is above the alert threshold " + std::to_string(health.memory_alert / kMiB) + " MiB");
    recommendations.push_back(
        "reduce concurrency or cache sizes now; POST /metrics/memory/gc returns free pages "
        "to the OS if the allocator holds them");
  } else if (percent >= 90.0) {
    raise(HealthStatus::degraded);
    warnings.push_back("memory at " + std::to_string(static_cast<int>(percent)) + "% of the limit (" +
                       health.memory_limit_source + ")");
    recommendations.push_back(
        "check GET /metrics/memory/trend for growth and GET /metrics/memory/leaks for "
        "suspect allocation sites");
  }

  health.leak_severity = inputs.leaks ? inputs.leaks->severity : "unknown";
  if (inputs.leaks) {
    health.leak_count = inputs.leaks->leak_count;
    health.leaked_bytes = inputs.leaks->leaked_bytes;
    if (inputs.leaks->severity == "high") {
      raise(HealthStatus::critical);
    } else if (inputs.leaks->severity == "medium") {
      raise(HealthStatus::degraded);
    }
    if (inputs.leaks->leak_count > 0) {
      warnings.push_back(std::to_string(inputs.leaks->leak_count) + " allocation site(s) grow steadily (severity " +
                         inputs.leaks->severity + ")");
      recommendations.push_back(
          "inspect GET /metrics/memory/leaks (locations, growth rate) or load "
          "/debug/pprof/heap into pprof");
    }
  } else {
    recommendations.push_back(
        "enable jemalloc's heap profiler to detect leaks: start with MALLOC_CONF=prof:true "
        "or use RIPTIDE_PERF_ENABLE_HEAP_PROFILING()");
  }

  // The last minute against the retained history as a baseline.
  health.allocation_rate = inputs.allocation_rate;
  health.allocation_rate_baseline = inputs.allocation_rate_baseline;
  health.allocation_rate_status = "unknown";
  if (const auto recent = inputs.allocation_rate) {
    health.allocation_rate_status = "normal";
    const auto baseline = inputs.allocation_rate_baseline;
    if (baseline && *baseline > 0) {
      const double ratio = *recent / *baseline;
      if (ratio >= 5.0) {
        health.allocation_rate_status = "high";
        raise(HealthStatus::degraded);
      } else if (ratio >= 2.0) {
        health.allocation_rate_status = "elevated";
      }
      if (health.allocation_rate_status != "normal") {
        warnings.push_back("allocation rate " + std::to_string(static_cast<long long>(*recent)) + "/s is " +
                           std::to_string(static_cast<int>(ratio)) + "x the hour's average");
        recommendations.push_back("see GET /metrics/memory/allocations for the sites allocating most");
      }
    }
  }
  return health;
}

void to_json(nlohmann::json& json, const MemoryHealth& health) {
  json = nlohmann::json::object();
  json["status"] = to_string(health.status);
  json["memory_usage_percent"] = health.memory_usage_percent;
  json["leak_severity"] = health.leak_severity;
  json["allocation_rate_status"] = health.allocation_rate_status;
  json["details"] = {
      {"current_memory", optional_json(health.current_memory)},
      {"memory_limit", health.memory_limit},
      {"memory_limit_source", health.memory_limit_source},
      {"memory_alert", health.memory_alert},
      {"rss_bytes", optional_json(health.rss_bytes)},
      {"heap_bytes", optional_json(health.heap_bytes)},
      {"cgroup_limit_bytes", optional_json(health.cgroup_limit_bytes)},
      {"leak_count", health.leak_count},
      {"leaked_bytes", health.leaked_bytes},
      {"allocation_rate", health.allocation_rate.value_or(0.0)},
      {"allocation_rate_baseline", optional_json(health.allocation_rate_baseline)},
      {"warnings", health.warnings},
      {"recommendations", health.recommendations},
  };
}

}  // namespace riptide::performance
