// The resource-limit calls on PerformanceManager, forwarded to its ResourceLimits.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "riptide/performance/manager/performance_manager.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

TEST(PerformanceManagerLimits, PermitsRatesBreakersAndUsage) {
  rp::Config config;
  config.cache.enabled = false;
  config.limits.max_concurrent_requests = 1;
  config.limits.rate_limit_per_second = 10;
  config.limits.rate_limit_burst = 5;
  config.limits.per_client_burst = 1;
  config.limits.circuit_breaker_min_calls = 2;
  rp::ManualClock clock;
  auto manager = rp::PerformanceManager::with_config(config, clock);

  {
    auto permit = manager->acquire_request_permit(1s);
    ASSERT_TRUE(permit);
    EXPECT_FALSE(manager->try_acquire_request_permit());
    const auto usage = manager->get_resource_usage();
    EXPECT_EQ(usage.active_requests, 1u);
    EXPECT_EQ(usage.max_concurrent_requests, 1u);
  }
  EXPECT_TRUE(manager->try_acquire_request_permit());

  EXPECT_TRUE(manager->check_rate_limits("client-123").allowed);
  EXPECT_FALSE(manager->check_rate_limits("client-123").allowed);

  manager->record_failure("external-api");
  manager->record_failure("external-api");
  EXPECT_FALSE(manager->allow_call("external-api"));
  manager->record_success("other-api");

  const auto usage = manager->get_resource_usage();
  EXPECT_DOUBLE_EQ(usage.rate_limit, 10.0);
  EXPECT_EQ(usage.client_rate_limited_total, 1u);
  ASSERT_EQ(usage.circuit_breakers.size(), 2u);
  EXPECT_EQ(usage.circuit_breakers[0].name, "external-api");
  EXPECT_EQ(usage.circuit_breakers[0].state, rp::CircuitState::open);

  const nlohmann::json body = manager->performance_json();
  ASSERT_TRUE(body.contains("resources"));
  EXPECT_EQ(body["resources"]["max_concurrent_requests"], 1);
  EXPECT_EQ(body["resources"]["circuit_breakers"][0]["state"], "OPEN");
}

}  // namespace
