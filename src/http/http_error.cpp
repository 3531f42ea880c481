#include "riptide/performance/http/http_error.hpp"

#include <algorithm>

namespace riptide::performance::http {

HttpError::HttpError(int status, std::string code, std::string message, std::vector<Header> headers)
    : Error(std::move(message)), status_(status), code_(std::move(code)), headers_(std::move(headers)) {}

Response HttpError::to_response() const {
  Response response = error_response(status_, code_, what());
  for (const auto& [name, value] : headers_) response.set_header(name, value);
  return response;
}

HttpError HttpError::bad_parameter(std::string_view name, std::string_view value, std::string_view problem,
                                   std::string_view accepted) {
  // Echo at most a short prefix of name and value: both are attacker-controlled and only need to be
  // recognisable, so the error body stays small whatever the request's size.
  auto echo = [](std::string& out, std::string_view text) {
    out += text.substr(0, 64);
    if (text.size() > 64) out += "...";
  };
  std::string message = "query parameter '";
  echo(message, name);
  message += "'";
  if (!value.empty()) {
    message += " = '";
    echo(message, value);
    message += "'";
  }
  message += ": ";
  message += problem;
  message += "; accepted: ";
  message += accepted;
  return HttpError(400, "invalid_parameter", std::move(message));
}

HttpError HttpError::too_many_requests(std::string message, long long retry_after_seconds) {
  const long long seconds = std::max(1LL, retry_after_seconds);
  message += "; retry in ";
  message += std::to_string(seconds);
  message += " s";
  return HttpError(429, "too_many_requests", std::move(message), {{"Retry-After", std::to_string(seconds)}});
}

HttpError HttpError::unavailable(std::string reason) {
  return HttpError(503, "unavailable", std::move(reason));
}

}  // namespace riptide::performance::http
