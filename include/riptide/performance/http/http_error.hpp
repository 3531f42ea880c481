#pragma once
// The exception route handlers throw to answer with an error status. Router::handle turns it into the
// JSON error body; it never leaves the router.

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/http/message.hpp"

#include <string>
#include <vector>

namespace riptide::performance::http {

class HttpError : public Error {
 public:
  HttpError(int status, std::string code, std::string message, std::vector<Header> headers = {});

  [[nodiscard]] int status() const noexcept { return status_; }
  [[nodiscard]] const std::string& code() const noexcept { return code_; }
  [[nodiscard]] const std::vector<Header>& headers() const noexcept { return headers_; }

  /// The error as a response (JSON body plus the extra headers).
  [[nodiscard]] Response to_response() const;

  /// 400 for a query parameter: names the parameter, the value, what is wrong and the accepted form.
  [[nodiscard]] static HttpError bad_parameter(std::string_view name, std::string_view value, std::string_view problem,
                                               std::string_view accepted);
  /// 429 with Retry-After in whole seconds (at least 1).
  [[nodiscard]] static HttpError too_many_requests(std::string message, long long retry_after_seconds);
  /// 503: the feature is compiled out or unavailable in this process; `reason` says why and how to fix it.
  [[nodiscard]] static HttpError unavailable(std::string reason);

 private:
  int status_;
  std::string code_;
  std::vector<Header> headers_;
};

}  // namespace riptide::performance::http
