#pragma once
// What the route groups share: where they read (a PerformanceManager's published state, or a bare
// MemoryProfiler's readings) and the few things HTTP itself owns (cool-downs that keep a client from
// turning an action into a denial of service, and the encoded pprof body of the latest shared profile).
// Internal to the http area.

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/http/cooldown.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/manager/memory_state.hpp"
#include "riptide/performance/manager/performance_state.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace riptide::performance {
class HeapProfile;
}  // namespace riptide::performance

namespace riptide::performance::http {

struct RouteContext {
  /// Over a manager: readers serialize manager->state(), actions call the manager's methods.
  static std::shared_ptr<RouteContext> of(std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options);
  /// Over a bare profiler (no targets to check, no limits): readers serialize profiler->assess().
  static std::shared_ptr<RouteContext> of(std::shared_ptr<MemoryProfiler> profiler, std::string session_id,
                                          MemoryMetricsOptions options);

  RouteContext(std::shared_ptr<MemoryProfiler> profiler, std::shared_ptr<PerformanceManager> manager,
               std::string session_id, MemoryMetricsOptions options);

  /// The manager's state as these routes show it (with `options.leak_detector`'s reports when the host runs
  /// its own detector); null over a bare profiler.
  [[nodiscard]] std::shared_ptr<const PerformanceState> performance_state() const;
  /// The memory part of what readers show now (performance_state(), else a profiler reading).
  [[nodiscard]] MemoryState memory_state() const;
  /// {timestamp, session_id}: the envelope of every JSON body.
  [[nodiscard]] nlohmann::json envelope(std::chrono::system_clock::time_point timestamp) const;

  std::shared_ptr<MemoryProfiler> profiler;     // never null
  std::shared_ptr<PerformanceManager> manager;  // null over a bare profiler
  std::string session_id;
  HttpConfig http;
  MemoryMetricsOptions options;
  Cooldown gc_cooldown;
  Cooldown cpu_cooldown;
  Cooldown heap_delta_cooldown;  // GET /debug/pprof/heap?seconds=N

  // GET /debug/pprof/heap's and /allocs's encoded bodies for the shared profile they were written from:
  // polls between two dumps cost neither symbolization nor compression.
  struct EncodedProfile {
    std::weak_ptr<const HeapProfile> profile;  // names the profile without keeping it alive
    std::string body;
  };
  std::mutex pprof_mutex;  // pprof_heap, pprof_allocs, pprof_peak
  EncodedProfile pprof_heap;
  EncodedProfile pprof_allocs;
  EncodedProfile pprof_peak;  // GET /debug/pprof/peak's, until a new peak replaces it
};

/// The route groups of MemoryMetricsRouter over one context (routes.hpp has the public ones).
void add_memory_routes(Router& router, const std::shared_ptr<RouteContext>& context);
void add_metrics_routes(Router& router, const std::shared_ptr<RouteContext>& context);
void add_pprof_routes(Router& router, const std::shared_ptr<RouteContext>& context);
/// GET /metrics/memory/captures and /metrics/memory/captures/<name>/<file>; part of the memory group.
void add_capture_routes(Router& router, const std::shared_ptr<RouteContext>& context);

}  // namespace riptide::performance::http
