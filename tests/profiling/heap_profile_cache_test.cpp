// One heap dump serves every reader of the heap: HeapProfileCache reuses a young profile, captures a stale
// one once however many callers ask at the same moment, and the leak detector and the allocation analyzer
// share it. Real jemalloc with its profiler (malloc_conf below); without jemalloc (sanitizer presets) the
// cache must say why it has no profile.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "riptide/performance/profiling/allocation_analyzer.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile_cache.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true");

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

bool profiling_available() {
  return rp::HeapProfilingControl::available();
}

}  // namespace

TEST(HeapProfileCache, WithoutTheProfilerSaysWhyAndCapturesNothing) {
  if (profiling_available()) GTEST_SKIP() << "jemalloc's profiler is on here; the live tests below cover it";
  rp::HeapProfileCache cache;
  const auto profile = cache.get(1h);
  ASSERT_FALSE(profile.ok());
  EXPECT_EQ(profile.error().kind, rp::ProfilingErrorKind::unavailable);
  EXPECT_FALSE(profile.error().to_string().empty());
  EXPECT_EQ(cache.captures(), 0U);
  EXPECT_EQ(cache.latest(), nullptr);
  EXPECT_FALSE(cache.age().has_value());
}

TEST(HeapProfileCache, ReusesAYoungProfileAndCapturesAStaleOne) {
  if (!profiling_available()) GTEST_SKIP() << "needs jemalloc with prof:true (not in sanitizer builds)";
  rp::ManualClock clock;
  rp::HeapProfileCache cache({}, clock);
  const auto first = cache.get(10s);
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_EQ(cache.captures(), 1U);
  clock.advance(9s);
  const auto again = cache.get(10s);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value(), first.value()) << "a 9 s old profile is young enough for a 10 s bound";
  EXPECT_EQ(cache.captures(), 1U);
  EXPECT_EQ(cache.age(), std::chrono::nanoseconds{9s});

  clock.advance(2s);
  const auto stale = cache.get(10s);
  ASSERT_TRUE(stale.ok());
  EXPECT_NE(stale.value(), first.value());
  EXPECT_EQ(cache.captures(), 2U);
  EXPECT_EQ(cache.age(), std::chrono::nanoseconds{0});

  const auto refreshed = cache.refresh();  // always a new dump
  ASSERT_TRUE(refreshed.ok());
  EXPECT_NE(refreshed.value(), stale.value());
  EXPECT_EQ(cache.latest(), refreshed.value());
  EXPECT_EQ(cache.captures(), 3U);
}

TEST(HeapProfileCache, StaleReadersAtTheSameMomentShareOneDump) {
  if (!profiling_available()) GTEST_SKIP() << "needs jemalloc with prof:true (not in sanitizer builds)";
  rp::ManualClock clock;
  rp::HeapProfileCache cache({}, clock);
  constexpr int kReaders = 6;
  std::vector<rp::HeapProfileCache::Profile> seen(kReaders);
  std::atomic<int> ready{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < kReaders) std::this_thread::yield();
      auto profile = cache.get(10s);
      if (profile.ok()) seen[i] = profile.value();
    });
  }
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(cache.captures(), 1U);
  for (const auto& profile : seen) EXPECT_EQ(profile, seen.front());
}

TEST(HeapProfileCache, LeakDetectorAndAllocationAnalyzerShareOneDumpPerInterval) {
  if (!profiling_available()) GTEST_SKIP() << "needs jemalloc with prof:true (not in sanitizer builds)";
  rp::ManualClock clock;
  rp::ProfilingConfig config;
  config.leak_detection_interval_sec = 30;
  auto cache = std::make_shared<rp::HeapProfileCache>(std::string{}, clock);
  rp::LeakDetector detector(config, clock, nullptr, cache);
  rp::AllocationAnalyzer analyzer(config, clock, nullptr, 20, cache);
  EXPECT_EQ(detector.heap_profiles(), cache);

  ASSERT_FALSE(detector.observe().has_value());  // the periodic observation publishes its dump
  EXPECT_EQ(cache->captures(), 1U);
  clock.advance(5s);
  const rp::AllocationStats first = analyzer.analyze();
  EXPECT_EQ(cache->captures(), 1U) << "the analyzer must reuse the detector's 5 s old dump";
  ASSERT_TRUE(first.sites_available) << first.reason;
  EXPECT_DOUBLE_EQ(first.sites_age_seconds, 5.0);
  ASSERT_FALSE(first.top_allocators.empty());

  const rp::AllocationStats second = analyzer.analyze();  // same dump: same ranking, no new dump
  EXPECT_EQ(cache->captures(), 1U);
  ASSERT_EQ(second.top_allocators.size(), first.top_allocators.size());
  EXPECT_EQ(second.top_allocators.front().location, first.top_allocators.front().location);
  EXPECT_EQ(second.top_allocators.front().count, first.top_allocators.front().count);

  clock.advance(30s);  // older than the leak interval: the next reader captures
  (void)analyzer.analyze();
  EXPECT_EQ(cache->captures(), 2U);
}
