// MemoryProfiler's entry points over the profiling area: detect_leaks() and get_allocation_stats()
// with real jemalloc and the profiler on (default sampling), and the background detector started by
// start_profiling().
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/profiling_json.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING();

namespace rp = riptide::performance;

TEST(MemoryProfilerProfiling, DetectLeaksAndAllocationStats) {
  rp::MemoryProfiler profiler;
  const rp::LeakReport leaks = profiler.detect_leaks();
  const rp::AllocationStats stats = profiler.get_allocation_stats();
  if (!RIPTIDE_PERF_HAS_JEMALLOC) {
    EXPECT_FALSE(leaks.available);
    EXPECT_FALSE(leaks.reason.empty());
    EXPECT_FALSE(stats.sites_available);
    GTEST_SKIP() << "built without jemalloc: " << leaks.reason;
  }
  ASSERT_TRUE(leaks.available) << leaks.reason;
  EXPECT_EQ(leaks.observations, 1u);  // an explicit call takes a fresh observation
  EXPECT_EQ(leaks.leak_count, leaks.leaks.size());
  EXPECT_TRUE(stats.available) << stats.reason;
  EXPECT_TRUE(stats.sites_available) << stats.reason;
  EXPECT_EQ(stats.sites_basis, "cumulative");
  EXPECT_GT(stats.total_allocations, 0u);
  const nlohmann::json json = stats;
  EXPECT_TRUE(json.contains("top_allocators"));
  EXPECT_TRUE(json.contains("allocation_rate_per_second"));
  EXPECT_NE(profiler.leak_detector(), nullptr);
}

TEST(MemoryProfilerProfiling, DisabledByConfigSaysSo) {
  rp::Config config;
  config.profiling.enabled = false;
  rp::MemoryProfiler profiler("session-1", config);
  const auto leaks = profiler.detect_leaks();
  EXPECT_FALSE(leaks.available);
  EXPECT_NE(leaks.reason.find("profiling.enabled"), std::string::npos) << leaks.reason;
  EXPECT_EQ(profiler.leak_detector(), nullptr);
}

TEST(MemoryProfilerProfiling, StartProfilingRunsTheLeakDetector) {
  if (!rp::HeapProfilingControl::available()) {
    GTEST_SKIP() << rp::HeapProfilingControl::status().reason;
  }
  rp::Config config;
  config.profiling.leak_detection_interval_sec = 0.05;
  rp::MemoryProfiler profiler("session-2", config);
  profiler.start_profiling();
  // Waited for; the bound only guards against a hang (a heap dump on a loaded machine may take seconds).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (profiler.leak_detector()->latest() == nullptr && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  profiler.stop_profiling();
  ASSERT_NE(profiler.leak_detector()->latest(), nullptr);
  EXPECT_GE(profiler.leak_detector()->latest()->observations, 1u);
}
