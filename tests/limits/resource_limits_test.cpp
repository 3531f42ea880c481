// The aggregate behind the manager's calls: request permits (concurrency + global rate), per-client
// checks, breakers by service, and the usage reading with its JSON, Prometheus text and violations.
#include "riptide/performance/limits/resource_limits.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/error.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

rp::LimitsConfig small_limits() {
  rp::LimitsConfig config;
  config.max_concurrent_requests = 2;
  config.rate_limit_per_second = 10;
  config.rate_limit_burst = 3;
  config.per_client_rate_per_second = 1;
  config.per_client_burst = 2;
  config.max_tracked_clients = 1000;
  config.circuit_breaker_window = 10;
  config.circuit_breaker_min_calls = 4;
  return config;
}

bool contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const auto& line : lines) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(ResourceLimits, RequestPermitsAreBoundedByConcurrencyAndRate) {
  rp::ManualClock clock;
  rp::ResourceLimits limits(small_limits(), clock);
  auto first = limits.try_acquire_request_permit();
  auto second = limits.try_acquire_request_permit();
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  auto third = limits.try_acquire_request_permit();
  EXPECT_FALSE(third);
  EXPECT_FALSE(third.rate_limited);  // refused by concurrency
  first.permit.release();
  second.permit.release();

  auto fourth = limits.try_acquire_request_permit();  // the third rate cell
  ASSERT_TRUE(fourth);
  fourth.permit.release();
  auto limited = limits.try_acquire_request_permit();
  EXPECT_FALSE(limited);
  EXPECT_TRUE(limited.rate_limited);
  EXPECT_EQ(limited.rate.retry_after, 100ms);
  EXPECT_EQ(limits.concurrency().active(), 0u) << "a rate refusal must give the slot back";
  clock.advance(100ms);
  EXPECT_TRUE(limits.try_acquire_request_permit());
}

TEST(ResourceLimits, TimedAcquireGivesUpWhenTheRateCannotRecoverInTime) {
  rp::ManualClock clock;  // frozen: the rate never recovers
  rp::ResourceLimits limits(small_limits(), clock);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limits.acquire_request_permit(1s));
  const auto start = std::chrono::steady_clock::now();
  auto refused = limits.acquire_request_permit(50ms);  // retry_after (100 ms) is beyond the timeout
  EXPECT_FALSE(refused);
  EXPECT_TRUE(refused.rate_limited);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(limits.concurrency().active(), 0u);

  rp::ResourceLimits busy(small_limits(), clock);
  auto a = busy.try_acquire_request_permit();
  auto b = busy.try_acquire_request_permit();
  auto c = busy.acquire_request_permit(30ms);  // concurrency: times out
  EXPECT_FALSE(c);
  EXPECT_FALSE(c.rate_limited);
}

TEST(ResourceLimits, TimedAcquireWaitsForTheRateOnTheRealClock) {
  auto config = small_limits();
  config.rate_limit_per_second = 50;  // 20 ms per cell
  config.rate_limit_burst = 1;
  rp::ResourceLimits limits(config);
  ASSERT_TRUE(limits.try_acquire_request_permit());
  auto waited = limits.acquire_request_permit(5s);
  EXPECT_TRUE(waited);
}

TEST(ResourceLimits, ClientAndGlobalChecks) {
  rp::ManualClock clock;
  rp::ResourceLimits limits(small_limits(), clock);
  EXPECT_TRUE(limits.check_rate_limits("client-123").allowed);
  EXPECT_TRUE(limits.check_rate_limits("client-123").allowed);
  const auto refused = limits.check_rate_limits("client-123");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, 1s);
  EXPECT_TRUE(limits.check_rate_limits("client-456").allowed);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limits.check_rate_limits().allowed);
  EXPECT_FALSE(limits.check_rate_limits(std::nullopt).allowed);
}

TEST(ResourceLimits, BreakersByServiceOpenOnFailures) {
  rp::ManualClock clock;
  rp::ResourceLimits limits(small_limits(), clock);
  for (int i = 0; i < 4; ++i) limits.record_failure("external-api");
  EXPECT_FALSE(limits.allow_call("external-api"));
  limits.record_success("other-api", 5ms);
  EXPECT_TRUE(limits.allow_call("other-api"));
  EXPECT_EQ(limits.circuit_breaker("external-api")->state(), rp::CircuitState::open);
  clock.advance(30s);
  EXPECT_TRUE(limits.allow_call("external-api"));
  EXPECT_EQ(limits.circuit_breaker("external-api")->state(), rp::CircuitState::half_open);
}

TEST(ResourceLimits, UsageReportsLimitsRatesBreakersAndViolations) {
  rp::ManualClock clock;
  rp::ResourceLimits limits(small_limits(), clock);
  auto held1 = limits.try_acquire_request_permit();
  auto held2 = limits.try_acquire_request_permit();
  (void)limits.try_acquire_request_permit();  // concurrency refusal
  (void)limits.check_rate_limits("c");
  (void)limits.check_rate_limits("c");
  (void)limits.check_rate_limits("c");  // client refusal
  for (int i = 0; i < 4; ++i) limits.record_failure("external-api");
  clock.advance(2s);
  EXPECT_DOUBLE_EQ(limits.get_resource_usage().current_rate, 0.0) << "no window closed yet";
  limits.advance_window();

  const auto usage = limits.get_resource_usage();
  EXPECT_EQ(limits.get_resource_usage().violations, usage.violations) << "a reading changes nothing";
  EXPECT_EQ(usage.active_requests, 2u);
  EXPECT_EQ(usage.max_concurrent_requests, 2u);
  EXPECT_DOUBLE_EQ(usage.rate_limit, 10.0);
  EXPECT_DOUBLE_EQ(usage.current_rate, 1.0);  // 2 admitted over 2 s
  EXPECT_EQ(usage.requests_admitted_total, 2u);
  EXPECT_EQ(usage.permit_rejections_total, 1u);
  EXPECT_EQ(usage.client_rate_limited_total, 1u);
  EXPECT_EQ(usage.tracked_clients, 1u);
  ASSERT_EQ(usage.circuit_breakers.size(), 1u);
  EXPECT_EQ(usage.circuit_breakers[0].state, rp::CircuitState::open);
  EXPECT_TRUE(contains(usage.violations, "concurrent requests at the limit: 2/2"));
  EXPECT_TRUE(contains(usage.violations, "request permits refused: 1"));
  EXPECT_TRUE(contains(usage.violations, "per-client rate limit 1/s refused 1"));
  EXPECT_TRUE(contains(usage.violations, "circuit breaker 'external-api' is OPEN"));

  held1.permit.release();
  held2.permit.release();
  clock.advance(500ms);
  limits.advance_window();  // shorter than 1 s: the window is extended, not closed
  EXPECT_TRUE(contains(limits.get_resource_usage().violations, "request permits refused: 1"));
  clock.advance(1s);
  limits.advance_window();
  const auto quiet = limits.get_resource_usage();
  EXPECT_FALSE(contains(quiet.violations, "refused")) << "refusals belong to the window they happened in";
  EXPECT_TRUE(contains(quiet.violations, "circuit breaker 'external-api' is OPEN"));

  const nlohmann::json json = usage;
  EXPECT_EQ(json["active_requests"], 2);
  EXPECT_EQ(json["max_concurrent_requests"], 2);
  EXPECT_EQ(json["current_rate"], 1.0);
  EXPECT_EQ(json["rate_limit"], 10.0);
  EXPECT_EQ(json["circuit_breakers"][0]["name"], "external-api");
  EXPECT_EQ(json["circuit_breakers"][0]["state"], "OPEN");
  EXPECT_TRUE(json["circuit_breakers"][0]["failure_rate"].is_null());  // a fresh window after opening
  EXPECT_EQ(json["circuit_breakers"][0]["failed_total"], 4);
  EXPECT_TRUE(json["redis_available"].is_null());
  EXPECT_EQ(json["violations"].size(), usage.violations.size());
  EXPECT_TRUE(json["timestamp"].get<std::string>().ends_with("Z"));
}

TEST(ResourceLimits, UsageAssignmentGivesWhatTheValueReturningSpellingGives) {
  rp::ManualClock clock;
  rp::ResourceLimits limits(small_limits(), clock);
  limits.record_failure("api");
  limits.record_success("api");
  (void)limits.check_rate_limits("c");
  const rp::ResourceUsage usage = limits.get_resource_usage();
  ASSERT_EQ(usage.circuit_breakers.size(), 1U);
  const nlohmann::json json = usage;
  EXPECT_EQ(json["circuit_breakers"][0], nlohmann::json(usage.circuit_breakers[0]));
  EXPECT_EQ(json["circuit_breakers"][0]["entered_total"].size(), rp::kCircuitStateCount);
  // The value-returning spelling is a deprecated forward kept for one release: called here on purpose, so
  // that it cannot drift from the ADL form while it exists.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  EXPECT_EQ(json, rp::to_json(usage));
#pragma GCC diagnostic pop
}

TEST(ResourceLimits, PrometheusTextPassesPromtool) {
  rp::ManualClock clock;
  rp::ResourceLimits limits(small_limits(), clock);
  limits.record_failure("api \"v2\"");
  limits.record_success("api \"v2\"");
  (void)limits.check_rate_limits("c");
  const std::string text = rp::to_prometheus(limits.get_resource_usage());
  EXPECT_NE(text.find("# TYPE riptide_limits_active_requests gauge"), std::string::npos);
  EXPECT_NE(text.find("riptide_circuit_breaker_state{service=\"api \\\"v2\\\"\",state=\"CLOSED\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("riptide_limits_rate_limited_total{scope=\"client\"} 0"), std::string::npos);

  const char* promtool = std::getenv("RIPTIDE_PERF_TEST_PROMTOOL");
  if (promtool == nullptr || *promtool == '\0' || !std::filesystem::exists(promtool)) {
    GTEST_SKIP() << "promtool not found";
  }
  const auto path = std::filesystem::temp_directory_path() / ("limits_metrics_" + std::to_string(::getpid()) + ".prom");
  std::ofstream(path) << text;
  const std::string command = std::string(promtool) + " check metrics < " + path.string() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  std::filesystem::remove(path);
  EXPECT_EQ(status, 0) << output << "\n" << text;
}

TEST(ResourceLimits, RejectsUnusableConfiguration) {
  auto config = small_limits();
  config.max_concurrent_requests = 0;
  EXPECT_THROW(rp::ResourceLimits{config}, rp::ConfigError);
  config = small_limits();
  config.rate_limit_per_second = 0;
  try {
    rp::ResourceLimits limits(config);
    FAIL();
  } catch (const rp::ConfigError& error) {
    EXPECT_EQ(error.key(), "limits.rate_limit_per_second");
  }
  config = small_limits();
  config.circuit_breaker_threshold = 0;
  EXPECT_THROW(rp::ResourceLimits{config}, rp::ConfigError);
}

TEST(ResourceLimits, DistributedWithoutRedisFallsBackToALocalLimit) {
  auto config = small_limits();
  config.distributed = true;
  rp::ManualClock clock;
  rp::ResourceLimits limits(config, clock);
  EXPECT_FALSE(limits.distributed());
  EXPECT_TRUE(limits.check_rate_limits().allowed);
}

}  // namespace
