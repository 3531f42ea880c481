// One process of the distributed rate-limit test: checks the shared limit as fast as it can between two
// wall-clock instants and prints how many checks Redis admitted.
// Usage: limits_redis_worker <redis-url> <key> <rate> <burst> <start-epoch-ms> <end-epoch-ms>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/limits/redis_rate_limiter.hpp"
#include "riptide/performance/redis/redis_client.hpp"

namespace rp = riptide::performance;

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s <redis-url> <key> <rate> <burst> <start-epoch-ms> <end-epoch-ms>\n", argv[0]);
    return 2;
  }
  rp::RedisConfig redis;
  redis.url = argv[1];
  redis.command_timeout_ms = 1000;  // a loaded test machine must not turn slow answers into fallbacks
  redis.connect_timeout_ms = 1000;
  rp::RedisRateLimiterOptions options;
  options.key = argv[2];
  options.quota = rp::RateQuota::per_second(std::atof(argv[3]), static_cast<std::uint32_t>(std::atoi(argv[4])));
  options.fail_open = false;
  rp::RedisRateLimiter limiter(std::make_shared<rp::RedisClient>(redis), options);

  using Wall = std::chrono::system_clock;
  const Wall::time_point start{std::chrono::milliseconds{std::atoll(argv[5])}};
  const Wall::time_point end{std::chrono::milliseconds{std::atoll(argv[6])}};
  // Connect and load the script before the window opens: zero cells consume nothing.
  if (limiter.check_n(0).source != rp::RateDecisionSource::redis) {
    std::fprintf(stderr, "redis not reachable at %s\n", argv[1]);
    return 1;
  }
  std::this_thread::sleep_until(start);
  std::uint64_t admitted = 0;
  std::uint64_t checks = 0;
  std::uint64_t not_redis = 0;
  while (Wall::now() < end) {
    const auto result = limiter.check_n(1);
    ++checks;
    if (result.source != rp::RateDecisionSource::redis) ++not_redis;
    if (result.decision.allowed) ++admitted;
  }
  std::printf("%llu %llu %llu\n", static_cast<unsigned long long>(admitted), static_cast<unsigned long long>(checks),
              static_cast<unsigned long long>(not_redis));
  return 0;
}
