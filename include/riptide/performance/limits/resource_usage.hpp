#pragma once
// What the resource limits look like right now (get_resource_usage()): concurrency, rates,
// refusals, per-client state, breakers and the violations worth a human's attention. One JSON and one
// Prometheus rendering, used by the manager, /metrics/performance and /metrics.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "riptide/performance/core/prometheus_writer.hpp"

#include <nlohmann/json_fwd.hpp>

#include "riptide/performance/limits/circuit_breaker.hpp"

namespace riptide::performance {

struct ResourceUsage {
  std::chrono::system_clock::time_point timestamp{};  ///< when it was read

  std::uint64_t active_requests = 0;          ///< request permits held now
  std::uint64_t max_concurrent_requests = 0;  ///< limits.max_concurrent_requests
  std::uint64_t peak_active_requests = 0;     ///< most permits held at once since start

  double current_rate = 0.0;           ///< requests admitted per second over the latest closed window (>= 1 s)
  double rate_limit = 0.0;             ///< limits.rate_limit_per_second (fleet-wide when distributed)
  std::uint32_t rate_limit_burst = 0;  ///< limits.rate_limit_burst
  double per_client_rate_limit = 0.0;  ///< limits.per_client_rate_per_second
  std::uint32_t per_client_burst = 0;  ///< limits.per_client_burst

  std::uint64_t requests_admitted_total = 0;    ///< request permits and global checks granted
  std::uint64_t rate_limited_total = 0;         ///< requests refused by the global rate limit
  std::uint64_t client_rate_limited_total = 0;  ///< requests refused by a per-client limit
  std::uint64_t permit_rejections_total = 0;    ///< permits refused at once or after their timeout

  std::uint64_t tracked_clients = 0;                ///< per-client slots in use (active and idle)
  std::uint64_t max_tracked_clients = 0;            ///< slots in the per-client table (<= max_tracked_clients)
  std::uint64_t client_forced_evictions_total = 0;  ///< active clients evicted from a full table

  bool distributed = false;                       ///< the global limit is shared through Redis
  std::optional<bool> redis_available;            ///< the last distributed check reached Redis (distributed only)
  bool fail_open = true;                          ///< limits.fail_open
  std::uint64_t distributed_fallbacks_total = 0;  ///< global checks decided without Redis

  std::vector<CircuitBreakerSnapshot> circuit_breakers;  ///< every service's breaker, by name
  std::vector<std::string> violations;                   ///< sentences: limits hit in the latest window, or now
};

/// {"active_requests":…, "max_concurrent_requests":…, "current_rate":…, "rate_limit":…,
///  "circuit_breakers":[{"name":…,"state":"CLOSED",…}], "violations":[…], …}; snake_case, counts integers,
/// rates null until judged. Found by argument-dependent lookup: `nlohmann::json j = usage;`.
void to_json(nlohmann::json& json, const ResourceUsage& usage);
/// {"name":…, "state":"CLOSED", "failure_rate":…|null, "slow_call_rate":…|null, "buffered_calls":…, …,
///  "entered_total":{"CLOSED":…, "OPEN":…, "HALF_OPEN":…}}; one entry of "circuit_breakers" above.
void to_json(nlohmann::json& json, const CircuitBreakerSnapshot& breaker);

/// The value-returning spelling of an earlier release, kept for one more as a forward to the ADL form.
[[deprecated("use nlohmann::json j = usage (ADL to_json)")]] [[nodiscard]] nlohmann::json to_json(
    const ResourceUsage& usage);

/// Writes the families riptide_limits_* and riptide_circuit_breaker_*.
void write_prometheus(PrometheusWriter& out, const ResourceUsage& usage);
/// The same families as a complete exposition text.
[[nodiscard]] std::string to_prometheus(const ResourceUsage& usage);

}  // namespace riptide::performance
