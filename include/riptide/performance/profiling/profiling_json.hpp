#pragma once
// JSON forms of the profiling results, in one place, with the field names docs/http-endpoints.md
// documents (GET /metrics/memory/leaks and /metrics/memory/allocations). The HTTP layer adds session_id.

#include <nlohmann/json.hpp>

#include "riptide/performance/profiling/allocation_analyzer.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"

namespace riptide::performance {

/// timestamp, leak_count, total_leaked_bytes, leaks[{location, size, age_seconds, allocation_time, ...}],
/// plus severity, total_growth_rate, available/reason and the sampling parameters.
[[nodiscard]] nlohmann::json to_json(const LeakReport& report);
[[nodiscard]] nlohmann::json to_json(const MemoryLeak& leak);

/// timestamp, top_allocators[{location, allocation_count, total_bytes, average_size, percentage_of_total}],
/// total_allocations, average_allocation_size, median_allocation_size, allocation_rate_per_second, plus
/// by-bytes sites, basis, balance, size classes and recommendations.
[[nodiscard]] nlohmann::json to_json(const AllocationStats& stats);
[[nodiscard]] nlohmann::json to_json(const AllocationSite& site);

[[nodiscard]] nlohmann::json to_json(const HeapProfilingStatus& status);

}  // namespace riptide::performance
