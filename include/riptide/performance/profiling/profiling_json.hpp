#pragma once
// JSON forms of the profiling results, in one place, with the field names docs/http-endpoints.md
// documents (GET /metrics/memory/leaks and /metrics/memory/allocations). The HTTP layer adds session_id.
// Found by argument-dependent lookup, so `nlohmann::json j = report;` works for every type here.

#include <nlohmann/json.hpp>

#include "riptide/performance/profiling/allocation_analyzer.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"

namespace riptide::performance {

/// timestamp, leak_count, total_leaked_bytes, leaks[{location, size, age_seconds, allocation_time, ...}],
/// plus severity, total_growth_rate, available/reason and the sampling parameters.
void to_json(nlohmann::json& json, const LeakReport& report);
void to_json(nlohmann::json& json, const MemoryLeak& leak);

/// timestamp, top_allocators[{location, allocation_count, total_bytes, average_size, percentage_of_total}],
/// total_allocations, average_allocation_size, median_allocation_size, allocation_rate_per_second, plus
/// by-bytes sites, basis, balance, size classes and recommendations.
void to_json(nlohmann::json& json, const AllocationStats& stats);
void to_json(nlohmann::json& json, const AllocationSite& site);

/// available, jemalloc, compiled_with_prof, enabled_at_start, active, accumulating, lg_sample,
/// sample_interval_bytes, and reason/fix when unavailable.
void to_json(nlohmann::json& json, const HeapProfilingStatus& status);

// The value-returning spellings of an earlier release, kept for one more as forwards to the ADL form.
[[deprecated("use nlohmann::json j = report (ADL to_json)")]] [[nodiscard]] nlohmann::json to_json(
    const LeakReport& report);
[[deprecated("use nlohmann::json j = stats (ADL to_json)")]] [[nodiscard]] nlohmann::json to_json(
    const AllocationStats& stats);

[[deprecated("use nlohmann::json j = leak (ADL to_json)")]] [[nodiscard]] nlohmann::json to_json(
    const MemoryLeak& leak);
[[deprecated("use nlohmann::json j = site (ADL to_json)")]] [[nodiscard]] nlohmann::json to_json(
    const AllocationSite& site);
[[deprecated("use nlohmann::json j = status (ADL to_json)")]] [[nodiscard]] nlohmann::json to_json(
    const HeapProfilingStatus& status);

}  // namespace riptide::performance
