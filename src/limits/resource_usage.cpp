#include "riptide/performance/limits/resource_usage.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/time_format.hpp"

namespace riptide::performance {
namespace {

nlohmann::json optional_number(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

void to_json(nlohmann::json& json, const CircuitBreakerSnapshot& breaker) {
  nlohmann::json entered = nlohmann::json::object();
  for (std::size_t i = 0; i < kCircuitStateCount; ++i) {
    entered[std::string(to_string(static_cast<CircuitState>(i)))] = breaker.entered_total[i];
  }
  json = {{"name", breaker.name},
          {"state", std::string(to_string(breaker.state))},
          {"failure_rate", optional_number(breaker.failure_rate)},
          {"slow_call_rate", optional_number(breaker.slow_call_rate)},
          {"buffered_calls", breaker.buffered_calls},
          {"failed_calls", breaker.failed_calls},
          {"slow_calls", breaker.slow_calls},
          {"successful_total", breaker.successful_total},
          {"failed_total", breaker.failed_total},
          {"not_permitted_total", breaker.not_permitted_total},
          {"transitions_total", breaker.transitions_total},
          {"entered_total", std::move(entered)}};
}

void to_json(nlohmann::json& json, const ResourceUsage& usage) {
  json = {{"timestamp", format_rfc3339_utc(usage.timestamp)},
          {"active_requests", usage.active_requests},
          {"max_concurrent_requests", usage.max_concurrent_requests},
          {"peak_active_requests", usage.peak_active_requests},
          {"current_rate", usage.current_rate},
          {"rate_limit", usage.rate_limit},
          {"rate_limit_burst", usage.rate_limit_burst},
          {"per_client_rate_limit", usage.per_client_rate_limit},
          {"per_client_burst", usage.per_client_burst},
          {"requests_admitted_total", usage.requests_admitted_total},
          {"rate_limited_total", usage.rate_limited_total},
          {"client_rate_limited_total", usage.client_rate_limited_total},
          {"permit_rejections_total", usage.permit_rejections_total},
          {"tracked_clients", usage.tracked_clients},
          {"max_tracked_clients", usage.max_tracked_clients},
          {"client_forced_evictions_total", usage.client_forced_evictions_total},
          {"distributed", usage.distributed},
          {"redis_available", usage.redis_available ? nlohmann::json(*usage.redis_available) : nlohmann::json(nullptr)},
          {"fail_open", usage.fail_open},
          {"distributed_fallbacks_total", usage.distributed_fallbacks_total},
          {"circuit_breakers", usage.circuit_breakers},
          {"violations", usage.violations}};
}

nlohmann::json to_json(const ResourceUsage& usage) {
  return nlohmann::json(usage);
}

void write_prometheus(PrometheusWriter& out, const ResourceUsage& usage) {
  const Label global{"scope", "global"};
  const Label client{"scope", "client"};
  out.family("limits_active_requests", MetricType::gauge, "Request permits held now.");
  out.sample(std::uint64_t{usage.active_requests});
  out.family("limits_max_concurrent_requests", MetricType::gauge, "Configured bound on request permits.");
  out.sample(std::uint64_t{usage.max_concurrent_requests});
  out.family("limits_requests_admitted_total", MetricType::counter, "Requests admitted by permits and global checks.");
  out.sample(std::uint64_t{usage.requests_admitted_total});
  out.family("limits_request_rate", MetricType::gauge, "Requests admitted per second over the last reading interval.");
  out.sample(usage.current_rate);
  out.family("limits_rate_limit", MetricType::gauge, "Configured rate limit in requests per second.");
  out.sample(usage.rate_limit, {global});
  out.sample(usage.per_client_rate_limit, {client});
  out.family("limits_rate_limited_total", MetricType::counter, "Requests refused by a rate limit.");
  out.sample(std::uint64_t{usage.rate_limited_total}, {global});
  out.sample(std::uint64_t{usage.client_rate_limited_total}, {client});
  out.family("limits_permit_rejections_total", MetricType::counter,
             "Request permits refused at once or after their timeout.");
  out.sample(std::uint64_t{usage.permit_rejections_total});
  out.family("limits_tracked_clients", MetricType::gauge, "Per-client limiter slots in use.");
  out.sample(std::uint64_t{usage.tracked_clients});
  out.family("limits_max_tracked_clients", MetricType::gauge, "Per-client limiter slots available.");
  out.sample(std::uint64_t{usage.max_tracked_clients});
  out.family("limits_client_forced_evictions_total", MetricType::counter,
             "Active clients evicted because the per-client table was full.");
  out.sample(std::uint64_t{usage.client_forced_evictions_total});
  if (usage.distributed) {
    out.family("limits_redis_available", MetricType::gauge, "1 while the distributed rate limit reaches Redis.");
    out.sample(std::uint64_t{usage.redis_available.value_or(false) ? 1U : 0U});
    out.family("limits_distributed_fallbacks_total", MetricType::counter,
               "Global rate checks decided without Redis (local limit or fail-closed refusal).");
    out.sample(std::uint64_t{usage.distributed_fallbacks_total});
  }
  if (usage.circuit_breakers.empty()) return;
  out.family("circuit_breaker_state", MetricType::gauge, "1 for the state each service's circuit breaker is in.");
  for (const auto& breaker : usage.circuit_breakers) {
    for (std::size_t i = 0; i < kCircuitStateCount; ++i) {
      const auto state = static_cast<CircuitState>(i);
      out.sample(std::uint64_t{breaker.state == state ? 1U : 0U},
                 {{"service", breaker.name}, {"state", to_string(state)}});
    }
  }
  out.family("circuit_breaker_calls_total", MetricType::counter, "Calls seen by each circuit breaker, by outcome.");
  for (const auto& breaker : usage.circuit_breakers) {
    out.sample(std::uint64_t{breaker.successful_total}, {{"service", breaker.name}, {"outcome", "success"}});
    out.sample(std::uint64_t{breaker.failed_total}, {{"service", breaker.name}, {"outcome", "failure"}});
    out.sample(std::uint64_t{breaker.not_permitted_total}, {{"service", breaker.name}, {"outcome", "not_permitted"}});
  }
  out.family("circuit_breaker_transitions_total", MetricType::counter, "State changes of each circuit breaker.");
  for (const auto& breaker : usage.circuit_breakers) {
    out.sample(std::uint64_t{breaker.transitions_total}, {{"service", breaker.name}});
  }
  out.family("circuit_breaker_failure_rate", MetricType::gauge,
             "Failure share of each breaker's window (absent until minimum calls).");
  for (const auto& breaker : usage.circuit_breakers) {
    if (breaker.failure_rate) out.sample(*breaker.failure_rate, {{"service", breaker.name}});
  }
}

std::string to_prometheus(const ResourceUsage& usage) {
  PrometheusWriter out;
  write_prometheus(out, usage);
  return out.text();
}

}  // namespace riptide::performance
