#pragma once
// A counting semaphore that hands out move-only RAII permits: at most `max_permits` holders at once.
// try_acquire() is one CAS; only callers that choose to wait touch the mutex and condition variable.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace riptide::performance {

class ConcurrencyLimiter;

/// Proof of holding one slot of a ConcurrencyLimiter; the slot is given back when the permit is
/// destroyed or release()d. An empty permit (refused or moved from) holds nothing. A permit must not
/// outlive its limiter.
class Permit {
 public:
  Permit() noexcept = default;
  Permit(Permit&& other) noexcept : limiter_(other.limiter_) { other.limiter_ = nullptr; }
  Permit& operator=(Permit&& other) noexcept;
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;
  ~Permit() { release(); }

  /// True while a slot is held.
  [[nodiscard]] bool held() const noexcept { return limiter_ != nullptr; }
  explicit operator bool() const noexcept { return held(); }
  /// Gives the slot back early; a no-op on an empty permit.
  void release() noexcept;

 private:
  friend class ConcurrencyLimiter;
  explicit Permit(ConcurrencyLimiter* limiter) noexcept : limiter_(limiter) {}
  ConcurrencyLimiter* limiter_ = nullptr;
};

/// Counters since construction.
struct ConcurrencyStats {
  std::uint64_t max_permits = 0;  ///< the bound
  std::uint64_t active = 0;       ///< permits held now
  std::uint64_t peak = 0;         ///< most permits held at once
  std::uint64_t acquired = 0;     ///< permits handed out
  std::uint64_t rejected = 0;     ///< try_acquire() calls refused
  std::uint64_t timed_out = 0;    ///< acquire_for() calls that gave up
  std::uint64_t waiting = 0;      ///< callers blocked in acquire_for()/acquire() now
};

class ConcurrencyLimiter {
 public:
  /// `max_permits` >= 1 (throws ConfigError otherwise).
  explicit ConcurrencyLimiter(std::uint32_t max_permits);
  ConcurrencyLimiter(const ConcurrencyLimiter&) = delete;
  ConcurrencyLimiter& operator=(const ConcurrencyLimiter&) = delete;

  /// A permit when a slot is free right now, else an empty one. Lock-free, no allocation.
  [[nodiscard]] Permit try_acquire() noexcept;
  /// Waits up to `timeout` (steady clock) for a slot; an empty permit when none came free in time.
  [[nodiscard]] Permit acquire_for(std::chrono::nanoseconds timeout);
  /// Waits as long as it takes.
  [[nodiscard]] Permit acquire();

  [[nodiscard]] std::uint32_t max_permits() const noexcept { return max_permits_; }
  [[nodiscard]] std::uint32_t active() const noexcept;
  [[nodiscard]] ConcurrencyStats stats() const noexcept;

 private:
  friend class Permit;
  void release_one() noexcept;
  [[nodiscard]] bool try_take() noexcept;
  [[nodiscard]] Permit wait_until(std::chrono::steady_clock::time_point deadline, bool forever);

  const std::uint32_t max_permits_;
  alignas(64) std::atomic<std::int64_t> available_;
  std::atomic<std::uint64_t> acquired_{0};
  alignas(64) std::atomic<std::uint64_t> waiters_{0};
  std::atomic<std::uint64_t> peak_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> timed_out_{0};
  std::mutex mutex_;
  std::condition_variable available_cv_;
};

}  // namespace riptide::performance
