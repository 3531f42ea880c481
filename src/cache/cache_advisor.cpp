#include "riptide/performance/cache/cache_advisor.hpp"

#include <cstdio>

namespace riptide::performance {
namespace {

std::string percent(double share) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f%%", share * 100.0);
  return buffer;
}

double ratio(std::uint64_t a, std::uint64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

}  // namespace

std::vector<std::string> CacheAdvisor::optimize_cache(const CacheStats& stats, const CacheAdvisorThresholds& t) {
  std::vector<std::string> tips;
  const auto& l1 = stats.l1;
  const std::uint64_t lookups = l1.hits + l1.misses;

  if (stats.l2 && !stats.l2->available) {
    tips.push_back("Redis (L2) is unavailable: its breaker is open after repeated failures (" +
                   std::to_string(stats.l2->errors) +
                   " errors); reads are served from the in-process cache and the loader. Check redis.url and "
                   "the server.");
  } else if (stats.l2 && stats.l2->errors > 0 && ratio(stats.l2->errors, stats.l2->hits + stats.l2->misses) > 0.01) {
    tips.push_back("Redis (L2) failed " + std::to_string(stats.l2->errors) +
                   " calls; raise redis.command_timeout_ms if the server is slow, or check its health.");
  }

  if (lookups < t.min_requests) {
    tips.push_back("Not enough traffic to judge the cache yet (" + std::to_string(lookups) + " lookups, need " +
                   std::to_string(t.min_requests) + ").");
    return tips;
  }

  const double hit_ratio = l1.hit_ratio();
  const double fill = ratio(l1.weight, l1.max_weight);
  const double evictions_per_miss = ratio(l1.evictions + l1.rejected_admissions, l1.misses);
  const double expiry_share = ratio(l1.expirations, l1.misses);

  if (hit_ratio < t.low_hit_ratio && fill >= t.full_share && evictions_per_miss >= t.eviction_pressure) {
    tips.push_back("The cache is too small: hit ratio " + percent(hit_ratio) + " while it is " + percent(fill) +
                   " full and evicts " + percent(evictions_per_miss) +
                   " of its misses' worth of entries; raise cache.max_size_mb (currently " +
                   std::to_string(l1.max_weight >> 20) + " MiB).");
  }
  if (expiry_share >= t.expiry_share_of_misses) {
    tips.push_back("TTL expiries cause " + percent(expiry_share) +
                   " of misses: raise cache.ttl_sec if the data may be that stale.");
  }
  if (l1.rejected_admissions > l1.evictions && ratio(l1.rejected_admissions, l1.misses) >= t.eviction_pressure) {
    tips.push_back("Most new entries (" + std::to_string(l1.rejected_admissions) +
                   ") are refused by the frequency filter: many keys are read once. Caching only keys that are "
                   "read again would save the work of inserting them.");
  }
  if (stats.l2 && stats.l2->hits > l1.hits / 4 && fill >= t.full_share) {
    tips.push_back("Redis serves " + std::to_string(stats.l2->hits) + " hits against " + std::to_string(l1.hits) +
                   " in process: a larger cache.max_size_mb would save those round trips.");
  }
  if (hit_ratio >= t.high_hit_ratio && fill < t.oversized_share && l1.evictions == 0) {
    tips.push_back("The cache uses " + percent(fill) + " of its bound with a hit ratio of " + percent(hit_ratio) +
                   ": cache.max_size_mb could be lowered to free memory.");
  }
  if (stats.load_failures > 0 && ratio(stats.load_failures, stats.loads) > 0.05) {
    tips.push_back("The loader failed " + std::to_string(stats.load_failures) + " of " + std::to_string(stats.loads) +
                   " loads; failures are not cached and are retried on every miss.");
  }
  if (tips.empty()) {
    tips.push_back("Cache healthy: hit ratio " + percent(hit_ratio) + ", " + percent(fill) + " full, " +
                   std::to_string(l1.evictions) + " evictions.");
  }
  return tips;
}

}  // namespace riptide::performance
