// Per-client limits: independence, overrides, per-key conformance, and bounded state under a flood of
// a million distinct client ids (no allocation at all after construction).
#include "riptide/performance/limits/keyed_rate_limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "riptide/performance/core/error.hpp"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocated_bytes{0};
}  // namespace

// Counts what the limiter allocates while a test has counting switched on. The out-of-line helpers keep
// g++ from pairing an inlined `delete` with free() (a false -Wmismatched-new-delete).
namespace {
[[gnu::noinline]] void* counted_allocate(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocated_bytes.fetch_add(size, std::memory_order_relaxed);
  if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
  throw std::bad_alloc();
}
[[gnu::noinline]] void counted_free(void* memory) noexcept {
  std::free(memory);
}
}  // namespace
void* operator new(std::size_t size) {
  return counted_allocate(size);
}
void operator delete(void* memory) noexcept {
  counted_free(memory);
}
void operator delete(void* memory, std::size_t) noexcept {
  counted_free(memory);
}

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

rp::KeyedRateLimiterOptions options(double rate, std::uint32_t burst, std::uint64_t max_keys) {
  rp::KeyedRateLimiterOptions result;
  result.default_quota = rp::RateQuota::per_second(rate, burst);
  result.max_keys = max_keys;
  return result;
}

TEST(KeyedRateLimiter, KeysAreLimitedIndependently) {
  rp::ManualClock clock;
  rp::KeyedRateLimiter limiter(options(10, 3, 1000), clock);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.check("client-a").allowed);
  const auto refused = limiter.check("client-a");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, 100ms);
  EXPECT_EQ(refused.limit, 3u);
  EXPECT_TRUE(limiter.check("client-b").allowed);
  clock.advance(100ms);
  EXPECT_TRUE(limiter.check("client-a").allowed);
  EXPECT_FALSE(limiter.check("client-a").allowed);
  EXPECT_EQ(limiter.tracked_keys(), 2u);
  EXPECT_EQ(limiter.stats().refused, 2u);
}

TEST(KeyedRateLimiter, PerKeyRateWithinOnePercentOverASimulatedMinute) {
  rp::ManualClock clock;
  rp::KeyedRateLimiter limiter(options(10, 10, 1000), clock);
  std::uint64_t admitted = 0;
  while (limiter.check("k").allowed) ++admitted;
  EXPECT_EQ(admitted, 10u);
  admitted = 0;
  for (int ms = 0; ms < 60'000; ms += 3) {
    clock.advance(3ms);
    while (limiter.check("k").allowed) ++admitted;
  }
  EXPECT_NEAR(static_cast<double>(admitted), 600.0, 6.0);
}

TEST(KeyedRateLimiter, CheckNIsAllOrNothingPerKey) {
  rp::ManualClock clock;
  rp::KeyedRateLimiter limiter(options(10, 10, 100), clock);
  EXPECT_TRUE(limiter.check_n("k", 8).allowed);
  EXPECT_FALSE(limiter.check_n("k", 3).allowed);
  EXPECT_TRUE(limiter.check_n("k", 2).allowed);
  EXPECT_EQ(limiter.check_n("k", 11).retry_after, rp::RateDecision::kNever);
}

TEST(KeyedRateLimiter, OverridesApplyToTheirKeyOnly) {
  rp::ManualClock clock;
  rp::KeyedRateLimiter limiter(options(10, 2, 1000), clock);
  ASSERT_TRUE(limiter.check("vip").allowed);  // already tracked: the override must reach the slot too
  limiter.set_quota("vip", rp::RateQuota::per_second(100, 100));
  EXPECT_EQ(limiter.quota_for("vip").burst, 100u);
  EXPECT_EQ(limiter.quota_for("someone").burst, 2u);
  int vip = 0;
  while (limiter.check("vip").allowed) ++vip;
  // The 100 ms of time owed under the old quota carries over: 10 cells of the new one.
  EXPECT_EQ(vip, 90);
  int other = 0;
  while (limiter.check("someone").allowed) ++other;
  EXPECT_EQ(other, 2);
  limiter.set_quota("new-vip", rp::RateQuota::per_second(1, 5));
  int fresh = 0;
  while (limiter.check("new-vip").allowed) ++fresh;
  EXPECT_EQ(fresh, 5);
  EXPECT_EQ(limiter.stats().quota_overrides, 2u);
  EXPECT_EQ(limiter.stats().distinct_quotas, 3u);
  limiter.set_quota("same-as-vip", rp::RateQuota::per_second(100, 100));
  EXPECT_EQ(limiter.stats().distinct_quotas, 3u) << "identical quotas share one entry";

  limiter.clear_quota("vip");
  clock.advance(10s);
  int after = 0;
  while (limiter.check("vip").allowed) ++after;
  EXPECT_EQ(after, 2);
  EXPECT_THROW(limiter.set_quota("x", rp::RateQuota{0ns, 1}), rp::ConfigError);
}

TEST(KeyedRateLimiter, DistinctQuotasAreBounded) {
  rp::ManualClock clock;
  rp::KeyedRateLimiter limiter(options(10, 2, 1000), clock);
  for (std::uint32_t i = 1; i < rp::KeyedRateLimiter::kMaxDistinctQuotas; ++i) {
    limiter.set_quota("tier-" + std::to_string(i), rp::RateQuota{std::chrono::milliseconds{i}, 1});
  }
  EXPECT_THROW(limiter.set_quota("one-more", rp::RateQuota{std::chrono::hours{1}, 1}), rp::ConfigError);
  limiter.set_quota("reuses", rp::RateQuota{std::chrono::milliseconds{7}, 1});  // existing entry: fine
  EXPECT_EQ(limiter.quota_for("reuses").period, 7ms);
}

TEST(KeyedRateLimiter, AMillionDistinctKeysStayWithinTheBoundAndAllocateNothing) {
  rp::ManualClock clock;
  constexpr std::uint64_t kMaxKeys = 100'000;
  rp::KeyedRateLimiter limiter(options(10, 10, kMaxKeys), clock);
  const auto before = limiter.stats();
  EXPECT_LE(before.capacity, kMaxKeys);
  EXPECT_GE(before.capacity, kMaxKeys - 3);
  // ~21 bytes per slot (a 64-byte bucket holds 3) plus the 24 KiB quota table, allocated once.
  EXPECT_LE(before.memory_bytes, kMaxKeys * 22 + 24 * 1024);

  // A heavy, legitimate client that has used its burst (its TAT ~17 min ahead): the flood, whose keys go
  // idle after 100 ms, must not reset it.
  limiter.set_quota("heavy-client", rp::RateQuota::per_second(0.01, 10));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.check("heavy-client").allowed);
  ASSERT_FALSE(limiter.check("heavy-client").allowed);

  char key[32];
  g_allocated_bytes = 0;
  g_counting = true;
  std::uint64_t allowed = 0;
  for (std::uint64_t i = 0; i < 1'000'000; ++i) {
    const int length = std::snprintf(key, sizeof key, "flood-%llu", static_cast<unsigned long long>(i));
    allowed += limiter.check(std::string_view(key, static_cast<std::size_t>(length))).allowed ? 1 : 0;
    if (i % 1000 == 999) clock.advance(1ms);
  }
  g_counting = false;
  EXPECT_EQ(g_allocated_bytes.load(), 0u);
  EXPECT_EQ(allowed, 1'000'000u);  // each flood key is new and has a full burst

  const auto after = limiter.stats();
  EXPECT_LE(after.tracked_keys, kMaxKeys);
  EXPECT_EQ(after.memory_bytes, before.memory_bytes);
  EXPECT_EQ(after.new_keys, 1'000'000u + 1);
  EXPECT_GT(after.idle_evictions, 0u);
  EXPECT_FALSE(limiter.check("heavy-client").allowed) << "the flood evicted an active client";

  // Every flood TAT passed: all but the heavy client are idle, and evict_idle() frees them.
  clock.advance(2s);
  EXPECT_EQ(limiter.evict_idle(), after.tracked_keys - 1);
  EXPECT_EQ(limiter.tracked_keys(), 1u);
}

TEST(KeyedRateLimiter, ATinyTableHoldsAtMostMaxKeys) {
  rp::ManualClock clock;
  rp::KeyedRateLimiter limiter(options(1, 1, 3), clock);
  EXPECT_EQ(limiter.capacity(), 3u);
  for (int i = 0; i < 10; ++i) (void)limiter.check("k" + std::to_string(i));
  EXPECT_EQ(limiter.tracked_keys(), 3u);
  EXPECT_EQ(limiter.stats().forced_evictions, 7u);
  rp::KeyedRateLimiter five(options(1, 1, 5), clock);
  EXPECT_EQ(five.capacity(), 3u);  // rounded down to whole buckets: never more than max_keys
  EXPECT_THROW(rp::KeyedRateLimiter(options(1, 1, 0), clock), rp::ConfigError);
}

TEST(KeyedRateLimiter, ThreadsOnSharedKeysNeverExceedEachBurst) {
  rp::ManualClock clock;
  rp::KeyedRateLimiter limiter(options(100, 50, 10'000), clock);
  constexpr int kKeys = 64;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back("shared-" + std::to_string(i));
  std::atomic<std::uint64_t> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 4000; ++i) {
        if (limiter.check(keys[static_cast<std::size_t>((i + t) % kKeys)]).allowed) admitted.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), kKeys * 50u);
}

TEST(KeyedRateLimiter, RealClockUsesTheCoarseClockForDefaultQuotas) {
  rp::KeyedRateLimiter limiter(options(10, 10, 1000));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.check("c").allowed);
  const auto refused = limiter.check("c");
  EXPECT_FALSE(refused.allowed);
  EXPECT_GT(refused.retry_after, 0ns);
  EXPECT_LE(refused.retry_after, 100ms);
}

}  // namespace
