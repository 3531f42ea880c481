#pragma once
// A circuit breaker with resilience4j's semantics (count-based sliding window):
//  CLOSED     every call permitted; outcomes go into a window of the last `sliding_window_size` calls.
//             Once it holds `minimum_number_of_calls` (capped at the window size), a failure rate or a
//             slow-call rate at or above its threshold opens the breaker.
//  OPEN       calls refused until `wait_duration_in_open_state` has passed; the first permission request
//             after that moves to HALF_OPEN and is permitted.
//  HALF_OPEN  `permitted_calls_in_half_open` trial calls are permitted, others refused; when all their
//             outcomes are in, the same thresholds decide OPEN again or CLOSED.
//  FORCED_OPEN / DISABLED  set by an operator: refuse everything / permit everything, record nothing.
// Every transition resets the window, is logged and counted, and is passed to the listener.
// One deviation: a slow-call threshold of 1.0 or more never opens the breaker (LimitsConfig's meaning),
// where resilience4j's 100% opens it when every call in the window was slow.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"

namespace riptide::performance {

enum class CircuitState : std::uint8_t { closed, open, half_open, forced_open, disabled };
inline constexpr std::size_t kCircuitStateCount = 5;

/// "CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED" (resilience4j's names).
[[nodiscard]] std::string_view to_string(CircuitState state) noexcept;

struct CircuitBreakerConfig {
  double failure_rate_threshold = 0.5;    ///< failure share (0, 1] at or above which the breaker opens
  double slow_call_rate_threshold = 1.0;  ///< slow share (0, 1) that opens it; >= 1.0 never opens it
  std::chrono::nanoseconds slow_call_duration = std::chrono::seconds{10};  ///< calls this long or longer are slow
  std::uint32_t sliding_window_size = 100;                                 ///< outcomes remembered in CLOSED
  std::uint32_t minimum_number_of_calls = 10;                              ///< outcomes needed before rates are judged
  std::chrono::nanoseconds wait_duration_in_open_state = std::chrono::seconds{30};  ///< OPEN before HALF_OPEN
  std::uint32_t permitted_calls_in_half_open = 5;                                   ///< trial calls in HALF_OPEN

  /// The `[limits]` keys mapped onto a breaker configuration.
  [[nodiscard]] static CircuitBreakerConfig from(const LimitsConfig& limits);
  /// Throws ConfigError naming the field when a value is out of range.
  void validate() const;
};

/// One state change, as passed to listeners.
struct CircuitStateTransition {
  std::string name;                            ///< the breaker's name (the service)
  CircuitState from = CircuitState::closed;    ///< state left
  CircuitState to = CircuitState::closed;      ///< state entered
  std::optional<double> failure_rate;          ///< window's failure rate that caused it, when judged
  std::optional<double> slow_call_rate;        ///< window's slow-call rate that caused it, when judged
  std::chrono::system_clock::time_point at{};  ///< wall time of the change
};

/// What a breaker looks like now.
struct CircuitBreakerSnapshot {
  std::string name;                           ///< the service
  CircuitState state = CircuitState::closed;  ///< current state
  std::optional<double> failure_rate;         ///< over the window; nullopt until minimum calls are in
  std::optional<double> slow_call_rate;       ///< same for slow calls
  std::uint32_t buffered_calls = 0;           ///< outcomes in the window
  std::uint32_t failed_calls = 0;             ///< failures in the window
  std::uint32_t slow_calls = 0;               ///< slow calls in the window
  std::uint64_t successful_total = 0;         ///< successes recorded since construction
  std::uint64_t failed_total = 0;             ///< failures recorded since construction
  std::uint64_t not_permitted_total = 0;      ///< calls refused since construction
  std::uint64_t transitions_total = 0;        ///< state changes since construction
  std::array<std::uint64_t, kCircuitStateCount> entered_total{};  ///< times each state was entered
};

class CircuitBreaker {
 public:
  using Listener = std::function<void(const CircuitStateTransition&)>;

  /// Throws ConfigError for a bad configuration. `clock` must outlive the breaker.
  explicit CircuitBreaker(std::string name, CircuitBreakerConfig config = {}, const Clock& clock = system_clock());
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  /// Asks to make a call. True: make it, then report on_success/on_error (or release_permission when it
  /// was not made). False: the call is refused (counted as not permitted).
  [[nodiscard]] bool try_acquire_permission() noexcept;
  /// Gives back a HALF_OPEN trial slot for a permitted call that was not made.
  void release_permission() noexcept;
  /// Reports a call's outcome and duration (duration decides "slow").
  void on_success(std::chrono::nanoseconds duration = {}) noexcept;
  void on_error(std::chrono::nanoseconds duration = {}) noexcept;

  /// Runs `f` under the breaker: std::nullopt (or false for void) without calling it when refused;
  /// an exception from `f` counts as a failure and propagates.
  template <typename F>
  auto execute(F&& f)
      -> std::conditional_t<std::is_void_v<std::invoke_result_t<F&>>, bool, std::optional<std::invoke_result_t<F&>>>;

  void transition_to_closed() noexcept { transition_manually(CircuitState::closed); }
  void transition_to_open() noexcept { transition_manually(CircuitState::open); }
  void transition_to_forced_open() noexcept { transition_manually(CircuitState::forced_open); }
  void transition_to_disabled() noexcept { transition_manually(CircuitState::disabled); }
  /// Back to CLOSED with an empty window (counted as a transition when the state changes).
  void reset() noexcept { transition_manually(CircuitState::closed); }

  /// Called after every transition, outside the breaker's lock.
  void set_listener(Listener listener);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const CircuitBreakerConfig& config() const noexcept { return config_; }
  [[nodiscard]] CircuitState state() const noexcept { return state_.load(std::memory_order_acquire); }
  [[nodiscard]] CircuitBreakerSnapshot snapshot() const;
  /// Steady time of the last permission request or outcome, for the registry's eviction.
  [[nodiscard]] std::int64_t last_used_ns() const noexcept { return last_used_ns_.load(std::memory_order_relaxed); }

 private:
  enum Outcome : std::uint8_t { kFailure = 1, kSlow = 2 };
  struct Rates {
    std::optional<double> failure;
    std::optional<double> slow;
  };

  [[nodiscard]] std::int64_t now_ns() const noexcept;
  [[nodiscard]] std::int64_t usage_now_ns() const noexcept;
  void record(bool failure, std::chrono::nanoseconds duration) noexcept;
  // Lock held. Starts a fresh window for `to`; returns the event to publish.
  CircuitStateTransition transition_locked(CircuitState to, Rates rates) noexcept;
  void publish(const CircuitStateTransition& transition) noexcept;
  void transition_manually(CircuitState to) noexcept;
  [[nodiscard]] Rates rates_locked() const noexcept;
  [[nodiscard]] bool exceeds(const Rates& rates) const noexcept;

  const std::string name_;
  const CircuitBreakerConfig config_;
  const Clock& clock_;
  std::atomic<CircuitState> state_{CircuitState::closed};
  std::atomic<std::int64_t> last_used_ns_{0};

  mutable std::mutex mutex_;
  std::vector<std::uint8_t> window_;   // ring of outcomes
  std::uint32_t window_capacity_ = 0;  // window size (CLOSED) or trial count (HALF_OPEN)
  std::uint32_t window_next_ = 0;
  std::uint32_t window_count_ = 0;
  std::uint32_t window_failures_ = 0;
  std::uint32_t window_slow_ = 0;
  std::uint32_t minimum_calls_ = 0;
  std::uint32_t half_open_remaining_ = 0;  // trial permits still to hand out
  std::int64_t open_until_ns_ = 0;
  std::uint64_t successful_total_ = 0;
  std::uint64_t failed_total_ = 0;
  std::uint64_t transitions_total_ = 0;
  std::array<std::uint64_t, kCircuitStateCount> entered_total_{};
  std::atomic<std::uint64_t> not_permitted_total_{0};
  Listener listener_;
};

template <typename F>
auto CircuitBreaker::execute(F&& f)
    -> std::conditional_t<std::is_void_v<std::invoke_result_t<F&>>, bool, std::optional<std::invoke_result_t<F&>>> {
  using Result = std::invoke_result_t<F&>;
  if (!try_acquire_permission()) {
    if constexpr (std::is_void_v<Result>) {
      return false;
    } else {
      return std::nullopt;
    }
  }
  const auto start = clock_.steady_now();
  try {
    if constexpr (std::is_void_v<Result>) {
      f();
      on_success(clock_.steady_now() - start);
      return true;
    } else {
      std::optional<Result> result(f());
      on_success(clock_.steady_now() - start);
      return result;
    }
  } catch (...) {
    on_error(clock_.steady_now() - start);
    throw;
  }
}

}  // namespace riptide::performance
