// Permits: never more than N holders under 8-thread contention, timeouts honoured, RAII and moves.
#include "riptide/performance/limits/concurrency_limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "riptide/performance/core/error.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

TEST(ConcurrencyLimiter, HandsOutAtMostMaxPermits) {
  rp::ConcurrencyLimiter limiter(2);
  auto first = limiter.try_acquire();
  auto second = limiter.try_acquire();
  EXPECT_TRUE(first);
  EXPECT_TRUE(second);
  EXPECT_FALSE(limiter.try_acquire());
  EXPECT_EQ(limiter.active(), 2u);
  first.release();
  EXPECT_FALSE(first.held());
  EXPECT_EQ(limiter.active(), 1u);
  auto third = limiter.try_acquire();
  EXPECT_TRUE(third);
  const auto stats = limiter.stats();
  EXPECT_EQ(stats.acquired, 3u);
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(stats.peak, 2u);
  EXPECT_THROW(rp::ConcurrencyLimiter(0), rp::ConfigError);
}

TEST(ConcurrencyLimiter, PermitsAreMoveOnlyAndReleaseOnce) {
  rp::ConcurrencyLimiter limiter(1);
  {
    rp::Permit moved_into;
    {
      auto permit = limiter.try_acquire();
      ASSERT_TRUE(permit);
      moved_into = std::move(permit);
      EXPECT_FALSE(permit.held());  // NOLINT(bugprone-use-after-move): checking the moved-from state
    }
    EXPECT_EQ(limiter.active(), 1u);
    rp::Permit again(std::move(moved_into));
    EXPECT_EQ(limiter.active(), 1u);
    auto other = limiter.try_acquire();
    EXPECT_FALSE(other);
    again = std::move(other);  // assigning releases the held slot
    EXPECT_EQ(limiter.active(), 0u);
  }
  EXPECT_EQ(limiter.active(), 0u);
  static_assert(!std::is_copy_constructible_v<rp::Permit>);
  static_assert(!std::is_copy_assignable_v<rp::Permit>);
}

TEST(ConcurrencyLimiter, EightThreadsNeverHoldMoreThanN) {
  constexpr std::uint32_t kPermits = 3;
  rp::ConcurrencyLimiter limiter(kPermits);
  std::atomic<int> holders{0};
  std::atomic<int> most{0};
  std::atomic<std::uint64_t> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        rp::Permit permit = (i + t) % 3 == 0 ? limiter.try_acquire() : limiter.acquire_for(50ms);
        if (!permit) continue;
        granted.fetch_add(1);
        const int now = holders.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        if (i % 16 == 0) std::this_thread::yield();
        holders.fetch_sub(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(most.load(), static_cast<int>(kPermits));
  EXPECT_GE(most.load(), 1);
  EXPECT_EQ(limiter.active(), 0u);
  const auto stats = limiter.stats();
  EXPECT_LE(stats.peak, kPermits);
  EXPECT_EQ(stats.acquired, granted.load());
  EXPECT_EQ(stats.waiting, 0u);
}

TEST(ConcurrencyLimiter, AcquireForHonoursItsTimeout) {
  rp::ConcurrencyLimiter limiter(1);
  auto held = limiter.try_acquire();
  ASSERT_TRUE(held);
  const auto start = std::chrono::steady_clock::now();
  auto refused = limiter.acquire_for(50ms);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(refused);
  EXPECT_GE(waited, 50ms);  // a lower bound only: it must not give up early
  EXPECT_FALSE(limiter.acquire_for(0ms));
  EXPECT_EQ(limiter.stats().timed_out, 2u);
}

TEST(ConcurrencyLimiter, AWaiterGetsTheSlotWhenItIsReleased) {
  rp::ConcurrencyLimiter limiter(1);
  auto held = limiter.try_acquire();
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    auto permit = limiter.acquire_for(60s);
    got = permit.held();
  });
  while (limiter.stats().waiting == 0) std::this_thread::yield();
  held.release();
  waiter.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(limiter.active(), 0u);

  auto again = limiter.try_acquire();
  std::thread blocking([&] { auto permit = limiter.acquire(); });
  while (limiter.stats().waiting == 0) std::this_thread::yield();
  again.release();
  blocking.join();
  EXPECT_EQ(limiter.active(), 0u);
}

}  // namespace
