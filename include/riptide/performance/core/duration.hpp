#pragma once
// Strict parsing and formatting of human durations: a sequence of <number><unit> with units ms, s, m, h
// ("1h30m", "120s", "250ms", "1.5s"). Used by the HTTP query parameters and the configuration.

#include <chrono>
#include <string>
#include <string_view>
#include <variant>

namespace riptide::performance {

/// Why a duration text was refused; `message` says what was wrong and what is accepted.
struct DurationParseError {
  std::string message;
};

/// Parses `text`. Accepted: one or more <number><unit> parts, number a non-negative decimal
/// (fraction allowed), unit one of ms, s, m, h; no spaces or signs; total at most 366 days.
[[nodiscard]] std::variant<std::chrono::nanoseconds, DurationParseError> parse_duration(std::string_view text);

/// The shortest exact text for `duration` in the same grammar, e.g. 5400 s -> "1h30m", 1.5 s -> "1s500ms".
[[nodiscard]] std::string format_duration(std::chrono::nanoseconds duration);

/// A configured number of seconds (`*_sec` keys, fractions allowed) as a duration.
[[nodiscard]] inline std::chrono::nanoseconds seconds_to_duration(double seconds) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds));
}

/// The accepted form, for error messages.
inline constexpr const char* kDurationAcceptedForm =
    "a duration such as 250ms, 30s, 5m, 1h or 1h30m (units ms, s, m, h)";

}  // namespace riptide::performance
