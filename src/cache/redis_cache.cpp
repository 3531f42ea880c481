#include "riptide/performance/cache/redis_cache.hpp"

#include <algorithm>

#include "riptide/performance/redis/redis_client.hpp"

namespace riptide::performance {
namespace {

// GET and PTTL in one round trip. A missing key gives {false, -2}; Redis turns false into nil.
constexpr std::string_view kGetWithTtl = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";

}  // namespace

RedisCache::RedisCache(std::shared_ptr<RedisClient> client, std::string name_space,
                       std::optional<std::chrono::milliseconds> ttl)
    : client_(std::move(client)), name_space_(std::move(name_space)), ttl_(ttl) {}

std::string RedisCache::redis_key(std::string_view key) const {
  std::string full = client_->key(name_space_);
  full.append(key);
  return full;
}

RedisCache::GetResult RedisCache::get(std::string_view key) noexcept {
  GetResult result;
  try {
    const std::string full = redis_key(key);
    const RedisReply reply = client_->command({"EVAL", kGetWithTtl, "1", full}).expect(RedisReply::Type::array);
    if (!reply.ok() || reply.elements().size() != 2) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      result.status = GetResult::Status::error;
      result.error = reply.ok() ? "unexpected reply to GET+PTTL" : reply.text();
      return result;
    }
    const RedisReply& value = reply.elements()[0];
    if (value.is_nil()) {
      misses_.fetch_add(1, std::memory_order_relaxed);
      result.status = GetResult::Status::miss;
      return result;
    }
    if (value.type() != RedisReply::Type::string) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      result.status = GetResult::Status::error;
      result.error = "cache key " + full + " holds a " + std::string(RedisReply::type_name(value.type()));
      return result;
    }
    hits_.fetch_add(1, std::memory_order_relaxed);
    result.status = GetResult::Status::hit;
    result.value = value.text();
    if (const auto pttl = reply.elements()[1].integer(); pttl && *pttl >= 0) {
      result.ttl = std::chrono::milliseconds(*pttl);
    }
  } catch (...) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    result.status = GetResult::Status::error;
    result.error = "redis cache: out of memory";
  }
  return result;
}

bool RedisCache::put(std::string_view key, std::string_view value,
                     std::optional<std::chrono::milliseconds> ttl) noexcept {
  try {
    const std::string full = redis_key(key);
    const auto effective = ttl ? ttl : ttl_;
    RedisReply reply;
    if (effective) {
      const std::string px = std::to_string(std::max<std::int64_t>(1, effective->count()));
      reply = client_->command({"SET", full, value, "PX", px});
    } else {
      reply = client_->command({"SET", full, value});
    }
    if (reply.ok()) {
      writes_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  } catch (...) {
  }
  errors_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool RedisCache::invalidate(std::string_view key) noexcept {
  try {
    if (client_->command({"DEL", redis_key(key)}).ok()) {
      writes_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  } catch (...) {
  }
  errors_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

L2CacheStats RedisCache::stats() const noexcept {
  L2CacheStats s;
  s.hits = hits_.load(std::memory_order_relaxed);
  s.misses = misses_.load(std::memory_order_relaxed);
  s.writes = writes_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  const auto client_stats = client_->stats();
  s.available = !client_stats.breaker_open;
  s.breaker_opens = client_stats.breaker_opens;
  return s;
}

}  // namespace riptide::performance
