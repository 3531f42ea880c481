#include "riptide/performance/http/serve.hpp"

#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/http/routes.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "route_context.hpp"

#include <spdlog/spdlog.h>

namespace riptide::performance::http {

void add_memory_routes(Router& router, std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options) {
  add_memory_routes(router, RouteContext::of(std::move(manager), std::move(options)));
}

void add_metrics_routes(Router& router, std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options) {
  add_metrics_routes(router, RouteContext::of(std::move(manager), std::move(options)));
}

void add_pprof_routes(Router& router, std::shared_ptr<PerformanceManager> manager, MemoryMetricsOptions options) {
  add_pprof_routes(router, RouteContext::of(std::move(manager), std::move(options)));
}

ServedEndpoints::ServedEndpoints(std::unique_ptr<MemoryMetricsRouter> router, std::unique_ptr<Server> server) noexcept
    : router_(std::move(router)), server_(std::move(server)) {}

ServedEndpoints::~ServedEndpoints() {
  stop();
}

std::uint16_t ServedEndpoints::port() const noexcept {
  return server_ ? server_->port() : std::uint16_t{0};
}

void ServedEndpoints::stop() noexcept {
  if (server_) server_->stop();
}

std::unique_ptr<ServedEndpoints> serve(std::shared_ptr<PerformanceManager> manager, ServeOptions options) {
  auto router = std::make_unique<MemoryMetricsRouter>(manager, std::move(options.routes));  // refuses a null manager
  const HttpConfig http = manager->config().http;
  if (options.dashboard) add_dashboard_routes(*router);
  if (!http.enabled) {
    logger()->info("http.enabled = false: the monitoring endpoints are not served");
    return std::make_unique<ServedEndpoints>(std::move(router), nullptr);
  }
  auto server = Server::start(*router, options.server.value_or(ServerOptions::from_config(http)));
  return std::make_unique<ServedEndpoints>(std::move(router), std::move(server));
}

}  // namespace riptide::performance::http
