#pragma once
// Every monitoring route on one transport-free Router: the memory routes, /metrics and /metrics/performance,
// and /debug/pprof/* (routes.hpp has them as separate groups; rp::http::serve(manager) serves them all):
//   rp::http::MemoryMetricsRouter router(manager);
//   auto server = rp::http::Server::start(router, {.bind = "127.0.0.1", .port = 3000});
// Over a bare MemoryProfiler (no targets or limits) the memory routes and /metrics's memory families work
// and /metrics/performance answers 503. docs/http-endpoints.md documents every endpoint and field.

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/http/router.hpp"

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace riptide::performance {
class MemoryProfiler;
class PerformanceManager;
class LeakDetector;
class AllocationAnalyzer;
class PrometheusWriter;
}  // namespace riptide::performance

namespace riptide::performance::http {

using riptide::performance::PrometheusWriter;

struct MemoryMetricsOptions {
  /// Cool-downs and bounds (gc_cooldown_sec, cpu_profile_max_sec, max_trend_points); empty: the
  /// profiler's configuration.
  std::optional<HttpConfig> http;
  /// A leak detector the host runs itself, whose published reports the routes show instead of the
  /// profiler's own; empty: the profiler's (which the manager's start_monitoring() runs).
  std::shared_ptr<LeakDetector> leak_detector;
  /// An allocation analyzer the host runs itself; empty: the profiler's.
  std::shared_ptr<AllocationAnalyzer> allocation_analyzer;
  /// The targets GET /metrics/memory/health judges against over a bare profiler, read per request; empty:
  /// the profiler's configuration. Over a manager, its targets (reloads included).
  std::function<PerformanceTargets()> targets;
  /// Body of GET /metrics/performance; empty: the manager's state() (over a bare profiler: 503).
  std::function<nlohmann::json()> performance_json;
  /// More /metrics families (performance, cache, limits), appended after the memory families.
  std::vector<std::function<void(PrometheusWriter&)>> prometheus_collectors;
  /// Minimum time between CPU profiles (after the previous one ends).
  double cpu_profile_cooldown_sec = 1.0;
  /// Minimum time between heap profile deltas (GET /debug/pprof/heap?seconds=N, after the previous one ends).
  double heap_delta_cooldown_sec = 1.0;
};

class MemoryMetricsRouter : public Router {
 public:
  /// Registers every route over a bare profiler. `profiler` must not be null; `session_id` is echoed in every
  /// JSON body (empty: the profiler's). Throws ConfigError for a null profiler.
  MemoryMetricsRouter(std::shared_ptr<MemoryProfiler> profiler, std::string session_id,
                      MemoryMetricsOptions options = {});
  /// Every route over a PerformanceManager: readers serialize its published state() (memory, targets,
  /// latency, stages, cache, limits), actions call its methods. Throws ConfigError for a null manager.
  explicit MemoryMetricsRouter(std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options = {});
  ~MemoryMetricsRouter() override;

  [[nodiscard]] const std::string& session_id() const noexcept;

  struct State;

 private:
  void register_routes();

  std::shared_ptr<State> state_;
};

}  // namespace riptide::performance::http
