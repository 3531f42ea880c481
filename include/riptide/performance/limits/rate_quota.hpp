#pragma once
// How much a GCRA limiter admits: one cell every `period`, up to `burst` cells at once.

#include <chrono>
#include <cstdint>

namespace riptide::performance {

struct RateQuota {
  std::chrono::nanoseconds period{std::chrono::seconds{1}};  ///< replenish interval of one cell (1 / rate)
  std::uint32_t burst = 1;                                   ///< cells admitted back to back from a full limiter

  /// `rate` cells per second (0 < rate <= 1e9), `burst` >= 1. Throws ConfigError naming `rate_key` or
  /// `burst_key` otherwise.
  [[nodiscard]] static RateQuota per_second(double rate, std::uint32_t burst,
                                            const char* rate_key = "limits.rate_limit_per_second",
                                            const char* burst_key = "limits.rate_limit_burst");

  /// Cells per second this quota sustains.
  [[nodiscard]] double rate_per_second() const noexcept {
    return period.count() > 0 ? 1e9 / static_cast<double>(period.count()) : 0.0;
  }

  bool operator==(const RateQuota&) const = default;
};

/// Which time source a limiter reads. `automatic` picks the kernel's coarse monotonic clock (a few ns to
/// read instead of ~25 ns; ticks of 1-4 ms) when the quota's burst tolerance is at least 16 ticks, so the
/// tick can never cost admitted cells, and the precise clock otherwise. Limiters given a clock other than
/// system_clock() (a ManualClock in tests) always read that clock.
enum class ClockPrecision { automatic, precise, coarse };

}  // namespace riptide::performance
