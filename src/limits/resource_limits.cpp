#include "riptide/performance/limits/resource_limits.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <thread>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/limits/redis_rate_limiter.hpp"

namespace riptide::performance {
namespace {

RateQuota global_quota(const LimitsConfig& config) {
  return RateQuota::per_second(config.rate_limit_per_second, config.rate_limit_burst, "limits.rate_limit_per_second",
                               "limits.rate_limit_burst");
}

KeyedRateLimiterOptions client_options(const LimitsConfig& config) {
  KeyedRateLimiterOptions options;
  options.default_quota = RateQuota::per_second(config.per_client_rate_per_second, config.per_client_burst,
                                                "limits.per_client_rate_per_second", "limits.per_client_burst");
  options.max_keys = config.max_tracked_clients;
  return options;
}

// Waiters for the same rate would all wake at retry_after; a little jitter spreads them.
std::chrono::nanoseconds jittered(std::chrono::nanoseconds wait, std::chrono::nanoseconds period) {
  thread_local std::minstd_rand engine{std::random_device{}()};
  const std::int64_t spread = std::max<std::int64_t>(1, period.count() / 10);
  return wait + std::chrono::nanoseconds{std::uniform_int_distribution<std::int64_t>(0, spread)(engine)};
}

std::string describe_rate(double rate) {
  char text[32];
  std::snprintf(text, sizeof text, "%g/s", rate);
  return text;
}

}  // namespace

ResourceLimits::ResourceLimits(const LimitsConfig& config, const Clock& clock, std::shared_ptr<RedisClient> redis)
    : config_(config),
      clock_(clock),
      global_(global_quota(config), clock),
      clients_(client_options(config), clock),
      concurrency_(config.max_concurrent_requests),
      breakers_(CircuitBreakerConfig::from(config), kMaxCircuitBreakers, clock) {
  if (config_.distributed) {
#if RIPTIDE_PERF_HAS_REDIS
    if (redis) {
      RedisRateLimiterOptions options;
      options.quota = global_quota(config_);
      options.fail_open = config_.fail_open;
      distributed_ = std::make_shared<RedisRateLimiter>(std::move(redis), std::move(options), clock);
    } else {
      logger()->warn(
          "limits.distributed is set but no Redis is configured (redis.url): the global rate limit is "
          "per process");
    }
#else
    (void)redis;  // compiled out: the parameter stays in the signature so hosts build either way
    logger()->warn(
        "limits.distributed is set but this build has no Redis support (RIPTIDE_PERF_REDIS=OFF): the "
        "global rate limit is per process");
#endif
  }
  window_start_ = clock_.steady_now();
}

ResourceLimits::~ResourceLimits() = default;

RateDecision ResourceLimits::check_global() noexcept {
#if RIPTIDE_PERF_HAS_REDIS
  const RateDecision decision = distributed_ ? distributed_->check() : global_.check();
#else
  const RateDecision decision = global_.check();
#endif
  if (!decision.allowed) rate_limited_.fetch_add(1, std::memory_order_relaxed);
  return decision;
}

RequestPermit ResourceLimits::try_acquire_request_permit() noexcept {
  RequestPermit result;
  // The slot first: giving it back is free, while a rate cell once taken cannot be returned.
  result.permit = concurrency_.try_acquire();
  if (!result.permit) return result;
  result.rate = check_global();
  if (!result.rate.allowed) {
    result.permit.release();
    result.rate_limited = true;
    return result;
  }
  admitted_.fetch_add(1, std::memory_order_relaxed);
  return result;
}

RequestPermit ResourceLimits::acquire_request_permit(std::chrono::nanoseconds timeout) {
  // Timeouts are real time, like ConcurrencyLimiter::acquire_for.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  RequestPermit result;
  result.permit = concurrency_.acquire_for(timeout);
  if (!result.permit) return result;
  for (;;) {
    result.rate = check_global();
    if (result.rate.allowed) {
      admitted_.fetch_add(1, std::memory_order_relaxed);
      return result;
    }
    const auto now = std::chrono::steady_clock::now();
    if (result.rate.retry_after == RateDecision::kNever || now + result.rate.retry_after > deadline) {
      result.permit.release();
      result.rate_limited = true;
      return result;
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::nanoseconds>(jittered(result.rate.retry_after, global_.quota().period), deadline - now));
  }
}

RequestPermit ResourceLimits::acquire_request_permit() {
  RequestPermit result;
  result.permit = concurrency_.acquire();
  for (;;) {
    result.rate = check_global();
    if (result.rate.allowed) {
      admitted_.fetch_add(1, std::memory_order_relaxed);
      return result;
    }
    if (result.rate.retry_after == RateDecision::kNever) {
      result.permit.release();
      result.rate_limited = true;
      return result;
    }
    std::this_thread::sleep_for(jittered(result.rate.retry_after, global_.quota().period));
  }
}

RateDecision ResourceLimits::check_rate_limits(std::optional<std::string_view> client) noexcept {
  if (client) {
    const RateDecision decision = clients_.check(*client);
    if (!decision.allowed) client_rate_limited_.fetch_add(1, std::memory_order_relaxed);
    return decision;
  }
  const RateDecision decision = check_global();
  if (decision.allowed) admitted_.fetch_add(1, std::memory_order_relaxed);
  return decision;
}

bool ResourceLimits::allow_call(std::string_view service) {
  return breakers_.get(service)->try_acquire_permission();
}

void ResourceLimits::record_success(std::string_view service, std::chrono::nanoseconds duration) {
  breakers_.get(service)->on_success(duration);
}

void ResourceLimits::record_failure(std::string_view service, std::chrono::nanoseconds duration) {
  breakers_.get(service)->on_error(duration);
}

std::shared_ptr<CircuitBreaker> ResourceLimits::circuit_breaker(std::string_view service) {
  return breakers_.get(service);
}

ResourceLimits::Counters ResourceLimits::counters_of(const ConcurrencyStats& permits,
                                                     const KeyedRateLimiterStats& clients) const {
  Counters counters;
  counters.admitted = admitted_.load(std::memory_order_relaxed);
  counters.rate_limited = rate_limited_.load(std::memory_order_relaxed);
  counters.client_rate_limited = client_rate_limited_.load(std::memory_order_relaxed);
  counters.permit_rejections = permits.rejected + permits.timed_out;
  counters.forced_evictions = clients.forced_evictions;
  return counters;
}

void ResourceLimits::advance_window() {
  const Counters now_counters = counters_of(concurrency_.stats(), clients_.stats());
  const auto now = clock_.steady_now();
  const std::lock_guard lock(window_mutex_);
  const double seconds = std::chrono::duration<double>(now - window_start_).count();
  if (seconds < 1.0) return;  // rates over shorter spans are mostly noise: extend the window instead
  Window window;
  window.closed = true;
  window.seconds = seconds;
  window.admitted_per_second = static_cast<double>(now_counters.admitted - window_start_counters_.admitted) / seconds;
  window.refused.rate_limited = now_counters.rate_limited - window_start_counters_.rate_limited;
  window.refused.client_rate_limited = now_counters.client_rate_limited - window_start_counters_.client_rate_limited;
  window.refused.permit_rejections = now_counters.permit_rejections - window_start_counters_.permit_rejections;
  window.refused.forced_evictions = now_counters.forced_evictions - window_start_counters_.forced_evictions;
  latest_window_ = window;
  window_start_ = now;
  window_start_counters_ = now_counters;
}

ResourceUsage ResourceLimits::get_resource_usage() const {
  ResourceUsage usage;
  usage.timestamp = clock_.system_now();
  const ConcurrencyStats permits = concurrency_.stats();
  usage.active_requests = permits.active;
  usage.max_concurrent_requests = permits.max_permits;
  usage.peak_active_requests = permits.peak;
  usage.rate_limit = config_.rate_limit_per_second;
  usage.rate_limit_burst = config_.rate_limit_burst;
  usage.per_client_rate_limit = config_.per_client_rate_per_second;
  usage.per_client_burst = config_.per_client_burst;
  const KeyedRateLimiterStats clients = clients_.stats();
  usage.tracked_clients = clients.tracked_keys;
  usage.max_tracked_clients = clients.capacity;
  const Counters totals = counters_of(permits, clients);
  usage.requests_admitted_total = totals.admitted;
  usage.rate_limited_total = totals.rate_limited;
  usage.client_rate_limited_total = totals.client_rate_limited;
  usage.permit_rejections_total = totals.permit_rejections;
  usage.client_forced_evictions_total = totals.forced_evictions;
  usage.distributed = distributed_ != nullptr;
  usage.fail_open = config_.fail_open;
#if RIPTIDE_PERF_HAS_REDIS
  if (distributed_) {
    const RedisRateLimiterStats redis = distributed_->stats();
    usage.redis_available = redis.redis_available;
    usage.distributed_fallbacks_total = redis.fallback_decisions;
  }
#endif
  usage.circuit_breakers = breakers_.snapshots();

  Window window;
  {
    const std::lock_guard lock(window_mutex_);
    window = latest_window_;
  }
  usage.current_rate = window.admitted_per_second;

  auto& violations = usage.violations;
  if (usage.active_requests >= usage.max_concurrent_requests) {
    violations.push_back("concurrent requests at the limit: " + std::to_string(usage.active_requests) + "/" +
                         std::to_string(usage.max_concurrent_requests));
  }
  char span[32];
  std::snprintf(span, sizeof span, "%.1f s", window.seconds);
  if (const auto refused = window.refused.permit_rejections; refused > 0) {
    violations.push_back("request permits refused: " + std::to_string(refused) + " in the last " + span +
                         " (limits.max_concurrent_requests = " + std::to_string(usage.max_concurrent_requests) + ")");
  }
  if (const auto refused = window.refused.rate_limited; refused > 0) {
    violations.push_back("global rate limit " + describe_rate(usage.rate_limit) + " refused " +
                         std::to_string(refused) + " requests in the last " + span);
  }
  if (const auto refused = window.refused.client_rate_limited; refused > 0) {
    violations.push_back("per-client rate limit " + describe_rate(usage.per_client_rate_limit) + " refused " +
                         std::to_string(refused) + " requests in the last " + span);
  }
  if (const auto evicted = window.refused.forced_evictions; evicted > 0) {
    violations.push_back("per-client table full: " + std::to_string(evicted) + " active clients evicted in the last " +
                         span + " (raise limits.max_tracked_clients)");
  }
  if (usage.distributed && usage.redis_available == false) {
    violations.push_back(
        std::string("distributed rate limit: Redis unreachable, ") +
        (usage.fail_open ? "each process applies the limit locally (fail-open)" : "refusing requests (fail-closed)"));
  }
  for (const auto& breaker : usage.circuit_breakers) {
    if (breaker.state == CircuitState::open || breaker.state == CircuitState::forced_open ||
        breaker.state == CircuitState::half_open) {
      violations.push_back("circuit breaker '" + breaker.name + "' is " + std::string(to_string(breaker.state)));
    }
  }
  return usage;
}

}  // namespace riptide::performance
