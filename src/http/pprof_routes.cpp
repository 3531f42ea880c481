// GET /debug/pprof/heap and /debug/pprof/allocs (the shared heap profile in pprof's format, showing what is
// in use or what was allocated; heap?seconds=N the change over N seconds, heap_over_time.cpp), GET
// /debug/pprof/peak (heap_over_time.cpp), GET /debug/pprof/profile (a CPU
// profile, an action with its own cool-down) and GET/POST /debug/pprof/symbol (names of code addresses, the
// protocol of Go's net/http/pprof that `pprof -symbolize=remote` speaks).
#include "heap_over_time.hpp"
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
#include "riptide/performance/profiling/symbol_lookup.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"
#endif

#include <algorithm>

namespace riptide::performance::http {
namespace {

// GET /debug/pprof/heap (in use) and /debug/pprof/allocs (ever allocated, Go's allocs profile): the same
// samples, a different default sample type.
enum class HeapView { in_use, allocations };

Response heap_profile(RouteContext& context, const Request& request, HeapView view) {
  const Query query = Query::parse(request.query());
  // gc and debug are accepted and ignored, as Go's handler does; seconds (heap only) asks for a delta.
  if (view == HeapView::in_use) {
    query.allow_only({"gc", "debug", "symbolize", "seconds"});
  } else {
    query.allow_only({"gc", "debug", "symbolize"});
  }
  const bool symbolize = query.integer("symbolize", 1, 0, 1) == 1;
  if (query.get("seconds")) {
    return heap_profile_delta(context, request, query.integer("seconds", 0, 1, kMaxHeapDeltaSeconds), symbolize);
  }
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  require_heap_profiles(context);
  const PprofDefaultSample shown =
      view == HeapView::allocations ? PprofDefaultSample::alloc_space : PprofDefaultSample::inuse_space;
  if (view == HeapView::allocations && !HeapProfilingControl::status().accumulating) {
    throw HttpError::unavailable(
        "the allocs profile needs jemalloc's cumulative counts, which are off in this process; fix: start it "
        "with prof_accum:true (RIPTIDE_PERF_ENABLE_HEAP_PROFILING() sets it, or MALLOC_CONF=...,prof_accum:true)");
  }
  const auto& profiles = context.profiler->heap_profiles();
  // The profile the leak detector took at most one leak interval ago (or a fresh one): one dump serves every
  // reader. X-Heap-Profile-Age-Seconds says how old it is.
  auto profile = profiles->get(shared_profile_max_age(context.profiler->config().profiling));
  if (!profile) throw HttpError(500, "profile_failed", profile.error().to_string());
  Response response;
  response.content_type = "application/octet-stream";
  if (!symbolize) {
    // Addresses only, for pprof to name (tests of remote symbolization, or names from the binaries): rare
    // enough not to share the cached body, and cheap: no names or lines are looked up.
    response.body =
        write_pprof_heap_profile(*profile.value(), Symbolizer::shared(), {.symbolize = false, .default_sample = shown});
  } else {
    const std::lock_guard lock(context.pprof_mutex);
    auto& cached = view == HeapView::allocations ? context.pprof_allocs : context.pprof_heap;
    const auto& current = profile.value();
    if (cached.profile.owner_before(current) || current.owner_before(cached.profile) || cached.profile.expired()) {
      cached.body = write_pprof_heap_profile(*current, Symbolizer::shared(), {.default_sample = shown});
      cached.profile = current;
    }
    response.body = cached.body;
  }
  const auto age = profiles->age().value_or(std::chrono::nanoseconds{0});
  response.set_header("X-Heap-Profile-Age-Seconds",
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()));
  const char* file = view == HeapView::allocations ? "allocs.pb.gz" : "heap.pb.gz";
  response.set_header("Content-Disposition", std::string("attachment; filename=\"") + file + "\"");
  return response;
#else
  (void)context;
  (void)symbolize;
  (void)view;
  throw HttpError::unavailable("heap profiles are compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
}

// Go's Symbol handler: GET answers "num_symbols: 1" (and names the addresses of its query, if any); POST
// names the addresses of its body. Parsing, bounds and lookups are the profiling area's.
Response symbol(const Request& request) {
  const bool post = request.method == "POST";
  if (post && !request.query().empty()) {
    throw HttpError(400, "invalid_parameter",
                    "POST /debug/pprof/symbol takes its addresses in the body; accepted: no query string");
  }
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  const SymbolRequest parsed = parse_symbol_request(post ? std::string_view(request.body) : request.query());
  switch (parsed.problem) {
    case SymbolRequestProblem::none:
      break;
    case SymbolRequestProblem::too_large:
      throw HttpError(413, "payload_too_large", parsed.message);
    case SymbolRequestProblem::malformed:
      throw HttpError(400, post ? "bad_request" : "invalid_parameter", parsed.message);
  }
  Response response;
  response.content_type = "text/plain; charset=utf-8";
  response.body = answer_symbol_request(parsed.addresses, Symbolizer::shared());
  return response;
#else
  throw HttpError::unavailable("symbol lookups are compiled out: build with RIPTIDE_PERF_MEMORY_PROFILING=ON");
#endif
}

Response cpu_profile(RouteContext& context, const Request& request) {
  const Query query = Query::parse(request.query());
  query.allow_only({"seconds"});
  const auto max_seconds = static_cast<std::int64_t>(std::max<std::uint32_t>(1, context.http.cpu_profile_max_sec));
  const auto seconds = query.integer("seconds", std::min<std::int64_t>(30, max_seconds), 1, max_seconds);
  if (!CpuProfiler::available()) {
    throw HttpError::unavailable(
        "CPU profiles are not available: they need RIPTIDE_PERF_BOTTLENECK_ANALYSIS=ON and Linux on x86-64 or "
        "AArch64 with glibc 2.35 or later");
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
  router.add_route("GET", "/debug/pprof/heap",
                   [context](const Request& request) { return heap_profile(*context, request, HeapView::in_use); },
                   {.sensitive = true, .blocking = true});
  router.add_route("GET", "/debug/pprof/allocs",
                   [context](const Request& request) { return heap_profile(*context, request, HeapView::allocations); },
                   {.sensitive = true, .blocking = true});
  add_pprof_peak_route(router, context);
  router.add_route("GET", "/debug/pprof/profile",
                   [context](const Request& request) { return cpu_profile(*context, request); },
                   {.sensitive = true, .blocking = true});
  // Blocking: a request may name thousands of addresses that are not cached yet (libdw lookups).
  for (const char* method : {"GET", "POST"}) {
    router.add_route(method, "/debug/pprof/symbol", [](const Request& request) { return symbol(request); },
                     {.sensitive = true, .blocking = true});
  }
}

}  // namespace riptide::performance::http
