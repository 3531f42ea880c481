#pragma once
// A small, blocking Redis client on hiredis 0.14 shared by the L2 cache and the distributed rate limiter.
// It keeps a bounded pool of connections, applies connect and command timeouts, reconnects after any
// error, prefixes keys, and wraps everything in a breaker: after `failure_threshold` consecutive
// failures it stops trying for a back-off period, so a Redis outage costs one timeout, not one per call.
// command() never throws; every outcome is a RedisReply.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/fork_safety.hpp"
#include "riptide/performance/redis/redis_reply.hpp"

namespace riptide::performance {

/// Where to connect, parsed from redis://host[:port][/db].
struct RedisEndpoint {
  std::string host;           ///< host name or address (IPv6 without the brackets)
  std::uint16_t port = 6379;  ///< TCP port; 6379 when the URL has none
  std::uint32_t db = 0;       ///< database selected on every new connection

  bool operator==(const RedisEndpoint&) const = default;
};

/// Parses `url`. Accepted: redis://host[:port][/db], host a name, IPv4 or [IPv6]; port 1-65535; db 0-15.
/// Anything else (rediss://, unix sockets, user:password@, query strings) throws ConfigError naming
/// `key` (default "redis.url"), the value and the accepted form.
[[nodiscard]] RedisEndpoint parse_redis_url(std::string_view url, std::string_view key = "redis.url",
                                            std::string_view source = "code");

/// When the breaker stops trying and for how long.
struct RedisBreakerOptions {
  std::uint32_t failure_threshold = 3;                  ///< consecutive failures that open it
  std::chrono::milliseconds open_duration{1000};        ///< first back-off; doubles while trials fail
  std::chrono::milliseconds max_open_duration{30'000};  ///< cap on the doubled back-off
};

/// Counters since construction; cheap to read at any time.
struct RedisClientStats {
  std::uint64_t commands = 0;             ///< command() calls
  std::uint64_t failures = 0;             ///< calls that got no answer (IO error, timeout, pool exhausted)
  std::uint64_t server_errors = 0;        ///< -ERR replies (the server answered; not a failure)
  std::uint64_t rejected_by_breaker = 0;  ///< calls refused without trying while the breaker was open
  std::uint64_t connections_opened = 0;   ///< successful connects, first ones and reconnects
  std::uint64_t breaker_opens = 0;        ///< closed/half-open -> open transitions
  bool breaker_open = false;              ///< refusing calls right now
};

class RedisClient {
 public:
  /// Parses config.url (throws ConfigError when malformed or empty). Connects lazily: constructing a
  /// client never blocks, and an unreachable server shows up as unavailable replies.
  explicit RedisClient(RedisConfig config, RedisBreakerOptions breaker = {}, const Clock& clock = system_clock());
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /// Runs one command; arguments are binary-safe. Never throws.
  RedisReply command(std::span<const std::string_view> argv) noexcept;
  RedisReply command(std::initializer_list<std::string_view> argv) noexcept {
    return command(std::span<const std::string_view>(argv.begin(), argv.size()));
  }

  /// `key_prefix + key`: the name this library uses in Redis for `key`.
  [[nodiscard]] std::string key(std::string_view key) const;
  [[nodiscard]] const std::string& key_prefix() const noexcept { return config_.key_prefix; }
  [[nodiscard]] const RedisEndpoint& endpoint() const noexcept { return endpoint_; }

  /// False while the breaker refuses calls.
  [[nodiscard]] bool available() const noexcept;
  [[nodiscard]] RedisClientStats stats() const noexcept;
  /// The most recent failure, for health reports ("" when none yet).
  [[nodiscard]] std::string last_error() const;

 private:
  struct Connection;
  enum class Admission { allowed, trial, refused };

  Admission admit() noexcept;
  void on_success(Admission admission) noexcept;
  void on_failure(Admission admission, const std::string& reason) noexcept;
  std::unique_ptr<Connection> acquire(std::string& error, bool& fresh) noexcept;
  void release(std::unique_ptr<Connection> connection, bool healthy) noexcept;
  std::unique_ptr<Connection> connect(std::string& error) noexcept;
  void drop_idle() noexcept;
  void forget_inherited_connections_locked() noexcept;

  RedisConfig config_;
  RedisEndpoint endpoint_;
  RedisBreakerOptions breaker_options_;
  const Clock& clock_;

  // Pool: idle connections plus how many exist in total (idle + lent out), bounded by pool_size.
  std::mutex pool_mutex_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::uint32_t open_connections_ = 0;
  // Bumped on every failure: connections made before it are presumed dead and are not reused.
  std::uint64_t generation_ = 0;
  // The fork generation the pooled connections belong to; a fork() child opens its own (see acquire).
  std::uint64_t pool_fork_generation_ = fork_generation();
  detail::ForkRegistration fork_registration_;  // holds pool_mutex_ across fork()

  // Breaker state, under breaker_mutex_; `open_` mirrors "refusing" for lock-free reads.
  mutable std::mutex breaker_mutex_;
  std::atomic<std::uint32_t> consecutive_failures_{0};  // atomic so a success can skip the lock
  bool trial_in_flight_ = false;
  std::chrono::steady_clock::time_point open_until_{};
  std::chrono::milliseconds current_open_duration_{0};
  std::atomic<bool> open_{false};
  std::string last_error_;

  std::atomic<std::uint64_t> commands_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> server_errors_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> connections_opened_{0};
  std::atomic<std::uint64_t> breaker_opens_{0};
};

}  // namespace riptide::performance
