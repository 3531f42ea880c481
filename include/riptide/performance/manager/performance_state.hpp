#pragma once
// The immutable state a PerformanceManager publishes after each periodic check, which every reader
// serializes: C++ getters, every HTTP route, the Prometheus collection. Derived facts (the violation history,
// the health verdict, the allocation rates over fixed windows, the leak report and its age) are computed once
// there, so however often anyone reads, nothing changes and everyone sees the same.
//   std::shared_ptr<const rp::PerformanceState> state = manager->state();
//   state->status.all_met;  state->violations;  state->memory.health.status;
//   nlohmann::json j = *state;                                  // the body of GET /metrics/performance
//   rp::PrometheusWriter out; rp::write_prometheus(out, *state);  // every riptide_* family of GET /metrics

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/manager/memory_state.hpp"
#include "riptide/performance/manager/performance_manager.hpp"

namespace riptide::performance {

struct PerformanceState {
  std::chrono::system_clock::time_point taken_at{};  ///< when the state was assembled
  /// True: the state of the latest periodic check (at most monitoring.sample_interval_sec old). False: a
  /// reading made for the caller because no check runs (not monitoring, or before the first check).
  bool published = false;
  bool monitoring = false;  ///< start_monitoring() ran and stop_monitoring() did not yet
  std::string session_id;
  PerformanceTargets targets;               ///< in effect at the check (reloads change them)
  Metrics metrics;                          ///< latency, throughput, memory figures of the check
  TargetStatus status;                      ///< every target judged against `metrics`
  StageBreakdown stages;                    ///< per stage since start (cumulative)
  std::vector<ViolationRecord> violations;  ///< every target violated by a periodic check so far
  ConfigReloadCounts reloads;               ///< reloads applied and refused so far
  MemoryState memory;                       ///< snapshot, rates, leaks, self heap, health verdict
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
  ResourceUsage resources;  ///< permits, rates, breakers; refusals of the latest closed window
#endif
};

/// The body of GET /metrics/performance: {timestamp, session_id, monitoring, targets, status, metrics,
/// stages, config_reloads, violations_over_time, resources}.
void to_json(nlohmann::json& json, const PerformanceState& state);

/// Every riptide_* family of the state: riptide_info, memory and profiling (write_prometheus(MemoryState)),
/// requests, latency, throughput, stages, targets, reloads, cache, limits and circuit breakers.
void write_prometheus(PrometheusWriter& out, const PerformanceState& state);

}  // namespace riptide::performance
