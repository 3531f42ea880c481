#pragma once
// The one place where the performance value types become JSON (and the report Markdown). Field names are
// the C++ member names (the endpoint contract's, docs/http-endpoints.md, where it has them); durations are
// "<name>_ms"/"_sec" numbers and
// "<name>" text ("1h30m"); unavailable figures are null, never 0. Each to_json is found by argument-dependent
// lookup, so `nlohmann::json j = value;` works for every type here.

#include <string>

#include <nlohmann/json.hpp>

#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/timing/stage_timer.hpp"
#include "riptide/performance/timing/target_checker.hpp"
#include "riptide/performance/timing/throughput.hpp"

namespace riptide::performance {

void to_json(nlohmann::json& json, const PerformanceTargets& targets);
void to_json(nlohmann::json& json, const TargetCheck& check);
/// {all_targets_met, violations[], warnings[], memory_alert, checks[{target, state, measured, limit, message}]}
void to_json(nlohmann::json& json, const TargetStatus& status);
void to_json(nlohmann::json& json, const StageStats& stats);
/// {bottleneck, ai_overhead_percent, reference_time_ms, reference_is_requests, dropped_records, stages[]}
void to_json(nlohmann::json& json, const StageBreakdown& breakdown);
void to_json(nlohmann::json& json, const Throughput& throughput);
/// {timestamp, allocator, memory_rss_mb, ..., p50_latency_ms, ..., throughput_pps, ai_overhead_percent, ...}
void to_json(nlohmann::json& json, const Metrics& metrics);
void to_json(nlohmann::json& json, const ViolationRecord& record);
/// {applied, refused, last_refused}
void to_json(nlohmann::json& json, const ConfigReloadCounts& counts);
void to_json(nlohmann::json& json, const MemorySummary& summary);
void to_json(nlohmann::json& json, const LatencySummary& summary);
void to_json(nlohmann::json& json, const PerformanceReport& report);

/// The report as a Markdown document.
[[nodiscard]] std::string report_to_markdown(const PerformanceReport& report);

}  // namespace riptide::performance
