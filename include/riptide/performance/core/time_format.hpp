#pragma once
// RFC 3339 timestamps in UTC, the form every JSON result uses ("2025-10-11T10:30:00Z").

#include <chrono>
#include <string>

namespace riptide::performance {

/// Whole seconds, e.g. "2025-10-11T10:30:00Z".
[[nodiscard]] std::string format_rfc3339_utc(std::chrono::system_clock::time_point time);

/// Milliseconds, e.g. "2025-10-11T10:30:00.125Z", for series that sample faster than once a second.
[[nodiscard]] std::string format_rfc3339_utc_millis(std::chrono::system_clock::time_point time);

}  // namespace riptide::performance
