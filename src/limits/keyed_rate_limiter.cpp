#include "riptide/performance/limits/keyed_rate_limiter.hpp"

#include <algorithm>
#include <functional>
#include <string>
#include <thread>

#include "limiter_time.hpp"
#include "riptide/performance/core/error.hpp"

namespace riptide::performance {
namespace {

constexpr std::uint32_t kWays = 3;  // what fits in one cache line with the lock

// Test-and-test-and-set: buckets are many and held for a few ns, so a mutex would only add size.
void lock_spin(std::atomic<std::uint32_t>& lock) noexcept {
  for (std::uint32_t spins = 0;; ++spins) {
    if (lock.load(std::memory_order_relaxed) == 0 && lock.exchange(1, std::memory_order_acquire) == 0) return;
    if (spins >= 64) {
      std::this_thread::yield();
    } else {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  }
}

void unlock_spin(std::atomic<std::uint32_t>& lock) noexcept {
  lock.store(0, std::memory_order_release);
}

class SpinGuard {
 public:
  explicit SpinGuard(std::atomic<std::uint32_t>& lock) noexcept : lock_(lock) { lock_spin(lock_); }
  ~SpinGuard() { unlock_spin(lock_); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  std::atomic<std::uint32_t>& lock_;
};

void check_quota(const RateQuota& quota, const char* key) {
  if (quota.period.count() <= 0 || quota.burst == 0 ||
      quota.period.count() > (std::int64_t{1} << 53) / static_cast<std::int64_t>(quota.burst)) {
    throw ConfigError({"code", key, std::to_string(quota.period.count()) + "ns x " + std::to_string(quota.burst),
                       "is not a usable quota",
                       "a period of at least 1 ns, a burst of at least 1, product <= 2^53 ns"});
  }
}

// 0 marks an empty way; the bucket index comes from the same hash, so the tag is the whole hash.
std::uint64_t tag_of(std::uint64_t hash) noexcept {
  return hash | 1u;
}

KeyedRateLimiter::QuotaParams params_of(const RateQuota& quota) noexcept {
  return {quota.period.count(), 1.0 / static_cast<double>(quota.period.count()), quota.burst};
}

}  // namespace

// One cache line: a hit reads nothing else of the table (the quota table is small and stays cached).
struct alignas(64) KeyedRateLimiter::Bucket {
  std::atomic<std::uint32_t> lock{0};
  std::uint16_t quota[kWays] = {};  // index into quotas_
  std::uint64_t tags[kWays] = {};   // 0: empty
  std::int64_t tat[kWays] = {};
};
static_assert(sizeof(KeyedRateLimiter::Bucket) == 64);

KeyedRateLimiter::KeyedRateLimiter(KeyedRateLimiterOptions options, const Clock& clock)
    : options_(options), clock_(&clock), clock_is_manual_(&clock != &system_clock()) {
  check_quota(options_.default_quota, "limits.per_client");
  if (options_.max_keys == 0) {
    throw ConfigError({"code", "limits.max_tracked_clients", "0", "would track no client", "an integer of at least 1"});
  }
  coarse_allowed_ = !clock_is_manual_ && options_.precision != ClockPrecision::precise;
  coarse_min_tolerance_ = options_.precision == ClockPrecision::coarse ? 0 : limits_detail::coarse_min_tolerance_ns();
  // Round down so the table never holds more than max_keys; a tiny table is one partly used bucket.
  bucket_count_ = std::max<std::uint64_t>(1, options_.max_keys / kWays);
  ways_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(kWays, options_.max_keys));
  capacity_ = bucket_count_ * ways_;
  buckets_ = std::make_unique<Bucket[]>(bucket_count_);
  quotas_ = std::make_unique<QuotaParams[]>(kMaxDistinctQuotas);
  quotas_[0] = params_of(options_.default_quota);
}

KeyedRateLimiter::~KeyedRateLimiter() = default;

std::uint64_t KeyedRateLimiter::hash(std::string_view key) const noexcept {
  // libstdc++'s string hash, then a full-avalanche finaliser (splitmix64) so both halves are usable.
  std::uint64_t h = std::hash<std::string_view>{}(key);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

KeyedRateLimiter::Bucket& KeyedRateLimiter::bucket_for(std::uint64_t hash) const noexcept {
  // Multiply-shift maps onto any bucket count, so the table need not be a power of two.
  return buckets_[((hash >> 32) * bucket_count_) >> 32];
}

std::int64_t KeyedRateLimiter::now_ns() const noexcept {
  return coarse_allowed_ ? limits_detail::coarse_now_ns()
                         : (clock_is_manual_ ? limits_detail::clock_now_ns(*clock_) : limits_detail::precise_now_ns());
}

std::uint16_t KeyedRateLimiter::quota_index_for(std::uint64_t hash) const noexcept {
  std::shared_lock lock(overrides_mutex_);
  const auto found = overrides_.find(hash);
  return found == overrides_.end() ? std::uint16_t{0} : found->second;
}

RateDecision KeyedRateLimiter::check_n(std::string_view key, std::uint32_t n) noexcept {
  const std::uint64_t h = hash(key);
  const std::uint64_t tag = tag_of(h);
  Bucket& bucket = bucket_for(h);
  std::int64_t now = now_ns();

  SpinGuard guard(bucket.lock);
  std::uint32_t way = ways_;
  for (std::uint32_t i = 0; i < ways_; ++i) {
    if (bucket.tags[i] == tag) {
      way = i;
      break;
    }
  }
  if (way == ways_) {
    // New key: an empty way, else the way with the oldest TAT (idle when it has passed).
    std::uint32_t victim = 0;
    for (std::uint32_t i = 0; i < ways_; ++i) {
      if (bucket.tags[i] == 0) {
        victim = i;
        break;
      }
      if (bucket.tat[i] < bucket.tat[victim]) victim = i;
    }
    if (bucket.tags[victim] != 0) {
      (bucket.tat[victim] <= now ? idle_evictions_ : forced_evictions_).fetch_add(1, std::memory_order_relaxed);
    }
    new_keys_.fetch_add(1, std::memory_order_relaxed);
    way = victim;
    bucket.tags[way] = tag;
    bucket.tat[way] = 0;
    // Lock order: bucket, then overrides (set_quota never holds both).
    bucket.quota[way] = quota_index_for(h);
  }

  const QuotaParams& quota = quotas_[bucket.quota[way]];
  const std::uint64_t limit = quota.burst;
  const std::int64_t tolerance = quota.period * static_cast<std::int64_t>(limit);
  if (coarse_allowed_ && tolerance < coarse_min_tolerance_) now = limits_detail::precise_now_ns();
  if (n > limit) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return RateDecision{false, limit, 0, RateDecision::kNever, {}};
  }
  const auto step =
      limits_detail::gcra_step(bucket.tat[way], now, quota.period * n, quota.period, tolerance, quota.inverse_period);
  if (!step.allowed) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return RateDecision{false, limit, step.remaining, std::chrono::nanoseconds{step.retry_after_ns},
                        std::chrono::nanoseconds{step.reset_after_ns}};
  }
  bucket.tat[way] = step.new_tat;
  return RateDecision{true, limit, step.remaining, {}, std::chrono::nanoseconds{step.reset_after_ns}};
}

void KeyedRateLimiter::assign_quota(std::uint64_t hash, std::uint16_t index) noexcept {
  const std::uint64_t tag = tag_of(hash);
  Bucket& bucket = bucket_for(hash);
  SpinGuard guard(bucket.lock);
  for (std::uint32_t i = 0; i < ways_; ++i) {
    if (bucket.tags[i] == tag) bucket.quota[i] = index;
  }
}

void KeyedRateLimiter::set_quota(std::string_view key, RateQuota quota) {
  check_quota(quota, "limits.client_quota");
  const QuotaParams params = params_of(quota);
  const std::uint64_t h = hash(key);
  std::uint16_t index = 0;
  {
    std::unique_lock lock(overrides_mutex_);
    const auto end = quotas_.get() + quota_count_;
    const auto found = std::find(quotas_.get(), end, params);
    if (found == end) {
      if (quota_count_ == kMaxDistinctQuotas) {
        throw ConfigError({"code", "limits.client_quota", std::string(key), "would be one distinct quota too many",
                           "at most " + std::to_string(kMaxDistinctQuotas) + " distinct per-client quotas"});
      }
      // Written before any bucket or override can name its index.
      quotas_[quota_count_] = params;
      ++quota_count_;
    }
    index = static_cast<std::uint16_t>(found == end ? quota_count_ - 1 : found - quotas_.get());
    overrides_[h] = index;
  }
  assign_quota(h, index);
}

void KeyedRateLimiter::clear_quota(std::string_view key) {
  const std::uint64_t h = hash(key);
  {
    std::unique_lock lock(overrides_mutex_);
    overrides_.erase(h);
  }
  assign_quota(h, 0);
}

RateQuota KeyedRateLimiter::quota_for(std::string_view key) const {
  const QuotaParams& params = quotas_[quota_index_for(hash(key))];
  return RateQuota{std::chrono::nanoseconds{params.period}, params.burst};
}

std::size_t KeyedRateLimiter::evict_idle() noexcept {
  const std::int64_t now = clock_is_manual_ ? limits_detail::clock_now_ns(*clock_) : limits_detail::precise_now_ns();
  std::size_t evicted = 0;
  for (std::uint64_t b = 0; b < bucket_count_; ++b) {
    Bucket& bucket = buckets_[b];
    SpinGuard guard(bucket.lock);
    for (std::uint32_t i = 0; i < ways_; ++i) {
      if (bucket.tags[i] != 0 && bucket.tat[i] <= now) {
        bucket.tags[i] = 0;
        ++evicted;
      }
    }
  }
  idle_evictions_.fetch_add(evicted, std::memory_order_relaxed);
  return evicted;
}

void KeyedRateLimiter::clear() noexcept {
  for (std::uint64_t b = 0; b < bucket_count_; ++b) {
    Bucket& bucket = buckets_[b];
    SpinGuard guard(bucket.lock);
    std::fill(std::begin(bucket.tags), std::end(bucket.tags), 0);
  }
}

std::uint64_t KeyedRateLimiter::tracked_keys() const noexcept {
  std::uint64_t used = 0;
  for (std::uint64_t b = 0; b < bucket_count_; ++b) {
    Bucket& bucket = buckets_[b];
    SpinGuard guard(bucket.lock);
    for (std::uint32_t i = 0; i < ways_; ++i) used += bucket.tags[i] != 0 ? 1 : 0;
  }
  return used;
}

KeyedRateLimiterStats KeyedRateLimiter::stats() const noexcept {
  KeyedRateLimiterStats stats;
  stats.tracked_keys = tracked_keys();
  stats.capacity = capacity_;
  stats.memory_bytes = bucket_count_ * sizeof(Bucket) + kMaxDistinctQuotas * sizeof(QuotaParams);
  stats.refused = refused_.load(std::memory_order_relaxed);
  stats.new_keys = new_keys_.load(std::memory_order_relaxed);
  stats.idle_evictions = idle_evictions_.load(std::memory_order_relaxed);
  stats.forced_evictions = forced_evictions_.load(std::memory_order_relaxed);
  {
    std::shared_lock lock(overrides_mutex_);
    stats.quota_overrides = overrides_.size();
    stats.distinct_quotas = quota_count_;
  }
  return stats;
}

}  // namespace riptide::performance
