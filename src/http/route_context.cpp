#include "route_context.hpp"

#include "riptide/performance/core/duration.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/time_format.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/manager/performance_state.hpp"

#include <nlohmann/json.hpp>

namespace riptide::performance::http {

std::shared_ptr<RouteContext> RouteContext::of(std::shared_ptr<PerformanceManager> manager,
                                               MemoryMetricsOptions options) {
  if (!manager) {
    throw ConfigError({"code", "manager", "null", "must not be null", "a std::shared_ptr<PerformanceManager>"});
  }
  // The profiler lives inside the manager: an aliasing pointer keeps the manager alive as long as the routes.
  std::shared_ptr<MemoryProfiler> profiler(manager, &manager->memory_profiler());
  const std::string session_id = manager->session_id();
  return std::make_shared<RouteContext>(std::move(profiler), std::move(manager), session_id, std::move(options));
}

std::shared_ptr<RouteContext> RouteContext::of(std::shared_ptr<MemoryProfiler> profiler, std::string session_id,
                                               MemoryMetricsOptions options) {
  if (!profiler) {
    throw ConfigError({"code", "profiler", "null", "must not be null", "a std::shared_ptr<MemoryProfiler>"});
  }
  if (session_id.empty()) session_id = profiler->session_id();
  return std::make_shared<RouteContext>(std::move(profiler), nullptr, std::move(session_id), std::move(options));
}

RouteContext::RouteContext(std::shared_ptr<MemoryProfiler> profiler_in, std::shared_ptr<PerformanceManager> manager_in,
                           std::string session, MemoryMetricsOptions options_in)
    : profiler(std::move(profiler_in)),
      manager(std::move(manager_in)),
      session_id(std::move(session)),
      http(options_in.http.value_or(manager ? manager->config().http : profiler->config().http)),
      options(std::move(options_in)),
      gc_cooldown(seconds_to_duration(http.gc_cooldown_sec)),
      cpu_cooldown(seconds_to_duration(options.cpu_profile_cooldown_sec)),
      heap_delta_cooldown(seconds_to_duration(options.heap_delta_cooldown_sec)) {}

std::shared_ptr<const PerformanceState> RouteContext::performance_state() const {
  if (!manager) return nullptr;
  auto state = manager->state();
  if (!options.leak_detector) return state;
  // A detector the host runs itself: its reports replace the manager's in what these routes show.
  auto shown = std::make_shared<PerformanceState>(*state);
  shown->memory = profiler->assess(state->targets, state->memory.snapshot, options.leak_detector);
  return shown;
}

MemoryState RouteContext::memory_state() const {
  if (const auto state = performance_state()) return state->memory;
  const PerformanceTargets targets = options.targets ? options.targets() : profiler->config().targets;
  return profiler->assess(targets, nullptr, options.leak_detector);
}

nlohmann::json RouteContext::envelope(std::chrono::system_clock::time_point timestamp) const {
  nlohmann::json body = nlohmann::json::object();
  body["timestamp"] = format_rfc3339_utc(timestamp);
  body["session_id"] = session_id;
  return body;
}

}  // namespace riptide::performance::http
