#pragma once
// GCRA (generic cell rate algorithm), the algorithm of Rust's `governor`: the whole state is one 64-bit
// "theoretical arrival time" (TAT) updated by compare-and-swap, so check() is wait-free for readers, takes
// no lock and allocates nothing. A request of n cells at time t is admitted when
// max(TAT, t) + n*period - burst*period <= t, and then TAT becomes max(TAT, t) + n*period.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/limits/rate_decision.hpp"
#include "riptide/performance/limits/rate_quota.hpp"

namespace riptide::performance {

class GcraLimiter {
 public:
  /// How until_ready() waits; tests pass one that advances a ManualClock.
  using SleepFunction = std::function<void(std::chrono::nanoseconds)>;

  /// Starts full (a whole burst is admissible). `clock` must outlive the limiter.
  explicit GcraLimiter(RateQuota quota, const Clock& clock = system_clock(),
                       ClockPrecision precision = ClockPrecision::automatic);
  GcraLimiter(const GcraLimiter&) = delete;
  GcraLimiter& operator=(const GcraLimiter&) = delete;

  /// One cell. Thread-safe, lock-free, no allocation.
  [[nodiscard]] RateDecision check() noexcept { return check_n(1); }

  /// `n` cells, all or nothing: either all are admitted or none is consumed. n > burst is refused with
  /// retry_after == RateDecision::kNever; n == 0 is admitted and consumes nothing.
  [[nodiscard]] RateDecision check_n(std::uint32_t n) noexcept;

  /// Waits (sleeping retry_after plus a random 0..max_jitter, so woken waiters do not stampede) until `n`
  /// cells are admitted; false, having consumed nothing, when that would take longer than `max_wait`
  /// or can never happen (n > burst).
  [[nodiscard]] bool until_ready(std::chrono::nanoseconds max_wait, std::chrono::nanoseconds max_jitter = {},
                                 std::uint32_t n = 1, const SleepFunction& sleep = {});

  /// Back to a full burst.
  void reset() noexcept { tat_.store(0, std::memory_order_relaxed); }

  [[nodiscard]] const RateQuota& quota() const noexcept { return quota_; }
  /// True when this limiter reads the coarse clock (see ClockPrecision).
  [[nodiscard]] bool uses_coarse_clock() const noexcept { return source_ == TimeSource::coarse; }
  /// Requests refused since construction.
  [[nodiscard]] std::uint64_t refused() const noexcept { return refused_.load(std::memory_order_relaxed); }

 private:
  enum class TimeSource : std::uint8_t { coarse, precise, clock };
  [[nodiscard]] std::int64_t now_ns() const noexcept;

  // One atomic read-modify-write per admitted check is the whole cost budget, so admissions are not
  // counted here (ConcurrencyLimiter and the callers count requests); refusals are, off the fast path.
  alignas(64) std::atomic<std::int64_t> tat_{0};
  alignas(64) std::atomic<std::uint64_t> refused_{0};
  RateQuota quota_;
  std::int64_t period_ns_;
  std::int64_t tolerance_ns_;
  double inverse_period_;
  const Clock* clock_;
  TimeSource source_;
};

}  // namespace riptide::performance
