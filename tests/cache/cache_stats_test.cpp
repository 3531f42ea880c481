// CacheStats rendering (JSON, Prometheus) and the advisor's recommendations.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "riptide/performance/cache/cache_advisor.hpp"
#include "riptide/performance/cache/cache_stats.hpp"
#include "riptide/performance/cache/tiered_cache.hpp"

namespace rp = riptide::performance;

namespace {

bool mentions(const std::vector<std::string>& tips, const std::string& needle) {
  for (const auto& tip : tips)
    if (tip.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(CacheStats, JsonHasEveryFigure) {
  rp::CacheStats stats;
  stats.l1.hits = 75;
  stats.l1.misses = 25;
  stats.l1.weight = 10;
  stats.l1.max_weight = 100;
  stats.requests = 100;
  const nlohmann::json json = stats;
  EXPECT_DOUBLE_EQ(json["hit_ratio"].get<double>(), 0.75);
  EXPECT_EQ(json["l1"]["hits"], 75);
  EXPECT_DOUBLE_EQ(json["l1"]["hit_ratio"].get<double>(), 0.75);
  for (const char* key : {"evictions", "rejected_admissions", "expirations", "entries", "weight", "max_weight",
                          "window_max_weight", "shards"}) {
    EXPECT_TRUE(json["l1"].contains(key)) << key;
  }
  EXPECT_TRUE(json["l2"].is_null());
  stats.l2 = rp::L2CacheStats{5, 5, 3, 1, false, 1};
  const nlohmann::json with_l2 = stats;
  EXPECT_EQ(with_l2["l2"]["hits"], 5);
  EXPECT_EQ(with_l2["l2"]["available"], false);
  EXPECT_DOUBLE_EQ(with_l2["hit_ratio"].get<double>(), 0.80);
}

TEST(CacheStats, AssignmentGivesWhatTheValueReturningSpellingGives) {
  rp::CacheStats stats;
  stats.l1.hits = 9;
  stats.l1.misses = 1;
  stats.requests = 10;
  const nlohmann::json l1_only = stats;
  EXPECT_EQ(l1_only["l1"], nlohmann::json(stats.l1));
  stats.l2 = rp::L2CacheStats{1, 0, 2, 0, true, 0};
  const nlohmann::json both = stats;
  EXPECT_EQ(both["l2"], nlohmann::json(*stats.l2));
  // The value-returning spelling is a forward kept for one release (deprecated, or about to be): called here
  // on purpose, so that it cannot drift from the ADL form while it exists.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  EXPECT_EQ(both, rp::to_json(stats));
  stats.l2.reset();
  EXPECT_EQ(l1_only, rp::to_json(stats));
#pragma GCC diagnostic pop
}

TEST(CacheStats, PrometheusFamilies) {
  rp::CacheStats stats;
  stats.l1.hits = 3;
  stats.l2 = rp::L2CacheStats{};
  const std::string text = rp::to_prometheus(stats, "pages");
  EXPECT_NE(text.find("# TYPE riptide_cache_hits_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("riptide_cache_hits_total{cache=\"pages\",layer=\"l1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("riptide_cache_hits_total{cache=\"pages\",layer=\"l2\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("riptide_cache_l2_available{cache=\"pages\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE riptide_cache_weight gauge"), std::string::npos);
}

TEST(CacheAdvisor, QuietCacheHasTooLittleTraffic) {
  rp::CacheStats stats;
  stats.l1.hits = 10;
  const auto tips = rp::CacheAdvisor::optimize_cache(stats);
  ASSERT_EQ(tips.size(), 1u);
  EXPECT_TRUE(mentions(tips, "Not enough traffic"));
}

TEST(CacheAdvisor, FullCacheWithLowHitRatioIsTooSmall) {
  rp::CacheStats stats;
  stats.l1 = {.hits = 2000, .misses = 8000, .evictions = 7000, .weight = 99 << 20, .max_weight = 100 << 20};
  const auto tips = rp::CacheAdvisor::optimize_cache(stats);
  EXPECT_TRUE(mentions(tips, "too small")) << tips.front();
  EXPECT_TRUE(mentions(tips, "max_size_mb (currently 100 MiB)"));
}

TEST(CacheAdvisor, ExpiriesDominatingMissesPointAtTheTtl) {
  rp::CacheStats stats;
  stats.l1 = {.hits = 9000, .misses = 1000, .expirations = 800, .weight = 10, .max_weight = 100};
  EXPECT_TRUE(mentions(rp::CacheAdvisor::optimize_cache(stats), "TTL expiries cause 80.0% of misses"));
}

TEST(CacheAdvisor, HealthyAndOversizedAndRedisDown) {
  rp::CacheStats stats;
  stats.l1 = {.hits = 9000, .misses = 1000, .evictions = 10, .weight = 95, .max_weight = 100};
  EXPECT_TRUE(mentions(rp::CacheAdvisor::optimize_cache(stats), "Cache healthy"));
  stats.l1 = {.hits = 9500, .misses = 500, .weight = 10, .max_weight = 100};
  EXPECT_TRUE(mentions(rp::CacheAdvisor::optimize_cache(stats), "could be lowered"));
  stats.l2 = rp::L2CacheStats{.errors = 5, .available = false};
  EXPECT_TRUE(mentions(rp::CacheAdvisor::optimize_cache(stats), "Redis (L2) is unavailable"));
}

TEST(TieredCache, WorksWithoutRedis) {
  rp::TieredCache cache(rp::TieredCache::Options{});
  EXPECT_FALSE(cache.has_l2());
  EXPECT_EQ(cache.get("a"), nullptr);
  cache.put("a", std::string("\0bytes", 6));
  ASSERT_NE(cache.get("a"), nullptr);
  EXPECT_EQ(*cache.get("a"), std::string("\0bytes", 6));
  int calls = 0;
  auto loaded = cache.get_or_load("b", [&](const std::string& key) -> std::optional<std::string> {
    ++calls;
    return "loaded:" + key;
  });
  EXPECT_EQ(*loaded, "loaded:b");
  EXPECT_EQ(*cache.get_or_load("b", [&](const std::string&) -> std::optional<std::string> { return "x"; }), "loaded:b");
  EXPECT_EQ(calls, 1);
  const auto stats = cache.stats();
  EXPECT_FALSE(stats.l2.has_value());
  EXPECT_EQ(stats.loads, 1u);
  EXPECT_EQ(stats.requests, 5u);
  cache.invalidate("a");
  EXPECT_EQ(cache.get("a"), nullptr);
}

TEST(TieredCache, FromConfigWithoutRedisUrl) {
  rp::CacheConfig cache;
  cache.max_size_mb = 1;
  auto tiered = rp::TieredCache::from_config(cache, rp::RedisConfig{});
  EXPECT_FALSE(tiered->has_l2());
  EXPECT_EQ(tiered->stats().l1.max_weight, 1u << 20);
}
