#pragma once
// RedisCache: the L2 layer, binary-safe string values in Redis under `key_prefix + namespace + key`, with
// a TTL per cache and per entry. Built on the shared RedisClient (pool, timeouts, breaker). Nothing here
// throws: an outage shows up as an `error` result and in the statistics.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "riptide/performance/cache/cache_stats.hpp"

namespace riptide::performance {

class RedisClient;

class RedisCache {
 public:
  struct GetResult {
    enum class Status { hit, miss, error };
    Status status = Status::miss;
    std::string value;                             ///< the bytes on a hit
    std::optional<std::chrono::milliseconds> ttl;  ///< time left on a hit; nullopt when the key never expires
    std::string error;                             ///< why, on an error
  };

  /// `name_space` separates this cache's keys from the client's other users (e.g. the rate limiter);
  /// `ttl` applies to put() without its own TTL (nullopt: keys do not expire).
  RedisCache(std::shared_ptr<RedisClient> client,
             std::string name_space = "cache:", std::optional<std::chrono::milliseconds> ttl = std::nullopt);

  /// Value and remaining TTL in one round trip.
  [[nodiscard]] GetResult get(std::string_view key) noexcept;
  /// SET with PX; true when the server acknowledged.
  bool put(std::string_view key, std::string_view value,
           std::optional<std::chrono::milliseconds> ttl = std::nullopt) noexcept;
  /// DEL; true when the server acknowledged (whether or not the key existed).
  bool invalidate(std::string_view key) noexcept;

  [[nodiscard]] L2CacheStats stats() const noexcept;
  /// The full Redis key for `key`.
  [[nodiscard]] std::string redis_key(std::string_view key) const;
  [[nodiscard]] RedisClient& client() noexcept { return *client_; }

 private:
  std::shared_ptr<RedisClient> client_;
  std::string name_space_;
  std::optional<std::chrono::milliseconds> ttl_;
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> errors_{0};
};

}  // namespace riptide::performance
