// Reading never changes state: the same driven session run twice, once with 100 reads of each of
// /metrics, /metrics/performance and /metrics/memory/health (real HTTP on 127.0.0.1) in every driven
// second, must end with the same violation history, the same resource-usage window and the same logged
// alerts as the run without readers.
#include "http/support/http_client.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/performance_manager.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using namespace std::chrono_literals;

namespace {

constexpr int kDrivenSeconds = 30;
constexpr int kReadsPerRoute = 100;

struct Outcome {
  std::map<std::string, std::uint64_t> checks_violated;  // by target, from the report
  std::vector<std::string> usage_violations;
  double current_rate = 0;
  std::string log;
  int reads_answered = 0;
};

rp::Config session_config() {
  rp::Config config;
  config.monitoring.enabled = false;             // no sampler: memory figures stay out of the comparison
  config.monitoring.sample_interval_sec = 3600;  // the checker thread never ticks on its own here
  config.monitoring.long_history_interval_sec = 3600;
  config.targets.p50_latency_ms = 1;  // always violated: every periodic check counts it
  config.targets.p95_latency_ms = 1;
  config.targets.max_memory_mb = 1'000'000;
  config.targets.memory_alert_mb = 1'000'000;
  config.cache.enabled = false;
  config.limits.per_client_rate_per_second = 1;
  config.limits.per_client_burst = 1;
  return config;
}

Outcome run_session(bool with_readers) {
  std::ostringstream log;
  auto logger = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::info);
  logger->set_pattern("%l %v");
  rp::set_logger(logger);

  Outcome outcome;
  rp::ManualClock clock;
  {
    auto manager = rp::PerformanceManager::with_config(session_config(), clock);
    http::MemoryMetricsRouter router(manager);
    http::ServerOptions options;
    options.port = 0;
    auto server = http::Server::start(router, options);
    manager->start_monitoring();
    for (int second = 0; second < kDrivenSeconds; ++second) {
      for (int i = 0; i < 10; ++i) manager->record_request(100ms);
      (void)manager->check_rate_limits();  // a global admission: 1/s
      (void)manager->check_rate_limits("client-1");
      (void)manager->check_rate_limits("client-1");  // refused: 1/s, burst 1
      clock.advance(1s);
      manager->tick();
      if (with_readers) {
        for (const char* route : {"/metrics", "/metrics/performance", "/metrics/memory/health"}) {
          for (int read = 0; read < kReadsPerRoute; ++read) {
            if (test::fetch(server->port(), "GET", route).status == 200) ++outcome.reads_answered;
          }
        }
      }
    }
    const rp::ResourceUsage usage = manager->get_resource_usage();
    outcome.usage_violations = usage.violations;
    outcome.current_rate = usage.current_rate;
    server.reset();
    const rp::PerformanceReport report = manager->stop_monitoring();
    for (const auto& record : report.violations_over_time)
      outcome.checks_violated[record.target] = record.checks_violated;
  }
  rp::set_logger(nullptr);
  std::istringstream lines(log.str());
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("info http:")) outcome.log += line + "\n";  // the server's lines name its port
  }
  return outcome;
}

TEST(ReadsChangeNothing, HundredsOfReadsPerSecondLeaveHistoryWindowsAndAlertsAsTheyWere) {
  const Outcome quiet = run_session(false);
  const Outcome read = run_session(true);
  EXPECT_EQ(read.reads_answered, kDrivenSeconds * 3 * kReadsPerRoute);

  // The periodic checks only: one per driven second, and the final check of stop_monitoring().
  ASSERT_EQ(quiet.checks_violated.count("p50_latency_ms"), 1U);
  EXPECT_EQ(quiet.checks_violated.at("p50_latency_ms"), kDrivenSeconds + 1U);
  EXPECT_EQ(read.checks_violated, quiet.checks_violated);

  // The last closed window (1 s): one global admission and one refusal of client-1, whoever read between.
  EXPECT_DOUBLE_EQ(quiet.current_rate, 1.0);
  EXPECT_EQ(read.current_rate, quiet.current_rate);
  EXPECT_EQ(read.usage_violations, quiet.usage_violations);
  ASSERT_FALSE(quiet.usage_violations.empty());
  EXPECT_NE(quiet.usage_violations.front().find("per-client rate limit 1/s refused 1 requests in the last 1.0 s"),
            std::string::npos)
      << quiet.usage_violations.front();

  EXPECT_NE(quiet.log.find("performance target violated: p50 latency"), std::string::npos) << quiet.log;
  EXPECT_EQ(read.log, quiet.log);
}

}  // namespace
