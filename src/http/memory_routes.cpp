// GET /metrics/memory/{snapshot,trend,leaks,allocations,health} and POST /metrics/memory/gc: the readers
// serialize what the memory and profiling areas computed; gc calls the release action.
#include "heap_over_time.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/http/http_error.hpp"
#include "riptide/performance/http/query.hpp"
#include "riptide/performance/manager/memory_bodies.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/memory_json.hpp"
#include "riptide/performance/profiling/profiling_json.hpp"
#include "route_context.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace riptide::performance::http {
namespace {

using namespace std::chrono_literals;

// Copies `fields` into `body` after its envelope.
void merge_into(nlohmann::json& body, nlohmann::json fields) {
  for (auto& [key, value] : fields.items()) body[key] = std::move(value);
}

Response snapshot(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
  return json_response(memory_snapshot_body(*context.profiler, context.session_id));
}

Response trend(const RouteContext& context, const Request& request) {
  const Query query = Query::parse(request.query());
  query.allow_only({"duration", "interval"});
  const MemoryTracker& tracker = context.profiler->tracker();
  const auto retained = std::max(tracker.options().history, tracker.options().long_history);
  const auto duration = query.duration("duration", std::min<std::chrono::nanoseconds>(1h, retained), 1s, retained);
  const auto interval = query.duration("interval", std::min<std::chrono::nanoseconds>(1min, duration), 1ms, duration);
  const MemoryTrend trend = tracker.trend(duration, interval, std::max<std::size_t>(1, context.http.max_trend_points));
  nlohmann::json body = context.envelope(tracker.clock().system_now());
  merge_into(body, trend);
  body["max_points"] = context.http.max_trend_points;
  return json_response(body);
}

// The leak detector's latest published report: a request never takes a heap profile (that is the
// detector's periodic work, or the explicit detect_leaks()).
Response leaks(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
  LeakReportBody leaks = leak_report_body(context.memory_state(), context.session_id);
  if (!leaks.body) throw HttpError::unavailable(leaks.unavailable_reason);
  return json_response(*leaks.body);
}

Response allocations(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  const AllocationStats stats = context.options.allocation_analyzer ? context.options.allocation_analyzer->analyze()
                                                                    : context.profiler->get_allocation_stats();
  if (!stats.available) {
    throw HttpError::unavailable("allocation statistics need jemalloc as the process allocator: " + stats.reason);
  }
  nlohmann::json body = stats;
  body["session_id"] = context.session_id;
  return json_response(body);
#else
  (void)context;
  throw HttpError::unavailable("allocation analysis is compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
}

Response health(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
  const MemoryState state = context.memory_state();
  nlohmann::json body = context.envelope(state.taken_at);
  merge_into(body, state.health);
  return json_response(body);
}

// The fragmentation view derived with the published state: a read, from the latest snapshot's epoch.
Response fragmentation(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
  const MemoryState state = context.memory_state();
  nlohmann::json body = context.envelope(state.taken_at);
  merge_into(body, state.fragmentation);
  return json_response(body);
}

// The lifetime view the periodic reading published: how long each site's allocations live. Unavailable
// (503 with the reason) as the leak report is, and for the same reasons.
Response lifetimes(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
  const MemoryState state = context.memory_state();
  if (!state.lifetimes) throw HttpError::unavailable(state.lifetimes_unavailable_reason);
  if (!state.lifetimes->available) throw HttpError::unavailable("allocation lifetimes: " + state.lifetimes->reason);
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING  // a view exists only then; its JSON lives in the profiling area
  nlohmann::json body = context.envelope(state.taken_at);
  merge_into(body, *state.lifetimes);
  return json_response(body);
#else
  throw HttpError::unavailable(state.lifetimes_unavailable_reason);
#endif
}

Response gc(RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
  // Refused before the cool-down is spent: an allocator that cannot release must not delay a later retry.
  if (const std::string reason = memory_release_unavailable_reason(context.profiler->tracker()); !reason.empty()) {
    throw HttpError::unavailable(reason);
  }
  const auto ticket = context.gc_cooldown.acquire_or_throw("memory purge");
  const MemoryRelease release =
      context.manager ? context.manager->release_memory() : context.profiler->release_memory();
  if (!release.performed) throw HttpError::unavailable(release.reason);
  nlohmann::json body = context.envelope(release.timestamp);
  merge_into(body, release);
  return json_response(body);
}

}  // namespace

void add_memory_routes(Router& router, const std::shared_ptr<RouteContext>& context) {
  // Each handler's copy of `context` keeps it alive as long as the router.
  const auto read = [&context](Response (*handler)(const RouteContext&, const Request&)) {
    return [context, handler](const Request& request) { return handler(*context, request); };
  };
  router.add_route("GET", "/metrics/memory/snapshot", read(&snapshot));
  router.add_route("GET", "/metrics/memory/leaks", read(&leaks));
  router.add_route("GET", "/metrics/memory/allocations", read(&allocations), {.blocking = true});
  router.add_route("GET", "/metrics/memory/trend", read(&trend));
  router.add_route("GET", "/metrics/memory/health", read(&health));
  router.add_route("GET", "/metrics/memory/fragmentation", read(&fragmentation));
  router.add_route("GET", "/metrics/memory/lifetimes", read(&lifetimes));
  add_memory_peak_route(router, context);
  router.add_route("POST", "/metrics/memory/gc", [context](const Request& request) { return gc(*context, request); },
                   {.sensitive = true, .blocking = true});
  add_capture_routes(router, context);
}

}  // namespace riptide::performance::http
