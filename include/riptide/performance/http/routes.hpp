#pragma once
// The monitoring routes as groups a host can mount on its own Router (or on a transport of its own): each
// reads a PerformanceManager's published state and serializes it; the action routes (POST gc, CPU profile)
// call the manager's methods. MemoryMetricsRouter mounts the first three; rp::http::serve(manager) mounts
// all four and starts the embedded server.
//   rp::http::Router router;
//   rp::http::add_memory_routes(router, manager);    // /metrics/memory/{snapshot,trend,leaks,allocations,health,gc}
//   rp::http::add_metrics_routes(router, manager);   // /metrics, /metrics/performance
//   rp::http::add_pprof_routes(router, manager);     // /debug/pprof/heap, /debug/pprof/profile
//   rp::http::add_dashboard_routes(router);          // /dashboard and its assets (dashboard_assets.hpp)

#include "riptide/performance/http/dashboard_assets.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/router.hpp"

#include <memory>

namespace riptide::performance::http {

/// Each throws ConfigError for a null manager and std::invalid_argument when `router` already has one of the
/// group's routes. `options` as for MemoryMetricsRouter.
void add_memory_routes(Router& router, std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options = {});
void add_metrics_routes(Router& router, std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options = {});
void add_pprof_routes(Router& router, std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options = {});

}  // namespace riptide::performance::http
