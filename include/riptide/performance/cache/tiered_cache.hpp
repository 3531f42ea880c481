#pragma once
// TieredCache: the in-process W-TinyLFU cache (L1) in front of Redis (L2), for byte-string values.
// get() tries L1, then L2 (a hit is promoted into L1 with the TTL Redis has left); put() writes both;
// invalidate() removes from both; get_or_load() runs the loader on a miss with single flight, so
// concurrent misses for one key load once. A Redis failure never throws into a read: it is counted and
// the value comes from L1 or the loader. Values are shared immutable strings, so a hit copies a pointer.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "riptide/performance/cache/cache_stats.hpp"
#include "riptide/performance/cache/tiny_lfu_cache.hpp"
#include "riptide/performance/core/config.hpp"

namespace riptide::performance {

class RedisCache;

class TieredCache {
 public:
  using Value = std::shared_ptr<const std::string>;
  /// Produces the value for a key on a miss; nullopt means "no value" (nothing is cached).
  using Loader = std::function<std::optional<std::string>(const std::string& key)>;

  struct Options {
    std::uint64_t max_bytes = 100ULL << 20;  ///< L1 bound: key + value bytes + per-entry overhead
    std::optional<std::chrono::milliseconds> ttl = std::chrono::hours{1};  ///< both layers; nullopt: none
    std::uint32_t shards = 0;                                              ///< L1 lock domains (0: automatic)
    const Clock* clock = nullptr;  ///< L1 time source (nullptr: coarse monotonic clock)
  };

  /// Bytes charged per L1 entry beyond key and value (node, links, control blocks).
  static constexpr std::uint64_t kEntryOverhead = 96;

  /// `l2` may be null: an L1-only cache with the same API.
  explicit TieredCache(Options options, std::shared_ptr<RedisCache> l2 = nullptr);
  ~TieredCache();
  TieredCache(const TieredCache&) = delete;
  TieredCache& operator=(const TieredCache&) = delete;

  /// From the [cache] and [redis] configuration: max_size_mb, ttl_sec, and an L2 when redis.url is set
  /// (and the build has Redis). Throws ConfigError for a malformed redis.url.
  [[nodiscard]] static std::unique_ptr<TieredCache> from_config(const CacheConfig& cache, const RedisConfig& redis);

  /// L1, then L2; nullptr on a miss in both (or L2 down). Never throws.
  [[nodiscard]] Value get(const std::string& key) noexcept;
  /// Writes L1 and L2 (L2 failures are counted, not thrown). `ttl` overrides the cache TTL.
  void put(const std::string& key, std::string value, std::optional<std::chrono::milliseconds> ttl = std::nullopt);
  /// Removes from both layers.
  void invalidate(const std::string& key);
  /// get(); on a miss one caller runs `loader` while concurrent callers for the same key wait for its
  /// result. The loaded value is put() in both layers. A loader exception reaches every waiting caller.
  [[nodiscard]] Value get_or_load(const std::string& key, const Loader& loader,
                                  std::optional<std::chrono::milliseconds> ttl = std::nullopt);

  [[nodiscard]] CacheStats stats() const;
  [[nodiscard]] bool has_l2() const noexcept { return l2_ != nullptr; }
  /// Drops expired L1 entries now (for a maintenance thread).
  std::size_t purge_expired() { return l1_.purge_expired(); }

 private:
  using L1 = TinyLfuCache<std::string, Value>;
  static L1::Options l1_options(const Options& options);
  void put_shared(const std::string& key, Value value, std::optional<std::chrono::milliseconds> ttl);

  Options options_;
  L1 l1_;
  std::shared_ptr<RedisCache> l2_;

  std::mutex flights_mutex_;
  std::unordered_map<std::string, std::shared_future<Value>> flights_;

  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> loads_{0};
  std::atomic<std::uint64_t> load_failures_{0};
  std::atomic<std::uint64_t> coalesced_{0};
};

}  // namespace riptide::performance
