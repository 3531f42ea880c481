#include "riptide/performance/http/router.hpp"

#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/http/http_error.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace riptide::performance::http {
namespace {

// RFC 9110 token characters; a method outside them is malformed rather than merely unknown.
bool is_token(std::string_view text) noexcept {
  if (text.empty() || text.size() > 16) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
  });
}

bool is_printable_target(std::string_view target) noexcept {
  return std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

void add_standard_headers(Response& response) {
  // Metrics must never be served stale from a cache, and JSON must never be sniffed into HTML.
  if (!response.header("Cache-Control")) response.set_header("Cache-Control", "no-store");
  if (!response.header("X-Content-Type-Options")) response.set_header("X-Content-Type-Options", "nosniff");
}

}  // namespace

bool constant_time_equals(std::string_view presented, std::string_view expected) noexcept {
  // Walk `expected` fully whatever `presented` holds, so timing reveals neither a matching prefix nor
  // where the first difference is; only the expected length is visible, which the token's owner chose.
  unsigned difference = presented.size() == expected.size() ? 0U : 1U;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const char given = i < presented.size() ? presented[i] : '\0';
    difference |= static_cast<unsigned char>(given) ^ static_cast<unsigned char>(expected[i]);
  }
  volatile unsigned sink = difference;  // keeps the compiler from turning the loop into an early exit
  return sink == 0;
}

void Router::add_route(std::string method, std::string path, Handler handler, RouteOptions options) {
  add(std::move(method), std::move(path), std::move(handler), options, false);
}

void Router::add_prefix_route(std::string method, std::string prefix, Handler handler, RouteOptions options) {
  if (prefix.empty() || prefix.back() != '/') {
    throw std::invalid_argument("http route: a prefix must end with '/': '" + prefix + "'");
  }
  add(std::move(method), std::move(prefix), std::move(handler), options, true);
}

void Router::add(std::string method, std::string path, Handler handler, RouteOptions options, bool prefix) {
  if (!is_token(method)) throw std::invalid_argument("http route: invalid method '" + method + "'");
  if (path.empty() || path.front() != '/' || path.find('?') != std::string::npos) {
    throw std::invalid_argument("http route: path must start with '/' and have no query: '" + path + "'");
  }
  for (const auto& route : routes_) {
    if (route.info.path == path && route.info.method == method && route.info.prefix == prefix) {
      throw std::invalid_argument("http route: " + method + " " + path + " is already registered");
    }
  }
  if (!handler) throw std::invalid_argument("http route: empty handler for " + method + " " + path);
  routes_.push_back(Route{RouteInfo{std::move(method), std::move(path), options, prefix}, std::move(handler)});
}

std::vector<const Router::Route*> Router::candidates(std::string_view path) const {
  std::vector<const Route*> exact;
  std::vector<const Route*> longest_prefix;
  std::size_t longest = 0;
  for (const auto& route : routes_) {
    const std::string& route_path = route.info.path;
    if (!route.info.prefix) {
      if (route_path == path) exact.push_back(&route);
    } else if (path.size() > route_path.size() && path.starts_with(route_path) && route_path.size() >= longest) {
      if (route_path.size() > longest) longest_prefix.clear();
      longest = route_path.size();
      longest_prefix.push_back(&route);
    }
  }
  return exact.empty() ? longest_prefix : exact;
}

const Router::Route* Router::find(std::string_view method, std::string_view path) const noexcept {
  try {
    for (const Route* route : candidates(path)) {
      if (route->info.method == method) return route;
    }
  } catch (...) {
    // Out of memory while listing a handful of pointers: treated as no route.
  }
  return nullptr;
}

bool Router::is_blocking(const Request& request) const noexcept {
  const Route* route = find(request.method, request.path());
  return route != nullptr && route->info.options.blocking;
}

void Router::set_access_policy(AccessPolicy policy) {
  access_ = std::move(policy);
}

void Router::set_transport_metrics(std::function<void(PrometheusWriter&)> writer) {
  const std::lock_guard lock(transport_metrics_mutex_);
  transport_metrics_ = std::move(writer);
}

void Router::write_transport_metrics(PrometheusWriter& out) const {
  std::function<void(PrometheusWriter&)> writer;
  {
    const std::lock_guard lock(transport_metrics_mutex_);
    writer = transport_metrics_;
  }
  if (writer) writer(out);
}

std::vector<RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  out.reserve(routes_.size());
  for (const auto& route : routes_) out.push_back(route.info);
  return out;
}

Response Router::handle(const Request& request) const noexcept {
  Response response;
  try {
    response = dispatch(request);
  } catch (const HttpError& error) {
    try {
      response = error.to_response();
    } catch (...) {
      response = Response{500, "application/json", {}, R"({"error":{"code":"internal","message":"out of memory"}})"};
    }
  } catch (const std::exception& error) {
    try {
      logger()->error("http: {} {} failed: {}", request.method, request.path(), error.what());
      response = error_response(500, "internal", std::string{"the handler failed: "} + error.what());
    } catch (...) {
      response = Response{500, "application/json", {}, R"({"error":{"code":"internal","message":"out of memory"}})"};
    }
  } catch (...) {
    response = Response{500, "application/json", {}, R"({"error":{"code":"internal","message":"unknown failure"}})"};
  }
  try {
    add_standard_headers(response);
  } catch (...) {
    // Allocation failure while adding two short headers: serve the response without them.
  }
  return response;
}

Response Router::dispatch(const Request& request) const {
  if (!is_token(request.method)) throw HttpError(400, "bad_request", "malformed request method");
  const std::string_view target{request.target};
  if (target.empty() || target.front() != '/' || !is_printable_target(target)) {
    throw HttpError(400, "bad_request", "request target must be an absolute path such as /metrics/memory/health");
  }
  const std::string_view path = request.path();

  const Route* match = nullptr;
  std::vector<std::string_view> allowed;
  for (const Route* route : candidates(path)) {
    if (route->info.method == request.method) match = route;
    allowed.push_back(route->info.method);
  }
  if (allowed.empty()) {
    throw HttpError(404, "not_found", "no endpoint at " + std::string{path.substr(0, 128)});
  }
  if (match == nullptr) {
    std::sort(allowed.begin(), allowed.end());
    std::string allow;
    for (const auto method : allowed) {
      if (!allow.empty()) allow += ", ";
      allow += method;
    }
    throw HttpError(405, "method_not_allowed",
                    std::string{path} + " does not accept " + request.method + "; allowed: " + allow,
                    {{"Allow", allow}});
  }

  if (match->info.options.sensitive) {
    if (access_.token.empty()) {
      if (!access_.loopback_bind) {
        throw HttpError(401, "unauthorized",
                        "this endpoint needs a bearer token when the server listens on a non-loopback address; "
                        "set http.token in the configuration and send 'Authorization: Bearer <token>'",
                        {{"WWW-Authenticate", "Bearer realm=\"riptide-performance\""}});
      }
    } else {
      const auto authorization = request.header("Authorization").value_or(std::string_view{});
      constexpr std::string_view kScheme = "Bearer ";
      const bool has_scheme =
          authorization.size() >= kScheme.size() && iequals(authorization.substr(0, kScheme.size()), kScheme);
      const std::string_view presented = has_scheme ? authorization.substr(kScheme.size()) : std::string_view{};
      if (!constant_time_equals(presented, access_.token)) {
        throw HttpError(401, "unauthorized", "missing or wrong bearer token; send 'Authorization: Bearer <token>'",
                        {{"WWW-Authenticate", "Bearer realm=\"riptide-performance\""}});
      }
    }
  }
  return match->handler(request);
}

}  // namespace riptide::performance::http
