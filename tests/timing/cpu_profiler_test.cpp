// A real gperftools profile of a busy loop: bytes in the legacy format (header words 0, 3, 0, period, 0),
// one profile at a time, and readable by Google's pprof when the test environment has it.
#include "riptide/performance/timing/cpu_profiler.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <unistd.h>

#include "riptide/performance/core/features.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

std::atomic<bool> g_stop{false};

__attribute__((noinline)) double riptide_test_burn_cpu() {
  double x = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    for (int i = 1; i < 10000; ++i) x += std::sqrt(static_cast<double>(i));
  }
  return x;
}

}  // namespace

TEST(CpuProfiler, ProfilesInLegacyFormatAndIsOneAtATime) {
  if (!rp::CpuProfiler::available()) {
    const auto r = rp::CpuProfiler::profile(10ms);
    EXPECT_EQ(r.status, rp::CpuProfileResult::Status::unavailable);
    EXPECT_FALSE(r.reason.empty());
    GTEST_SKIP() << "built without RIPTIDE_PERF_BOTTLENECK_ANALYSIS";
  }
  g_stop = false;
  std::thread burner([] { (void)riptide_test_burn_cpu(); });
  // The first profile gets a directory of its own: its temporary file appears there once it holds the
  // profiler, so the second one is asked while the first surely runs (a fixed sleep assumed the first
  // thread would have started within it, which a loaded machine does not promise).
  const auto first_dir = std::filesystem::temp_directory_path() / ("riptide-cpu-first-" + std::to_string(::getpid()));
  std::filesystem::create_directories(first_dir);
  auto first = std::async(std::launch::async, [&first_dir] { return rp::CpuProfiler::profile(1500ms, first_dir); });
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (std::filesystem::is_empty(first_dir) && first.wait_for(0s) != std::future_status::ready &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  const bool first_running = first.wait_for(0s) != std::future_status::ready;
  const auto second = rp::CpuProfiler::profile(100ms);
  const auto result = first.get();
  g_stop = true;
  burner.join();
  std::filesystem::remove_all(first_dir);
  ASSERT_TRUE(first_running) << "the first profile ended before it was seen running";
  EXPECT_EQ(second.status, rp::CpuProfileResult::Status::busy);
  EXPECT_FALSE(second.reason.empty());

  ASSERT_EQ(result.status, rp::CpuProfileResult::Status::ok) << result.reason;
  EXPECT_GE(result.duration, 1500ms);
  ASSERT_GE(result.profile.size(), 5 * sizeof(std::uintptr_t));
  std::uintptr_t header[5];
  std::memcpy(header, result.profile.data(), sizeof header);
  EXPECT_EQ(header[0], 0U);  // header count
  EXPECT_EQ(header[1], 3U);  // header words
  EXPECT_EQ(header[2], 0U);  // version
  EXPECT_GT(header[3], 0U);  // sampling period in microseconds
  EXPECT_EQ(header[4], 0U);
  // /proc/self/maps is appended after the samples: pprof needs it to symbolize.
  EXPECT_NE(result.profile.find("cpu_profiler_test"), std::string::npos);

  // Usable again once the first one finished.
  const auto again = rp::CpuProfiler::profile(50ms);
  EXPECT_EQ(again.status, rp::CpuProfileResult::Status::ok) << again.reason;

  const char* pprof = std::getenv("RIPTIDE_PERF_TEST_PPROF");
  if (pprof != nullptr && std::filesystem::exists(pprof)) {
    const auto dir = std::filesystem::temp_directory_path() / ("riptide-cpu-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = dir / "cpu.prof";
    std::ofstream(file, std::ios::binary) << result.profile;
    const auto out = dir / "top.txt";
    const std::string command = std::string(pprof) + " -top " + "/proc/" + std::to_string(::getpid()) + "/exe " +
                                file.string() + " > " + out.string() + " 2>&1";
    const int rc = std::system(command.c_str());
    std::ifstream in(out);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(rc, 0) << text;
    EXPECT_NE(text.find("riptide_test_burn_cpu"), std::string::npos) << text;
    std::filesystem::remove_all(dir);
  }
}
