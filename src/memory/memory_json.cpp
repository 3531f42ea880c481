#include "riptide/performance/memory/memory_json.hpp"

#include "riptide/performance/core/duration.hpp"
#include "riptide/performance/core/time_format.hpp"

namespace riptide::performance {
namespace {

nlohmann::json optional_value(const std::optional<std::uint64_t>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

void to_json(nlohmann::json& json, const MemorySnapshot& snapshot) {
  json = nlohmann::json::object();
  json["timestamp"] = format_rfc3339_utc(snapshot.timestamp);
  // The contract's fields (docs/http-endpoints.md).
  json["total_allocated"] = optional_value(snapshot.total_allocated_bytes);
  json["total_deallocated"] = optional_value(snapshot.total_deallocated_bytes);
  json["current_usage"] = optional_value(snapshot.heap_bytes);
  json["peak_usage"] = optional_value(snapshot.peak_heap_bytes);
  json["allocation_count"] = optional_value(snapshot.allocation_count);
  json["deallocation_count"] = optional_value(snapshot.deallocation_count);
  // Ours.
  json["allocator"] = snapshot.allocator;
  json["rss_bytes"] = optional_value(snapshot.rss_bytes);
  json["heap_bytes"] = optional_value(snapshot.heap_bytes);
  json["virtual_bytes"] = optional_value(snapshot.virtual_bytes);
  json["peak_rss_bytes"] = optional_value(snapshot.peak_rss_bytes);
  json["cgroup"] = {{"limit_bytes", optional_value(snapshot.cgroup_limit_bytes)},
                    {"usage_bytes", optional_value(snapshot.cgroup_usage_bytes)}};
  if (snapshot.allocator == "jemalloc") {
    json["jemalloc"] = {{"allocated", optional_value(snapshot.heap_bytes)},
                        {"active", optional_value(snapshot.active_bytes)},
                        {"metadata", optional_value(snapshot.metadata_bytes)},
                        {"resident", optional_value(snapshot.resident_bytes)},
                        {"mapped", optional_value(snapshot.mapped_bytes)},
                        {"retained", optional_value(snapshot.retained_bytes)},
                        {"tcache_bytes", optional_value(snapshot.tcache_bytes)},
                        {"dirty", optional_value(snapshot.dirty_bytes)},
                        {"muzzy", optional_value(snapshot.muzzy_bytes)},
                        {"request_count", optional_value(snapshot.request_count)}};
  } else {
    json["fallback"] = {{"heap_bytes", optional_value(snapshot.heap_bytes)},
                        {"mapped_bytes", optional_value(snapshot.mapped_bytes)},
                        {"free_bytes", optional_value(snapshot.free_bytes)}};
  }
}

nlohmann::json snapshot_to_json(const MemorySnapshot& snapshot, SnapshotJsonOptions options) {
  nlohmann::json json = snapshot;
  if (options.include_size_classes) {
    nlohmann::json classes = nlohmann::json::array();
    if (snapshot.size_classes) {
      for (const SizeClassStats& size_class : *snapshot.size_classes) {
        classes.push_back({{"size", size_class.size},
                           {"kind", size_class.large ? "large" : "small"},
                           {"allocations", size_class.nmalloc},
                           {"deallocations", size_class.ndalloc},
                           {"requests", size_class.nrequests},
                           {"current_objects", size_class.current}});
      }
    }
    json["size_classes"] = std::move(classes);
  }
  return json;
}

void to_json(nlohmann::json& json, const TrendAnalysis& analysis) {
  json = {{"average_usage", analysis.average_usage}, {"peak_usage", analysis.peak_usage},
          {"min_usage", analysis.min_usage},         {"growth_rate", analysis.growth_rate},
          {"volatility", analysis.volatility},       {"r_squared", analysis.r_squared},
          {"point_count", analysis.point_count}};
}

void to_json(nlohmann::json& json, const MemoryTrend& trend) {
  // Sub-second intervals need sub-second timestamps to tell the points apart.
  const bool millis = trend.interval < std::chrono::seconds{1};
  nlohmann::json points = nlohmann::json::array();
  for (const TrendPoint& point : trend.data_points) {
    points.push_back(
        {{"timestamp", millis ? format_rfc3339_utc_millis(point.timestamp) : format_rfc3339_utc(point.timestamp)},
         {"memory_usage", optional_value(point.memory_usage)},
         {"rss_bytes", optional_value(point.rss_bytes)},
         {"resident_bytes", optional_value(point.resident_bytes)},
         {"allocation_count", optional_value(point.allocation_count)},
         {"deallocation_count", optional_value(point.deallocation_count)},
         {"samples", point.samples}});
  }
  json = nlohmann::json::object();
  json["duration"] = format_duration(trend.duration);
  json["interval"] = format_duration(trend.interval);
  json["downsampled_history"] = trend.downsampled_history;
  json["data_points"] = std::move(points);
  json["trend_analysis"] = trend.trend_analysis;
}

nlohmann::json trend_to_json(const MemoryTrend& trend) {
  return nlohmann::json(trend);
}

}  // namespace riptide::performance
