#pragma once
// Time reading and GCRA arithmetic shared by the local limiters (private to src/limits).

#include <time.h>

#include <chrono>
#include <cstdint>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/limits/rate_quota.hpp"

namespace riptide::performance::limits_detail {

/// Tick of CLOCK_MONOTONIC_COARSE (1-4 ms on usual kernels), read once.
[[nodiscard]] std::int64_t coarse_resolution_ns() noexcept;

/// Smallest burst tolerance for which the coarse clock cannot cost admitted cells: a tick's worth of
/// cells always fits in the burst, with a wide margin.
[[nodiscard]] inline std::int64_t coarse_min_tolerance_ns() noexcept {
  return 16 * coarse_resolution_ns();
}

[[nodiscard]] inline std::int64_t coarse_now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[nodiscard]] inline std::int64_t precise_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[nodiscard]] inline std::int64_t clock_now_ns(const Clock& clock) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock.steady_now().time_since_epoch()).count();
}

/// Whether a limiter on `clock` with this tolerance may read the coarse clock.
[[nodiscard]] bool may_use_coarse(const Clock& clock, ClockPrecision precision, std::int64_t tolerance_ns) noexcept;

/// floor(x / period) for 0 <= x, without a 64-bit division on the hot path: a multiply by the
/// precomputed inverse, then corrected by at most one in either direction.
[[nodiscard]] inline std::uint64_t cells_in(std::int64_t x, std::int64_t period, double inverse_period) noexcept {
  if (x < period) return 0;
  auto cells = static_cast<std::int64_t>(static_cast<double>(x) * inverse_period);
  if ((cells + 1) * period <= x) ++cells;
  if (cells * period > x) --cells;
  return static_cast<std::uint64_t>(cells);
}

/// The GCRA step on a TAT value; pure so the local and keyed limiters share it.
struct GcraStep {
  bool allowed;
  std::int64_t new_tat;         // value to store when allowed
  std::uint64_t remaining;      // single cells still admissible after this decision
  std::int64_t retry_after_ns;  // when refused
  std::int64_t reset_after_ns;  // until a full burst
};

[[nodiscard]] inline GcraStep gcra_step(std::int64_t tat, std::int64_t now, std::int64_t increment, std::int64_t period,
                                        std::int64_t tolerance, double inverse_period) noexcept {
  const std::int64_t base = tat > now ? tat : now;
  const std::int64_t new_tat = base + increment;
  const std::int64_t allow_at = new_tat - tolerance;
  if (now < allow_at) {
    return {false, tat, cells_in(now + tolerance - base, period, inverse_period), allow_at - now, base - now};
  }
  return {true, new_tat, cells_in(now + tolerance - new_tat, period, inverse_period), 0, new_tat - now};
}

}  // namespace riptide::performance::limits_detail
