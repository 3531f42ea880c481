// The report with heap profiling on (jemalloc started with prof:true by malloc_conf below): a function
// that keeps leaking shows up among the leak suspects and the top allocation sites, in JSON and Markdown.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "riptide/performance/manager/performance_json.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/manager/performance_state.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true");

namespace rp = riptide::performance;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Outside riptide::performance so the symbolizer does not skip it as a library frame.
std::vector<void*> g_leaked;

__attribute__((noinline)) void report_test_leaky_cache_insert(int count) {
  for (int i = 0; i < count; ++i) {
    g_leaked.push_back(::operator new(8192));
  }
}

TEST(PerformanceReportProfiling, LeakingSiteIsInTheReport) {
  rp::ManualClock clock;
  rp::Config config;
  config.monitoring.enabled = false;  // the test drives observations itself
  config.profiling.leak_min_bytes = 256 * 1024;
  config.profiling.leak_min_growth_bytes_per_sec = 1024;
  auto manager = rp::PerformanceManager::with_config(config, clock);
  auto detector = manager->memory_profiler().leak_detector();
  if (!detector) {
    GTEST_SKIP() << "heap profiling compiled out or disabled";
  }
  manager->start_monitoring();
  for (int round = 0; round < 8; ++round) {
    report_test_leaky_cache_insert(256);  // 2 MiB per round
    manager->record_request(100ms);
    clock.advance(10s);
    ASSERT_FALSE(detector->observe().has_value());
  }
  report_test_leaky_cache_insert(256);
  clock.advance(10s);
  const rp::PerformanceReport report = manager->stop_monitoring();
  ASSERT_TRUE(report.leaks.has_value());
  ASSERT_TRUE(report.leaks->available) << report.leaks->reason;
  ASSERT_GE(report.leaks->leak_count, 1U);
  bool found = false;
  for (const auto& leak : report.leaks->leaks) {
    found = found || leak.location.find("report_test_leaky_cache_insert") != std::string::npos;
  }
  EXPECT_TRUE(found) << nlohmann::json(report)["leaks"].dump(2);
  ASSERT_FALSE(report.top_allocation_sites.empty());
  bool top = false;
  for (const auto& site : report.top_allocation_sites) {
    top = top || site.location.find("report_test_leaky_cache_insert") != std::string::npos;
  }
  EXPECT_TRUE(top);
  EXPECT_THAT(report.recommendations, ::testing::Contains(HasSubstr("suspected leak")));
  const nlohmann::json json = report;
  EXPECT_GE(json["leaks"]["leak_count"].get<int>(), 1);
  EXPECT_FALSE(json["top_allocation_sites"].empty());
  EXPECT_THAT(report.to_markdown(), HasSubstr("report_test_leaky_cache_insert"));
  if (std::getenv("RIPTIDE_PERF_TEST_PRINT_REPORT") != nullptr) {
    std::cout << report.to_markdown() << "\n";
  }
  for (void* p : g_leaked) ::operator delete(p);
}

namespace {

// The names of this process's threads, as the kernel shows them (/proc/self/task/*/comm).
std::multiset<std::string> thread_names() {
  std::multiset<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}

}  // namespace

TEST(PerformanceReportProfiling, SamplingLeakObservationsAndChecksShareOneThread) {
  rp::Config config;
  config.monitoring.sample_interval_sec = 0.05;
  config.profiling.leak_detection_interval_sec = 1;  // the first observation comes at once
  auto manager = rp::PerformanceManager::with_config(config);
  auto detector = manager->memory_profiler().leak_detector();
  if (!detector) {
    GTEST_SKIP() << "heap profiling compiled out or disabled";
  }
  manager->start_monitoring();
  ASSERT_TRUE(detector->running());
  ASSERT_TRUE(manager->memory_profiler().tracker().running());
  // All three kinds of periodic work happen: samples, observations, published checks.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while ((!manager->state()->published || manager->memory_profiler().tracker().history_size() < 3 ||
          detector->latest() == nullptr) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(manager->state()->published);
  EXPECT_GE(manager->memory_profiler().tracker().history_size(), 3U);
  EXPECT_NE(detector->latest(), nullptr);
  const auto names = thread_names();
  EXPECT_EQ(names.count("riptide-periodi"), 1U);  // the kernel keeps 15 characters
  EXPECT_EQ(names.count("riptide-sampler"), 0U);
  EXPECT_EQ(names.count("riptide-leaks"), 0U);
  EXPECT_EQ(names.count("riptide-checker"), 0U);
  (void)manager->stop_monitoring();
  EXPECT_EQ(thread_names().count("riptide-periodi"), 0U);
}
