#include "limiter_time.hpp"

namespace riptide::performance::limits_detail {

std::int64_t coarse_resolution_ns() noexcept {
  static const std::int64_t resolution = [] {
    timespec ts{};
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0) return std::int64_t{10'000'000};
    const std::int64_t ns = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    return ns > 0 ? ns : std::int64_t{10'000'000};
  }();
  return resolution;
}

bool may_use_coarse(const Clock& clock, ClockPrecision precision, std::int64_t tolerance_ns) noexcept {
  if (&clock != &system_clock()) return false;
  switch (precision) {
    case ClockPrecision::precise:
      return false;
    case ClockPrecision::coarse:
      return true;
    case ClockPrecision::automatic:
      return tolerance_ns >= coarse_min_tolerance_ns();
  }
  return false;
}

}  // namespace riptide::performance::limits_detail
