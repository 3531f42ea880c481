// RedisCache and TieredCache against a real redis-server started by the fixture: promotion, TTL in both
// layers, invalidation, single flight, and an outage in the middle of a workload.
#include "riptide/performance/cache/tiered_cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>
#include <vector>

#include "riptide/performance/cache/redis_cache.hpp"
#include "riptide/performance/redis/redis_client.hpp"
#include "support/redis_server.hpp"

namespace rp = riptide::performance;
namespace rpt = riptide::performance::testing;
using namespace std::chrono_literals;

namespace {

#define REQUIRE_REDIS() \
  if (!rpt::RedisServer::find_binary()) GTEST_SKIP() << "redis-server not installed"

std::shared_ptr<rp::RedisClient> client_for(const rpt::RedisServer& server,
                                            rp::RedisBreakerOptions breaker = {3, 200ms, 400ms}) {
  rp::RedisConfig config;
  config.url = server.url();
  // No test here relies on a timeout (a killed server refuses or resets at once): 2 s only keeps a slow
  // answer on a loaded machine from counting as a failure (200 ms did: a trial SET that Redis applied
  // but answered late reopened the breaker).
  config.command_timeout_ms = 2000;
  config.connect_timeout_ms = 2000;
  config.key_prefix = "t:";
  return std::make_shared<rp::RedisClient>(config, breaker);
}

std::unique_ptr<rp::TieredCache> tiered(std::shared_ptr<rp::RedisClient> client,
                                        std::optional<std::chrono::milliseconds> ttl = 1h) {
  rp::TieredCache::Options options;
  options.max_bytes = 1 << 20;
  options.ttl = ttl;
  return std::make_unique<rp::TieredCache>(options, std::make_shared<rp::RedisCache>(std::move(client)));
}

}  // namespace

TEST(RedisCache, BinarySafeValuesWithTtlAndPrefix) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto client = client_for(server);
  rp::RedisCache cache(client, "pages:");
  EXPECT_EQ(cache.redis_key("a"), "t:pages:a");
  const std::string bytes("\0\r\n\xff\x01 binary", 12);
  ASSERT_TRUE(cache.put("a", bytes, 60s));
  auto got = cache.get("a");
  ASSERT_EQ(got.status, rp::RedisCache::GetResult::Status::hit);
  EXPECT_EQ(got.value, bytes);
  ASSERT_TRUE(got.ttl.has_value());
  EXPECT_GT(got.ttl->count(), 50'000);
  EXPECT_EQ(client->command({"GET", "t:pages:a"}).text(), bytes);

  ASSERT_TRUE(cache.put("forever", "v"));
  EXPECT_FALSE(cache.get("forever").ttl.has_value());
  EXPECT_EQ(cache.get("absent").status, rp::RedisCache::GetResult::Status::miss);
  EXPECT_TRUE(cache.invalidate("a"));
  EXPECT_EQ(cache.get("a").status, rp::RedisCache::GetResult::Status::miss);
  const auto stats = cache.stats();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.errors, 0u);
}

TEST(RedisCache, WrongTypeUnderTheKeyIsAnErrorNotAThrow) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto client = client_for(server);
  rp::RedisCache cache(client, "c:");
  client->command({"RPUSH", "t:c:list", "x"});
  EXPECT_EQ(cache.get("list").status, rp::RedisCache::GetResult::Status::error);
  EXPECT_EQ(cache.stats().errors, 1u);
}

TEST(TieredCache, L2HitIsPromotedToL1) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto writer = tiered(client_for(server));
  auto reader = tiered(client_for(server));  // another process sharing the Redis
  writer->put("page", "<html>");
  auto first = reader->get("page");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(*first, "<html>");
  auto stats = reader->stats();
  EXPECT_EQ(stats.l1.misses, 1u);
  EXPECT_EQ(stats.l2->hits, 1u);
  EXPECT_EQ(*reader->get("page"), "<html>");
  stats = reader->stats();
  EXPECT_EQ(stats.l1.hits, 1u) << "second read comes from L1";
  EXPECT_EQ(stats.l2->hits, 1u);
  EXPECT_DOUBLE_EQ(stats.hit_ratio(), 1.0);
}

TEST(TieredCache, TtlExpiresInBothLayers) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto client = client_for(server);
  auto cache = tiered(client, 1h);
  // A TTL of 2 s: the reads that expect the entry must come within it, and each is one loopback round trip
  // (a 300 ms TTL left a loaded machine too little). Past the TTL (plus 100 ms for the two clocks' ticks)
  // the entry is gone, whatever the load: expiry is a lower bound on time, never an upper one.
  constexpr auto kTtl = 2s;
  cache->put("short", "v", kTtl);
  cache->put("long", "w");
  ASSERT_NE(cache->get("short"), nullptr);
  std::this_thread::sleep_for(kTtl + 100ms);
  EXPECT_EQ(cache->get("short"), nullptr) << "gone from L1 and from L2";
  EXPECT_TRUE(client->command({"GET", "t:cache:short"}).is_nil()) << "Redis expired it too";
  EXPECT_EQ(cache->stats().l1.expirations, 1u);
  EXPECT_NE(cache->get("long"), nullptr);

  // Promotion keeps the TTL Redis has left: an L1 copy never outlives the L2 original.
  auto other = tiered(client, 1h);
  cache->put("promoted", "p", kTtl);
  ASSERT_NE(other->get("promoted"), nullptr);  // L2 hit -> L1 with what is left of the 2 s
  std::this_thread::sleep_for(kTtl + 100ms);
  EXPECT_EQ(other->get("promoted"), nullptr);
}

TEST(TieredCache, InvalidateRemovesFromBothLayers) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto a = tiered(client_for(server));
  auto b = tiered(client_for(server));
  a->put("k", "v");
  ASSERT_NE(b->get("k"), nullptr);
  a->invalidate("k");
  EXPECT_EQ(a->get("k"), nullptr);
  auto c = tiered(client_for(server));
  EXPECT_EQ(c->get("k"), nullptr) << "L2 copy removed";
}

TEST(TieredCache, SingleFlightUnderEightThreads) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto cache = tiered(client_for(server));
  std::atomic<int> loads{0};
  std::barrier start(8);
  std::vector<std::string> results(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      auto value = cache->get_or_load("slow", [&](const std::string& key) -> std::optional<std::string> {
        loads.fetch_add(1);
        std::this_thread::sleep_for(200ms);  // long enough for every thread to arrive
        return "loaded " + key;
      });
      results[t] = value ? *value : "<null>";
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(loads.load(), 1);
  for (const auto& result : results) EXPECT_EQ(result, "loaded slow");
  const auto stats = cache->stats();
  EXPECT_EQ(stats.loads, 1u);
  EXPECT_EQ(stats.coalesced_loads + 1 + stats.l1.hits, 8u);
  auto other = tiered(client_for(server));
  EXPECT_EQ(*other->get("slow"), "loaded slow") << "the loaded value went to L2 too";
}

TEST(TieredCache, LoaderExceptionReachesEveryWaiterAndIsNotCached) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto cache = tiered(client_for(server));
  std::barrier start(4);
  std::atomic<int> thrown{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      try {
        (void)cache->get_or_load("bad", [](const std::string&) -> std::optional<std::string> {
          std::this_thread::sleep_for(100ms);
          throw std::runtime_error("origin down");
        });
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "origin down") thrown.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(thrown.load(), 4);
  EXPECT_EQ(cache->get("bad"), nullptr);
  EXPECT_GE(cache->stats().load_failures, 1u);
  auto none = cache->get_or_load("nothing", [](const std::string&) -> std::optional<std::string> { return {}; });
  EXPECT_EQ(none, nullptr);
}

TEST(TieredCache, RedisKilledMidWorkloadThenRestarted) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto client = client_for(server, {3, 300ms, 600ms});
  auto cache = tiered(client);
  for (int i = 0; i < 200; ++i) cache->put("key" + std::to_string(i), "value" + std::to_string(i));

  std::atomic<bool> stop{false};
  std::atomic<int> exceptions{0};
  std::atomic<int> wrong{0};
  std::atomic<std::uint64_t> reads{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      int i = t;
      while (!stop.load()) {
        try {
          const std::string key = "key" + std::to_string(i % 200);
          auto value = cache->get(key);
          if (!value || *value != "value" + std::to_string(i % 200)) wrong.fetch_add(1);
          auto loaded = cache->get_or_load("loaded" + std::to_string(i % 50),
                                           [](const std::string& k) -> std::optional<std::string> { return k; });
          if (!loaded) wrong.fetch_add(1);
          if (cache->get("absent" + std::to_string(i)) != nullptr) wrong.fetch_add(1);  // goes to L2
          if (i % 10 == 0) cache->put("written" + std::to_string(i), "w");
          reads.fetch_add(3);
        } catch (...) {
          exceptions.fetch_add(1);
        }
        ++i;
      }
    });
  }
  // Wait for the workers to be under way, then for the breaker to have opened and refused calls: how long
  // that takes depends on how soon this machine schedules the workers, so it is waited for (the bound only
  // guards against a hang), not slept for.
  const auto wait_until = [](const auto& done) {
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (!done() && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(5ms);
    return done();
  };
  ASSERT_TRUE(wait_until([&] { return reads.load() >= 300; })) << "the workers did not run";
  server.stop();  // SIGKILL mid-workload
  const bool refused = wait_until([&] { return client->stats().rejected_by_breaker >= 10; });
  const auto during = cache->stats();
  const auto during_client = client->stats();
  stop.store(true);
  for (auto& worker : workers) worker.join();

  ASSERT_TRUE(refused) << "the breaker never refused a call";
  EXPECT_EQ(exceptions.load(), 0) << "no exception reaches the caller";
  EXPECT_EQ(wrong.load(), 0) << "every read was served from L1 or the loader";
  ASSERT_TRUE(during.l2.has_value());
  // Open: refusing, or letting one trial through that fails and opens it again (available() is true only
  // in the instant between a back-off ending and the next trial, so it is not what is asserted).
  EXPECT_TRUE(during_client.breaker_open) << "breaker open";
  EXPECT_GE(during.l2->breaker_opens, 1u);
  // An outage costs the calls before the breaker opened (the threshold, 3, plus one in flight per worker)
  // and one trial per back-off, each of which reopens it: not one failure per read.
  const auto client_stats = client->stats();
  EXPECT_GT(client_stats.rejected_by_breaker, 0u);
  EXPECT_LE(client_stats.failures, 3u + 4u + client_stats.breaker_opens)
      << "reads: " << reads.load() << ", refused by the breaker: " << client_stats.rejected_by_breaker;

  server.restart();
  // Past the longest back-off (600 ms) the next call is the trial; until then puts are refused (L1 only).
  // A put that reached Redis but failed (a late answer) leaves the breaker open, so both are waited for.
  auto fresh = tiered(client_for(server));
  std::shared_ptr<const std::string> value;
  ASSERT_TRUE(wait_until([&] {
    std::this_thread::sleep_for(100ms);
    cache->put("after", "restart");
    value = fresh->get("after");
    return value != nullptr && cache->stats().l2->available;
  })) << "L2 never used again after the restart: "
      << client->last_error();
  EXPECT_EQ(*value, "restart");
  EXPECT_TRUE(cache->stats().l2->available);
}
