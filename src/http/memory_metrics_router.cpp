#include "riptide/performance/http/memory_metrics_router.hpp"

#include "riptide/performance/http/routes.hpp"
#include "route_context.hpp"

namespace riptide::performance::http {

struct MemoryMetricsRouter::State {
  std::shared_ptr<RouteContext> context;
};

MemoryMetricsRouter::MemoryMetricsRouter(std::shared_ptr<MemoryProfiler> profiler, std::string session_id,
                                         MemoryMetricsOptions options)
    : state_(std::make_shared<State>(
          State{RouteContext::of(std::move(profiler), std::move(session_id), std::move(options))})) {
  register_routes();
}

MemoryMetricsRouter::MemoryMetricsRouter(std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options)
    : state_(std::make_shared<State>(State{RouteContext::of(std::move(manager), std::move(options))})) {
  register_routes();
}

void MemoryMetricsRouter::register_routes() {
  add_memory_routes(*this, state_->context);
  add_metrics_routes(*this, state_->context);
  add_pprof_routes(*this, state_->context);
}

MemoryMetricsRouter::~MemoryMetricsRouter() = default;

const std::string& MemoryMetricsRouter::session_id() const noexcept {
  return state_->context->session_id;
}

}  // namespace riptide::performance::http
