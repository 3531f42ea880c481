// PerformanceManager's cache: built from [cache]/[redis], figures in get_metrics() and
// /metrics/performance, optimize_cache() advice.
#include <gtest/gtest.h>

#include "riptide/performance/manager/performance_manager.hpp"

namespace rp = riptide::performance;

TEST(ManagerCache, CacheFiguresReachMetricsAndAdvice) {
  rp::Config config;
  config.monitoring.enabled = false;
  config.http.enabled = false;
  config.cache.max_size_mb = 1;
  auto manager = rp::PerformanceManager::with_config(config);
  ASSERT_NE(manager->cache(), nullptr);
  EXPECT_FALSE(manager->cache()->has_l2()) << "no redis.url: L1 only";

  manager->cache()->put("page", "body");
  for (int i = 0; i < 1500; ++i) (void)manager->cache()->get(i % 2 == 0 ? "page" : "absent");
  const rp::Metrics metrics = manager->get_metrics();
  ASSERT_TRUE(metrics.cache.has_value());
  EXPECT_EQ(metrics.cache->l1.hits, 750u);
  EXPECT_EQ(metrics.cache->l1.max_weight, 1u << 20);

  const auto json = manager->performance_json();
  EXPECT_EQ(json["metrics"]["cache"]["l1"]["hits"], 750);
  EXPECT_TRUE(json["metrics"]["cache"]["l2"].is_null());

  const auto tips = manager->optimize_cache();
  ASSERT_FALSE(tips.empty());
}

TEST(ManagerCache, DisabledCache) {
  rp::Config config;
  config.monitoring.enabled = false;
  config.cache.enabled = false;
  auto manager = rp::PerformanceManager::with_config(config);
  EXPECT_EQ(manager->cache(), nullptr);
  EXPECT_FALSE(manager->get_metrics().cache.has_value());
  ASSERT_EQ(manager->optimize_cache().size(), 1u);
  EXPECT_NE(manager->optimize_cache()[0].find("disabled"), std::string::npos);
}
