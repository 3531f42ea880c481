#include "riptide/performance/core/clock.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace rp = riptide::performance;
using namespace std::chrono_literals;

TEST(ManualClock, MovesOnlyWhenAdvancedAndKeepsBothLinesTogether) {
  rp::ManualClock clock;
  const auto steady = clock.steady_now();
  const auto wall = clock.system_now();
  EXPECT_EQ(clock.steady_now(), steady);
  clock.advance(1500ms);
  EXPECT_EQ(clock.steady_now() - steady, 1500ms);
  EXPECT_EQ(clock.system_now() - wall, 1500ms);
}

TEST(ManualClock, ConcurrentAdvancesAreAllCounted) {
  rp::ManualClock clock;
  const auto start = clock.steady_now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) {
        clock.advance(1ns);
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(clock.steady_now() - start, 40'000ns);
}

TEST(SystemClock, IsMonotonic) {
  const auto& clock = rp::system_clock();
  const auto first = clock.steady_now();
  const auto second = clock.steady_now();
  EXPECT_LE(first, second);
}
