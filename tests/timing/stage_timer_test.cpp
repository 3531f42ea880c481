#include "riptide/performance/timing/stage_timer.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace rp = riptide::performance;
using namespace std::chrono_literals;

TEST(StageRegistry, BreakdownNamesBottleneckSharesAndAiOverhead) {
  rp::ManualClock clock;
  rp::StageRegistry stages(clock);
  for (int i = 0; i < 100; ++i) {
    stages.record("fetch", 600ms);
    stages.record("parse", 100ms);
    stages.record("ai", 250ms);
  }
  // Requests took 1 s each: 50 ms not in any stage.
  const auto b = stages.breakdown(100 * 1s);
  ASSERT_EQ(b.stages.size(), 3U);
  EXPECT_EQ(b.stages[0].name, "fetch");
  EXPECT_EQ(b.stages[1].name, "ai");
  EXPECT_EQ(b.stages[2].name, "parse");
  ASSERT_TRUE(b.bottleneck);
  EXPECT_EQ(*b.bottleneck, "fetch");
  EXPECT_TRUE(b.reference_is_requests);
  EXPECT_NEAR(*b.stages[0].share_percent, 60.0, 1e-9);
  EXPECT_NEAR(*b.stages[2].share_percent, 10.0, 1e-9);
  ASSERT_TRUE(b.ai_overhead_percent);
  EXPECT_NEAR(*b.ai_overhead_percent, 25.0, 1e-9);
  EXPECT_EQ(b.stages[1].count, 100U);
  EXPECT_NEAR(*b.stages[1].p95_ms, 250.0, 2.5);
  EXPECT_NEAR(*b.stages[1].mean_ms, 250.0, 1e-9);
}

TEST(StageRegistry, WithoutRequestsSharesAreOfStageTime) {
  rp::ManualClock clock;
  rp::StageRegistry stages(clock);
  stages.record("parse", 30ms);
  stages.record("fetch", 70ms);
  const auto b = stages.breakdown(0ns);
  EXPECT_FALSE(b.reference_is_requests);
  EXPECT_EQ(b.reference_time, 100ms);
  EXPECT_NEAR(*b.ai_overhead_percent, 0.0, 1e-12);  // no "ai" stage: no AI time
  EXPECT_NEAR(*b.stages[0].share_percent, 70.0, 1e-9);
}

TEST(StageRegistry, EmptyBreakdownHasNoBottleneck) {
  rp::StageRegistry stages;
  const auto b = stages.breakdown(0ns);
  EXPECT_TRUE(b.stages.empty());
  EXPECT_FALSE(b.bottleneck);
  EXPECT_FALSE(b.ai_overhead_percent);
}

TEST(StageRegistry, RaiiTimerRecordsOnceAndMovesOwnership) {
  rp::StageRegistry stages;
  {
    auto timer = stages.time("parse");
    std::this_thread::sleep_for(2ms);
    auto moved = std::move(timer);
    EXPECT_EQ(timer.stop(), 0ns);  // moved-from records nothing
  }
  auto explicit_stop = stages.time("parse");
  EXPECT_GE(explicit_stop.stop(), 0ns);
  EXPECT_EQ(explicit_stop.stop(), 0ns);  // second stop is a no-op
  const auto* h = stages.find("parse");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->count(), 2U);
  EXPECT_GE(h->cumulative().max_ns, 2'000'000U);
}

TEST(StageRegistry, TableIsBoundedAndBadNamesAreCountedNotStored) {
  rp::StageRegistry stages;
  for (std::size_t i = 0; i < rp::StageRegistry::kMaxStages + 5; ++i) {
    stages.record("stage" + std::to_string(i), 1ms);
  }
  stages.record("", 1ms);
  stages.record(std::string(rp::StageRegistry::kMaxNameLength + 1, 'x'), 1ms);
  EXPECT_EQ(stages.names().size(), rp::StageRegistry::kMaxStages);
  EXPECT_EQ(stages.breakdown(0ns).dropped_records, 7U);
  EXPECT_EQ(stages.find("stage40"), nullptr);
}

TEST(StageRegistry, ConcurrentFirstUseCreatesOneHistogramPerName) {
  rp::StageRegistry stages;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&stages] {
      const char* names[] = {"fetch", "parse", "ai", "store"};
      for (int i = 0; i < kPerThread; ++i) {
        stages.record(names[i % 4], std::chrono::microseconds(i % 500));
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(stages.names().size(), 4U);
  std::uint64_t total = 0;
  for (const auto& s : stages.breakdown(0ns).stages) {
    EXPECT_EQ(s.count, static_cast<std::uint64_t>(kThreads * kPerThread / 4)) << s.name;
    total += s.count;
  }
  EXPECT_EQ(total, static_cast<std::uint64_t>(kThreads * kPerThread));
}

TEST(StageRegistry, PreregisteredStagesExistBeforeFirstUse) {
  rp::StageRegistry stages(rp::system_clock(), {}, {"fetch", "ai"});
  EXPECT_NE(stages.find("fetch"), nullptr);
  EXPECT_NE(stages.find("ai"), nullptr);
  EXPECT_EQ(stages.find("parse"), nullptr);
}
