#include "riptide/performance/manager/memory_profiler.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/memory/memory_json.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

TEST(MemoryProfiler, DefaultSessionIdIsAUuidV4) {
  const rp::MemoryProfiler first;
  const rp::MemoryProfiler second;
  EXPECT_TRUE(rp::is_uuid_v4(first.session_id()));
  EXPECT_NE(first.session_id(), second.session_id());
}

TEST(MemoryProfiler, KeepsTheHostsSessionIdAndRefusesAnEmptyOne) {
  const rp::MemoryProfiler profiler("550e8400-e29b-41d4-a716-446655440000");
  EXPECT_EQ(profiler.session_id(), "550e8400-e29b-41d4-a716-446655440000");
  EXPECT_THROW(rp::MemoryProfiler(""), rp::ConfigError);
}

TEST(MemoryProfiler, CurrentSnapshotIsFreshWithoutStarting) {
  rp::ManualClock clock;
  rp::MemoryProfiler profiler("session", rp::Config{}, clock);
  const rp::MemorySnapshot snapshot = profiler.get_current_snapshot();
  EXPECT_EQ(snapshot.timestamp, clock.system_now());
  ASSERT_TRUE(snapshot.rss_bytes);
  ASSERT_TRUE(snapshot.heap_bytes);
  EXPECT_GT(*snapshot.rss_bytes, 0u);
  EXPECT_EQ(profiler.tracker().history_size(), 0u);  // fresh snapshots are not recorded
  EXPECT_FALSE(profiler.is_profiling());
  nlohmann::json json = snapshot;
  json["session_id"] = profiler.session_id();
  EXPECT_EQ(json["session_id"], "session");
}

TEST(MemoryProfiler, StartAndStopProfiling) {
  rp::Config config;
  config.monitoring.sample_interval_sec = 0.005;
  rp::MemoryProfiler profiler("session", config);
  EXPECT_EQ(profiler.tracker().options().sample_interval, 5ms);
  profiler.start_profiling();
  EXPECT_TRUE(profiler.is_profiling());
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (profiler.tracker().history_size() < 2 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(profiler.tracker().history_size(), 2u);
  profiler.stop_profiling();
  EXPECT_FALSE(profiler.is_profiling());
  EXPECT_NE(profiler.tracker().latest(), nullptr);
}

}  // namespace
