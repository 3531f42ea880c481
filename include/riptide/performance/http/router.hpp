#pragma once
// Transport-free routing: `Response handle(const Request&)`. http::Server is one transport; a host that
// already runs an HTTP server can mount the same routes by converting its requests to http::Request.
// The router owns the policies every route shares: 404/405 answers, bearer-token checks for sensitive
// routes, JSON errors for anything a handler throws, and the no-store/nosniff response headers.

#include "riptide/performance/http/message.hpp"

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace riptide::performance {
class PrometheusWriter;
}  // namespace riptide::performance

namespace riptide::performance::http {

struct RouteOptions {
  bool sensitive = false;  ///< changes process state or exposes internals (gc, pprof): bearer token rules apply
  bool blocking = false;   ///< may run for seconds (gc, CPU profile): transports run it off their io threads
};

/// Who may call sensitive routes. With a token, sensitive routes need "Authorization: Bearer <token>";
/// without one they are open on a loopback bind and refused (401) on any other bind.
struct AccessPolicy {
  std::string token;          ///< empty: no token configured
  bool loopback_bind = true;  ///< the server listens on a loopback address only
};

/// What one registered route is, for listings and documentation.
struct RouteInfo {
  std::string method;    ///< "GET" or "POST"
  std::string path;      ///< exact path, or the prefix (ending in '/') of a prefix route
  RouteOptions options;  ///< its sensitivity and whether it blocks
  bool prefix = false;   ///< answers every path that starts with `path` and is longer
};

class Router {
 public:
  using Handler = std::function<Response(const Request&)>;

  Router() = default;
  virtual ~Router() = default;
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  /// Registers `handler` for `method` on the exact `path`. Throws std::invalid_argument when the pair is
  /// already registered or the path does not start with '/'. Register before serving: not thread-safe.
  void add_route(std::string method, std::string path, Handler handler, RouteOptions options = {});
  /// Registers `handler` for `method` on every path that starts with `prefix` (which must end with '/')
  /// and is longer; the handler parses the rest of Request::path() itself. Exact routes win over prefix
  /// routes; a longer prefix wins over a shorter one. Throws std::invalid_argument as add_route() does.
  void add_prefix_route(std::string method, std::string prefix, Handler handler, RouteOptions options = {});

  /// Answers one request. Never throws: a handler's HttpError becomes its status, anything else a 500.
  /// Thread-safe once routes are registered (handlers must be thread-safe themselves).
  [[nodiscard]] Response handle(const Request& request) const noexcept;

  /// True when the route `request` resolves to is marked blocking (unknown routes are not).
  [[nodiscard]] bool is_blocking(const Request& request) const noexcept;

  /// Set by the transport before serving (http::Server::start does it from ServerOptions).
  void set_access_policy(AccessPolicy policy);
  [[nodiscard]] const AccessPolicy& access_policy() const noexcept { return access_; }

  /// The transport's own /metrics families (http::Server sets one writing its ServerStats; the latest
  /// set wins, and it may outlive the transport). Thread-safe.
  void set_transport_metrics(std::function<void(PrometheusWriter&)> writer);
  /// Writes them (nothing when no transport set any); metrics routes call it. Thread-safe.
  void write_transport_metrics(PrometheusWriter& out) const;

  [[nodiscard]] std::vector<RouteInfo> routes() const;

 private:
  struct Route {
    RouteInfo info;
    Handler handler;
  };
  [[nodiscard]] Response dispatch(const Request& request) const;
  [[nodiscard]] const Route* find(std::string_view method, std::string_view path) const noexcept;
  // The routes for `path`: the exact ones, else those of the longest matching prefix.
  [[nodiscard]] std::vector<const Route*> candidates(std::string_view path) const;
  void add(std::string method, std::string path, Handler handler, RouteOptions options, bool prefix);

  std::vector<Route> routes_;
  AccessPolicy access_;
  mutable std::mutex transport_metrics_mutex_;
  std::function<void(PrometheusWriter&)> transport_metrics_;
};

/// Compares a presented secret with the expected one in time that depends only on `expected`'s length.
[[nodiscard]] bool constant_time_equals(std::string_view presented, std::string_view expected) noexcept;

}  // namespace riptide::performance::http
