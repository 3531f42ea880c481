#pragma once
// The /dashboard page and its assets (HTML, script, style, Chart.js from Debian's libjs-chart.js),
// embedded into the library at build time so the page works offline and from any host that mounts the
// routes. Transport-free: the HTTP server looks an asset up by path and sends its bytes.

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace riptide::performance::http {

class Router;

/// One embedded file; every view points at static storage that lives as long as the program.
struct DashboardAsset {
  std::string_view path;          ///< URL path it is served at, e.g. "/dashboard/chart.min.js"
  std::string_view content_type;  ///< Content-Type header value, charset included for text
  std::string_view body;          ///< the file's bytes
  std::string_view etag;          ///< quoted strong ETag (SHA-1 prefix of the bytes) for If-None-Match
};

/// The asset served at `path`; "/dashboard" and "/dashboard/" give the page itself. A query string is
/// ignored. nullopt for any other path (the caller answers 404).
[[nodiscard]] std::optional<DashboardAsset> find_dashboard_asset(std::string_view path) noexcept;

/// Every embedded asset (the page first), e.g. to list or pre-register routes.
[[nodiscard]] std::span<const DashboardAsset> dashboard_assets() noexcept;

/// Registers GET routes for the page ("/dashboard", "/dashboard/") and every asset on `router`, skipping
/// paths already registered. Answers 304 to a matching If-None-Match. Call before serving.
void add_dashboard_routes(Router& router);

/// A self-contained HTML file with the same charts and tables as /dashboard, drawn once from `data_json`
/// instead of polling: an object whose keys are the endpoint paths the page reads
/// ("/metrics/memory/trend", "/metrics/memory/leaks", ...; missing keys leave their panel empty) and whose
/// values are those endpoints' JSON bodies. Chart.js and the page script are inlined; used for
/// `--report-html` and anywhere a report must be readable without the server.
[[nodiscard]] std::string render_static_dashboard(std::string_view data_json, std::string_view title);

}  // namespace riptide::performance::http
