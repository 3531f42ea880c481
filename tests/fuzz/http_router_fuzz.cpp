// libFuzzer target: arbitrary requests through http::Router (method, target, headers, body) with routes
// that parse queries the way the real endpoints do. Invariants: handle() never throws, every answer has
// a known status, the standard headers, and errors are the JSON error shape.
// Input layout: method '\n' target '\n' (name ':' value '\n')* '\n' body.
#include "riptide/performance/http/http_error.hpp"
#include "riptide/performance/http/query.hpp"
#include "riptide/performance/http/router.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace http = riptide::performance::http;
using namespace std::chrono_literals;

namespace {

http::Router& router() {
  static http::Router* instance = [] {
    auto* r = new http::Router;
    r->add_route("GET", "/metrics/memory/trend", [](const http::Request& request) {
      const auto query = http::Query::parse(request.query());
      query.allow_only({"duration", "interval"});
      const auto duration = query.duration("duration", 1h, 1s, 168h);
      const auto interval = query.duration("interval", 1min, 1ms, duration);
      return http::json_response({{"points", duration / interval}});
    });
    r->add_route("GET", "/debug/pprof/profile",
                 [](const http::Request& request) {
                   const auto seconds = http::Query::parse(request.query()).integer("seconds", 30, 1, 60);
                   return http::json_response({{"seconds", seconds}});
                 },
                 {.sensitive = true, .blocking = true});
    r->add_route("POST", "/metrics/memory/gc",
                 [](const http::Request& request) {
                   return http::json_response({{"body", request.body}});
                 },
                 {.sensitive = true});
    r->add_route("GET", "/metrics/memory/health", [](const http::Request&) { return http::json_response({}); });
    r->set_access_policy({.token = "fuzz-token", .loopback_bind = false});
    return r;
  }();
  return *instance;
}

std::string_view next_line(std::string_view& input) {
  const auto end = input.find('\n');
  const std::string_view line = input.substr(0, end);
  input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  http::Request request;
  request.method = std::string{next_line(input)};
  request.target = std::string{next_line(input)};
  while (!input.empty()) {
    const std::string_view line = next_line(input);
    if (line.empty()) break;
    const auto colon = line.find(':');
    request.headers.emplace_back(std::string{line.substr(0, colon)},
                                 colon == std::string_view::npos ? std::string{} : std::string{line.substr(colon + 1)});
  }
  request.body = std::string{input};

  const http::Response response = router().handle(request);
  (void)router().is_blocking(request);
  switch (response.status) {
    case 200:
    case 400:
    case 401:
    case 404:
    case 405:
    case 429:
    case 500:
    case 503:
      break;
    default:
      std::abort();
  }
  if (!response.header("Cache-Control") || !response.header("X-Content-Type-Options")) std::abort();
  if (response.status == 405 && !response.header("Allow")) std::abort();
  const auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) std::abort();
  if (response.status >= 400 && (!body.contains("error") || !body["error"]["code"].is_string())) std::abort();
  return 0;
}
