#include "riptide/performance/limits/gcra_limiter.hpp"

#include <random>
#include <string>
#include <thread>

#include "limiter_time.hpp"
#include "riptide/performance/core/error.hpp"

namespace riptide::performance {
namespace {

std::int64_t checked_tolerance(const RateQuota& quota) {
  if (quota.period.count() <= 0 || quota.burst == 0) {
    throw ConfigError({"code", "limits.quota",
                       std::to_string(quota.period.count()) + "ns/" + std::to_string(quota.burst),
                       "period and burst must be positive", "a period of at least 1 ns and a burst of at least 1"});
  }
  // Bounded so TAT arithmetic cannot overflow: a tolerance of more than ~100 days is not a rate limit.
  constexpr std::int64_t kMaxTolerance = std::int64_t{1} << 53;
  if (quota.period.count() > kMaxTolerance / quota.burst) {
    throw ConfigError({"code", "limits.quota",
                       std::to_string(quota.period.count()) + "ns x " + std::to_string(quota.burst),
                       "burst x period is too long", "burst x period of at most 2^53 ns (~104 days)"});
  }
  return quota.period.count() * quota.burst;
}

std::uint64_t jitter_ns(std::chrono::nanoseconds max_jitter) {
  if (max_jitter.count() <= 0) return 0;
  thread_local std::minstd_rand engine{std::random_device{}()};
  return std::uniform_int_distribution<std::uint64_t>(0, static_cast<std::uint64_t>(max_jitter.count()))(engine);
}

}  // namespace

GcraLimiter::GcraLimiter(RateQuota quota, const Clock& clock, ClockPrecision precision)
    : quota_(quota),
      period_ns_(quota.period.count()),
      tolerance_ns_(checked_tolerance(quota)),
      inverse_period_(1.0 / static_cast<double>(quota.period.count())),
      clock_(&clock),
      source_(&clock != &system_clock()                                        ? TimeSource::clock
              : limits_detail::may_use_coarse(clock, precision, tolerance_ns_) ? TimeSource::coarse
                                                                               : TimeSource::precise) {}

std::int64_t GcraLimiter::now_ns() const noexcept {
  switch (source_) {
    case TimeSource::coarse:
      return limits_detail::coarse_now_ns();
    case TimeSource::precise:
      return limits_detail::precise_now_ns();
    case TimeSource::clock:
      break;
  }
  return limits_detail::clock_now_ns(*clock_);
}

RateDecision GcraLimiter::check_n(std::uint32_t n) noexcept {
  const std::uint64_t limit = quota_.burst;
  if (n > quota_.burst) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return RateDecision{false, limit, 0, RateDecision::kNever, {}};
  }
  const std::int64_t now = now_ns();
  const std::int64_t increment = period_ns_ * n;
  std::int64_t tat = tat_.load(std::memory_order_relaxed);
  for (;;) {
    const auto step = limits_detail::gcra_step(tat, now, increment, period_ns_, tolerance_ns_, inverse_period_);
    if (!step.allowed) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return RateDecision{false, limit, step.remaining, std::chrono::nanoseconds{step.retry_after_ns},
                          std::chrono::nanoseconds{step.reset_after_ns}};
    }
    // Relaxed is enough: the TAT is the whole state and guards no other memory.
    if (tat_.compare_exchange_weak(tat, step.new_tat, std::memory_order_relaxed, std::memory_order_relaxed)) {
      return RateDecision{true, limit, step.remaining, {}, std::chrono::nanoseconds{step.reset_after_ns}};
    }
  }
}

bool GcraLimiter::until_ready(std::chrono::nanoseconds max_wait, std::chrono::nanoseconds max_jitter, std::uint32_t n,
                              const SleepFunction& sleep) {
  const std::int64_t start = now_ns();
  for (;;) {
    const RateDecision decision = check_n(n);
    if (decision.allowed) return true;
    if (decision.retry_after == RateDecision::kNever) return false;
    const std::int64_t waited = now_ns() - start;
    const std::int64_t pause = decision.retry_after.count() + static_cast<std::int64_t>(jitter_ns(max_jitter));
    // Give up when even the unjittered wait would overrun; a jittered one is trimmed to the deadline.
    if (waited + decision.retry_after.count() > max_wait.count()) return false;
    const std::int64_t bounded = std::min(pause, max_wait.count() - waited);
    if (sleep) {
      sleep(std::chrono::nanoseconds{bounded});
    } else {
      std::this_thread::sleep_for(std::chrono::nanoseconds{bounded});
    }
  }
}

}  // namespace riptide::performance
