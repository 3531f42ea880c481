#pragma once
// Every resource limit of `[limits]` behind PerformanceManager's limit calls: a request permit (concurrency + global
// rate), per-client rate limits, per-service circuit breakers, and one reading of it all.
//   auto permit = limits.acquire_request_permit(5s);        // empty when refused; RAII otherwise
//   if (!limits.check_rate_limits("client-123")) reply_429();
//   limits.record_success("external-api");  limits.record_failure("external-api");
//   ResourceUsage usage = limits.get_resource_usage();
// Thread-safe. PerformanceManager owns one and forwards these calls.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/limits/circuit_breaker.hpp"
#include "riptide/performance/limits/circuit_breaker_registry.hpp"
#include "riptide/performance/limits/concurrency_limiter.hpp"
#include "riptide/performance/limits/gcra_limiter.hpp"
#include "riptide/performance/limits/keyed_rate_limiter.hpp"
#include "riptide/performance/limits/rate_decision.hpp"
#include "riptide/performance/limits/resource_usage.hpp"

namespace riptide::performance {

class RedisClient;
class RedisRateLimiter;

/// A held request slot plus the global rate decision that let it in (or refused it).
struct RequestPermit {
  Permit permit;              ///< the concurrency slot; empty when refused
  RateDecision rate;          ///< the global rate decision (retry_after when the rate refused it)
  bool rate_limited = false;  ///< refused by the rate limit rather than by concurrency

  explicit operator bool() const noexcept { return permit.held(); }
};

class ResourceLimits {
 public:
  /// Most breakers kept (one per service name); LRU idle ones make room beyond it.
  static constexpr std::size_t kMaxCircuitBreakers = 1024;

  /// Throws ConfigError for unusable values. With `config.distributed` and a `redis` client the global
  /// limit is shared through Redis (else it is per process, and `redis` is ignored). `clock` must
  /// outlive this object.
  explicit ResourceLimits(const LimitsConfig& config, const Clock& clock = system_clock(),
                          std::shared_ptr<RedisClient> redis = nullptr);
  ~ResourceLimits();
  ResourceLimits(const ResourceLimits&) = delete;
  ResourceLimits& operator=(const ResourceLimits&) = delete;

  /// A slot and a global rate cell now, or a refusal now.
  [[nodiscard]] RequestPermit try_acquire_request_permit() noexcept;
  /// Waits up to `timeout` for a slot and then for the rate; a refusal consumes no rate cell.
  [[nodiscard]] RequestPermit acquire_request_permit(std::chrono::nanoseconds timeout);
  /// Waits as long as it takes.
  [[nodiscard]] RequestPermit acquire_request_permit();

  /// Per-client limit of `client`; without a client, one cell of the global limit.
  [[nodiscard]] RateDecision check_rate_limits(std::optional<std::string_view> client = std::nullopt) noexcept;

  /// Whether `service`'s breaker lets a call through now (it counts refusals).
  [[nodiscard]] bool allow_call(std::string_view service);
  /// A call to `service` succeeded / failed after `duration` (durations decide "slow").
  void record_success(std::string_view service, std::chrono::nanoseconds duration = {});
  void record_failure(std::string_view service, std::chrono::nanoseconds duration = {});
  [[nodiscard]] std::shared_ptr<CircuitBreaker> circuit_breaker(std::string_view service);

  /// Closes the current window when it is at least 1 s long: the refusals and admissions since the
  /// previous close become the window that readings report. The owner calls it periodically (the
  /// PerformanceManager's checker does, every monitoring.sample_interval_sec); readings never do, so two
  /// readers never take each other's refusals.
  void advance_window();
  /// A reading: figures now, plus `current_rate` and the refusals of the latest closed window. Changes
  /// nothing: any number of readers see the same thing until the next advance_window().
  [[nodiscard]] ResourceUsage get_resource_usage() const;

  [[nodiscard]] const LimitsConfig& config() const noexcept { return config_; }
  [[nodiscard]] bool distributed() const noexcept { return distributed_ != nullptr; }
  [[nodiscard]] GcraLimiter& global_limiter() noexcept { return global_; }
  [[nodiscard]] KeyedRateLimiter& client_limiter() noexcept { return clients_; }
  [[nodiscard]] ConcurrencyLimiter& concurrency() noexcept { return concurrency_; }
  [[nodiscard]] CircuitBreakerRegistry& circuit_breakers() noexcept { return breakers_; }
  /// The shared limiter when distributed, else null.
  [[nodiscard]] RedisRateLimiter* distributed_limiter() noexcept { return distributed_.get(); }

 private:
  [[nodiscard]] RateDecision check_global() noexcept;

  LimitsConfig config_;
  const Clock& clock_;
  GcraLimiter global_;
  KeyedRateLimiter clients_;
  ConcurrencyLimiter concurrency_;
  CircuitBreakerRegistry breakers_;
  std::shared_ptr<RedisRateLimiter> distributed_;  // shared_ptr: complete type not needed when Redis is compiled out

  std::atomic<std::uint64_t> admitted_{0};
  std::atomic<std::uint64_t> rate_limited_{0};
  std::atomic<std::uint64_t> client_rate_limited_{0};

  // Monotonic counters the windows are differences of.
  struct Counters {
    std::uint64_t admitted = 0;
    std::uint64_t rate_limited = 0;
    std::uint64_t client_rate_limited = 0;
    std::uint64_t permit_rejections = 0;
    std::uint64_t forced_evictions = 0;
  };
  // A closed window: what happened between two advance_window() calls.
  struct Window {
    bool closed = false;  // false until the first window closes
    double seconds = 0.0;
    double admitted_per_second = 0.0;
    Counters refused;  // `admitted` unused
  };
  [[nodiscard]] Counters counters_of(const ConcurrencyStats& permits, const KeyedRateLimiterStats& clients) const;

  mutable std::mutex window_mutex_;
  std::chrono::steady_clock::time_point window_start_{};
  Counters window_start_counters_;
  Window latest_window_;
};

}  // namespace riptide::performance
