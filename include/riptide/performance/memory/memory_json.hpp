#pragma once
// The one place where memory results become JSON: the /metrics/memory/snapshot and /trend field
// names of docs/http-endpoints.md, plus our extras. `session_id` is added by the caller, which owns it. Unavailable
// figures are null, never 0.

#include <nlohmann/json.hpp>

#include "riptide/performance/memory/memory_snapshot.hpp"
#include "riptide/performance/memory/memory_trend.hpp"

namespace riptide::performance {

struct SnapshotJsonOptions {
  bool include_size_classes = false;  ///< add "size_classes" (one entry per class with traffic)
};

/// {timestamp, total_allocated, total_deallocated, current_usage, peak_usage, allocation_count,
///  deallocation_count, allocator, rss_bytes, heap_bytes, virtual_bytes, peak_rss_bytes, cgroup{...},
///  jemalloc{...} | fallback{...}}
[[nodiscard]] nlohmann::json snapshot_to_json(const MemorySnapshot& snapshot, SnapshotJsonOptions options = {});

/// {duration, interval, downsampled_history, data_points[{timestamp, memory_usage, rss_bytes,
///  allocation_count, deallocation_count}], trend_analysis{average_usage, peak_usage, min_usage,
///  growth_rate, volatility, r_squared, point_count}}
[[nodiscard]] nlohmann::json trend_to_json(const MemoryTrend& trend);

/// For `nlohmann::json j = snapshot;` (without size classes) and `j = trend;`.
void to_json(nlohmann::json& json, const MemorySnapshot& snapshot);
void to_json(nlohmann::json& json, const MemoryTrend& trend);

}  // namespace riptide::performance
