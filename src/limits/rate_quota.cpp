#include "riptide/performance/limits/rate_quota.hpp"

#include <cmath>
#include <string>

#include "riptide/performance/core/error.hpp"

namespace riptide::performance {

RateQuota RateQuota::per_second(double rate, std::uint32_t burst, const char* rate_key, const char* burst_key) {
  if (!std::isfinite(rate) || rate <= 0.0 || rate > 1e9) {
    throw ConfigError({"code", rate_key, std::to_string(rate), "is not a usable rate",
                       "a number of cells per second above 0 and at most 1e9"});
  }
  if (burst == 0) {
    throw ConfigError({"code", burst_key, "0", "admits nothing", "an integer of at least 1"});
  }
  const auto period = static_cast<std::int64_t>(std::llround(1e9 / rate));
  return RateQuota{std::chrono::nanoseconds{period > 0 ? period : 1}, burst};
}

}  // namespace riptide::performance
