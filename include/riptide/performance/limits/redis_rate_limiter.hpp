#pragma once
// GCRA shared by every process through Redis: the TAT lives in one Redis key and one Lua script reads
// Redis TIME, applies the same rule as GcraLimiter and writes the new TAT atomically, so N processes
// together admit the configured rate (clock skew between hosts does not matter: Redis' clock is the
// only one). The script is loaded once (SCRIPT LOAD) and run with EVALSHA; after a Redis restart has
// emptied the script cache, NOSCRIPT makes it load again.
// When Redis cannot answer, a decision still comes back at once: fail-open uses a local GcraLimiter
// with the same quota (the process keeps its own share, not the fleet's), fail-closed refuses.
// Each check costs a network round trip: use it where the host asked for a fleet-wide limit.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/limits/gcra_limiter.hpp"
#include "riptide/performance/limits/rate_decision.hpp"
#include "riptide/performance/limits/rate_quota.hpp"

namespace riptide::performance {

class RedisClient;

struct RedisRateLimiterOptions {
  RateQuota quota;                    ///< fleet-wide quota (period rounded to whole microseconds, >= 1 us)
  std::string key = "limits:global";  ///< Redis key of the TAT, under the client's key prefix
  bool fail_open = true;              ///< Redis down: local limiter (true) or refuse (false)
  std::chrono::nanoseconds fail_closed_retry_after = std::chrono::seconds{1};  ///< retry_after when refusing
};

/// Where a decision came from.
enum class RateDecisionSource : std::uint8_t {
  redis,           ///< the shared limit in Redis
  local_fallback,  ///< Redis unavailable, fail-open: the local limiter decided
  fail_closed,     ///< Redis unavailable, fail-closed: refused without deciding
};

struct DistributedRateDecision {
  RateDecision decision;                                  ///< the answer
  RateDecisionSource source = RateDecisionSource::redis;  ///< who gave it
};

/// Counters since construction.
struct RedisRateLimiterStats {
  std::uint64_t redis_decisions = 0;     ///< decisions made by the script
  std::uint64_t fallback_decisions = 0;  ///< decisions made locally or refused because Redis was unavailable
  std::uint64_t refused = 0;             ///< refusals of every source
  std::uint64_t script_loads = 0;        ///< SCRIPT LOAD calls that succeeded (first load and after NOSCRIPT)
  std::uint64_t redis_errors = 0;        ///< calls without a usable answer
  bool redis_available = false;          ///< the last call reached Redis
  std::string last_error;                ///< most recent failure ("" when none)
};

class RedisRateLimiter {
 public:
  /// `client` must not be null. The local fallback limiter reads `clock`.
  RedisRateLimiter(std::shared_ptr<RedisClient> client, RedisRateLimiterOptions options,
                   const Clock& clock = system_clock());
  ~RedisRateLimiter();
  RedisRateLimiter(const RedisRateLimiter&) = delete;
  RedisRateLimiter& operator=(const RedisRateLimiter&) = delete;

  [[nodiscard]] RateDecision check() noexcept { return check_n(1).decision; }
  /// `n` cells, all or nothing. Never throws; blocks for at most the client's command timeout.
  [[nodiscard]] DistributedRateDecision check_n(std::uint32_t n) noexcept;

  [[nodiscard]] const RedisRateLimiterOptions& options() const noexcept { return options_; }
  [[nodiscard]] GcraLimiter& local_limiter() noexcept { return local_; }
  [[nodiscard]] RedisRateLimiterStats stats() const;

  /// The Lua source of the script (for docs and tests).
  [[nodiscard]] static const char* script() noexcept;

 private:
  [[nodiscard]] static std::chrono::nanoseconds redis_duration(std::int64_t micros) noexcept;
  enum class Attempt { done, noscript, unavailable };
  [[nodiscard]] bool load_script() noexcept;
  Attempt evaluate(std::uint32_t n, RateDecision& decision) noexcept;
  DistributedRateDecision fallback(std::uint32_t n, const std::string& reason) noexcept;

  std::shared_ptr<RedisClient> client_;
  RedisRateLimiterOptions options_;
  GcraLimiter local_;
  std::string redis_key_;
  std::string period_us_;
  std::string tolerance_us_;

  mutable std::mutex mutex_;  // script SHA and last error
  std::array<char, 40> sha_{};
  bool sha_loaded_ = false;
  std::string last_error_;

  std::atomic<std::uint64_t> redis_decisions_{0};
  std::atomic<std::uint64_t> fallback_decisions_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> script_loads_{0};
  std::atomic<std::uint64_t> redis_errors_{0};
  std::atomic<bool> redis_available_{false};
};

}  // namespace riptide::performance
