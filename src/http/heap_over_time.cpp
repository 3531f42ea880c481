#include "heap_over_time.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <mutex>
#include <string>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/time_format.hpp"
#include "riptide/performance/http/http_error.hpp"
#include "riptide/performance/http/query.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_manager.hpp"

#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
#include "riptide/performance/profiling/heap_profile_delta.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/peak_heap_profile.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"
#endif

namespace riptide::performance::http {
namespace {

#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
// The recorder of the peak, or the 503 that says why there is none.
std::shared_ptr<PeakHeapRecorder> require_peak_recorder(const RouteContext& context) {
  require_heap_profiles(context);
  auto recorder = context.profiler->peak_recorder();
  if (!recorder) {
    throw HttpError::unavailable(
        "peak heap profiles are off (profiling.peak_profile_growth = 0); fix: set it to the growth share that "
        "calls for a new capture, e.g. 0.1");
  }
  return recorder;
}

std::string no_peak_yet_reason(const PeakHeapRecorder& recorder) {
  const PeakRecorderStatus status = recorder.status();
  std::string reason = recorder.running()
                           ? "no peak heap profile yet: one is taken after the sampler's next snapshot"
                           : "no peak heap profile yet: the peak is checked after every memory snapshot while "
                             "monitoring (start_monitoring()) or profiling (start_profiling()) runs";
  if (!status.last_error.empty()) reason += "; the latest capture failed: " + status.last_error;
  return reason;
}
#endif

Response memory_peak(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  const auto recorder = require_peak_recorder(context);
  nlohmann::json body = context.envelope(std::chrono::system_clock::now());
  body["basis"] = "heap";
  body["recorder"] = recorder->status();
  if (const auto peak = recorder->latest()) {
    body["peak"] = *peak;
  } else {
    body["peak"] = nullptr;
    body["reason"] = no_peak_yet_reason(*recorder);
  }
  return json_response(body);
#else
  (void)context;
  throw HttpError::unavailable("heap profiles are compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
}

Response pprof_peak(RouteContext& context, const Request& request) {
  const Query query = Query::parse(request.query());
  query.allow_only({"gc", "debug", "symbolize"});  // as /debug/pprof/heap: gc and debug accepted and ignored
  const bool symbolize = query.integer("symbolize", 1, 0, 1) == 1;
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  const auto recorder = require_peak_recorder(context);
  const auto peak = recorder->latest();
  if (!peak) throw HttpError(404, "no_peak_profile", no_peak_yet_reason(*recorder));
  Response response;
  response.content_type = "application/octet-stream";
  if (!symbolize) {
    response.body = write_pprof_heap_profile(*peak->profile, Symbolizer::shared(), {.symbolize = false});
  } else {
    // The peak changes rarely: its encoded body is kept until a new peak replaces it.
    const std::lock_guard lock(context.pprof_mutex);
    auto& cached = context.pprof_peak;
    const auto& current = peak->profile;
    if (cached.profile.owner_before(current) || current.owner_before(cached.profile) || cached.profile.expired()) {
      cached.body = write_pprof_heap_profile(*current, Symbolizer::shared());
      cached.profile = current;
    }
    response.body = cached.body;
  }
  response.set_header("X-Peak-Heap-Bytes", std::to_string(peak->heap_bytes));
  response.set_header("X-Peak-Observed-At", format_rfc3339_utc(peak->observed_at));
  response.set_header("Content-Disposition", "attachment; filename=\"peak.pb.gz\"");
  return response;
#else
  (void)context;
  (void)symbolize;
  throw HttpError::unavailable("heap profiles are compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
}

}  // namespace

void require_heap_profiles(const RouteContext& context) {
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  if (!HeapProfilingControl::available()) {
    throw HttpError::unavailable("heap profiling is off in this process: " + HeapProfilingControl::status().reason +
                                 "; fix: " + HeapProfilingControl::status().fix);
  }
  if (!context.profiler->heap_profiles())
    throw HttpError::unavailable("heap profiles are off (profiling.enabled = false)");
#else
  (void)context;
  throw HttpError::unavailable("heap profiles are compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
}

Response heap_profile_delta(RouteContext& context, const Request& request, std::int64_t seconds, bool symbolize) {
  require_heap_profiles(context);
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  auto ticket = context.heap_delta_cooldown.acquire_or_throw("a heap profile delta");
  const auto duration = std::chrono::seconds{seconds};
  ticket.expect_end(std::chrono::steady_clock::now() + duration);
  auto delta = context.manager ? context.manager->take_heap_profile_delta(duration, request.stop)
                               : context.profiler->take_heap_profile_delta(duration, request.stop);
  if (!delta) {
    switch (delta.error().kind) {
      case ProfilingErrorKind::unavailable:
        throw HttpError::unavailable(delta.error().to_string());
      case ProfilingErrorKind::interrupted:
        throw HttpError::unavailable("the server is stopping: " + delta.error().to_string());
      default:
        throw HttpError(500, "profile_failed", delta.error().to_string());
    }
  }
  Response response;
  response.content_type = "application/octet-stream";
  response.body = write_pprof_heap_delta(delta.value(), Symbolizer::shared(), {.symbolize = symbolize});
  response.set_header("X-Heap-Delta-Seconds", std::to_string(seconds));
  response.set_header("Content-Disposition", "attachment; filename=\"heap-delta.pb.gz\"");
  return response;
#else
  (void)request;
  (void)seconds;
  (void)symbolize;
  return {};
#endif
}

void add_memory_peak_route(Router& router, const std::shared_ptr<RouteContext>& context) {
  router.add_route("GET", "/metrics/memory/peak",
                   [context](const Request& request) { return memory_peak(*context, request); });
}

void add_pprof_peak_route(Router& router, const std::shared_ptr<RouteContext>& context) {
  // Blocking: the first request after a new peak symbolizes and compresses it.
  router.add_route("GET", "/debug/pprof/peak",
                   [context](const Request& request) { return pprof_peak(*context, request); },
                   {.sensitive = true, .blocking = true});
}

}  // namespace riptide::performance::http
