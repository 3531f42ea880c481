#include "riptide/performance/http/cooldown.hpp"

#include "riptide/performance/http/http_error.hpp"

#include <algorithm>

namespace riptide::performance::http {
namespace {

std::chrono::seconds whole_seconds_at_least_one(std::chrono::nanoseconds wait) {
  return std::max(std::chrono::seconds{1}, std::chrono::ceil<std::chrono::seconds>(wait));
}

}  // namespace

Cooldown::Ticket::Ticket(Ticket&& other) noexcept : owner_(other.owner_) {
  other.owner_ = nullptr;
}

Cooldown::Ticket::~Ticket() {
  if (owner_ != nullptr) owner_->release();
}

void Cooldown::Ticket::expect_end(std::chrono::steady_clock::time_point end) noexcept {
  if (owner_ == nullptr) return;
  const std::lock_guard lock(owner_->mutex_);
  owner_->expected_end_ = end;
}

Cooldown::Cooldown(std::chrono::nanoseconds interval, const Clock& clock) noexcept
    : clock_(clock), interval_(interval) {}

std::optional<Cooldown::Ticket> Cooldown::try_acquire(std::chrono::seconds& retry_after) {
  const std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  if (running_) {
    // Unknown end: the cool-down alone is the best guess; a known end makes the hint exact.
    const auto end = expected_end_.value_or(now);
    retry_after = whole_seconds_at_least_one(std::max(std::chrono::nanoseconds{0}, end - now) + interval_);
    return std::nullopt;
  }
  if (last_end_ && now < *last_end_ + interval_) {
    retry_after = whole_seconds_at_least_one(*last_end_ + interval_ - now);
    return std::nullopt;
  }
  running_ = true;
  expected_end_.reset();
  return Ticket{this};
}

Cooldown::Ticket Cooldown::acquire_or_throw(const char* what) {
  std::chrono::seconds retry_after{0};
  auto ticket = try_acquire(retry_after);
  if (!ticket) {
    throw HttpError::too_many_requests(std::string{what} + " is running or cooling down", retry_after.count());
  }
  return std::move(*ticket);
}

void Cooldown::release() noexcept {
  const std::lock_guard lock(mutex_);
  running_ = false;
  last_end_ = clock_.steady_now();
  expected_end_.reset();
}

}  // namespace riptide::performance::http
