#include "riptide/performance/cache/cache_stats.hpp"

#include <nlohmann/json.hpp>

namespace riptide::performance {

const char* to_string(CacheRemovalCause cause) noexcept {
  switch (cause) {
    case CacheRemovalCause::size:
      return "size";
    case CacheRemovalCause::rejected:
      return "rejected";
    case CacheRemovalCause::expired:
      return "expired";
    case CacheRemovalCause::explicit_:
      return "explicit";
    case CacheRemovalCause::replaced:
      return "replaced";
  }
  return "unknown";
}

double CacheStats::hit_ratio() const noexcept {
  if (requests == 0) return l1.hit_ratio();
  const std::uint64_t served = l1.hits + (l2 ? l2->hits : 0);
  return static_cast<double>(served) / static_cast<double>(requests);
}

void to_json(nlohmann::json& json, const L1CacheStats& stats) {
  json = {{"hits", stats.hits},
          {"misses", stats.misses},
          {"hit_ratio", stats.hit_ratio()},
          {"evictions", stats.evictions},
          {"rejected_admissions", stats.rejected_admissions},
          {"expirations", stats.expirations},
          {"entries", stats.entries},
          {"weight", stats.weight},
          {"max_weight", stats.max_weight},
          {"window_max_weight", stats.window_max_weight},
          {"shards", stats.shards}};
}

void to_json(nlohmann::json& json, const L2CacheStats& stats) {
  json = {{"hits", stats.hits},
          {"misses", stats.misses},
          {"hit_ratio", stats.hit_ratio()},
          {"writes", stats.writes},
          {"errors", stats.errors},
          {"available", stats.available},
          {"breaker_opens", stats.breaker_opens}};
}

void to_json(nlohmann::json& json, const CacheStats& stats) {
  json = {
      {"hit_ratio", stats.hit_ratio()},
      {"requests", stats.requests},
      {"loads", stats.loads},
      {"load_failures", stats.load_failures},
      {"coalesced_loads", stats.coalesced_loads},
      {"l1", stats.l1},
      {"l2", stats.l2 ? nlohmann::json(*stats.l2) : nlohmann::json(nullptr)},
  };
}

nlohmann::json to_json(const CacheStats& stats) {
  return nlohmann::json(stats);
}

void write_prometheus(PrometheusWriter& out, const CacheStats& stats, std::string_view cache) {
  const Label name{"cache", cache};
  const Label l1{"layer", "l1"};
  const Label l2{"layer", "l2"};
  out.family("cache_hits_total", MetricType::counter, "Cache lookups that found a live entry.");
  out.sample(stats.l1.hits, {name, l1});
  if (stats.l2) out.sample(stats.l2->hits, {name, l2});
  out.family("cache_misses_total", MetricType::counter, "Cache lookups that found nothing.");
  out.sample(stats.l1.misses, {name, l1});
  if (stats.l2) out.sample(stats.l2->misses, {name, l2});
  out.family("cache_evictions_total", MetricType::counter, "Entries removed to respect the weight bound.");
  out.sample(stats.l1.evictions, {name, l1});
  out.family("cache_rejected_admissions_total", MetricType::counter,
             "New entries refused by the TinyLFU admission filter.");
  out.sample(stats.l1.rejected_admissions, {name, l1});
  out.family("cache_expirations_total", MetricType::counter, "Entries removed because their TTL passed.");
  out.sample(stats.l1.expirations, {name, l1});
  out.family("cache_entries", MetricType::gauge, "Entries resident in the in-process cache.");
  out.sample(stats.l1.entries, {name, l1});
  out.family("cache_weight", MetricType::gauge, "Sum of resident entry weights (bytes when weighed by size).");
  out.sample(stats.l1.weight, {name, l1});
  out.family("cache_max_weight", MetricType::gauge, "Configured bound on the sum of weights.");
  out.sample(stats.l1.max_weight, {name, l1});
  out.family("cache_hit_ratio", MetricType::gauge, "Share of requests served from the cache since start.");
  out.sample(stats.hit_ratio(), {name});
  out.family("cache_loads_total", MetricType::counter, "Loader calls made on misses by get_or_load.");
  out.sample(stats.loads, {name});
  out.family("cache_load_failures_total", MetricType::counter, "Loader calls that threw or returned nothing.");
  out.sample(stats.load_failures, {name});
  if (stats.l2) {
    out.family("cache_errors_total", MetricType::counter, "Redis calls without a usable answer.");
    out.sample(stats.l2->errors, {name, l2});
    out.family("cache_l2_available", MetricType::gauge, "1 while the Redis layer accepts calls (breaker closed).");
    out.sample(std::uint64_t{stats.l2->available ? 1U : 0U}, {name});
  }
}

std::string to_prometheus(const CacheStats& stats, std::string_view cache) {
  PrometheusWriter out;
  write_prometheus(out, stats, cache);
  return out.text();
}

}  // namespace riptide::performance
