#include "riptide/performance/cache/tiered_cache.hpp"

#include "riptide/performance/core/features.hpp"
#if RIPTIDE_PERF_HAS_REDIS
#include "riptide/performance/cache/redis_cache.hpp"
#include "riptide/performance/redis/redis_client.hpp"
#endif

namespace riptide::performance {

#if !RIPTIDE_PERF_HAS_REDIS
// Without Redis in the build the L2 pointer stays null; these keep the calls below compiling.
class RedisCache {
 public:
  struct GetResult {
    enum class Status { hit, miss, error };
    Status status = Status::miss;
    std::string value;
    std::optional<std::chrono::milliseconds> ttl;
  };
  GetResult get(std::string_view) noexcept { return {}; }
  bool put(std::string_view, std::string_view, std::optional<std::chrono::milliseconds>) noexcept { return false; }
  bool invalidate(std::string_view) noexcept { return false; }
  [[nodiscard]] L2CacheStats stats() const noexcept { return {}; }
};
#endif

TieredCache::L1::Options TieredCache::l1_options(const Options& options) {
  L1::Options l1;
  l1.max_weight = options.max_bytes;
  l1.weigher = [](const std::string& key, const Value& value) {
    return key.size() + (value ? value->size() : 0) + kEntryOverhead;
  };
  if (options.ttl) l1.ttl = *options.ttl;
  l1.shards = options.shards;
  l1.clock = options.clock;
  return l1;
}

TieredCache::TieredCache(Options options, std::shared_ptr<RedisCache> l2)
    : options_(options), l1_(l1_options(options)), l2_(std::move(l2)) {}

TieredCache::~TieredCache() = default;

std::unique_ptr<TieredCache> TieredCache::from_config(const CacheConfig& cache, const RedisConfig& redis) {
  Options options;
  options.max_bytes = cache.max_size_mb << 20;
  options.ttl = cache.ttl_sec > 0
                    ? std::optional(std::chrono::milliseconds(static_cast<std::int64_t>(cache.ttl_sec * 1000.0)))
                    : std::nullopt;
  std::shared_ptr<RedisCache> l2;
#if RIPTIDE_PERF_HAS_REDIS
  if (!redis.url.empty())
    l2 = std::make_shared<RedisCache>(std::make_shared<RedisClient>(redis), "cache:", options.ttl);
#else
  (void)redis;
#endif
  return std::make_unique<TieredCache>(options, std::move(l2));
}

TieredCache::Value TieredCache::get(const std::string& key) noexcept {
  requests_.fetch_add(1, std::memory_order_relaxed);
  try {
    if (auto hit = l1_.get(key)) return std::move(*hit);
    if (!l2_) return nullptr;
    auto remote = l2_->get(key);
    if (remote.status != RedisCache::GetResult::Status::hit) return nullptr;
    auto value = std::make_shared<const std::string>(std::move(remote.value));
    // Promote with the time Redis has left, so L1 never serves a value longer than L2 would.
    std::optional<std::chrono::nanoseconds> ttl;
    if (remote.ttl) ttl = std::max(*remote.ttl, std::chrono::milliseconds{1});
    if (ttl && options_.ttl) ttl = std::min<std::chrono::nanoseconds>(*ttl, *options_.ttl);
    l1_.put(key, value, ttl);
    return value;
  } catch (...) {
    return nullptr;  // allocation failure: a miss, never an exception into the read path
  }
}

void TieredCache::put(const std::string& key, std::string value, std::optional<std::chrono::milliseconds> ttl) {
  put_shared(key, std::make_shared<const std::string>(std::move(value)), ttl);
}

void TieredCache::put_shared(const std::string& key, Value value, std::optional<std::chrono::milliseconds> ttl) {
  if (l2_) (void)l2_->put(key, *value, ttl ? ttl : options_.ttl);
  l1_.put(key, std::move(value), ttl ? std::optional<std::chrono::nanoseconds>(*ttl) : std::nullopt);
}

void TieredCache::invalidate(const std::string& key) {
  l1_.invalidate(key);
  if (l2_) (void)l2_->invalidate(key);
}

TieredCache::Value TieredCache::get_or_load(const std::string& key, const Loader& loader,
                                            std::optional<std::chrono::milliseconds> ttl) {
  if (Value hit = get(key)) return hit;
  std::promise<Value> promise;
  std::shared_future<Value> flight;
  bool leader = false;
  {
    const std::lock_guard lock(flights_mutex_);
    if (auto found = flights_.find(key); found != flights_.end()) {
      flight = found->second;
    } else {
      flight = promise.get_future().share();
      flights_.emplace(key, flight);
      leader = true;
    }
  }
  if (!leader) {
    coalesced_.fetch_add(1, std::memory_order_relaxed);
    return flight.get();  // rethrows the leader's loader exception
  }
  try {
    Value value;
    // A leader that finished between our miss and our flight registration has already filled L1.
    if (l1_.contains(key)) {
      if (auto again = l1_.get(key)) value = std::move(*again);
    }
    if (!value) {
      loads_.fetch_add(1, std::memory_order_relaxed);
      if (std::optional<std::string> loaded = loader(key)) {
        value = std::make_shared<const std::string>(std::move(*loaded));
        put_shared(key, value, ttl);
      } else {
        load_failures_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    promise.set_value(std::move(value));
  } catch (...) {
    load_failures_.fetch_add(1, std::memory_order_relaxed);
    promise.set_exception(std::current_exception());
  }
  {
    const std::lock_guard lock(flights_mutex_);
    flights_.erase(key);
  }
  return flight.get();
}

CacheStats TieredCache::stats() const {
  CacheStats s;
  s.l1 = l1_.stats();
  if (l2_) s.l2 = l2_->stats();
  s.requests = requests_.load(std::memory_order_relaxed);
  s.loads = loads_.load(std::memory_order_relaxed);
  s.load_failures = load_failures_.load(std::memory_order_relaxed);
  s.coalesced_loads = coalesced_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace riptide::performance
