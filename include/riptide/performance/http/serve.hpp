#pragma once
// One call serves everything for a manager: every monitoring route, the dashboard and the embedded server,
// configured from the manager's [http] section.
//   auto manager = rp::PerformanceManager::create();
//   manager->start_monitoring();
//   auto endpoints = rp::http::serve(manager);   // http://127.0.0.1:3000/dashboard, /metrics, ...
//   ...
//   endpoints->stop();                           // or let it go out of scope
// With http.enabled = false (RIPTIDE_PERF_HTTP_ENABLED=false) nothing listens: serve() returns a handle
// whose serving() is false, so an operator can switch the endpoints off without a rebuild.

#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"

#include <cstdint>
#include <memory>
#include <optional>

namespace riptide::performance::http {

struct ServeOptions {
  /// Bind address, port, threads, token, limits; empty: ServerOptions::from_config(manager->config().http).
  std::optional<ServerOptions> server;
  bool dashboard = true;        ///< also serve /dashboard and its assets
  MemoryMetricsOptions routes;  ///< extra /metrics collectors, cool-downs
};

/// The routes and the server serve() started; stops the server when destroyed.
class ServedEndpoints {
 public:
  ServedEndpoints(std::unique_ptr<MemoryMetricsRouter> router, std::unique_ptr<Server> server) noexcept;
  ~ServedEndpoints();
  ServedEndpoints(const ServedEndpoints&) = delete;
  ServedEndpoints& operator=(const ServedEndpoints&) = delete;

  /// False when http.enabled is false (nothing was bound).
  [[nodiscard]] bool serving() const noexcept { return server_ != nullptr; }
  /// The port bound (0 when not serving).
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// The routes, e.g. to answer requests of a host's own transport.
  [[nodiscard]] MemoryMetricsRouter& router() noexcept { return *router_; }
  /// The server; null when not serving.
  [[nodiscard]] Server* server() noexcept { return server_.get(); }
  /// Stops the server (idempotent); the routes stay usable through router().
  void stop() noexcept;

 private:
  std::unique_ptr<MemoryMetricsRouter> router_;
  std::unique_ptr<Server> server_;  // destroyed first: it serves router_
};

/// Mounts every route over `manager` and starts the server. Throws ConfigError for a null manager or a bad
/// server option, Error when the address cannot be bound (the port is taken), naming the address and cause.
[[nodiscard]] std::unique_ptr<ServedEndpoints> serve(std::shared_ptr<PerformanceManager> manager,
                                                     ServeOptions options = {});

}  // namespace riptide::performance::http
