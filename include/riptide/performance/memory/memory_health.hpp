#pragma once
// The verdict of GET /metrics/memory/health: memory against its limit (the target or, when lower, the
// cgroup's), leak severity and the allocation rate against its baseline, with the reasons and what to do.
// A pure function of its inputs, so the manager computes it once per check and every reader shows the same.
//   rp::MemoryHealth health = rp::assess_memory_health({.snapshot = s, .targets = t, ...});
//   nlohmann::json j = health;   // {status, memory_usage_percent, leak_severity, allocation_rate_status, details}

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/memory/memory_snapshot.hpp"

namespace riptide::performance {

enum class HealthStatus { healthy, degraded, critical };
[[nodiscard]] const char* to_string(HealthStatus status) noexcept;

/// What the leak detector concluded, in the terms the verdict needs (the memory area does not depend on
/// the profiling area that produces it).
struct LeakFindings {
  std::string severity;  ///< "none", "low", "medium" or "high"
  std::uint32_t leak_count = 0;
  std::uint64_t leaked_bytes = 0;
};

struct MemoryHealthInputs {
  const MemorySnapshot* snapshot = nullptr;  ///< must not be null
  PerformanceTargets targets;
  std::optional<LeakFindings> leaks;               ///< empty: leak detection has no result (off or not yet)
  std::optional<double> allocation_rate;           ///< allocations/s over the last minute
  std::optional<double> allocation_rate_baseline;  ///< allocations/s over the retained history
};

struct MemoryHealth {
  HealthStatus status = HealthStatus::healthy;
  double memory_usage_percent = 0;              ///< current / limit, one decimal
  std::string leak_severity;                    ///< LeakFindings::severity, or "unknown"
  std::string allocation_rate_status;           ///< "normal", "elevated" (>= 2x baseline), "high" (>= 5x) or "unknown"
  std::optional<std::uint64_t> current_memory;  ///< RSS, else heap bytes; empty when neither could be read
  std::uint64_t memory_limit = 0;               ///< bytes: targets.max_memory_mb or the lower cgroup limit
  std::string memory_limit_source;              ///< "targets.max_memory_mb" or "cgroup"
  std::uint64_t memory_alert = 0;               ///< bytes: memory_alert_mb, capped at 95% of a cgroup limit
  std::optional<std::uint64_t> rss_bytes;
  std::optional<std::uint64_t> heap_bytes;
  std::optional<std::uint64_t> cgroup_limit_bytes;
  std::uint32_t leak_count = 0;
  std::uint64_t leaked_bytes = 0;
  std::optional<double> allocation_rate;
  std::optional<double> allocation_rate_baseline;
  std::vector<std::string> warnings;         ///< why the status is not healthy, one sentence each
  std::vector<std::string> recommendations;  ///< what to do, most urgent first
};

/// The verdict: critical at memory_alert (or 95% of a cgroup limit, where the kernel's OOM killer acts) or a
/// high leak severity; degraded at 90% of the limit, a medium leak severity or an allocation rate 5x its
/// baseline.
[[nodiscard]] MemoryHealth assess_memory_health(const MemoryHealthInputs& inputs);

/// {status, memory_usage_percent, leak_severity, allocation_rate_status, details{current_memory, memory_limit,
///  memory_limit_source, memory_alert, rss_bytes, heap_bytes, cgroup_limit_bytes, leak_count, leaked_bytes,
///  allocation_rate, allocation_rate_baseline, warnings, recommendations}}
void to_json(nlohmann::json& json, const MemoryHealth& health);

}  // namespace riptide::performance
