#pragma once
// Per-client GCRA limits with bounded state. Keys live in a fixed, set-associative table allocated once
// (max_keys slots, 3 per bucket; a bucket is one cache line holding its own spin lock, the 3 key hashes,
// their TATs and quota indices): a flood of distinct client ids never allocates and cannot grow memory,
// a check reads one cache line of the table, and threads only meet when they hit the same bucket.
//
// Only a 64-bit hash of each key is kept (63 bits compared), never the key: two keys whose hashes
// collide would share one limit (for 100,000 live keys, a chance of about 5*10^-10). When a new key
// finds its bucket full it takes the slot whose TAT is oldest; a slot whose TAT has passed is idle
// (indistinguishable from an unseen key), so evicting it loses nothing. Evicting a still-active slot
// (all 3 active) hands that client a fresh burst; those forced evictions are counted so a table that is
// too small shows up in the metrics.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/limits/rate_decision.hpp"
#include "riptide/performance/limits/rate_quota.hpp"

namespace riptide::performance {

struct KeyedRateLimiterOptions {
  RateQuota default_quota = RateQuota{std::chrono::milliseconds{100}, 10};  ///< quota of keys with no override
  std::uint64_t max_keys = 100'000;  ///< bound on keys tracked at once; the table holds at most this many
  ClockPrecision precision = ClockPrecision::automatic;  ///< see ClockPrecision
};

/// Counters since construction.
struct KeyedRateLimiterStats {
  std::uint64_t tracked_keys = 0;      ///< slots in use now (active and idle keys)
  std::uint64_t capacity = 0;          ///< slots in the table (<= max_keys)
  std::uint64_t memory_bytes = 0;      ///< bytes of the table, fixed at construction
  std::uint64_t refused = 0;           ///< requests refused
  std::uint64_t new_keys = 0;          ///< keys that were not in the table when checked
  std::uint64_t idle_evictions = 0;    ///< idle keys replaced by new ones (lossless)
  std::uint64_t forced_evictions = 0;  ///< active keys replaced because their bucket was full of active keys
  std::uint64_t quota_overrides = 0;   ///< keys with their own quota
  std::uint64_t distinct_quotas = 0;   ///< different quotas in use (default included), <= kMaxDistinctQuotas
};

class KeyedRateLimiter {
 public:
  /// Throws ConfigError when max_keys is 0 or the quota is unusable. `clock` must outlive the limiter.
  explicit KeyedRateLimiter(KeyedRateLimiterOptions options, const Clock& clock = system_clock());
  ~KeyedRateLimiter();
  KeyedRateLimiter(const KeyedRateLimiter&) = delete;
  KeyedRateLimiter& operator=(const KeyedRateLimiter&) = delete;

  /// One cell for `key`. Thread-safe; no allocation; locks only the key's bucket.
  [[nodiscard]] RateDecision check(std::string_view key) noexcept { return check_n(key, 1); }
  /// `n` cells for `key`, all or nothing (see GcraLimiter::check_n).
  [[nodiscard]] RateDecision check_n(std::string_view key, std::uint32_t n) noexcept;

  /// Gives `key` its own quota (a paying tier, an internal client); applies to its next check. Throws
  /// ConfigError for an unusable quota or when it would be the 1025th distinct quota.
  void set_quota(std::string_view key, RateQuota quota);
  /// Back to the default quota.
  void clear_quota(std::string_view key);
  /// The quota `key` is checked against.
  [[nodiscard]] RateQuota quota_for(std::string_view key) const;

  /// Frees every idle slot (TAT passed) now; returns how many. New keys reuse idle slots anyway, so this
  /// only makes tracked_keys() reflect the active clients.
  std::size_t evict_idle() noexcept;
  /// Forgets every key (overrides stay).
  void clear() noexcept;

  [[nodiscard]] const KeyedRateLimiterOptions& options() const noexcept { return options_; }
  [[nodiscard]] std::uint64_t capacity() const noexcept { return capacity_; }
  /// Slots in use; walks the table (O(capacity)), meant for metrics, not the request path.
  [[nodiscard]] std::uint64_t tracked_keys() const noexcept;
  [[nodiscard]] KeyedRateLimiterStats stats() const noexcept;

 public:
  struct Bucket;  // internal
  // One distinct quota (internal).
  struct QuotaParams {
    std::int64_t period;
    double inverse_period;  // saves a division per check
    std::uint32_t burst;
    bool operator==(const QuotaParams&) const = default;
  };
  /// Distinct quotas (the default plus overrides) the limiter can hold; set_quota() throws beyond it.
  static constexpr std::uint32_t kMaxDistinctQuotas = 1024;

 private:
  [[nodiscard]] std::uint64_t hash(std::string_view key) const noexcept;
  [[nodiscard]] Bucket& bucket_for(std::uint64_t hash) const noexcept;
  [[nodiscard]] std::int64_t now_ns() const noexcept;
  [[nodiscard]] std::uint16_t quota_index_for(std::uint64_t hash) const noexcept;
  void assign_quota(std::uint64_t hash, std::uint16_t index) noexcept;

  KeyedRateLimiterOptions options_;
  const Clock* clock_;
  bool clock_is_manual_;
  bool coarse_allowed_;  // the system clock is used and coarse reads are permitted by `precision`
  std::int64_t coarse_min_tolerance_;
  std::uint64_t bucket_count_;
  std::uint32_t ways_;
  std::uint64_t capacity_;
  std::unique_ptr<Bucket[]> buckets_;

  // Distinct quotas; entries are written once, before their index is published (under a lock), and
  // never change, so checks read them without a lock.
  std::unique_ptr<QuotaParams[]> quotas_;
  // Overrides by key hash -> index into quotas_; the quota count. Read when a key enters the table.
  mutable std::shared_mutex overrides_mutex_;
  std::unordered_map<std::uint64_t, std::uint16_t> overrides_;
  std::uint32_t quota_count_ = 1;

  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> new_keys_{0};
  std::atomic<std::uint64_t> idle_evictions_{0};
  std::atomic<std::uint64_t> forced_evictions_{0};
};

}  // namespace riptide::performance
