#pragma once
// Circuit breakers by service name, created on first use and bounded in number: a host that passes
// unbounded names (a URL instead of a service) cannot grow the registry past `max_breakers`. When full,
// the least recently used breaker that is CLOSED or DISABLED (nothing to protect) makes room; when every
// breaker is OPEN, HALF_OPEN or FORCED_OPEN the new name is served by a shared overflow breaker, counted.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/limits/circuit_breaker.hpp"

namespace riptide::performance {

/// Counters since construction.
struct CircuitBreakerRegistryStats {
  std::size_t breakers = 0;                                 ///< named breakers now
  std::size_t max_breakers = 0;                             ///< the bound
  std::uint64_t created = 0;                                ///< breakers created
  std::uint64_t evicted = 0;                                ///< idle breakers dropped to make room
  std::uint64_t overflowed = 0;                             ///< lookups served by the overflow breaker
  std::uint64_t transitions = 0;                            ///< state changes of every breaker (evicted ones included)
  std::array<std::uint64_t, kCircuitStateCount> entered{};  ///< transitions into each state
};

class CircuitBreakerRegistry {
 public:
  static constexpr const char* kOverflowName = "_overflow";

  /// `max_breakers` >= 1. `clock` must outlive the registry and its breakers.
  explicit CircuitBreakerRegistry(CircuitBreakerConfig defaults = {}, std::size_t max_breakers = 1024,
                                  const Clock& clock = system_clock());
  CircuitBreakerRegistry(const CircuitBreakerRegistry&) = delete;
  CircuitBreakerRegistry& operator=(const CircuitBreakerRegistry&) = delete;

  /// The breaker of `service`, created with its configured or the default configuration. Never null.
  [[nodiscard]] std::shared_ptr<CircuitBreaker> get(std::string_view service);
  /// The breaker of `service` when it exists.
  [[nodiscard]] std::shared_ptr<CircuitBreaker> find(std::string_view service) const;
  /// Configuration for `service`'s breaker; replaces an existing breaker of that name (its state is lost).
  void configure(std::string_view service, CircuitBreakerConfig config);
  /// Called after every transition of every breaker (outside breaker locks).
  void set_listener(CircuitBreaker::Listener listener);

  [[nodiscard]] std::vector<CircuitBreakerSnapshot> snapshots() const;
  [[nodiscard]] CircuitBreakerRegistryStats stats() const;
  [[nodiscard]] std::size_t size() const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
  };
  [[nodiscard]] std::shared_ptr<CircuitBreaker> make(const std::string& name) const;
  void on_transition(const CircuitStateTransition& transition);

  CircuitBreakerConfig defaults_;
  std::size_t max_breakers_;
  const Clock& clock_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<CircuitBreaker>, StringHash, std::equal_to<>> breakers_;
  std::unordered_map<std::string, CircuitBreakerConfig, StringHash, std::equal_to<>> configs_;
  std::shared_ptr<CircuitBreaker> overflow_;
  std::shared_ptr<CircuitBreaker::Listener> listener_;  // shared with breakers' callbacks
  std::atomic<std::uint64_t> created_{0};
  std::atomic<std::uint64_t> evicted_{0};
  std::atomic<std::uint64_t> overflowed_{0};
  std::atomic<std::uint64_t> transitions_{0};
  std::array<std::atomic<std::uint64_t>, kCircuitStateCount> entered_{};
};

}  // namespace riptide::performance
