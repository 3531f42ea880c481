#pragma once
// Memory over time in the pprof and memory route groups: the delta heap profile (GET
// /debug/pprof/heap?seconds=N), the peak heap profile in pprof's format (GET /debug/pprof/peak) and the
// peak's figures and top sites as JSON (GET /metrics/memory/peak). Internal to the http area.

#include <cstdint>
#include <memory>

#include "riptide/performance/http/router.hpp"
#include "route_context.hpp"

namespace riptide::performance::http {

/// Bound on /debug/pprof/heap?seconds=N: a delta holds one of the server's blocking threads that long.
inline constexpr std::int64_t kMaxHeapDeltaSeconds = 300;

/// Throws the 503 of the heap profile routes when heap profiles cannot be taken here (profiler off in the
/// process, profiling.enabled = false, compiled out), with the reason and the fix.
void require_heap_profiles(const RouteContext& context);

/// GET /debug/pprof/heap?seconds=N: two fresh profiles N seconds apart and their difference. One at a time
/// (429 with Retry-After while one runs or cools down).
[[nodiscard]] Response heap_profile_delta(RouteContext& context, const Request& request, std::int64_t seconds,
                                          bool symbolize);

/// GET /metrics/memory/peak (memory group).
void add_memory_peak_route(Router& router, const std::shared_ptr<RouteContext>& context);
/// GET /debug/pprof/peak (pprof group).
void add_pprof_peak_route(Router& router, const std::shared_ptr<RouteContext>& context);

}  // namespace riptide::performance::http
