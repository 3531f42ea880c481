#pragma once
// Strict parsing of a request's query string. Anything the route does not expect is refused with a 400
// that names the parameter and the accepted form, instead of being silently ignored or clamped.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace riptide::performance::http {

class Query {
 public:
  /// Decodes `query` (the part after '?'). Throws HttpError 400 on bad percent-encoding, an empty or
  /// repeated name, or more than 32 parameters.
  [[nodiscard]] static Query parse(std::string_view query);

  /// Throws HttpError 400 naming the first parameter that is not in `accepted`.
  void allow_only(std::initializer_list<std::string_view> accepted) const;

  /// The decoded value of `name`, if present.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const noexcept;

  /// A duration ("1h30m"), `fallback` when absent; 400 when malformed or outside [min, max].
  [[nodiscard]] std::chrono::nanoseconds duration(std::string_view name, std::chrono::nanoseconds fallback,
                                                  std::chrono::nanoseconds min, std::chrono::nanoseconds max) const;

  /// A decimal integer without sign or spaces, `fallback` when absent; 400 when malformed or outside [min, max].
  [[nodiscard]] std::int64_t integer(std::string_view name, std::int64_t fallback, std::int64_t min,
                                     std::int64_t max) const;

  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& parameters() const noexcept {
    return parameters_;
  }

 private:
  std::vector<std::pair<std::string, std::string>> parameters_;
};

}  // namespace riptide::performance::http
