// A real CPU profile of a busy loop: bytes in the legacy format (header words 0, 3, 0, period, 0), one
// profile at a time, readable by Google's pprof when the test environment has it, and a sampler that
// finishes whatever the other threads hold.
#include "riptide/performance/timing/cpu_profiler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <link.h>
#include <signal.h>
#include <sys/time.h>
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
#if RIPTIDE_PERF_HAS_BOTTLENECK_ANALYSIS && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
    // The supported platform (Debian 12: glibc 2.36, GCC 12's libgcc) must sample; a wrong detection of the
    // unwinder would otherwise turn every CPU profile test into a skip.
    FAIL() << "CPU profiles should be available here: " << r.reason;
#endif
    GTEST_SKIP() << r.reason;
  }
  g_stop = false;
  std::thread burner([] { (void)riptide_test_burn_cpu(); });
  auto first = std::async(std::launch::async, [] { return rp::CpuProfiler::profile(1500ms); });
  // The second one is asked once the first is seen running (a fixed sleep would assume the first thread
  // started within it, which a loaded machine does not promise).
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!rp::CpuProfiler::running() && first.wait_for(0s) != std::future_status::ready &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  const bool first_running = first.wait_for(0s) != std::future_status::ready;
  const auto second = rp::CpuProfiler::profile(100ms);
  const auto result = first.get();
  g_stop = true;
  burner.join();
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
  EXPECT_GT(result.samples, 0U);
  // The walk goes past the signal frame: stacks hold the burning function's callers, down to the
  // thread's start (at least the burner, its std::thread invoker and start_thread).
  std::size_t deepest = 0;
  for (std::size_t word = 5; word + 2 <= result.profile.size() / sizeof(std::uintptr_t);) {
    std::uintptr_t count = 0;
    std::uintptr_t depth = 0;
    std::memcpy(&count, result.profile.data() + word * sizeof count, sizeof count);
    std::memcpy(&depth, result.profile.data() + (word + 1) * sizeof depth, sizeof depth);
    if (count == 0) break;  // the trailer 0, 1, 0
    deepest = std::max<std::size_t>(deepest, depth);
    word += 2 + depth;
  }
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer runs signal handlers late, from another point of the thread's stack: only the
  // interrupted instruction is known then.
  EXPECT_GE(deepest, 1U);
#else
  EXPECT_GE(deepest, 3U);
#endif
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

namespace {

// Holds the dynamic loader's lock (dl_iterate_phdr) and allocates inside it, as a host that enumerates its
// modules does: a sampler that needs that lock from a signal handler deadlocks with such a thread when
// the handler interrupted the allocator.
int allocate_under_the_loader_lock(dl_phdr_info*, std::size_t, void* data) {
  auto* names = static_cast<std::vector<std::string>*>(data);
  names->emplace_back(200, 'x');
  return 0;
}

}  // namespace

TEST(CpuProfiler, FinishesWhileOtherThreadsHoldTheLoaderLockAndAllocate) {
  if (!rp::CpuProfiler::available()) GTEST_SKIP() << "built without RIPTIDE_PERF_BOTTLENECK_ANALYSIS";
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
        std::vector<std::string> names;
        dl_iterate_phdr(allocate_under_the_loader_lock, &names);
        std::vector<std::unique_ptr<char[]>> blocks;
        for (int i = 0; i < 200; ++i) blocks.emplace_back(new char[64 + static_cast<std::size_t>(i) * 48]);
      }
    });
  }
  int finished = 0;
  std::uint64_t samples = 0;
  for (int round = 0; round < 20; ++round) {
    auto result = std::async(std::launch::async, [] { return rp::CpuProfiler::profile(200ms); });
    if (result.wait_for(60s) != std::future_status::ready) {
      ADD_FAILURE() << "a CPU profile did not finish within 60 s (round " << round << "): the sampler deadlocked";
      std::fflush(nullptr);
      std::_Exit(1);  // the stuck threads cannot be joined
    }
    const auto profile = result.get();
    EXPECT_EQ(profile.status, rp::CpuProfileResult::Status::ok) << profile.reason;
    samples += profile.samples;
    ++finished;
  }
  stop = true;
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(finished, 20);
  // Over all rounds, not per round: a 200 ms round on a starved machine may accrue under one period of CPU.
  EXPECT_GT(samples, 0U);
}

namespace {

void another_profilers_handler(int, siginfo_t*, void*) {}

}  // namespace

TEST(CpuProfiler, RefusesWhenAnotherProfilerOwnsSigprofOrItsTimer) {
  if (!rp::CpuProfiler::available()) GTEST_SKIP() << "built without RIPTIDE_PERF_BOTTLENECK_ANALYSIS";
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGPROF, nullptr, &saved), 0);
  struct sigaction foreign {};
  foreign.sa_sigaction = another_profilers_handler;
  foreign.sa_flags = SA_SIGINFO;
  sigemptyset(&foreign.sa_mask);
  ASSERT_EQ(::sigaction(SIGPROF, &foreign, nullptr), 0);
  const auto with_foreign_handler = rp::CpuProfiler::profile(50ms);
  struct sigaction after {};
  ASSERT_EQ(::sigaction(SIGPROF, &saved, &after), 0);
  EXPECT_EQ(with_foreign_handler.status, rp::CpuProfileResult::Status::failed);
  EXPECT_NE(with_foreign_handler.reason.find("SIGPROF already has a handler"), std::string::npos)
      << with_foreign_handler.reason;
  EXPECT_EQ(after.sa_sigaction, another_profilers_handler) << "the other profiler's handler was replaced";

  // Armed far in the future: it never fires during the test.
  itimerval armed{};
  armed.it_value.tv_sec = 3600;
  ASSERT_EQ(::setitimer(ITIMER_PROF, &armed, nullptr), 0);
  const auto with_foreign_timer = rp::CpuProfiler::profile(50ms);
  itimerval left{};
  ASSERT_EQ(::getitimer(ITIMER_PROF, &left), 0);
  const itimerval off{};
  ASSERT_EQ(::setitimer(ITIMER_PROF, &off, nullptr), 0);
  EXPECT_EQ(with_foreign_timer.status, rp::CpuProfileResult::Status::failed);
  EXPECT_NE(with_foreign_timer.reason.find("ITIMER_PROF is already armed"), std::string::npos)
      << with_foreign_timer.reason;
  EXPECT_GT(left.it_value.tv_sec, 0) << "the other profiler's timer was disarmed";

  // Free again: profiles work.
  const auto again = rp::CpuProfiler::profile(50ms);
  EXPECT_EQ(again.status, rp::CpuProfileResult::Status::ok) << again.reason;
}
