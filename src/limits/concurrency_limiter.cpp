#include "riptide/performance/limits/concurrency_limiter.hpp"

#include "riptide/performance/core/error.hpp"

namespace riptide::performance {

Permit& Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    release();
    limiter_ = other.limiter_;
    other.limiter_ = nullptr;
  }
  return *this;
}

void Permit::release() noexcept {
  if (limiter_ != nullptr) {
    limiter_->release_one();
    limiter_ = nullptr;
  }
}

ConcurrencyLimiter::ConcurrencyLimiter(std::uint32_t max_permits)
    : max_permits_(max_permits), available_(static_cast<std::int64_t>(max_permits)) {
  if (max_permits == 0) {
    throw ConfigError(
        {"code", "limits.max_concurrent_requests", "0", "would admit no request", "an integer of at least 1"});
  }
}

bool ConcurrencyLimiter::try_take() noexcept {
  std::int64_t available = available_.load(std::memory_order_relaxed);
  while (available > 0) {
    // seq_cst pairs with the waiter count in release_one(): either the releaser sees the waiter or the
    // waiter sees the freed slot, so no wake-up is lost.
    if (available_.compare_exchange_weak(available, available - 1, std::memory_order_seq_cst,
                                         std::memory_order_relaxed)) {
      acquired_.fetch_add(1, std::memory_order_relaxed);
      // The peak is a statistic: a racy max is fine, and the CAS loop only runs when it grows.
      const auto in_use = static_cast<std::uint64_t>(static_cast<std::int64_t>(max_permits_) - (available - 1));
      std::uint64_t peak = peak_.load(std::memory_order_relaxed);
      while (in_use > peak && !peak_.compare_exchange_weak(peak, in_use, std::memory_order_relaxed)) {
      }
      return true;
    }
  }
  return false;
}

Permit ConcurrencyLimiter::try_acquire() noexcept {
  if (try_take()) return Permit(this);
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return Permit();
}

Permit ConcurrencyLimiter::acquire_for(std::chrono::nanoseconds timeout) {
  if (try_take()) return Permit(this);
  if (timeout.count() <= 0) {
    timed_out_.fetch_add(1, std::memory_order_relaxed);
    return Permit();
  }
  return wait_until(std::chrono::steady_clock::now() + timeout, false);
}

Permit ConcurrencyLimiter::acquire() {
  if (try_take()) return Permit(this);
  return wait_until(std::chrono::steady_clock::time_point::max(), true);
}

Permit ConcurrencyLimiter::wait_until(std::chrono::steady_clock::time_point deadline, bool forever) {
  std::unique_lock lock(mutex_);
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  bool got = false;
  if (forever) {
    available_cv_.wait(lock, [this] { return try_take(); });
    got = true;
  } else {
    got = available_cv_.wait_until(lock, deadline, [this] { return try_take(); });
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  if (got) return Permit(this);
  timed_out_.fetch_add(1, std::memory_order_relaxed);
  return Permit();
}

void ConcurrencyLimiter::release_one() noexcept {
  available_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) > 0) {
    // Taking the mutex orders this notify after a waiter's predicate check, so it cannot be missed.
    std::lock_guard lock(mutex_);
    available_cv_.notify_one();
  }
}

std::uint32_t ConcurrencyLimiter::active() const noexcept {
  const std::int64_t available = available_.load(std::memory_order_relaxed);
  return static_cast<std::uint32_t>(static_cast<std::int64_t>(max_permits_) - available);
}

ConcurrencyStats ConcurrencyLimiter::stats() const noexcept {
  return ConcurrencyStats{max_permits_,
                          active(),
                          peak_.load(std::memory_order_relaxed),
                          acquired_.load(std::memory_order_relaxed),
                          rejected_.load(std::memory_order_relaxed),
                          timed_out_.load(std::memory_order_relaxed),
                          waiters_.load(std::memory_order_relaxed)};
}

}  // namespace riptide::performance
