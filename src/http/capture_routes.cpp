// GET /metrics/memory/captures (the published list of memory captures with the trigger's status) and
// GET /metrics/memory/captures/<name>/<file> (one file of one capture, for download). Both read: the
// captures are written by the manager's periodic check or by PerformanceManager::capture_now().
#include "riptide/performance/http/http_error.hpp"
#include "riptide/performance/http/query.hpp"
#include "riptide/performance/manager/memory_capture_monitor.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/capture_store.hpp"
#include "route_context.hpp"

#include <nlohmann/json.hpp>

namespace riptide::performance::http {
namespace {

constexpr std::string_view kListPath = "/metrics/memory/captures";
constexpr std::string_view kFilePrefix = "/metrics/memory/captures/";

const MemoryCaptureMonitor& monitor_of(const RouteContext& context) {
  if (!context.manager) {
    throw HttpError::unavailable(
        "memory captures are written by a PerformanceManager (profiling.capture_dir); these routes serve a bare "
        "MemoryProfiler");
  }
  return context.manager->memory_captures();
}

Response list(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
  const MemoryCaptureMonitor& monitor = monitor_of(context);
  nlohmann::json body = context.envelope(context.manager->clock().system_now());
  body["status"] = monitor.status();
  body["captures"] = *monitor.captures();
  return json_response(body);
}

[[noreturn]] void bad_path(std::string_view path) {
  throw HttpError(400, "invalid_path",
                  "'" + std::string(path.substr(0, 200)) +
                      "' is not a capture file path; accepted: /metrics/memory/captures/<name>/<file> with a name "
                      "and a file from GET /metrics/memory/captures (letters, digits, '-', '_', '.', not starting "
                      "with '.')");
}

Response download(const RouteContext& context, const Request& request) {
  Query::parse(request.query()).allow_only({});
  const std::string_view path = request.path();
  // Exactly two plain segments: no "..", no "." start, no further '/', no percent-encoding.
  const std::string_view rest = path.substr(kFilePrefix.size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) bad_path(path);
  const std::string_view name = rest.substr(0, slash);
  const std::string_view file = rest.substr(slash + 1);
  if (!is_plain_capture_name(name) || !is_plain_capture_name(file)) bad_path(path);

  const CaptureFileContents found = monitor_of(context).read_file(std::string(name), std::string(file));
  switch (found.status) {
    case CaptureFileContents::Status::found:
      break;
    case CaptureFileContents::Status::unknown_capture:
    case CaptureFileContents::Status::unknown_file:
      throw HttpError(404, "not_found", found.message);
    case CaptureFileContents::Status::unreadable:
      throw HttpError(500, "capture_unreadable", found.message);
  }
  Response response;
  response.content_type = file.ends_with(".json") ? "application/json" : "application/octet-stream";
  response.body = found.body;
  response.set_header("Content-Disposition",
                      "attachment; filename=\"" + std::string(name) + "-" + std::string(file) + "\"");
  return response;
}

}  // namespace

void add_capture_routes(Router& router, const std::shared_ptr<RouteContext>& context) {
  router.add_route("GET", std::string(kListPath),
                   [context](const Request& request) { return list(*context, request); });
  // A capture's heap profile exposes the process's internals as /debug/pprof/heap does: the same token rules.
  router.add_prefix_route("GET", std::string(kFilePrefix),
                          [context](const Request& request) { return download(*context, request); },
                          {.sensitive = true, .blocking = true});
}

}  // namespace riptide::performance::http
