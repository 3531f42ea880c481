#pragma once
// Cache figures as plain values: what TinyLfuCache, RedisCache and TieredCache report, and their one
// JSON and Prometheus rendering (used by get_metrics(), /metrics/performance and /metrics).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "riptide/performance/core/prometheus_writer.hpp"

#include <nlohmann/json_fwd.hpp>

namespace riptide::performance {

/// Why an entry left the in-process cache; given to the eviction listener.
enum class CacheRemovalCause {
  size,       ///< evicted to stay within the weight bound (W-TinyLFU victim)
  rejected,   ///< a new entry that lost the admission contest against the main space's victim
  expired,    ///< its time to live passed
  explicit_,  ///< invalidate() / invalidate_all()
  replaced,   ///< put() over an existing key (the old value is handed to the listener)
};

[[nodiscard]] const char* to_string(CacheRemovalCause cause) noexcept;

/// The in-process (L1) cache. Counters are totals since construction.
struct L1CacheStats {
  std::uint64_t hits = 0;                 ///< get() found a live entry
  std::uint64_t misses = 0;               ///< get() found nothing or an expired entry
  std::uint64_t evictions = 0;            ///< resident entries removed to respect the weight bound
  std::uint64_t rejected_admissions = 0;  ///< new entries refused by the frequency filter (or too heavy)
  std::uint64_t expirations = 0;          ///< entries removed because their TTL passed
  std::uint64_t entries = 0;              ///< resident entries now
  std::uint64_t weight = 0;               ///< sum of resident weights now (never above max_weight)
  std::uint64_t max_weight = 0;           ///< the configured bound
  std::uint64_t window_max_weight = 0;    ///< current LRU window size chosen by the window simulation
  std::uint32_t shards = 0;               ///< independent lock domains

  [[nodiscard]] double hit_ratio() const noexcept {
    const auto total = hits + misses;
    return total == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(total);
  }
};

/// The Redis (L2) layer.
struct L2CacheStats {
  std::uint64_t hits = 0;           ///< GET answered with a value
  std::uint64_t misses = 0;         ///< GET answered nil
  std::uint64_t writes = 0;         ///< SET/DEL the server acknowledged
  std::uint64_t errors = 0;         ///< calls that got no usable answer (down, timeout, breaker open)
  bool available = true;            ///< false while the client's breaker refuses calls
  std::uint64_t breaker_opens = 0;  ///< times the breaker opened

  [[nodiscard]] double hit_ratio() const noexcept {
    const auto total = hits + misses;
    return total == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(total);
  }
};

/// Everything one cache reports. `l2` is absent when no Redis layer is configured.
struct CacheStats {
  L1CacheStats l1;                    ///< in-process layer
  std::optional<L2CacheStats> l2;     ///< Redis layer, when configured
  std::uint64_t requests = 0;         ///< TieredCache get()/get_or_load() calls (0 for a bare L1)
  std::uint64_t loads = 0;            ///< loader calls made by get_or_load()
  std::uint64_t load_failures = 0;    ///< loader calls that threw or returned nothing
  std::uint64_t coalesced_loads = 0;  ///< get_or_load() callers that waited for another caller's load

  /// Share of requests served from either layer (L1 ratio for a bare L1).
  [[nodiscard]] double hit_ratio() const noexcept;
};

/// {"hit_ratio":…, "l1":{…}, "l2":{…}|null, "requests":…, …}; field names are snake_case, counts integers.
/// Found by argument-dependent lookup: `nlohmann::json j = stats;`.
void to_json(nlohmann::json& json, const CacheStats& stats);
/// {"hits":…, "misses":…, "hit_ratio":…, "evictions":…, …, "shards":…}: the "l1" object above.
void to_json(nlohmann::json& json, const L1CacheStats& stats);
/// {"hits":…, "misses":…, "hit_ratio":…, "writes":…, "errors":…, "available":…, "breaker_opens":…}: "l2".
void to_json(nlohmann::json& json, const L2CacheStats& stats);

/// The value-returning spelling of an earlier release, kept for one more as a forward to the ADL form.
[[deprecated("use nlohmann::json j = stats (ADL to_json)")]] [[nodiscard]] nlohmann::json to_json(
    const CacheStats& stats);

/// Writes the families riptide_cache_* (hits, misses, evictions, … by layer); `cache` labels them.
void write_prometheus(PrometheusWriter& out, const CacheStats& stats, std::string_view cache = "default");
/// The same families as a complete exposition text.
[[nodiscard]] std::string to_prometheus(const CacheStats& stats, std::string_view cache = "default");

}  // namespace riptide::performance
