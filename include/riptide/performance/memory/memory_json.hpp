#pragma once
// The one place where memory results become JSON: the /metrics/memory/snapshot and /trend field
// names of docs/http-endpoints.md, plus our extras. `session_id` is added by the caller, which owns it. Unavailable
// figures are null, never 0.

#include <nlohmann/json.hpp>

#include "riptide/performance/memory/memory_snapshot.hpp"
#include "riptide/performance/memory/memory_trend.hpp"

namespace riptide::performance {

/// {timestamp, total_allocated, total_deallocated, current_usage, peak_usage, allocation_count,
///  deallocation_count, allocator, rss_bytes, heap_bytes, virtual_bytes, peak_rss_bytes, cgroup{...},
///  jemalloc{...} | fallback{...}}. Found by argument-dependent lookup: `nlohmann::json j = snapshot;`.
void to_json(nlohmann::json& json, const MemorySnapshot& snapshot);

/// {duration, interval, downsampled_history, data_points[{timestamp, memory_usage, rss_bytes,
///  allocation_count, deallocation_count, samples}], trend_analysis{...}}: `nlohmann::json j = trend;`.
void to_json(nlohmann::json& json, const MemoryTrend& trend);
/// {average_usage, peak_usage, min_usage, growth_rate, volatility, r_squared, point_count}
void to_json(nlohmann::json& json, const TrendAnalysis& analysis);

struct SnapshotJsonOptions {
  bool include_size_classes = false;  ///< add "size_classes" (one entry per class with traffic)
};

/// The snapshot's JSON above with what `options` adds; with the default options the same as the ADL form.
[[nodiscard]] nlohmann::json snapshot_to_json(const MemorySnapshot& snapshot, SnapshotJsonOptions options = {});

/// The spelling of an earlier release, kept for one more as a forward to the ADL form.
[[deprecated("use nlohmann::json j = trend (ADL to_json)")]] [[nodiscard]] nlohmann::json trend_to_json(
    const MemoryTrend& trend);

}  // namespace riptide::performance
