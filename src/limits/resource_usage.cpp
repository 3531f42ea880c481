#include "riptide/performance/limits/resource_usage.hpp"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/time_format.hpp"

namespace riptide::performance {
namespace {

nlohmann::json optional_number(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json breaker_json(const CircuitBreakerSnapshot& breaker) {
  nlohmann::json entered = nlohmann::json::object();
  for (std::size_t i = 0; i < kCircuitStateCount; ++i) {
    entered[std::string(to_string(static_cast<CircuitState>(i)))] = breaker.entered_total[i];
  }
  return {{"name", breaker.name},
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

std::string escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, const std::string& labels, double value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  char text[40];
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(text, sizeof text, " %.0f\n", value);
  } else {
    std::snprintf(text, sizeof text, " %.17g\n", value);
  }
  out += text;
}

}  // namespace

nlohmann::json to_json(const ResourceUsage& usage) {
  nlohmann::json breakers = nlohmann::json::array();
  for (const auto& breaker : usage.circuit_breakers) breakers.push_back(breaker_json(breaker));
  return {{"timestamp", format_rfc3339_utc(usage.timestamp)},
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
          {"circuit_breakers", std::move(breakers)},
          {"violations", usage.violations}};
}

std::string to_prometheus(const ResourceUsage& usage) {
  std::string out;
  family(out, "riptide_limits_active_requests", "gauge", "Request permits held now.");
  sample(out, "riptide_limits_active_requests", "", static_cast<double>(usage.active_requests));
  family(out, "riptide_limits_max_concurrent_requests", "gauge", "Configured bound on request permits.");
  sample(out, "riptide_limits_max_concurrent_requests", "", static_cast<double>(usage.max_concurrent_requests));
  family(out, "riptide_limits_requests_admitted_total", "counter", "Requests admitted by permits and global checks.");
  sample(out, "riptide_limits_requests_admitted_total", "", static_cast<double>(usage.requests_admitted_total));
  family(out, "riptide_limits_request_rate", "gauge", "Requests admitted per second over the last reading interval.");
  sample(out, "riptide_limits_request_rate", "", usage.current_rate);
  family(out, "riptide_limits_rate_limit", "gauge", "Configured rate limit in requests per second.");
  sample(out, "riptide_limits_rate_limit", "scope=\"global\"", usage.rate_limit);
  sample(out, "riptide_limits_rate_limit", "scope=\"client\"", usage.per_client_rate_limit);
  family(out, "riptide_limits_rate_limited_total", "counter", "Requests refused by a rate limit.");
  sample(out, "riptide_limits_rate_limited_total", "scope=\"global\"", static_cast<double>(usage.rate_limited_total));
  sample(out, "riptide_limits_rate_limited_total", "scope=\"client\"",
         static_cast<double>(usage.client_rate_limited_total));
  family(out, "riptide_limits_permit_rejections_total", "counter",
         "Request permits refused at once or after their timeout.");
  sample(out, "riptide_limits_permit_rejections_total", "", static_cast<double>(usage.permit_rejections_total));
  family(out, "riptide_limits_tracked_clients", "gauge", "Per-client limiter slots in use.");
  sample(out, "riptide_limits_tracked_clients", "", static_cast<double>(usage.tracked_clients));
  family(out, "riptide_limits_max_tracked_clients", "gauge", "Per-client limiter slots available.");
  sample(out, "riptide_limits_max_tracked_clients", "", static_cast<double>(usage.max_tracked_clients));
  family(out, "riptide_limits_client_forced_evictions_total", "counter",
         "Active clients evicted because the per-client table was full.");
  sample(out, "riptide_limits_client_forced_evictions_total", "",
         static_cast<double>(usage.client_forced_evictions_total));
  if (usage.distributed) {
    family(out, "riptide_limits_redis_available", "gauge", "1 while the distributed rate limit reaches Redis.");
    sample(out, "riptide_limits_redis_available", "", usage.redis_available.value_or(false) ? 1 : 0);
    family(out, "riptide_limits_distributed_fallbacks_total", "counter",
           "Global rate checks decided without Redis (local limit or fail-closed refusal).");
    sample(out, "riptide_limits_distributed_fallbacks_total", "",
           static_cast<double>(usage.distributed_fallbacks_total));
  }
  if (!usage.circuit_breakers.empty()) {
    family(out, "riptide_circuit_breaker_state", "gauge", "1 for the state each service's circuit breaker is in.");
    for (const auto& breaker : usage.circuit_breakers) {
      const std::string service = "service=\"" + escape_label(breaker.name) + "\"";
      for (std::size_t i = 0; i < kCircuitStateCount; ++i) {
        const auto state = static_cast<CircuitState>(i);
        sample(out, "riptide_circuit_breaker_state", service + ",state=\"" + std::string(to_string(state)) + "\"",
               breaker.state == state ? 1 : 0);
      }
    }
    family(out, "riptide_circuit_breaker_calls_total", "counter", "Calls seen by each circuit breaker, by outcome.");
    for (const auto& breaker : usage.circuit_breakers) {
      const std::string service = "service=\"" + escape_label(breaker.name) + "\"";
      sample(out, "riptide_circuit_breaker_calls_total", service + ",outcome=\"success\"",
             static_cast<double>(breaker.successful_total));
      sample(out, "riptide_circuit_breaker_calls_total", service + ",outcome=\"failure\"",
             static_cast<double>(breaker.failed_total));
      sample(out, "riptide_circuit_breaker_calls_total", service + ",outcome=\"not_permitted\"",
             static_cast<double>(breaker.not_permitted_total));
    }
    family(out, "riptide_circuit_breaker_transitions_total", "counter", "State changes of each circuit breaker.");
    for (const auto& breaker : usage.circuit_breakers) {
      sample(out, "riptide_circuit_breaker_transitions_total", "service=\"" + escape_label(breaker.name) + "\"",
             static_cast<double>(breaker.transitions_total));
    }
    family(out, "riptide_circuit_breaker_failure_rate", "gauge",
           "Failure share of each breaker's window (absent until minimum calls).");
    for (const auto& breaker : usage.circuit_breakers) {
      if (breaker.failure_rate) {
        sample(out, "riptide_circuit_breaker_failure_rate", "service=\"" + escape_label(breaker.name) + "\"",
               *breaker.failure_rate);
      }
    }
  }
  return out;
}

}  // namespace riptide::performance
