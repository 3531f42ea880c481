// GET /debug/pprof/heap (the shared heap profile in pprof's format) and GET /debug/pprof/profile (a CPU
// profile, an action with its own cool-down).
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/http/http_error.hpp"
#include "riptide/performance/http/query.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/timing/cpu_profiler.hpp"
#include "route_context.hpp"

#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"
#endif

#include <algorithm>

namespace riptide::performance::http {
namespace {

Response heap(RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({"gc", "debug"});  // accepted and ignored, as Go's handler does
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (!HeapProfilingControl::available()) {
    throw HttpError::unavailable("heap profiling is off in this process: " + HeapProfilingControl::status().reason +
                                 "; fix: " + HeapProfilingControl::status().fix);
  }
  const auto& profiles = context.profiler->heap_profiles();
  if (!profiles) throw HttpError::unavailable("heap profiles are off (profiling.enabled = false)");
  // The profile the leak detector took at most one leak interval ago (or a fresh one): one dump serves every
  // reader. X-Heap-Profile-Age-Seconds says how old it is.
  auto profile = profiles->get(shared_profile_max_age(context.profiler->config().profiling));
  if (!profile) throw HttpError(500, "profile_failed", profile.error().to_string());
  Response response;
  response.content_type = "application/octet-stream";
  {
    const std::lock_guard lock(context.pprof_mutex);
    const auto& current = profile.value();
    if (context.pprof_body_profile.owner_before(current) || current.owner_before(context.pprof_body_profile) ||
        context.pprof_body_profile.expired()) {
      context.pprof_body = write_pprof_heap_profile(*profile.value(), Symbolizer::shared());
      context.pprof_body_profile = profile.value();
    }
    response.body = context.pprof_body;
  }
  const auto age = profiles->age().value_or(std::chrono::nanoseconds{0});
  response.set_header("X-Heap-Profile-Age-Seconds",
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()));
  response.set_header("Content-Disposition", "attachment; filename=\"heap.pb.gz\"");
  return response;
#else
  (void)context;
  throw HttpError::unavailable("heap profiles are compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
}

Response cpu_profile(RouteContext& context, const Request& request) {
  const Query query = Query::parse(request.query());
  query.allow_only({"seconds"});
  const auto max_seconds = static_cast<std::int64_t>(std::max<std::uint32_t>(1, context.http.cpu_profile_max_sec));
  const auto seconds = query.integer("seconds", std::min<std::int64_t>(30, max_seconds), 1, max_seconds);
  if (!CpuProfiler::available()) {
    throw HttpError::unavailable(
        "CPU profiles are compiled out: build with RIPTIDE_PERF_BOTTLENECK_ANALYSIS=ON (gperftools)");
  }
  auto ticket = context.cpu_cooldown.acquire_or_throw("a CPU profile");
  ticket.expect_end(std::chrono::steady_clock::now() + std::chrono::seconds{seconds});
  const auto duration = std::chrono::seconds{seconds};
  const CpuProfileResult result =
      context.manager ? context.manager->take_cpu_profile(duration) : CpuProfiler::profile(duration);
  switch (result.status) {
    case CpuProfileResult::Status::ok:
      break;
    case CpuProfileResult::Status::busy:
      throw HttpError::too_many_requests("another CPU profile is running in this process", seconds);
    case CpuProfileResult::Status::unavailable:
      throw HttpError::unavailable(result.reason);
    case CpuProfileResult::Status::failed:
      throw HttpError(500, "profile_failed", result.reason);
  }
  Response response;
  response.content_type = "application/octet-stream";
  response.body = result.profile;
  response.set_header("Content-Disposition", "attachment; filename=\"profile\"");
  return response;
}

}  // namespace

void add_pprof_routes(Router& router, const std::shared_ptr<RouteContext>& context) {
  router.add_route("GET", "/debug/pprof/heap", [context](const Request& request) { return heap(*context, request); },
                   {.sensitive = true, .blocking = true});
  router.add_route("GET", "/debug/pprof/profile",
                   [context](const Request& request) { return cpu_profile(*context, request); },
                   {.sensitive = true, .blocking = true});
}

}  // namespace riptide::performance::http
