#pragma once
// The /metrics/memory/* endpoints (docs/http-endpoints.md) plus Prometheus /metrics, pprof /debug/pprof/* and
// /metrics/performance, as routes on a transport-free Router:
//   auto profiler = std::make_shared<rp::MemoryProfiler>(session_id);
//   profiler->start_profiling();
//   rp::http::MemoryMetricsRouter router(profiler, session_id);
//   auto server = rp::http::Server::start(router, {.bind = "127.0.0.1", .port = 3000});
// docs/http-endpoints.md documents every endpoint and field.

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
  /// Leak history shared with the host (e.g. the PerformanceManager's); empty: the router creates one
  /// and runs it in the background when heap profiling is available.
  std::shared_ptr<LeakDetector> leak_detector;
  /// Allocation analyzer shared with the host; empty: the router creates one.
  std::shared_ptr<AllocationAnalyzer> allocation_analyzer;
  /// The targets GET /metrics/memory/health judges against, read per request (e.g. a PerformanceManager's,
  /// which reload_config() can change); empty: the profiler's configuration.
  std::function<PerformanceTargets()> targets;
  /// Body of GET /metrics/performance (e.g. PerformanceManager::performance_json); empty: 503.
  std::function<nlohmann::json()> performance_json;
  /// More /metrics families (performance, cache, limits), appended after the memory families.
  std::vector<std::function<void(PrometheusWriter&)>> prometheus_collectors;
  /// Minimum time between CPU profiles (after the previous one ends).
  double cpu_profile_cooldown_sec = 1.0;
};

class MemoryMetricsRouter : public Router {
 public:
  /// Registers every route. `profiler` must not be null; `session_id` is echoed in every JSON body
  /// (empty: the profiler's). Throws ConfigError for a null profiler.
  MemoryMetricsRouter(std::shared_ptr<MemoryProfiler> profiler, std::string session_id,
                      MemoryMetricsOptions options = {});
  /// Every route over a PerformanceManager: its memory profiler, session and configuration,
  /// GET /metrics/performance from performance_json(), and request latency/throughput families in
  /// /metrics. Options given here are kept (a performance_json given here wins).
  explicit MemoryMetricsRouter(std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options = {});
  ~MemoryMetricsRouter() override;

  [[nodiscard]] const std::string& session_id() const noexcept;

  struct State;

 private:
  void register_routes();
  static MemoryMetricsOptions with_manager(const std::shared_ptr<PerformanceManager>& manager,
                                           MemoryMetricsOptions options);

  std::shared_ptr<State> state_;
};

}  // namespace riptide::performance::http
