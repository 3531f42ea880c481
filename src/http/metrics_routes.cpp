// GET /metrics (Prometheus text) and GET /metrics/performance (JSON): both serialize the manager's published
// state (or, over a bare profiler, its memory reading) and change nothing.
#include "riptide/performance/http/http_error.hpp"
#include "riptide/performance/http/prometheus.hpp"
#include "riptide/performance/http/query.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/manager/performance_state.hpp"
#include "route_context.hpp"

#include <nlohmann/json.hpp>

namespace riptide::performance::http {
namespace {

Response metrics(const RouteContext& context, const Router& router, const Request& request) {
  Query::parse(request.query()).allow_only({});
  PrometheusWriter out;
  if (const auto state = context.performance_state()) {
    write_prometheus(out, *state);
  } else {  // a bare profiler: the build information and the memory families
    const MemoryState memory = context.memory_state();
    write_build_info(out, context.session_id, memory);
    write_prometheus(out, memory);
  }
  router.write_transport_metrics(out);  // riptide_http_*: the serving http::Server's connection counters
  for (const auto& collect : context.options.prometheus_collectors) {
    if (collect) collect(out);
  }
  Response response;
  response.content_type = PrometheusWriter::kContentType;
  response.body = out.text();
  return response;
}

Response performance(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
  nlohmann::json body;
  if (context.options.performance_json) {
    body = context.options.performance_json();
  } else if (const auto state = context.performance_state()) {
    body = *state;
  } else {
    throw HttpError::unavailable(
        "no PerformanceManager is attached to these routes: serve a manager (rp::http::serve(manager)) or pass "
        "MemoryMetricsOptions::performance_json");
  }
  if (body.is_object() && !body.contains("session_id")) body["session_id"] = context.session_id;
  return json_response(body);
}

}  // namespace

void add_metrics_routes(Router& router, const std::shared_ptr<RouteContext>& context) {
  const Router* self = &router;  // the routes live in `router`: it outlives them
  router.add_route("GET", "/metrics",
                   [context, self](const Request& request) { return metrics(*context, *self, request); });
  router.add_route("GET", "/metrics/performance",
                   [context](const Request& request) { return performance(*context, request); });
}

}  // namespace riptide::performance::http
