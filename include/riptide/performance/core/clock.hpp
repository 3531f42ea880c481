#pragma once
// Time sources. Components take a `const Clock&` so tests can drive time with a ManualClock instead of
// sleeping; production code uses system_clock().

#include <atomic>
#include <chrono>
#include <cstdint>

namespace riptide::performance {

class Clock {
 public:
  virtual ~Clock() = default;
  /// Monotonic time for intervals, rates and timeouts.
  [[nodiscard]] virtual std::chrono::steady_clock::time_point steady_now() const noexcept = 0;
  /// Wall-clock time for timestamps shown to people.
  [[nodiscard]] virtual std::chrono::system_clock::time_point system_now() const noexcept = 0;
};

/// The real clocks. A process-wide instance that lives forever.
[[nodiscard]] const Clock& system_clock() noexcept;

/// A clock that moves only when told to; both time lines advance together. Thread-safe.
class ManualClock final : public Clock {
 public:
  /// Starts at the given wall time; the steady time line starts at an arbitrary fixed point.
  explicit ManualClock(std::chrono::system_clock::time_point start = std::chrono::system_clock::time_point{
                           std::chrono::seconds{1'760'000'000}}) noexcept;

  [[nodiscard]] std::chrono::steady_clock::time_point steady_now() const noexcept override;
  [[nodiscard]] std::chrono::system_clock::time_point system_now() const noexcept override;

  void advance(std::chrono::nanoseconds step) noexcept;

 private:
  std::atomic<std::int64_t> elapsed_ns_{0};
  std::chrono::system_clock::time_point system_start_;
};

}  // namespace riptide::performance
