#include "riptide/performance/limits/circuit_breaker_registry.hpp"

#include <algorithm>
#include <mutex>

#include "riptide/performance/core/error.hpp"

namespace riptide::performance {

CircuitBreakerRegistry::CircuitBreakerRegistry(CircuitBreakerConfig defaults, std::size_t max_breakers,
                                               const Clock& clock)
    : defaults_(defaults), max_breakers_(max_breakers), clock_(clock) {
  defaults_.validate();
  if (max_breakers_ == 0) {
    throw ConfigError(
        {"code", "limits.max_circuit_breakers", "0", "would hold no breaker", "an integer of at least 1"});
  }
  overflow_ = make(kOverflowName);
}

std::shared_ptr<CircuitBreaker> CircuitBreakerRegistry::make(const std::string& name) const {
  const auto config = configs_.find(name);
  auto breaker = std::make_shared<CircuitBreaker>(name, config == configs_.end() ? defaults_ : config->second, clock_);
  // The callback holds only a raw `this`: breakers handed out never outlive a registry in correct use,
  // and the registry's counters must see transitions of breakers it already evicted.
  auto* self = const_cast<CircuitBreakerRegistry*>(this);
  breaker->set_listener([self](const CircuitStateTransition& transition) { self->on_transition(transition); });
  return breaker;
}

void CircuitBreakerRegistry::on_transition(const CircuitStateTransition& transition) {
  transitions_.fetch_add(1, std::memory_order_relaxed);
  entered_[static_cast<std::size_t>(transition.to)].fetch_add(1, std::memory_order_relaxed);
  std::shared_ptr<CircuitBreaker::Listener> listener;
  {
    std::shared_lock lock(mutex_);
    listener = listener_;
  }
  if (listener && *listener) (*listener)(transition);
}

std::shared_ptr<CircuitBreaker> CircuitBreakerRegistry::get(std::string_view service) {
  {
    std::shared_lock lock(mutex_);
    const auto found = breakers_.find(service);
    if (found != breakers_.end()) return found->second;
  }
  std::unique_lock lock(mutex_);
  const auto found = breakers_.find(service);
  if (found != breakers_.end()) return found->second;
  if (breakers_.size() >= max_breakers_) {
    auto victim = breakers_.end();
    for (auto it = breakers_.begin(); it != breakers_.end(); ++it) {
      const CircuitState state = it->second->state();
      if (state != CircuitState::closed && state != CircuitState::disabled) continue;
      if (victim == breakers_.end() || it->second->last_used_ns() < victim->second->last_used_ns()) victim = it;
    }
    if (victim == breakers_.end()) {
      overflowed_.fetch_add(1, std::memory_order_relaxed);
      return overflow_;
    }
    breakers_.erase(victim);
    evicted_.fetch_add(1, std::memory_order_relaxed);
  }
  std::string name(service);
  auto breaker = make(name);
  breakers_.emplace(std::move(name), breaker);
  created_.fetch_add(1, std::memory_order_relaxed);
  return breaker;
}

std::shared_ptr<CircuitBreaker> CircuitBreakerRegistry::find(std::string_view service) const {
  std::shared_lock lock(mutex_);
  const auto found = breakers_.find(service);
  return found == breakers_.end() ? nullptr : found->second;
}

void CircuitBreakerRegistry::configure(std::string_view service, CircuitBreakerConfig config) {
  config.validate();
  std::unique_lock lock(mutex_);
  configs_.insert_or_assign(std::string(service), config);
  const auto found = breakers_.find(service);
  if (found != breakers_.end()) found->second = make(found->first);
}

void CircuitBreakerRegistry::set_listener(CircuitBreaker::Listener listener) {
  auto shared = std::make_shared<CircuitBreaker::Listener>(std::move(listener));
  std::unique_lock lock(mutex_);
  listener_ = std::move(shared);
}

std::vector<CircuitBreakerSnapshot> CircuitBreakerRegistry::snapshots() const {
  std::vector<std::shared_ptr<CircuitBreaker>> breakers;
  {
    std::shared_lock lock(mutex_);
    breakers.reserve(breakers_.size() + 1);
    for (const auto& [name, breaker] : breakers_) breakers.push_back(breaker);
  }
  std::vector<CircuitBreakerSnapshot> result;
  result.reserve(breakers.size() + 1);
  for (const auto& breaker : breakers) result.push_back(breaker->snapshot());
  // The overflow breaker only shows once it was used.
  if (overflowed_.load(std::memory_order_relaxed) > 0) result.push_back(overflow_->snapshot());
  std::sort(result.begin(), result.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return result;
}

CircuitBreakerRegistryStats CircuitBreakerRegistry::stats() const {
  CircuitBreakerRegistryStats stats;
  stats.breakers = size();
  stats.max_breakers = max_breakers_;
  stats.created = created_.load(std::memory_order_relaxed);
  stats.evicted = evicted_.load(std::memory_order_relaxed);
  stats.overflowed = overflowed_.load(std::memory_order_relaxed);
  stats.transitions = transitions_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < kCircuitStateCount; ++i) stats.entered[i] = entered_[i].load(std::memory_order_relaxed);
  return stats;
}

std::size_t CircuitBreakerRegistry::size() const {
  std::shared_lock lock(mutex_);
  return breakers_.size();
}

}  // namespace riptide::performance
