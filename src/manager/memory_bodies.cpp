#include "riptide/performance/manager/memory_bodies.hpp"

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/memory/memory_json.hpp"
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
#include "riptide/performance/profiling/profiling_json.hpp"
#endif

namespace riptide::performance {

nlohmann::json memory_snapshot_body(MemoryProfiler& profiler, const std::string& session_id) {
  const MemorySnapshot snapshot = profiler.get_current_snapshot();
  nlohmann::json body = snapshot_to_json(snapshot);
  body["session_id"] = session_id;
  const auto self = profiler.self_heap();
  body["self_heap_bytes"] = self ? nlohmann::json(self->bytes) : nlohmann::json(nullptr);
  body["self_heap_error_bytes"] = self ? nlohmann::json(self->error_bytes) : nlohmann::json(nullptr);
  return body;
}

LeakReportBody leak_report_body(const MemoryState& state, const std::string& session_id) {
  LeakReportBody out;
  if (!state.leaks) {
    out.unavailable_reason = state.leaks_unavailable_reason;
    return out;
  }
  if (!state.leaks->available) {
    // With the profiler on, the failure is the dump itself (directory missing, unwritable or full): say so
    // instead of blaming the profiler.
    out.unavailable_reason = (state.heap_profiling_available ? "leak detection failed: "
                                                             : "leak detection needs jemalloc's heap profiler: ") +
                             state.leaks->reason;
    return out;
  }
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING  // a report exists only then; its JSON lives in the profiling area
  nlohmann::json body = *state.leaks;
  body["session_id"] = session_id;
  out.body = std::move(body);
#else
  (void)session_id;
  out.unavailable_reason = state.leaks_unavailable_reason;
#endif
  return out;
}

}  // namespace riptide::performance
