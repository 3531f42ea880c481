#pragma once
// "At most one at a time, then wait": guards the expensive endpoints (POST /metrics/memory/gc, CPU
// profiles) so a busy scraper or a loop in a script cannot turn them into a denial of service.

#include "riptide/performance/core/clock.hpp"

#include <chrono>
#include <mutex>
#include <optional>

namespace riptide::performance::http {

class Cooldown {
 public:
  /// While held, other acquisitions fail; releasing starts the cool-down.
  class Ticket {
   public:
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&&) = delete;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket();

    /// Tells waiting callers when the current run should end (for a precise Retry-After).
    void expect_end(std::chrono::steady_clock::time_point end) noexcept;

   private:
    friend class Cooldown;
    explicit Ticket(Cooldown* owner) noexcept : owner_(owner) {}
    Cooldown* owner_;
  };

  /// `interval` is the minimum time between the end of one run and the start of the next.
  explicit Cooldown(std::chrono::nanoseconds interval, const Clock& clock = system_clock()) noexcept;

  /// A ticket, or nothing and `retry_after` set to the whole seconds to wait (at least 1).
  [[nodiscard]] std::optional<Ticket> try_acquire(std::chrono::seconds& retry_after);

  /// A ticket, or throws HttpError 429 with Retry-After; `what` names the operation in the message.
  [[nodiscard]] Ticket acquire_or_throw(const char* what);

 private:
  void release() noexcept;

  const Clock& clock_;
  std::chrono::nanoseconds interval_;
  std::mutex mutex_;
  bool running_ = false;
  std::optional<std::chrono::steady_clock::time_point> last_end_;
  std::optional<std::chrono::steady_clock::time_point> expected_end_;
};

}  // namespace riptide::performance::http
