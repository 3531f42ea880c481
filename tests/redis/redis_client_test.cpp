// RedisClient against a real redis-server: URL parsing, binary-safe commands, reply types, prefix,
// pool, reconnect after a restart, and the breaker that makes an outage cost one failure, not one per call.
#include "riptide/performance/redis/redis_client.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "riptide/performance/core/error.hpp"
#include "support/redis_server.hpp"

namespace rp = riptide::performance;
namespace rpt = riptide::performance::testing;
using namespace std::chrono_literals;
using Type = rp::RedisReply::Type;

namespace {

rp::RedisConfig config_for(const rpt::RedisServer& server, std::string prefix = "test:") {
  rp::RedisConfig config;
  config.url = server.url();
  config.key_prefix = std::move(prefix);
  config.pool_size = 2;
  // Generous: only CommandTimeoutIsAFailure wants a timeout, and sets its own; a loaded machine must not
  // turn a slow loopback answer into a failure elsewhere.
  config.connect_timeout_ms = 2000;
  config.command_timeout_ms = 2000;
  return config;
}

#define REQUIRE_REDIS() \
  if (!rpt::RedisServer::find_binary()) GTEST_SKIP() << "redis-server not installed"

}  // namespace

TEST(RedisUrl, ParsesHostPortAndDatabase) {
  EXPECT_EQ(rp::parse_redis_url("redis://127.0.0.1:6380/2"), (rp::RedisEndpoint{"127.0.0.1", 6380, 2}));
  EXPECT_EQ(rp::parse_redis_url("redis://cache.internal"), (rp::RedisEndpoint{"cache.internal", 6379, 0}));
  EXPECT_EQ(rp::parse_redis_url("redis://[::1]:7000/"), (rp::RedisEndpoint{"::1", 7000, 0}));
  EXPECT_EQ(rp::parse_redis_url("redis://localhost:1/15"), (rp::RedisEndpoint{"localhost", 1, 15}));
}

TEST(RedisUrl, RefusesEverythingElseWithAClearMessage) {
  for (const char* bad :
       {"", "localhost:6379", "rediss://host:6379", "unix:///tmp/redis.sock", "redis://", "redis://:6379",
        "redis://host:", "redis://host:0", "redis://host:65536", "redis://host:12ab", "redis://user:pw@host:6379",
        "redis://host:6379/16", "redis://host:6379/x", "redis://host:6379?db=1", "redis://[::1"}) {
    try {
      (void)rp::parse_redis_url(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const rp::ConfigError& e) {
      EXPECT_EQ(e.key(), "redis.url");
      EXPECT_EQ(e.value(), bad);
      EXPECT_FALSE(e.problem().empty());
      EXPECT_NE(std::string(e.what()).find("redis://host[:port][/db]"), std::string::npos) << e.what();
    }
  }
}

TEST(RedisClient, ConstructorRefusesABadUrlButNeverConnects) {
  rp::RedisConfig config;
  config.url = "http://localhost";
  EXPECT_THROW(rp::RedisClient{config}, rp::ConfigError);
  config.url = "redis://127.0.0.1:1";  // nothing listens on port 1: construction must still succeed
  EXPECT_NO_THROW(rp::RedisClient{config});
}

TEST(RedisClient, RunsCommandsAndMapsEveryReplyType) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  rp::RedisClient client(config_for(server));

  const auto pong = client.command({"PING"});
  EXPECT_EQ(pong.type(), Type::status);
  EXPECT_EQ(pong.text(), "PONG");

  EXPECT_EQ(client.command({"SET", client.key("a"), "1"}).type(), Type::status);
  EXPECT_EQ(client.command({"INCR", client.key("a")}).integer(), 2);
  EXPECT_TRUE(client.command({"GET", client.key("missing")}).is_nil());

  client.command({"RPUSH", client.key("list"), "x", "y"});
  const auto list = client.command({"LRANGE", client.key("list"), "0", "-1"});
  ASSERT_EQ(list.type(), Type::array);
  ASSERT_EQ(list.elements().size(), 2u);
  EXPECT_EQ(list.elements()[1].text(), "y");

  const auto wrong = client.command({"INCR", client.key("list")});
  EXPECT_TRUE(wrong.is_error());
  EXPECT_NE(wrong.text().find("WRONGTYPE"), std::string::npos);
  EXPECT_EQ(client.stats().server_errors, 1u);
  EXPECT_FALSE(client.stats().breaker_open) << "a server error is an answer, not an outage";
}

TEST(RedisClient, ArgumentsAndValuesAreBinarySafe) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  rp::RedisClient client(config_for(server));
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  value += std::string("\r\n$-1\r\n\0\0", 10);
  const std::string key = client.key(std::string("k\0ey\r\n", 6));
  ASSERT_TRUE(client.command({"SET", key, value}).ok());
  const auto got = client.command({"GET", key});
  ASSERT_EQ(got.type(), Type::string);
  EXPECT_EQ(got.text(), value);
}

TEST(RedisClient, ExpectTurnsATypeMismatchIntoAnError) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  rp::RedisClient client(config_for(server));
  client.command({"SET", client.key("s"), "text"});
  const auto mismatch = client.command({"GET", client.key("s")}).expect(Type::integer);
  EXPECT_TRUE(mismatch.is_error());
  EXPECT_EQ(mismatch.text(), "expected a integer reply, got string");
  EXPECT_EQ(client.command({"GET", client.key("s")}).expect(Type::string).text(), "text");
  EXPECT_FALSE(mismatch.integer().has_value());
}

TEST(RedisClient, KeyPrefixNamespacesKeys) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  rp::RedisClient a(config_for(server, "app-a:"));
  rp::RedisClient b(config_for(server, "app-b:"));
  EXPECT_EQ(a.key("x"), "app-a:x");
  a.command({"SET", a.key("x"), "from-a"});
  EXPECT_TRUE(b.command({"GET", b.key("x")}).is_nil());
  EXPECT_EQ(b.command({"GET", "app-a:x"}).text(), "from-a");
}

TEST(RedisClient, SelectsTheDatabaseFromTheUrl) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto config = config_for(server);
  config.url = server.url() + "/3";
  rp::RedisClient db3(config);
  rp::RedisClient db0(config_for(server));
  db3.command({"SET", "only-in-3", "v"});
  EXPECT_TRUE(db0.command({"GET", "only-in-3"}).is_nil());
  EXPECT_EQ(db3.command({"GET", "only-in-3"}).text(), "v");
}

TEST(RedisClient, PoolServesManyThreadsWithAtMostPoolSizeConnections) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  rp::RedisClient client(config_for(server));  // pool_size 2
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (!client.command({"INCR", client.key("counter")}).integer()) bad.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(client.command({"GET", client.key("counter")}).text(), "1600");
  EXPECT_LE(client.stats().connections_opened, 2u);
}

TEST(RedisClient, UnreachableServerIsUnavailableAndTheBreakerStopsTrying) {
  rp::RedisConfig config;
  config.url = "redis://127.0.0.1:1";
  rp::ManualClock clock;
  rp::RedisClient client(config, rp::RedisBreakerOptions{3, 1000ms, 8000ms}, clock);
  for (int i = 0; i < 3; ++i) {
    const auto reply = client.command({"PING"});
    EXPECT_TRUE(reply.is_unavailable());
    EXPECT_NE(reply.text().find("127.0.0.1:1"), std::string::npos) << reply.text();
  }
  auto stats = client.stats();
  EXPECT_EQ(stats.failures, 3u);
  EXPECT_TRUE(stats.breaker_open);
  EXPECT_EQ(stats.breaker_opens, 1u);
  EXPECT_FALSE(client.available());

  for (int i = 0; i < 100; ++i) EXPECT_TRUE(client.command({"PING"}).is_unavailable());
  stats = client.stats();
  EXPECT_EQ(stats.failures, 3u) << "an open breaker must not try the network";
  EXPECT_EQ(stats.rejected_by_breaker, 100u);
  EXPECT_NE(client.last_error().find("127.0.0.1:1"), std::string::npos);

  clock.advance(1001ms);  // back-off over: exactly one trial goes out, fails, back-off doubles
  EXPECT_TRUE(client.available());
  EXPECT_TRUE(client.command({"PING"}).is_unavailable());
  EXPECT_EQ(client.stats().failures, 4u);
  clock.advance(1001ms);
  EXPECT_TRUE(client.command({"PING"}).is_unavailable());
  EXPECT_EQ(client.stats().failures, 4u) << "second back-off is 2 s";
  clock.advance(1000ms);
  EXPECT_TRUE(client.command({"PING"}).is_unavailable());
  EXPECT_EQ(client.stats().failures, 5u);
}

TEST(RedisClient, ServerKilledThenRestartedIsUsedAgain) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  rp::ManualClock clock;
  rp::RedisClient client(config_for(server), rp::RedisBreakerOptions{2, 500ms, 5000ms}, clock);
  ASSERT_TRUE(client.command({"SET", client.key("k"), "v"}).ok());

  server.stop();
  int unavailable = 0;
  for (int i = 0; i < 50; ++i) {
    const auto reply = client.command({"GET", client.key("k")});  // must not throw nor raise SIGPIPE
    unavailable += reply.is_unavailable() ? 1 : 0;
  }
  EXPECT_EQ(unavailable, 50);
  EXPECT_TRUE(client.stats().breaker_open);
  EXPECT_LE(client.stats().failures, 2u) << "the breaker opened after the threshold";

  server.restart();
  EXPECT_TRUE(client.command({"PING"}).is_unavailable()) << "still backing off";
  clock.advance(501ms);
  const auto trial = client.command({"SET", client.key("k"), "again"});
  EXPECT_TRUE(trial.ok()) << trial.text();
  EXPECT_FALSE(client.stats().breaker_open);
  EXPECT_EQ(client.command({"GET", client.key("k")}).text(), "again");
  EXPECT_GE(client.stats().connections_opened, 2u) << "reconnected after the restart";
}

TEST(RedisClient, CommandTimeoutIsAFailure) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  auto config = config_for(server);
  // 1 s: the timeout must fire during the pause below, and the PONG after it must come within it on a
  // loaded machine (50 ms left a sanitizer build under load little room for a loopback round trip).
  config.command_timeout_ms = 1000;
  rp::RedisClient client(config);
  rp::RedisClient other(config_for(server));
  // CLIENT PAUSE holds every other client's commands longer than the command timeout. The PING must reach
  // Redis while the pause lasts: 5 s leaves a loaded machine room for that and for the 1 s timeout.
  const auto paused_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(other.command({"CLIENT", "PAUSE", "5000", "ALL"}).ok());
  const auto reply = client.command({"PING"});
  EXPECT_TRUE(reply.is_unavailable());
  EXPECT_NE(reply.text().find("timed out"), std::string::npos) << reply.text();
  std::this_thread::sleep_until(paused_at + 5100ms);  // the pause is over
  EXPECT_EQ(client.command({"PING"}).text(), "PONG") << "a fresh connection after the timeout";
}

// A host that forks: the child must not send commands on the parent's pooled connection (the two
// streams would interleave on one socket); it opens its own, and the parent's keeps working.
TEST(RedisClient, ForkedChildOpensItsOwnConnection) {
  REQUIRE_REDIS();
  rpt::RedisServer server;
  rp::RedisClient client(config_for(server));
  ASSERT_EQ(client.command({"SET", "test:fork", "parent"}).type(), Type::status);
  const auto opened_before = client.stats().connections_opened;

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const auto reply = client.command({"SET", "test:fork", "child"});
    const bool own_connection = client.stats().connections_opened == opened_before + 1;
    ::_exit(reply.type() == Type::status && own_connection ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: the child reused the parent's connection or its command failed";

  // The parent's pooled connection was not closed by the child and is reused.
  const auto value = client.command({"GET", "test:fork"});
  EXPECT_EQ(value.text(), "child");
  EXPECT_EQ(client.stats().connections_opened, opened_before);
}
