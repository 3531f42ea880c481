#include "riptide/performance/core/clock.hpp"

namespace riptide::performance {
namespace {

class SystemClock final : public Clock {
 public:
  [[nodiscard]] std::chrono::steady_clock::time_point steady_now() const noexcept override {
    return std::chrono::steady_clock::now();
  }
  [[nodiscard]] std::chrono::system_clock::time_point system_now() const noexcept override {
    return std::chrono::system_clock::now();
  }
};

}  // namespace

const Clock& system_clock() noexcept {
  static const SystemClock clock;
  return clock;
}

ManualClock::ManualClock(std::chrono::system_clock::time_point start) noexcept : system_start_(start) {}

std::chrono::steady_clock::time_point ManualClock::steady_now() const noexcept {
  // A fixed, non-zero origin so that "time_point{}" never equals a real reading.
  return std::chrono::steady_clock::time_point{std::chrono::hours{1}} +
         std::chrono::nanoseconds{elapsed_ns_.load(std::memory_order_acquire)};
}

std::chrono::system_clock::time_point ManualClock::system_now() const noexcept {
  return system_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                             std::chrono::nanoseconds{elapsed_ns_.load(std::memory_order_acquire)});
}

void ManualClock::advance(std::chrono::nanoseconds step) noexcept {
  elapsed_ns_.fetch_add(step.count(), std::memory_order_acq_rel);
}

}  // namespace riptide::performance
