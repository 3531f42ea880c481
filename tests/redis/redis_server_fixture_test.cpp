// The fixture itself: a real server on a free port, killed and restarted on the same port.
#include <gtest/gtest.h>

#include "support/redis_server.hpp"

namespace rpt = riptide::performance::testing;

TEST(RedisServerFixture, StartsStopsAndRestartsOnTheSamePort) {
  if (!rpt::RedisServer::find_binary()) GTEST_SKIP() << "redis-server not installed";
  rpt::RedisServer server;
  ASSERT_TRUE(server.running());
  EXPECT_NE(server.port(), 0);
  EXPECT_EQ(server.url(), "redis://127.0.0.1:" + std::to_string(server.port()));
  EXPECT_TRUE(server.ping());
  const auto port = server.port();

  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_FALSE(server.ping());

  server.restart();
  EXPECT_TRUE(server.running());
  EXPECT_EQ(server.port(), port);
  EXPECT_TRUE(server.ping());
}

TEST(RedisServerFixture, TwoServersGetDifferentPorts) {
  if (!rpt::RedisServer::find_binary()) GTEST_SKIP() << "redis-server not installed";
  rpt::RedisServer a;
  rpt::RedisServer b;
  EXPECT_NE(a.port(), b.port());
  EXPECT_TRUE(a.ping());
  EXPECT_TRUE(b.ping());
}
