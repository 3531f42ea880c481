// TinyLfuCache: bounds, TTLs, admission, listener, statistics, adaptation and concurrent use.
#include "riptide/performance/cache/tiny_lfu_cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

using IntCache = rp::TinyLfuCache<std::uint64_t, std::uint64_t>;
using StringCache = rp::TinyLfuCache<std::string, std::string>;

IntCache::Options int_options(std::uint64_t max, std::uint32_t shards = 1) {
  IntCache::Options options;
  options.max_weight = max;
  options.shards = shards;
  return options;
}

}  // namespace

TEST(TinyLfuCache, PutGetAndMissCounting) {
  IntCache cache(int_options(100));
  EXPECT_FALSE(cache.get(1).has_value());
  cache.put(1, 10);
  ASSERT_TRUE(cache.get(1).has_value());
  EXPECT_EQ(*cache.get(1), 10u);
  cache.put(1, 11);
  EXPECT_EQ(*cache.get(1), 11u);
  EXPECT_TRUE(cache.contains(1));
  EXPECT_FALSE(cache.contains(2));
  const auto stats = cache.stats();
  EXPECT_EQ(stats.hits, 3u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_DOUBLE_EQ(stats.hit_ratio(), 0.75);
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.weight, 1u);
  EXPECT_EQ(stats.max_weight, 100u);
}

TEST(TinyLfuCache, EntryCountBoundHoldsUnderChurn) {
  IntCache cache(int_options(1000, 4));
  std::mt19937_64 random(7);
  for (int i = 0; i < 100'000; ++i) {
    const std::uint64_t key = random() % 5000;
    if (!cache.get(key)) cache.put(key, key);
    ASSERT_LE(cache.size(), 1000u);
  }
  const auto stats = cache.stats();
  EXPECT_GT(stats.evictions + stats.rejected_admissions, 0u);
  EXPECT_GT(stats.entries, 900u) << "the space is used";
}

TEST(TinyLfuCache, WeightBoundIsNeverExceededWithAWeigher) {
  StringCache::Options options;
  options.max_weight = 64 * 1024;
  options.weigher = [](const std::string& key, const std::string& value) { return key.size() + value.size(); };
  StringCache cache(options);
  std::mt19937_64 random(11);
  for (int i = 0; i < 20'000; ++i) {
    const std::string key = "k" + std::to_string(random() % 2000);
    if (!cache.get(key)) cache.put(key, std::string(random() % 3000, 'x'));
    ASSERT_LE(cache.weight(), options.max_weight);
  }
  EXPECT_GT(cache.weight(), options.max_weight / 2);
}

TEST(TinyLfuCache, WeightBoundHoldsWithConcurrentWriters) {
  StringCache::Options options;
  options.max_weight = 32 * 1024;
  options.shards = 4;
  options.weigher = [](const std::string&, const std::string& value) { return value.size() + 1; };
  StringCache cache(options);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> worst{0};
  std::thread watcher([&] {
    while (!stop.load()) {
      const auto weight = cache.weight();
      if (weight > worst.load()) worst.store(weight);
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      std::mt19937_64 random(t);
      for (int i = 0; i < 20'000; ++i) {
        const std::string key = std::to_string(random() % 3000);
        if (!cache.get(key)) cache.put(key, std::string(random() % 2000, 'v'));
      }
    });
  }
  for (auto& writer : writers) writer.join();
  stop.store(true);
  watcher.join();
  EXPECT_LE(worst.load(), options.max_weight);
  EXPECT_LE(cache.weight(), options.max_weight);
}

TEST(TinyLfuCache, TooHeavyEntryIsRejectedWithoutDisturbingResidents) {
  StringCache::Options options;
  options.max_weight = 100;
  options.weigher = [](const std::string&, const std::string& value) { return value.size(); };
  std::vector<rp::CacheRemovalCause> causes;
  options.listener = [&](const std::string&, const std::string&, rp::CacheRemovalCause c) { causes.push_back(c); };
  StringCache cache(options);
  cache.put("small", std::string(10, 's'));
  cache.put("huge", std::string(101, 'h'));
  EXPECT_FALSE(cache.get("huge"));
  EXPECT_TRUE(cache.get("small"));
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0], rp::CacheRemovalCause::rejected);
  EXPECT_EQ(cache.stats().rejected_admissions, 1u);
}

TEST(TinyLfuCache, CacheTtlExpiresEntries) {
  rp::ManualClock clock;
  auto options = int_options(100);
  options.ttl = 10s;
  options.clock = &clock;
  std::vector<rp::CacheRemovalCause> causes;
  options.listener = [&](const std::uint64_t&, const std::uint64_t&, rp::CacheRemovalCause c) { causes.push_back(c); };
  IntCache cache(options);
  cache.put(1, 1);
  clock.advance(9s);
  EXPECT_TRUE(cache.get(1));
  clock.advance(1s);
  EXPECT_FALSE(cache.get(1));
  EXPECT_FALSE(cache.contains(1));
  const auto stats = cache.stats();
  EXPECT_EQ(stats.expirations, 1u);
  EXPECT_EQ(stats.entries, 0u);
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0], rp::CacheRemovalCause::expired);
}

TEST(TinyLfuCache, PerEntryTtlOverridesTheCacheTtl) {
  rp::ManualClock clock;
  auto options = int_options(100);
  options.ttl = 1h;
  options.clock = &clock;
  IntCache cache(options);
  cache.put(1, 1, 5s);
  cache.put(2, 2);
  cache.put(3, 3, 2h);
  clock.advance(6s);
  EXPECT_FALSE(cache.get(1));
  EXPECT_TRUE(cache.get(2));
  clock.advance(1h);
  EXPECT_FALSE(cache.get(2));
  EXPECT_TRUE(cache.get(3));
  // A rewrite restarts the clock of the entry.
  cache.put(3, 33, 1s);
  clock.advance(2s);
  EXPECT_FALSE(cache.get(3));
}

TEST(TinyLfuCache, PurgeExpiredFreesWeightWithoutBeingAsked) {
  rp::ManualClock clock;
  auto options = int_options(100);
  options.clock = &clock;
  IntCache cache(options);
  for (std::uint64_t k = 0; k < 50; ++k) cache.put(k, k, k < 30 ? 1s : 1h);
  clock.advance(2s);
  EXPECT_EQ(cache.purge_expired(), 30u);
  EXPECT_EQ(cache.size(), 20u);
  EXPECT_EQ(cache.stats().expirations, 30u);
}

TEST(TinyLfuCache, FrequentEntriesSurviveAScan) {
  IntCache cache(int_options(100));
  for (int round = 0; round < 20; ++round) {
    for (std::uint64_t k = 0; k < 80; ++k) {
      if (!cache.get(k)) cache.put(k, k);
    }
  }
  for (std::uint64_t k = 1000; k < 11'000; ++k) {  // one-hit wonders
    if (!cache.get(k)) cache.put(k, k);
  }
  int survivors = 0;
  for (std::uint64_t k = 0; k < 80; ++k) survivors += cache.contains(k) ? 1 : 0;
  EXPECT_GE(survivors, 60) << "a scan must not flush the hot set (LRU would keep none)";
  EXPECT_GT(cache.stats().rejected_admissions, 9000u);
}

TEST(TinyLfuCache, ListenerSeesEveryCauseAfterTheLockIsReleased) {
  std::map<rp::CacheRemovalCause, int> causes;
  IntCache* self = nullptr;
  auto options = int_options(10);
  options.listener = [&](const std::uint64_t& key, const std::uint64_t&, rp::CacheRemovalCause cause) {
    ++causes[cause];
    (void)self->contains(key);  // re-entering the cache from the listener must not deadlock
  };
  IntCache cache(options);
  self = &cache;
  for (std::uint64_t k = 0; k < 10; ++k) cache.put(k, k);
  for (int i = 0; i < 5; ++i)
    for (std::uint64_t k = 0; k < 10; ++k) (void)cache.get(k);
  for (std::uint64_t k = 100; k < 120; ++k) cache.put(k, k);
  cache.put(0, 99);
  EXPECT_TRUE(cache.invalidate(1));
  EXPECT_FALSE(cache.invalidate(12345));
  cache.invalidate_all();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_GT(causes[rp::CacheRemovalCause::rejected] + causes[rp::CacheRemovalCause::size], 0);
  EXPECT_EQ(causes[rp::CacheRemovalCause::replaced], cache.stats().entries == 0 ? 1 : 0);
  EXPECT_GE(causes[rp::CacheRemovalCause::explicit_], 2);
}

TEST(TinyLfuCache, WindowGrowsForRecencyAndStaysSmallForFrequency) {
  // Recency: every key is hot for a short burst and then never comes back; only a large window helps.
  IntCache recency(int_options(1000));
  std::uint64_t next = 0;
  std::mt19937_64 random(3);
  for (int i = 0; i < 400'000; ++i) {
    const std::uint64_t key = next + random() % 600;  // a sliding working set of 600 keys
    if (i % 4 == 0) ++next;
    if (!recency.get(key)) recency.put(key, key);
  }
  const auto grown = recency.stats();
  EXPECT_GT(grown.window_max_weight, 100u) << "window share adapted upwards";

  // Frequency: a fixed skewed set plus a stream of one-time keys; the window stays small.
  IntCache frequency(int_options(1000));
  std::uint64_t unique = 1'000'000;
  for (int i = 0; i < 400'000; ++i) {
    const std::uint64_t key = (i % 2 == 0) ? random() % 900 : unique++;
    if (!frequency.get(key)) frequency.put(key, key);
  }
  EXPECT_LT(frequency.stats().window_max_weight, grown.window_max_weight);
  EXPECT_GT(frequency.stats().hit_ratio(), 0.4);
}

TEST(TinyLfuCache, FixedWindowWhenAdaptationIsOff) {
  auto options = int_options(1000);
  options.adaptive_window = false;
  options.initial_window = 0.2;
  IntCache cache(options);
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    if (!cache.get(i % 1500)) cache.put(i % 1500, i);
  }
  EXPECT_EQ(cache.stats().window_max_weight, 200u);
}

TEST(TinyLfuCache, ShardsSplitTheBoundExactly) {
  IntCache cache(int_options(1003, 4));
  const auto stats = cache.stats();
  EXPECT_EQ(stats.shards, 4u);
  EXPECT_EQ(stats.max_weight, 1003u);
  for (std::uint64_t k = 0; k < 10'000; ++k) cache.put(k, k);
  EXPECT_LE(cache.size(), 1003u);
}

TEST(TinyLfuCache, ConcurrentReadersAndWritersKeepInvariants) {
  rp::ManualClock clock;
  StringCache::Options options;
  options.max_weight = 500;
  options.shards = 4;
  options.ttl = 1s;
  options.clock = &clock;
  std::atomic<std::uint64_t> removals{0};
  options.listener = [&](const std::string&, const std::string&, rp::CacheRemovalCause) { removals.fetch_add(1); };
  StringCache cache(options);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 random(100 + t);
      for (int i = 0; i < 30'000; ++i) {
        const std::string key = std::to_string(random() % 1000);
        switch (random() % 10) {
          case 0:
            cache.invalidate(key);
            break;
          case 1:
            clock.advance(1ms);
            break;
          case 2:
            (void)cache.stats();
            break;
          default:
            if (auto value = cache.get(key)) {
              if (*value != "v" + key) wrong.fetch_add(1);
            } else {
              cache.put(key, "v" + key);
            }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  const auto stats = cache.stats();
  EXPECT_LE(stats.entries, 500u);
  EXPECT_EQ(stats.hits + stats.misses, stats.hits + stats.misses);
  EXPECT_GT(removals.load(), 0u);
}
