#pragma once
// Exceptions thrown by riptide-performance. Only configuration mistakes and failures to start throw;
// queries return values that say when a feature is unavailable.

#include <stdexcept>
#include <string>

namespace riptide::performance {

/// Base of every exception the library throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A configuration value that cannot be used. The message names where the value came from, the key, the
/// value itself, what is wrong with it and what would be accepted; the parts are also kept separately so
/// callers and tests can inspect them.
class ConfigError : public Error {
 public:
  struct Details {
    std::string source;    ///< "performance.toml:3:17", "RIPTIDE_PERF_P50_LATENCY_MS" or "code"
    std::string key;       ///< dotted key, e.g. "targets.p50_latency_ms"
    std::string value;     ///< the offending value as written (empty when the problem is a missing key)
    std::string problem;   ///< what is wrong, e.g. "must be at least 1"
    std::string accepted;  ///< what would be accepted, e.g. "an integer from 1 to 3600000"
  };

  explicit ConfigError(Details details);

  [[nodiscard]] const Details& details() const noexcept { return details_; }
  [[nodiscard]] const std::string& source() const noexcept { return details_.source; }
  [[nodiscard]] const std::string& key() const noexcept { return details_.key; }
  [[nodiscard]] const std::string& value() const noexcept { return details_.value; }
  [[nodiscard]] const std::string& problem() const noexcept { return details_.problem; }
  [[nodiscard]] const std::string& accepted() const noexcept { return details_.accepted; }

 private:
  Details details_;
};

}  // namespace riptide::performance
