#include "riptide/performance/manager/performance_state.hpp"

#include "riptide/performance/core/prometheus_writer.hpp"
#include "riptide/performance/core/time_format.hpp"
#include "riptide/performance/manager/performance_json.hpp"

#include <nlohmann/json.hpp>

namespace riptide::performance {
namespace {

void write_requests(PrometheusWriter& out, const Metrics& metrics) {
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
}

// One family per figure, one sample per stage: what a dashboard needs to find the bottleneck.
void write_stages(PrometheusWriter& out, const StageBreakdown& breakdown) {
  if (breakdown.stages.empty()) return;
  out.family("stage_calls_total", MetricType::counter, "Timings recorded per stage (time_stage/record_stage).");
  for (const auto& stage : breakdown.stages) out.sample(stage.count, {{"stage", stage.name}});
  out.family("stage_seconds_total", MetricType::counter, "Time spent per stage since start.");
  for (const auto& stage : breakdown.stages) {
    out.sample(std::chrono::duration<double>(stage.total).count(), {{"stage", stage.name}});
  }
  const std::pair<const char*, std::optional<double> StageStats::*> percentiles[] = {
      {"stage_latency_p50_seconds", &StageStats::p50_ms},
      {"stage_latency_p95_seconds", &StageStats::p95_ms},
      {"stage_latency_p99_seconds", &StageStats::p99_ms}};
  for (const auto& [name, field] : percentiles) {
    out.family(name, MetricType::gauge, "Per-stage latency percentile since start (within 0.8%).");
    for (const auto& stage : breakdown.stages) {
      if (const auto& ms = stage.*field) out.sample(*ms / 1000.0, {{"stage", stage.name}});
    }
  }
  out.family("stage_time_ratio", MetricType::gauge, "Share of request time spent in each stage (0-1).");
  for (const auto& stage : breakdown.stages) {
    if (stage.share_percent) out.sample(*stage.share_percent / 100.0, {{"stage", stage.name}});
  }
  out.family("stage_dropped_records_total", MetricType::counter,
             "Stage timings refused because the stage table was full or a name too long.");
  out.sample(breakdown.dropped_records);
}

void write_targets(PrometheusWriter& out, const PerformanceState& state) {
  out.family("monitoring", MetricType::gauge, "1 while start_monitoring() runs its periodic checks.");
  out.sample(std::uint64_t{state.monitoring ? 1U : 0U});
  out.family("target_state", MetricType::gauge,
             "Each target's state at the latest check: 0 met, 1 warning (>= 90% of the limit), 2 violated, "
             "3 not measured.");
  for (const auto& check : state.status.checks) {
    out.sample(std::uint64_t{static_cast<std::uint64_t>(check.state)}, {{"target", check.target}});
  }
  out.family("target_violation_checks_total", MetricType::counter,
             "Periodic checks that found each target violated in this monitoring session.");
  for (const auto& check : state.status.checks) {
    std::uint64_t violated = 0;
    for (const auto& record : state.violations) {
      if (record.target == check.target) violated = record.checks_violated;
    }
    out.sample(violated, {{"target", check.target}});
  }
  out.family("config_reloads_total", MetricType::counter,
             "Configuration reloads by result (refused: a bad value, nothing changed).");
  out.sample(state.reloads.applied, {{"result", "applied"}});
  out.sample(state.reloads.refused, {{"result", "refused"}});
  out.family("config_last_reload_successful", MetricType::gauge,
             "0 when the latest configuration reload was refused (the previous configuration runs), else 1.");
  out.sample(std::uint64_t{state.reloads.last_refused ? 0U : 1U});
}

}  // namespace

void to_json(nlohmann::json& json, const PerformanceState& state) {
  json = nlohmann::json::object();
  json["timestamp"] = format_rfc3339_utc(state.taken_at);
  json["session_id"] = state.session_id;
  json["monitoring"] = state.monitoring;
  json["published"] = state.published;
  json["targets"] = state.targets;
  json["status"] = state.status;
  json["metrics"] = state.metrics;
  json["stages"] = state.stages;
  json["violations_over_time"] = state.violations;
  json["config_reloads"] = state.reloads;
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
  json["resources"] = state.resources;
#endif
}

void write_prometheus(PrometheusWriter& out, const PerformanceState& state) {
  write_build_info(out, state.session_id, state.memory);
  write_prometheus(out, state.memory);
  write_requests(out, state.metrics);
  write_stages(out, state.stages);
  write_targets(out, state);
#if RIPTIDE_PERF_HAS_CACHE
  if (state.metrics.cache) write_prometheus(out, *state.metrics.cache);
#endif
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
  write_prometheus(out, state.resources);
#endif
}

}  // namespace riptide::performance
