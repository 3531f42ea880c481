#pragma once
// CacheAdvisor: turns cache statistics into recommendations a person can act on (behind
// PerformanceManager::optimize_cache()). Pure function of the figures, so it is cheap and testable.

#include <cstdint>
#include <string>
#include <vector>

#include "riptide/performance/cache/cache_stats.hpp"

namespace riptide::performance {

struct CacheAdvisorThresholds {
  std::uint64_t min_requests = 1000;    ///< below this many lookups there is nothing to judge
  double low_hit_ratio = 0.5;           ///< hit ratios under this are worth a look
  double full_share = 0.9;              ///< weight/max_weight at or above this counts as full
  double eviction_pressure = 0.5;       ///< evictions per miss above this: entries leave before reuse
  double expiry_share_of_misses = 0.3;  ///< expirations / misses above this: the TTL drives misses
  double oversized_share = 0.5;         ///< a warm cache using less than this share could shrink
  double high_hit_ratio = 0.9;          ///< with a hit ratio above this, shrinking is safe to suggest
};

class CacheAdvisor {
 public:
  /// Recommendations, most important first; one "healthy" line when nothing needs changing.
  [[nodiscard]] static std::vector<std::string> optimize_cache(const CacheStats& stats,
                                                               const CacheAdvisorThresholds& thresholds = {});
};

}  // namespace riptide::performance
