#pragma once
// Plain request and response values exchanged between a transport (http::Server, or a host's own HTTP
// server) and http::Router. No transport types leak in, so routes are testable without sockets.

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace riptide::performance::http {

/// One header line; names keep the case they were written in and are matched case-insensitively.
using Header = std::pair<std::string, std::string>;

struct Request {
  std::string method;           ///< method token as received ("GET", "POST"); matched case-sensitively (RFC 9110)
  std::string target;           ///< origin-form target as received: path plus optional "?query"
  std::vector<Header> headers;  ///< every header of the request, in order
  std::string body;             ///< already bounded by the transport's body limit
  std::string remote_address;   ///< peer address for logs; empty when the transport does not know it
  std::stop_token stop;         ///< signalled when the server stops, so long handlers (CPU profile) end early

  /// The first header called `name` (case-insensitive), if any.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;
  /// The target up to the first '?'.
  [[nodiscard]] std::string_view path() const noexcept;
  /// The target after the first '?' (empty when there is none).
  [[nodiscard]] std::string_view query() const noexcept;
};

struct Response {
  int status = 200;                               ///< HTTP status code
  std::string content_type = "application/json";  ///< every route answers JSON unless it says otherwise
  std::vector<Header> headers;                    ///< extra headers (Allow, Retry-After, Content-Disposition...)
  std::string body;                               ///< the complete body; responses here are small or bounded
  bool close = false;                             ///< ask the transport to close the connection afterwards

  /// Replaces the header called `name` (case-insensitive) or appends it.
  void set_header(std::string_view name, std::string value);
  /// The first header called `name` (case-insensitive), if any.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept;
};

/// A 200 (or `status`) response whose body is `body` serialized compactly; invalid UTF-8 in strings is
/// replaced rather than thrown, because locations come from symbol tables the library does not control.
[[nodiscard]] Response json_response(const nlohmann::json& body, int status = 200);

/// The library's error shape: {"error":{"code":"<code>","message":"<message>"}} with `status`.
[[nodiscard]] Response error_response(int status, std::string_view code, std::string_view message);

/// Case-insensitive ASCII comparison used for header names.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace riptide::performance::http
