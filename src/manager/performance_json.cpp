// Serialization of the performance value types: JSON for the HTTP layer and reports, Markdown for people.
#include "riptide/performance/manager/performance_json.hpp"

#include <cstdio>
#include <sstream>

#include "riptide/performance/core/duration.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/json_optional.hpp"
#include "riptide/performance/core/time_format.hpp"
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
#include "riptide/performance/profiling/profiling_json.hpp"
#endif

namespace riptide::performance {
namespace {

double to_ms(std::chrono::nanoseconds duration) {
  return static_cast<double>(duration.count()) / 1e6;
}

// Human text for a duration, rounded to milliseconds so it stays short ("1m30s250ms").
std::string duration_text(std::chrono::nanoseconds duration) {
  return format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(duration));
}

std::string num(const std::optional<double>& value, const char* unit = "") {
  if (!value) {
    return "n/a";
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1f%s", *value, unit);
  return buffer;
}

// Leak and allocation-site JSON belongs to the profiling area (one place); without it the report has none.
nlohmann::json leaks_json(const PerformanceReport& r) {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (r.leaks) {
    return *r.leaks;
  }
#endif
  (void)r;
  return nullptr;
}

nlohmann::json sites_json(const PerformanceReport& r) {
  nlohmann::json out = nlohmann::json::array();
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  for (const auto& site : r.top_allocation_sites) {
    out.push_back(site);
  }
#endif
  (void)r;
  return out;
}

}  // namespace

void to_json(nlohmann::json& json, const PerformanceTargets& t) {
  json = {{"p50_latency_ms", t.p50_latency_ms},         {"p95_latency_ms", t.p95_latency_ms},
          {"max_memory_mb", t.max_memory_mb},           {"memory_alert_mb", t.memory_alert_mb},
          {"min_throughput_pps", t.min_throughput_pps}, {"max_ai_overhead_percent", t.max_ai_overhead_percent}};
}

void to_json(nlohmann::json& json, const TargetCheck& check) {
  json = {{"target", check.target},
          {"state", to_string(check.state)},
          {"measured", optional_json(check.measured)},
          {"limit", check.limit},
          {"message", check.message}};
}

void to_json(nlohmann::json& json, const TargetStatus& status) {
  json = {{"all_targets_met", status.all_targets_met},
          {"violations", status.violations},
          {"warnings", status.warnings},
          {"memory_alert", status.memory_alert},
          {"checks", status.checks}};
}

void to_json(nlohmann::json& json, const StageStats& s) {
  json = {{"name", s.name},
          {"count", s.count},
          {"total_ms", to_ms(s.total)},
          {"mean_ms", optional_json(s.mean_ms)},
          {"p50_ms", optional_json(s.p50_ms)},
          {"p95_ms", optional_json(s.p95_ms)},
          {"p99_ms", optional_json(s.p99_ms)},
          {"share_percent", optional_json(s.share_percent)}};
}

void to_json(nlohmann::json& json, const StageBreakdown& b) {
  json = {{"bottleneck", optional_json(b.bottleneck)},    {"ai_overhead_percent", optional_json(b.ai_overhead_percent)},
          {"reference_time_ms", to_ms(b.reference_time)}, {"reference_is_requests", b.reference_is_requests},
          {"dropped_records", b.dropped_records},         {"stages", b.stages}};
}

void to_json(nlohmann::json& json, const Throughput& t) {
  json = {{"window_pps", optional_json(t.window_pps)},
          {"since_start_pps", optional_json(t.since_start_pps)},
          {"window_sec", std::chrono::duration<double>(t.window_span).count()},
          {"window_pages", t.window_pages},
          {"total_pages", t.total_pages}};
}

void to_json(nlohmann::json& json, const Metrics& m) {
  json = {
      {"timestamp", format_rfc3339_utc(m.timestamp)},
      {"allocator", m.allocator},
      {"memory_rss_mb", optional_json(m.memory_rss_mb)},
      {"memory_virtual_mb", optional_json(m.memory_virtual_mb)},
      {"heap_mb", optional_json(m.heap_mb)},
      {"heap_bytes", optional_json(m.heap_bytes)},
      {"self_heap_bytes", optional_json(m.self_heap_bytes)},
      {"jemalloc", m.jemalloc_allocated_bytes ? nlohmann::json{{"allocated", optional_json(m.jemalloc_allocated_bytes)},
                                                               {"active", optional_json(m.jemalloc_active_bytes)},
                                                               {"metadata", optional_json(m.jemalloc_metadata_bytes)},
                                                               {"resident", optional_json(m.jemalloc_resident_bytes)},
                                                               {"mapped", optional_json(m.jemalloc_mapped_bytes)},
                                                               {"retained", optional_json(m.jemalloc_retained_bytes)}}
                                              : nlohmann::json(nullptr)},
      {"p50_latency_ms", optional_json(m.p50_latency_ms)},
      {"p95_latency_ms", optional_json(m.p95_latency_ms)},
      {"p99_latency_ms", optional_json(m.p99_latency_ms)},
      {"mean_latency_ms", optional_json(m.mean_latency_ms)},
      {"throughput_pps", m.throughput_pps},
      {"throughput_since_start_pps", optional_json(m.throughput_since_start_pps)},
      {"window_requests", m.window_requests},
      {"total_requests", m.total_requests},
      {"window_sec", std::chrono::duration<double>(m.window).count()},
      {"ai_overhead_percent", optional_json(m.ai_overhead_percent)},
      {"bottleneck_stage", optional_json(m.bottleneck_stage)}};
#if RIPTIDE_PERF_HAS_CACHE
  json["cache"] = m.cache ? nlohmann::json(*m.cache) : nlohmann::json(nullptr);
#endif
}

void to_json(nlohmann::json& json, const ViolationRecord& r) {
  json = {{"target", r.target},
          {"first_seen", format_rfc3339_utc(r.first_seen)},
          {"last_seen", format_rfc3339_utc(r.last_seen)},
          {"checks_violated", r.checks_violated},
          {"worst_measured", optional_json(r.worst_measured)},
          {"limit", r.limit},
          {"last_message", r.last_message}};
}

void to_json(nlohmann::json& json, const ConfigReloadCounts& c) {
  json = {{"applied", c.applied}, {"refused", c.refused}, {"last_refused", c.last_refused}};
}

void to_json(nlohmann::json& json, const MemorySummary& s) {
  json = {{"samples", s.samples},
          {"rss_start_mb", optional_json(s.rss_start_mb)},
          {"rss_end_mb", optional_json(s.rss_end_mb)},
          {"rss_peak_mb", optional_json(s.rss_peak_mb)},
          {"rss_mean_mb", optional_json(s.rss_mean_mb)},
          {"heap_start_mb", optional_json(s.heap_start_mb)},
          {"heap_end_mb", optional_json(s.heap_end_mb)},
          {"heap_peak_mb", optional_json(s.heap_peak_mb)},
          {"heap_growth_bytes_per_sec", s.heap_growth_bytes_per_sec},
          {"heap_growth_r_squared", s.heap_growth_r_squared},
          {"trend", s.trend}};
}

void to_json(nlohmann::json& json, const LatencySummary& s) {
  json = {{"count", s.count},
          {"mean_ms", optional_json(s.mean_ms)},
          {"p50_ms", optional_json(s.p50_ms)},
          {"p95_ms", optional_json(s.p95_ms)},
          {"p99_ms", optional_json(s.p99_ms)},
          {"max_ms", optional_json(s.max_ms)}};
}

void to_json(nlohmann::json& json, const PerformanceReport& r) {
  json = {{"session_id", r.session_id},
          {"started_at", format_rfc3339_utc(r.started_at)},
          {"ended_at", format_rfc3339_utc(r.ended_at)},
          {"duration", duration_text(r.duration)},
          {"duration_sec", std::chrono::duration<double>(r.duration).count()},
          {"targets", r.targets},
          {"memory", r.memory},
          {"latency", r.latency},
          {"throughput", r.throughput},
          {"stages", r.stages},
          {"final_status", r.final_status},
          {"violations_over_time", r.violations_over_time},
          {"leaks", leaks_json(r)},
          {"top_allocation_sites", sites_json(r)},
          {"recommendations", r.recommendations}};
}

std::string report_to_markdown(const PerformanceReport& r) {
  std::ostringstream md;
  md << "# Performance report\n\n"
     << "- Session: `" << r.session_id << "`\n"
     << "- From " << format_rfc3339_utc(r.started_at) << " to " << format_rfc3339_utc(r.ended_at) << " ("
     << duration_text(r.duration) << ")\n"
     << "- Targets: " << (r.final_status.all_targets_met ? "all met" : "NOT all met") << "\n\n";

  md << "## Targets\n\n| Target | Limit | Measured | State |\n|---|---|---|---|\n";
  for (const auto& check : r.final_status.checks) {
    md << "| " << check.target << " | " << num(check.limit) << " | " << num(check.measured) << " | "
       << to_string(check.state) << " |\n";
  }
  md << "\n";

  md << "## Latency and throughput\n\n| Figure | Value |\n|---|---|\n"
     << "| requests | " << r.latency.count << " |\n"
     << "| mean | " << num(r.latency.mean_ms, " ms") << " |\n"
     << "| p50 | " << num(r.latency.p50_ms, " ms") << " |\n"
     << "| p95 | " << num(r.latency.p95_ms, " ms") << " |\n"
     << "| p99 | " << num(r.latency.p99_ms, " ms") << " |\n"
     << "| max | " << num(r.latency.max_ms, " ms") << " |\n"
     << "| throughput, last window | " << num(r.throughput.window_pps, " pages/s") << " |\n"
     << "| throughput, since start | " << num(r.throughput.since_start_pps, " pages/s") << " |\n\n";

  md << "## Stages\n\n";
  if (r.stages.stages.empty()) {
    md << "No stage timings were recorded.\n\n";
  } else {
    md << "| Stage | Count | Total | Share | p50 | p95 | p99 |\n|---|---|---|---|---|---|---|\n";
    for (const auto& s : r.stages.stages) {
      md << "| " << s.name << " | " << s.count << " | " << num(to_ms(s.total), " ms") << " | "
         << num(s.share_percent, "%") << " | " << num(s.p50_ms, " ms") << " | " << num(s.p95_ms, " ms") << " | "
         << num(s.p99_ms, " ms") << " |\n";
    }
    md << "\nBottleneck: " << (r.stages.bottleneck ? "**" + *r.stages.bottleneck + "**" : std::string("none"))
       << ". AI overhead: " << num(r.stages.ai_overhead_percent, "%") << " of "
       << (r.stages.reference_is_requests ? "request time" : "stage time") << ".\n\n";
  }

  md << "## Memory\n\n| Figure | Value |\n|---|---|\n"
     << "| samples | " << r.memory.samples << " |\n"
     << "| RSS start / end | " << num(r.memory.rss_start_mb, " MB") << " / " << num(r.memory.rss_end_mb, " MB")
     << " |\n"
     << "| RSS peak / mean | " << num(r.memory.rss_peak_mb, " MB") << " / " << num(r.memory.rss_mean_mb, " MB")
     << " |\n"
     << "| heap start / end / peak | " << num(r.memory.heap_start_mb, " MB") << " / "
     << num(r.memory.heap_end_mb, " MB") << " / " << num(r.memory.heap_peak_mb, " MB") << " |\n"
     << "| heap trend | " << r.memory.trend << " (" << num(r.memory.heap_growth_bytes_per_sec, " B/s") << ", R² "
     << num(r.memory.heap_growth_r_squared) << ") |\n\n";

  md << "## Leaks and allocation sites\n\n";
  if (!r.leaks) {
    md << "Heap profiling was not part of this session.\n\n";
  } else if (!r.leaks->available) {
    md << "Heap profiling unavailable: " << r.leaks->reason << "\n\n";
  } else if (r.leaks->leaks.empty()) {
    md << "No suspected leaks after " << r.leaks->observations << " observations.\n\n";
  } else {
    md << "| Location | Size | Growth | Age |\n|---|---|---|---|\n";
    for (const auto& leak : r.leaks->leaks) {
      md << "| " << leak.location << " | " << num(static_cast<double>(leak.size) / (1024.0 * 1024.0), " MB") << " | "
         << num(leak.growth_rate / 1024.0, " KiB/s") << " | " << duration_text(leak.age) << " |\n";
    }
    md << "\n";
  }
  if (!r.top_allocation_sites.empty()) {
    md << "| Top allocation site | Allocations | Bytes |\n|---|---|---|\n";
    for (const auto& site : r.top_allocation_sites) {
      md << "| " << site.location << " | " << site.count << " | " << site.total_bytes << " |\n";
    }
    md << "\n";
  }

  md << "## Violations during the session\n\n";
  if (r.violations_over_time.empty()) {
    md << "None.\n\n";
  } else {
    for (const auto& v : r.violations_over_time) {
      md << "- **" << v.target << "**: " << v.checks_violated << " checks from " << format_rfc3339_utc(v.first_seen)
         << " to " << format_rfc3339_utc(v.last_seen) << ", worst " << num(v.worst_measured) << " (target "
         << num(v.limit) << "). Last: " << v.last_message << "\n";
    }
    md << "\n";
  }

  md << "## Recommendations\n\n";
  if (r.recommendations.empty()) {
    md << "None: every target was met.\n";
  } else {
    for (const auto& tip : r.recommendations) {
      md << "- " << tip << "\n";
    }
  }
  return md.str();
}

}  // namespace riptide::performance
