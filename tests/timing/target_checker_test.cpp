// Every target in three states (met, warning, violated), with the figures produced the way the manager
// produces them: requests and stages recorded on a driven clock, then windowed percentiles, throughput
// and AI share read back.
#include "riptide/performance/timing/target_checker.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "riptide/performance/timing/latency_histogram.hpp"
#include "riptide/performance/timing/stage_timer.hpp"
#include "riptide/performance/timing/throughput.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

namespace {

// `seconds` of traffic at `pages_per_second`, each request `latency` long with `ai` of it in stage "ai".
rp::TargetMeasurements drive(std::chrono::milliseconds latency, int pages_per_second, std::chrono::milliseconds ai,
                             int seconds = 60) {
  rp::ManualClock clock;
  rp::LatencyHistogram requests(clock, {.window = 60s, .sub_windows = 6});
  rp::StageRegistry stages(clock);
  for (int s = 0; s < seconds; ++s) {
    for (int i = 0; i < pages_per_second; ++i) {
      requests.record(latency);
      stages.record("fetch", latency - ai);
      stages.record("ai", ai);
    }
    clock.advance(1s);
    requests.advance();
  }
  const auto window = requests.window();
  const auto cumulative = requests.cumulative();
  rp::TargetMeasurements m;
  m.p50_latency_ms = window.percentile_ms(50);
  m.p95_latency_ms = window.percentile_ms(95);
  m.throughput_pps = rp::measure_throughput(window, cumulative).window_pps;
  m.ai_overhead_percent =
      stages.breakdown(std::chrono::nanoseconds(static_cast<std::int64_t>(cumulative.sum_ns))).ai_overhead_percent;
  return m;
}

rp::PerformanceTargets spec_defaults() {
  return rp::PerformanceTargets{};
}

const rp::TargetCheck& find(const rp::TargetStatus& s, const std::string& key) {
  for (const auto& c : s.checks) {
    if (c.target == key) return c;
  }
  throw std::runtime_error("no check " + key);
}

}  // namespace

TEST(TargetChecker, AllMetOnHealthyTraffic) {
  auto m = drive(800ms, 100, 100ms);
  m.memory_rss_mb = 300;
  const auto status = rp::TargetChecker(spec_defaults()).check(m);
  EXPECT_TRUE(status.all_targets_met);
  EXPECT_TRUE(status.violations.empty());
  EXPECT_TRUE(status.warnings.empty()) << ::testing::PrintToString(status.warnings);
  EXPECT_FALSE(status.memory_alert);
  for (const auto& c : status.checks) EXPECT_EQ(c.state, rp::TargetState::met) << c.message;
}

TEST(TargetChecker, LatencyViolationWarningAndMet) {
  // Every request 1.6 s: p50 and p95 both 1600 ms: p50 violated (1500), p95 met (5000).
  auto status = rp::TargetChecker(spec_defaults()).check(drive(1600ms, 100, 0ms));
  EXPECT_FALSE(status.all_targets_met);
  EXPECT_EQ(find(status, "p50_latency_ms").state, rp::TargetState::violated);
  EXPECT_EQ(find(status, "p95_latency_ms").state, rp::TargetState::met);
  ASSERT_EQ(status.violations.size(), 1U);
  EXPECT_THAT(status.violations[0], HasSubstr("p50 latency is 1600"));
  EXPECT_THAT(status.violations[0], HasSubstr("above the target of 1500 ms"));

  // 1.4 s is 93% of 1.5 s: warning, still met.
  status = rp::TargetChecker(spec_defaults()).check(drive(1400ms, 100, 0ms));
  EXPECT_TRUE(status.all_targets_met);
  EXPECT_EQ(find(status, "p50_latency_ms").state, rp::TargetState::warning);
  ASSERT_EQ(status.warnings.size(), 1U);
  EXPECT_THAT(status.warnings[0], HasSubstr("93% of the target of 1500 ms"));

  // p95 on its own: 10% of requests at 4.7 s (94% of 5000), the rest fast.
  rp::ManualClock clock;
  rp::LatencyHistogram h(clock);
  for (int i = 0; i < 1000; ++i) h.record(i % 10 == 0 ? 4700ms : 200ms);
  clock.advance(10s);
  rp::TargetMeasurements m;
  m.p50_latency_ms = h.window().percentile_ms(50);
  m.p95_latency_ms = h.window().percentile_ms(95);
  status = rp::TargetChecker(spec_defaults()).check(m);
  EXPECT_EQ(find(status, "p95_latency_ms").state, rp::TargetState::warning);
  EXPECT_EQ(find(status, "p50_latency_ms").state, rp::TargetState::met);
  for (int i = 0; i < 200; ++i) h.record(6s);
  m.p95_latency_ms = h.window().percentile_ms(95);
  status = rp::TargetChecker(spec_defaults()).check(m);
  EXPECT_EQ(find(status, "p95_latency_ms").state, rp::TargetState::violated);
  EXPECT_THAT(status.violations.at(0), HasSubstr("p95 latency is 6000"));
}

TEST(TargetChecker, ThroughputFloorViolationWarningAndMet) {
  auto status = rp::TargetChecker(spec_defaults()).check(drive(100ms, 50, 0ms));
  EXPECT_EQ(find(status, "min_throughput_pps").state, rp::TargetState::violated);
  EXPECT_THAT(status.violations.at(0), HasSubstr("throughput is 50.0 pages/s, below the target of 70 pages/s"));

  status = rp::TargetChecker(spec_defaults()).check(drive(100ms, 75, 0ms));  // 70 is 93% of 75
  EXPECT_EQ(find(status, "min_throughput_pps").state, rp::TargetState::warning);
  EXPECT_TRUE(status.all_targets_met);
  EXPECT_THAT(status.warnings.at(0), HasSubstr("only 7% above the target of 70 pages/s"));

  status = rp::TargetChecker(spec_defaults()).check(drive(100ms, 80, 0ms));  // 70 is 87.5% of 80
  EXPECT_EQ(find(status, "min_throughput_pps").state, rp::TargetState::met);
}

TEST(TargetChecker, AiOverheadViolationWarningAndMet) {
  auto status = rp::TargetChecker(spec_defaults()).check(drive(1000ms, 100, 400ms));
  EXPECT_EQ(find(status, "max_ai_overhead_percent").state, rp::TargetState::violated);
  EXPECT_THAT(status.violations.at(0), HasSubstr("AI overhead is 40.0%, above the target of 30%"));

  status = rp::TargetChecker(spec_defaults()).check(drive(1000ms, 100, 280ms));
  EXPECT_EQ(find(status, "max_ai_overhead_percent").state, rp::TargetState::warning);
  EXPECT_THAT(status.warnings.at(0), HasSubstr("AI overhead is 28.0%, 93% of the target of 30%"));

  status = rp::TargetChecker(spec_defaults()).check(drive(1000ms, 100, 200ms));
  EXPECT_EQ(find(status, "max_ai_overhead_percent").state, rp::TargetState::met);
}

TEST(TargetChecker, MemoryViolationWarningMetAndAlert) {
  rp::TargetMeasurements m;
  m.memory_rss_mb = 620;
  auto status = rp::TargetChecker(spec_defaults()).check(m);
  EXPECT_EQ(find(status, "max_memory_mb").state, rp::TargetState::violated);
  EXPECT_FALSE(status.memory_alert);
  EXPECT_THAT(status.violations.at(0), HasSubstr("memory (RSS) is 620.0 MB, above the target of 600 MB"));

  m.memory_rss_mb = 700;
  status = rp::TargetChecker(spec_defaults()).check(m);
  EXPECT_TRUE(status.memory_alert);
  EXPECT_THAT(status.violations.at(0), HasSubstr("and the alert threshold of 650 MB"));

  m.memory_rss_mb = 560;  // 93% of 600
  status = rp::TargetChecker(spec_defaults()).check(m);
  EXPECT_EQ(find(status, "max_memory_mb").state, rp::TargetState::warning);
  EXPECT_TRUE(status.all_targets_met);

  m.memory_rss_mb = 100;
  status = rp::TargetChecker(spec_defaults()).check(m);
  EXPECT_EQ(find(status, "max_memory_mb").state, rp::TargetState::met);
}

TEST(TargetChecker, UnmeasuredTargetsAreNotJudged) {
  const auto status = rp::TargetChecker(spec_defaults()).check({});
  EXPECT_TRUE(status.all_targets_met);
  EXPECT_TRUE(status.warnings.empty());
  ASSERT_EQ(status.checks.size(), 5U);
  for (const auto& c : status.checks) {
    EXPECT_EQ(c.state, rp::TargetState::not_measured);
    EXPECT_THAT(c.message, HasSubstr("not measured yet"));
  }
}

TEST(TargetChecker, CustomTargetsFromTheSpec) {
  rp::PerformanceTargets targets;
  targets.p50_latency_ms = 1000;
  targets.p95_latency_ms = 3000;
  targets.max_memory_mb = 400;
  targets.memory_alert_mb = 450;
  targets.min_throughput_pps = 100.0;
  targets.max_ai_overhead_percent = 20.0;
  auto m = drive(1200ms, 90, 300ms);
  m.memory_rss_mb = 420;
  const auto status = rp::TargetChecker(targets).check(m);
  EXPECT_EQ(status.violations.size(), 4U) << ::testing::PrintToString(status.violations);  // p50, mem, pps, ai
  EXPECT_EQ(find(status, "p95_latency_ms").state, rp::TargetState::met);
  EXPECT_FALSE(status.memory_alert);
}
