#include "riptide/performance/limits/redis_rate_limiter.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <string_view>

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/redis/redis_client.hpp"

namespace riptide::performance {
namespace {

// KEYS[1] TAT key; ARGV period_us, tolerance_us, n. Returns {allowed, remaining, retry_after_us,
// reset_after_us}. Microseconds since the epoch stay below 2^53, so Lua's doubles hold them exactly.
// Redis 7 replicates a script's effects, so TIME before a write is allowed.
constexpr const char* kScript = R"lua(
local period = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + period * n
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, math.floor((now + tolerance - tat) / period), allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now + tolerance - new_tat) / period), 0, new_tat - now}
)lua";

std::int64_t period_us_of(const RateQuota& quota) {
  const std::int64_t us = (quota.period.count() + 500) / 1000;
  if (us < 1) {
    throw ConfigError({"code", "limits.rate_limit_per_second", std::to_string(quota.rate_per_second()),
                       "is too fast for the distributed limiter (its unit is 1 us)",
                       "at most 1,000,000 requests per second"});
  }
  return us;
}

}  // namespace

const char* RedisRateLimiter::script() noexcept {
  return kScript;
}

RedisRateLimiter::RedisRateLimiter(std::shared_ptr<RedisClient> client, RedisRateLimiterOptions options,
                                   const Clock& clock)
    : client_(std::move(client)), options_(std::move(options)), local_(options_.quota, clock) {
  if (!client_) throw Error("RedisRateLimiter needs a RedisClient");
  const std::int64_t period = period_us_of(options_.quota);
  period_us_ = std::to_string(period);
  tolerance_us_ = std::to_string(period * options_.quota.burst);
  redis_key_ = client_->key(options_.key);
}

RedisRateLimiter::~RedisRateLimiter() = default;

bool RedisRateLimiter::load_script() noexcept {
  const RedisReply reply = client_->command({"SCRIPT", "LOAD", kScript});
  if (reply.type() != RedisReply::Type::string || reply.text().size() != 40) {
    try {
      std::lock_guard lock(mutex_);
      last_error_ = reply.ok() ? "SCRIPT LOAD returned no SHA1" : reply.text();
    } catch (...) {
    }
    return false;
  }
  std::lock_guard lock(mutex_);
  std::copy(reply.text().begin(), reply.text().end(), sha_.begin());
  sha_loaded_ = true;
  script_loads_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

RedisRateLimiter::Attempt RedisRateLimiter::evaluate(std::uint32_t n, RateDecision& decision) noexcept {
  std::array<char, 40> sha{};
  {
    std::lock_guard lock(mutex_);
    if (!sha_loaded_) return Attempt::noscript;
    sha = sha_;
  }
  char count[12];
  const auto written = std::to_chars(count, count + sizeof count, n).ptr;
  const RedisReply reply =
      client_->command({"EVALSHA", std::string_view(sha.data(), sha.size()), "1", redis_key_, period_us_, tolerance_us_,
                        std::string_view(count, static_cast<std::size_t>(written - count))});
  if (reply.is_error() && reply.text().rfind("NOSCRIPT", 0) == 0) return Attempt::noscript;
  const auto& items = reply.elements();
  if (reply.type() != RedisReply::Type::array || items.size() != 4 || !items[0].integer() || !items[1].integer() ||
      !items[2].integer() || !items[3].integer()) {
    try {
      std::lock_guard lock(mutex_);
      last_error_ = reply.ok() ? "unexpected reply to EVALSHA" : reply.text();
    } catch (...) {
    }
    return Attempt::unavailable;
  }
  decision.allowed = *items[0].integer() == 1;
  decision.limit = options_.quota.burst;
  decision.remaining = static_cast<std::uint64_t>(std::max<std::int64_t>(0, *items[1].integer()));
  decision.retry_after = redis_duration(*items[2].integer());
  decision.reset_after = redis_duration(*items[3].integer());
  return Attempt::done;
}

// Redis' microseconds as a duration: negative is now, and beyond a year (not a reply of our script) is
// "never" rather than an overflow when scaled to nanoseconds.
std::chrono::nanoseconds RedisRateLimiter::redis_duration(std::int64_t micros) noexcept {
  constexpr std::int64_t kYearMicros = std::int64_t{366} * 86'400 * 1'000'000;
  if (micros > kYearMicros) return RateDecision::kNever;
  return std::chrono::microseconds{std::max<std::int64_t>(0, micros)};
}

DistributedRateDecision RedisRateLimiter::check_n(std::uint32_t n) noexcept {
  if (n > options_.quota.burst) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return {RateDecision{false, options_.quota.burst, 0, RateDecision::kNever, {}}, RateDecisionSource::redis};
  }
  RateDecision decision;
  Attempt attempt = evaluate(n, decision);
  // NOSCRIPT (first call, or Redis restarted and lost its script cache): load and try once more.
  if (attempt == Attempt::noscript) attempt = load_script() ? evaluate(n, decision) : Attempt::unavailable;
  if (attempt != Attempt::done) {
    std::string reason;
    try {
      std::lock_guard lock(mutex_);
      reason = last_error_;
    } catch (...) {
    }
    return fallback(n, reason);
  }
  if (!redis_available_.exchange(true, std::memory_order_relaxed) && redis_errors_.load() > 0) {
    try {
      logger()->info("distributed rate limiter '{}': Redis answers again, limit shared", options_.key);
    } catch (...) {
    }
  }
  redis_decisions_.fetch_add(1, std::memory_order_relaxed);
  if (!decision.allowed) refused_.fetch_add(1, std::memory_order_relaxed);
  return {decision, RateDecisionSource::redis};
}

DistributedRateDecision RedisRateLimiter::fallback(std::uint32_t n, const std::string& reason) noexcept {
  redis_errors_.fetch_add(1, std::memory_order_relaxed);
  fallback_decisions_.fetch_add(1, std::memory_order_relaxed);
  if (redis_available_.exchange(false, std::memory_order_relaxed) || redis_errors_.load() == 1) {
    try {
      logger()->warn("distributed rate limiter '{}': Redis unavailable ({}); {}", options_.key, reason,
                     options_.fail_open ? "fail-open: the local limiter decides" : "fail-closed: refusing");
    } catch (...) {
    }
  }
  if (options_.fail_open) {
    const RateDecision local = local_.check_n(n);
    if (!local.allowed) refused_.fetch_add(1, std::memory_order_relaxed);
    return {local, RateDecisionSource::local_fallback};
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  return {RateDecision{false, options_.quota.burst, 0, options_.fail_closed_retry_after, {}},
          RateDecisionSource::fail_closed};
}

RedisRateLimiterStats RedisRateLimiter::stats() const {
  RedisRateLimiterStats stats;
  stats.redis_decisions = redis_decisions_.load(std::memory_order_relaxed);
  stats.fallback_decisions = fallback_decisions_.load(std::memory_order_relaxed);
  stats.refused = refused_.load(std::memory_order_relaxed);
  stats.script_loads = script_loads_.load(std::memory_order_relaxed);
  stats.redis_errors = redis_errors_.load(std::memory_order_relaxed);
  stats.redis_available = redis_available_.load(std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  stats.last_error = last_error_;
  return stats;
}

}  // namespace riptide::performance
