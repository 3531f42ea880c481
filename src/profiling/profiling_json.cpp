#include "riptide/performance/profiling/profiling_json.hpp"

#include <cmath>

#include "riptide/performance/core/json_optional.hpp"
#include "riptide/performance/core/time_format.hpp"

namespace riptide::performance {
namespace {

// JSON has no infinity; a ratio with no frees in the interval is reported as null.
nlohmann::json finite_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace

void to_json(nlohmann::json& json, const MemoryLeak& leak) {
  json = {
      {"location", leak.location},
      {"size", leak.size},
      {"age_seconds", leak.age.count()},
      {"allocation_time", format_rfc3339_utc(leak.allocation_time)},
      {"function", leak.function},
      {"function_full", leak.function_full},
      {"file", leak.file},
      {"line", leak.line},
      {"objects", leak.objects},
      {"growth_rate", leak.growth_rate},
      {"r_squared", leak.r_squared},
      {"confidence", leak.confidence},
      {"relative_error", leak.relative_error},
      {"size_error_bytes", leak.size_error_bytes},
      {"observations", leak.observations},
      {"stack", leak.stack},
  };
}

void to_json(nlohmann::json& json, const LeakReport& report) {
  json = {
      {"timestamp", format_rfc3339_utc(report.timestamp)},
      {"leak_count", report.leak_count},
      {"total_leaked_bytes", report.total_leaked_bytes},
      {"leaks", report.leaks},
      {"severity", to_string(report.severity)},
      {"total_growth_rate", report.total_growth_rate},
      {"available", report.available},
      {"observations", report.observations},
      {"tracked_sites", report.tracked_sites},
      {"max_tracked_sites", report.max_tracked_sites},
      {"dropped_sites", report.dropped_sites},
      {"max_history_per_site", report.max_history_per_site},
      {"dropped_history_points", report.dropped_history_points},
      {"sample_interval_bytes", report.sample_interval_bytes},
      {"interval_sec", report.interval_sec},
  };
  if (!report.reason.empty()) {
    json["reason"] = report.reason;
  }
}

void to_json(nlohmann::json& json, const AllocationSite& site) {
  json = {
      {"location", site.location},
      {"allocation_count", site.count},
      {"total_bytes", site.total_bytes},
      {"average_size", site.average_size},
      {"percentage_of_total", site.percentage_of_total},
      {"function", site.function},
      {"function_full", site.function_full},
      {"file", site.file},
      {"line", site.line},
      {"relative_error", site.relative_error},
      {"size_error_bytes", site.size_error_bytes},
      {"temporary_share", optional_json(site.temporary_share)},
      {"lifetime_p50_ms", optional_json(site.lifetime_p50_ms)},
      {"stack", site.stack},
  };
}

void to_json(nlohmann::json& json, const AllocationStats& stats) {
  nlohmann::json size_classes = nlohmann::json::array();
  for (const auto& size_class : stats.size_classes) {
    size_classes.push_back({{"size", size_class.size},
                            {"large", size_class.large},
                            {"nrequests", size_class.nrequests},
                            {"nmalloc", size_class.nmalloc},
                            {"ndalloc", size_class.ndalloc},
                            {"current", size_class.current}});
  }
  json = {
      {"timestamp", format_rfc3339_utc(stats.timestamp)},
      {"top_allocators", stats.top_allocators},
      {"total_allocations", stats.total_allocations},
      {"average_allocation_size", stats.average_allocation_size},
      {"median_allocation_size", stats.median_allocation_size},
      {"allocation_rate_per_second", stats.allocation_rate_per_second},
      {"top_allocators_by_bytes", stats.top_allocators_by_bytes},
      {"sites_basis", stats.sites_basis},
      {"sites_available", stats.sites_available},
      {"sample_interval_bytes", stats.sample_interval_bytes},
      {"sites_age_seconds", stats.sites_age_seconds},
      {"available", stats.available},
      {"total_deallocations", stats.total_deallocations},
      {"total_allocated_bytes", stats.total_allocated_bytes},
      {"deallocation_rate_per_second", stats.deallocation_rate_per_second},
      {"rate_window_seconds", stats.rate_window_seconds},
      {"live_allocations", stats.live_allocations},
      {"allocation_deallocation_ratio", finite_or_null(stats.allocation_deallocation_ratio)},
      {"size_classes", std::move(size_classes)},
      {"recommendations", stats.recommendations},
  };
  if (!stats.reason.empty()) {
    json["reason"] = stats.reason;
  }
}

void to_json(nlohmann::json& json, const HeapProfilingStatus& status) {
  json = {
      {"available", status.available},
      {"jemalloc", status.jemalloc},
      {"compiled_with_prof", status.compiled_with_prof},
      {"enabled_at_start", status.enabled_at_start},
      {"active", status.active},
      {"accumulating", status.accumulating},
      {"lg_sample", status.lg_sample},
      {"sample_interval_bytes", status.sample_interval_bytes},
  };
  if (!status.reason.empty()) {
    json["reason"] = status.reason;
    json["fix"] = status.fix;
  }
}

nlohmann::json to_json(const LeakReport& report) {
  return nlohmann::json(report);
}
nlohmann::json to_json(const MemoryLeak& leak) {
  return nlohmann::json(leak);
}
nlohmann::json to_json(const AllocationStats& stats) {
  return nlohmann::json(stats);
}
nlohmann::json to_json(const AllocationSite& site) {
  return nlohmann::json(site);
}
nlohmann::json to_json(const HeapProfilingStatus& status) {
  return nlohmann::json(status);
}

}  // namespace riptide::performance
