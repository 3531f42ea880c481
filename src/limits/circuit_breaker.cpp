#include "riptide/performance/limits/circuit_breaker.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <string>

#include "limiter_time.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/logger.hpp"

namespace riptide::performance {

std::string_view to_string(CircuitState state) noexcept {
  switch (state) {
    case CircuitState::closed:
      return "CLOSED";
    case CircuitState::open:
      return "OPEN";
    case CircuitState::half_open:
      return "HALF_OPEN";
    case CircuitState::forced_open:
      return "FORCED_OPEN";
    case CircuitState::disabled:
      return "DISABLED";
  }
  return "UNKNOWN";
}

CircuitBreakerConfig CircuitBreakerConfig::from(const LimitsConfig& limits) {
  CircuitBreakerConfig config;
  config.failure_rate_threshold = limits.circuit_breaker_threshold;
  config.slow_call_rate_threshold = limits.slow_call_rate_threshold;
  config.slow_call_duration =
      std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(limits.slow_call_ms * 1e6))};
  config.sliding_window_size = limits.circuit_breaker_window;
  config.minimum_number_of_calls = limits.circuit_breaker_min_calls;
  config.wait_duration_in_open_state =
      std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(limits.circuit_breaker_open_sec * 1e9))};
  config.permitted_calls_in_half_open = limits.circuit_breaker_half_open_calls;
  return config;
}

void CircuitBreakerConfig::validate() const {
  auto fail = [](const char* key, const std::string& value, const char* accepted) {
    throw ConfigError({"code", key, value, "is out of range", accepted});
  };
  if (!(failure_rate_threshold > 0.0 && failure_rate_threshold <= 1.0)) {
    fail("limits.circuit_breaker_threshold", std::to_string(failure_rate_threshold), "a share above 0 and at most 1");
  }
  if (!(slow_call_rate_threshold > 0.0)) {
    fail("limits.slow_call_rate_threshold", std::to_string(slow_call_rate_threshold),
         "a share above 0 (1.0 or more: slow calls never open the breaker)");
  }
  if (slow_call_duration.count() <= 0) {
    fail("limits.slow_call_ms", std::to_string(slow_call_duration.count()) + "ns", "a duration above 0");
  }
  if (sliding_window_size == 0) fail("limits.circuit_breaker_window", "0", "an integer of at least 1");
  if (minimum_number_of_calls == 0) fail("limits.circuit_breaker_min_calls", "0", "an integer of at least 1");
  if (wait_duration_in_open_state.count() < 0) {
    fail("limits.circuit_breaker_open_sec", std::to_string(wait_duration_in_open_state.count()) + "ns",
         "a duration of 0 or more");
  }
  if (permitted_calls_in_half_open == 0)
    fail("limits.circuit_breaker_half_open_calls", "0", "an integer of at least 1");
}

CircuitBreaker::CircuitBreaker(std::string name, CircuitBreakerConfig config, const Clock& clock)
    : name_(std::move(name)), config_(config), clock_(clock) {
  config_.validate();
  window_.assign(std::max(config_.sliding_window_size, config_.permitted_calls_in_half_open), 0);
  window_capacity_ = config_.sliding_window_size;
  minimum_calls_ = std::min(config_.minimum_number_of_calls, config_.sliding_window_size);
  entered_total_[static_cast<std::size_t>(CircuitState::closed)] = 1;
  last_used_ns_.store(now_ns(), std::memory_order_relaxed);
}

std::int64_t CircuitBreaker::usage_now_ns() const noexcept {
  // Recency for the registry's eviction needs no precision; the coarse clock costs a few ns, not ~25.
  return &clock_ == &system_clock() ? limits_detail::coarse_now_ns() : now_ns();
}

std::int64_t CircuitBreaker::now_ns() const noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.steady_now().time_since_epoch()).count();
}

bool CircuitBreaker::try_acquire_permission() noexcept {
  // CLOSED and DISABLED permit without the lock: the common case costs one atomic load.
  const CircuitState seen = state_.load(std::memory_order_acquire);
  if (seen == CircuitState::closed || seen == CircuitState::disabled) return true;
  if (seen == CircuitState::forced_open) {
    not_permitted_total_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  std::optional<CircuitStateTransition> event;
  bool permitted = false;
  {
    std::lock_guard lock(mutex_);
    const std::int64_t now = now_ns();
    last_used_ns_.store(now, std::memory_order_relaxed);
    switch (state_.load(std::memory_order_relaxed)) {
      case CircuitState::closed:
      case CircuitState::disabled:
        permitted = true;
        break;
      case CircuitState::forced_open:
        break;
      case CircuitState::open:
        if (now >= open_until_ns_) {
          event = transition_locked(CircuitState::half_open, {});
          --half_open_remaining_;
          permitted = true;
        }
        break;
      case CircuitState::half_open:
        if (half_open_remaining_ > 0) {
          --half_open_remaining_;
          permitted = true;
        }
        break;
    }
  }
  if (event) publish(*event);
  if (!permitted) not_permitted_total_.fetch_add(1, std::memory_order_relaxed);
  return permitted;
}

void CircuitBreaker::release_permission() noexcept {
  std::lock_guard lock(mutex_);
  if (state_.load(std::memory_order_relaxed) == CircuitState::half_open &&
      half_open_remaining_ < config_.permitted_calls_in_half_open) {
    ++half_open_remaining_;
  }
}

void CircuitBreaker::on_success(std::chrono::nanoseconds duration) noexcept {
  record(false, duration);
}
void CircuitBreaker::on_error(std::chrono::nanoseconds duration) noexcept {
  record(true, duration);
}

CircuitBreaker::Rates CircuitBreaker::rates_locked() const noexcept {
  if (window_count_ == 0 || window_count_ < minimum_calls_) return {};
  const double count = window_count_;
  return {window_failures_ / count, window_slow_ / count};
}

bool CircuitBreaker::exceeds(const Rates& rates) const noexcept {
  if (rates.failure && *rates.failure >= config_.failure_rate_threshold) return true;
  return config_.slow_call_rate_threshold < 1.0 && rates.slow && *rates.slow >= config_.slow_call_rate_threshold;
}

void CircuitBreaker::record(bool failure, std::chrono::nanoseconds duration) noexcept {
  const bool slow = duration >= config_.slow_call_duration;
  std::optional<CircuitStateTransition> event;
  {
    std::lock_guard lock(mutex_);
    last_used_ns_.store(usage_now_ns(), std::memory_order_relaxed);
    ++(failure ? failed_total_ : successful_total_);
    const CircuitState state = state_.load(std::memory_order_relaxed);
    // Outcomes of calls that finish in OPEN, FORCED_OPEN or DISABLED are counted but judge nothing.
    if (state != CircuitState::closed && state != CircuitState::half_open) return;
    if (window_count_ == window_capacity_) {
      const std::uint8_t oldest = window_[window_next_];
      window_failures_ -= (oldest & kFailure) ? 1 : 0;
      window_slow_ -= (oldest & kSlow) ? 1 : 0;
    } else {
      ++window_count_;
    }
    window_[window_next_] = static_cast<std::uint8_t>((failure ? kFailure : 0) | (slow ? kSlow : 0));
    window_next_ = (window_next_ + 1) % window_capacity_;
    window_failures_ += failure ? 1 : 0;
    window_slow_ += slow ? 1 : 0;

    const Rates rates = rates_locked();
    if (state == CircuitState::closed) {
      if (rates.failure && exceeds(rates)) event = transition_locked(CircuitState::open, rates);
    } else if (window_count_ >= minimum_calls_) {
      event = transition_locked(exceeds(rates) ? CircuitState::open : CircuitState::closed, rates);
    }
  }
  if (event) publish(*event);
}

CircuitStateTransition CircuitBreaker::transition_locked(CircuitState to, Rates rates) noexcept {
  const CircuitState from = state_.load(std::memory_order_relaxed);
  window_next_ = 0;
  window_count_ = 0;
  window_failures_ = 0;
  window_slow_ = 0;
  if (to == CircuitState::half_open) {
    window_capacity_ = config_.permitted_calls_in_half_open;
    minimum_calls_ = config_.permitted_calls_in_half_open;
    half_open_remaining_ = config_.permitted_calls_in_half_open;
  } else {
    window_capacity_ = config_.sliding_window_size;
    minimum_calls_ = std::min(config_.minimum_number_of_calls, config_.sliding_window_size);
    half_open_remaining_ = 0;
  }
  if (to == CircuitState::open) open_until_ns_ = now_ns() + config_.wait_duration_in_open_state.count();
  ++transitions_total_;
  ++entered_total_[static_cast<std::size_t>(to)];
  state_.store(to, std::memory_order_release);
  CircuitStateTransition event;
  event.from = from;
  event.to = to;
  event.failure_rate = rates.failure;
  event.slow_call_rate = rates.slow;
  event.at = clock_.system_now();
  return event;
}

void CircuitBreaker::publish(const CircuitStateTransition& transition_without_name) noexcept {
  try {
    CircuitStateTransition transition = transition_without_name;
    transition.name = name_;
    const auto level = transition.to == CircuitState::open || transition.to == CircuitState::forced_open
                           ? spdlog::level::warn
                           : spdlog::level::info;
    logger()->log(level, "circuit breaker '{}': {} -> {} (failure rate {}, slow-call rate {})", name_,
                  to_string(transition.from), to_string(transition.to),
                  transition.failure_rate ? std::to_string(*transition.failure_rate) : std::string("n/a"),
                  transition.slow_call_rate ? std::to_string(*transition.slow_call_rate) : std::string("n/a"));
    Listener listener;
    {
      std::lock_guard lock(mutex_);
      listener = listener_;
    }
    if (listener) listener(transition);
  } catch (...) {
    // A throwing sink or listener must not break the caller's request path.
  }
}

void CircuitBreaker::transition_manually(CircuitState to) noexcept {
  std::optional<CircuitStateTransition> event;
  {
    std::lock_guard lock(mutex_);
    if (state_.load(std::memory_order_relaxed) != to) {
      event = transition_locked(to, {});
    } else {
      // Same state: only a fresh window (resilience4j's reset()).
      window_next_ = window_count_ = window_failures_ = window_slow_ = 0;
    }
  }
  if (event) publish(*event);
}

void CircuitBreaker::set_listener(Listener listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

CircuitBreakerSnapshot CircuitBreaker::snapshot() const {
  CircuitBreakerSnapshot snapshot;
  snapshot.name = name_;
  snapshot.not_permitted_total = not_permitted_total_.load(std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  snapshot.state = state_.load(std::memory_order_relaxed);
  const Rates rates = rates_locked();
  snapshot.failure_rate = rates.failure;
  snapshot.slow_call_rate = rates.slow;
  snapshot.buffered_calls = window_count_;
  snapshot.failed_calls = window_failures_;
  snapshot.slow_calls = window_slow_;
  snapshot.successful_total = successful_total_;
  snapshot.failed_total = failed_total_;
  snapshot.transitions_total = transitions_total_;
  snapshot.entered_total = entered_total_;
  return snapshot;
}

}  // namespace riptide::performance
