#pragma once
// TinyLfuCache<K, V>: a bounded in-process cache with W-TinyLFU admission and eviction (Caffeine's
// design): a small LRU window takes new entries, a segmented LRU main space (probation + 80% protected)
// keeps the proven ones, and a 4-bit count-min sketch decides whether a window leaver may replace the
// main space's victim. The window share adapts (several shares are simulated side by side on a sample of
// keys), so one configuration serves recency-heavy and frequency-heavy workloads. Entries weigh 1 unless
// a weigher says otherwise; the total weight never exceeds max_weight. TTL per cache and per entry.
//
// Concurrency: the key space is split over shards, each with its own writer lock, table and policy. Reads
// take no lock and write no shared line (Caffeine's read path, without a garbage collector):
// - lookups probe an open-addressing table of atomic node pointers; nodes are immutable once published
//   (a put over an existing key publishes a new node in the old one's slot);
// - unlinked nodes and replaced tables are freed only after every reader that might still see them has
//   left (two-parity striped reader counters, a grace period that writers poll and never wait for);
// - a hit is recorded in the reader's own ring of hashes; a full ring is replayed into the policy (sketch,
//   LRU move, window simulation) by whoever gets the shard lock with try_lock, else the accesses are dropped.
// Listener callbacks and value destructors run after the shard lock is released.
//
// The components live in their own headers, each in namespace cache_detail (not public API): the frequency
// sketch (frequency_sketch.hpp), reader stripes (reader_stripe.hpp), read buffers (read_buffer.hpp), grace
// periods (reclamation.hpp), nodes (cache_node.hpp), their access-order deques (access_order_deque.hpp), the
// node table (node_table.hpp), the simulation that sizes the window (window_simulator.hpp) and the shard that
// combines them under one lock (cache_shard.hpp). This header is the public facade; include it, not them.

#include <time.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "riptide/performance/cache/cache_shard.hpp"
#include "riptide/performance/cache/cache_stats.hpp"
#include "riptide/performance/cache/read_buffer.hpp"
#include "riptide/performance/cache/reader_stripe.hpp"
#include "riptide/performance/cache/reclamation.hpp"
#include "riptide/performance/core/clock.hpp"

namespace riptide::performance {

namespace cache_detail {

// 64-bit finalizer (murmur3 fmix64): spreads std::hash, which is the identity for integers.
[[nodiscard]] inline std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/// Monotonic nanoseconds from CLOCK_MONOTONIC_COARSE: a vDSO read of a few ns, 1-4 ms resolution,
/// which TTLs do not need finer.
[[nodiscard]] inline std::int64_t coarse_now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace cache_detail

template <typename K, typename V, typename Hash = std::hash<K>, typename KeyEqual = std::equal_to<K>>
class TinyLfuCache {
 public:
  using Weigher = std::function<std::uint64_t(const K&, const V&)>;
  using Listener = std::function<void(const K&, const V&, CacheRemovalCause)>;

  struct Options {
    std::uint64_t max_weight = 10'000;            ///< bound on the sum of weights (entries when there is no weigher)
    Weigher weigher;                              ///< weight of one entry, e.g. its bytes; empty: every entry weighs 1
    std::optional<std::chrono::nanoseconds> ttl;  ///< default time to live after a write; none: no expiry
    Listener listener;                   ///< told about every removal, after the lock is released; must not throw
    std::uint32_t shards = 0;            ///< lock domains; 0 picks from max_weight and hardware threads
    std::uint64_t expected_entries = 0;  ///< sizes the sketch; 0: max_weight without a weigher, else /1024
    double initial_window = 0.01;        ///< window share at start (Caffeine's 1%); the simulation moves it
    bool adaptive_window = true;         ///< choose the window share by simulation (off: fixed initial_window)
    const Clock* clock = nullptr;        ///< time for TTLs; nullptr: the coarse monotonic clock
    /// Seeds the key hash and the admission jitter. Empty (the default): random per cache, which is what keeps
    /// an attacker from precomputing sketch collisions; set it only where runs must repeat exactly (simulations,
    /// tests).
    std::optional<std::uint64_t> hash_seed;
  };

  explicit TinyLfuCache(Options options) : options_(std::move(options)) {
    if (options_.max_weight == 0) options_.max_weight = 1;
    std::uint32_t shards = options_.shards;
    if (shards == 0) {
      const std::uint32_t threads = std::max(1U, std::thread::hardware_concurrency());
      const std::uint64_t by_weight = std::max<std::uint64_t>(1, options_.max_weight / 4096);
      shards = static_cast<std::uint32_t>(std::min<std::uint64_t>(by_weight, std::uint64_t{threads} * 4));
    }
    shards = std::bit_floor(std::clamp<std::uint32_t>(shards, 1, 1024));
    shards = static_cast<std::uint32_t>(std::min<std::uint64_t>(shards, std::bit_floor(options_.max_weight)));
    shard_shift_ = 64 - std::countr_zero(shards);
    std::uint64_t expected = options_.expected_entries;
    if (expected == 0)
      expected = options_.weigher ? std::max<std::uint64_t>(64, options_.max_weight / 1024) : options_.max_weight;
    if (options_.hash_seed) {
      seed_ = *options_.hash_seed;
    } else {
      std::random_device device;
      seed_ = (static_cast<std::uint64_t>(device()) << 32) ^ device();
    }
    shards_.reserve(shards);
    for (std::uint32_t i = 0; i < shards; ++i) {
      std::uint64_t max = options_.max_weight / shards;
      if (i == 0) max += options_.max_weight % shards;
      shards_.push_back(std::make_unique<Shard>(max, expected / shards + 1, !options_.weigher, options_.initial_window,
                                                options_.adaptive_window, seed_ ^ (i * 0x9e3779b97f4a7c15ULL)));
    }
  }

  ~TinyLfuCache() {
    for (auto& shard : shards_) shard->destroy_all();
  }
  TinyLfuCache(const TinyLfuCache&) = delete;
  TinyLfuCache& operator=(const TinyLfuCache&) = delete;

  /// The live value for `key`, or nullopt (absent or expired). Counts a hit or a miss. Takes no lock.
  [[nodiscard]] std::optional<V> get(const K& key) {
    const std::uint64_t hash = hash_of(key);
    Shard& shard = shard_for(hash);
    const cache_detail::StripeLease& stripe = cache_detail::reader_stripe();
    std::optional<V> value;
    bool expired = false;
    {
      const ReadSection section(shard, stripe);
      if (const Node* node = shard.find(hash, key)) {
        if (node->expires_at == 0 || now_ns() < node->expires_at) {
          value.emplace(node->value);
        } else {
          expired = true;
        }
      }
    }
    ReadRing& ring = shard.rings[stripe.index()];
    if (value) {
      cache_detail::bump(ring.hits, stripe.exclusive());
      shard.record_read(ring, hash);
    } else {
      cache_detail::bump(ring.misses, stripe.exclusive());
      if (expired) remove_expired(shard, hash, key);
    }
    return value;
  }

  /// True when `key` has a live entry; no statistics, no policy update.
  [[nodiscard]] bool contains(const K& key) const {
    const std::uint64_t hash = hash_of(key);
    Shard& shard = shard_for(hash);
    const ReadSection section(shard, cache_detail::reader_stripe());
    const Node* node = shard.find(hash, key);
    return node != nullptr && (node->expires_at == 0 || now_ns() < node->expires_at);
  }

  /// Inserts or replaces. `ttl` overrides the cache's TTL for this entry. A new entry lands in the
  /// window; it may still be rejected later by the admission filter when it leaves the window.
  void put(const K& key, V value, std::optional<std::chrono::nanoseconds> ttl = std::nullopt) {
    const std::uint64_t weight = options_.weigher ? options_.weigher(key, value) : 1;
    const std::uint64_t hash = hash_of(key);
    const auto effective_ttl = ttl ? ttl : options_.ttl;
    const std::int64_t expires_at = effective_ttl ? now_ns() + std::max<std::int64_t>(1, effective_ttl->count()) : 0;
    Shard& shard = shard_for(hash);
    auto* fresh = new Node(hash, key, std::move(value), weight, expires_at);
    write(shard, false, [&](Removed& removed) {
      shard.sketch.increment(hash);
      shard.simulate(hash);
      Node* old = shard.find_locked(hash, key);
      if (weight > shard.max_weight) {  // could never fit: refused without disturbing residents
        if (old != nullptr) {
          shard.detach(old);
          removed.push_back({old, CacheRemovalCause::replaced, true});
        }
        ++shard.rejected;
        removed.push_back({fresh, CacheRemovalCause::rejected, false});
      } else if (old != nullptr) {
        shard.replace(old, fresh);
        removed.push_back({old, CacheRemovalCause::replaced, true});
        shard.on_access(fresh);
      } else {
        shard.insert(fresh);
        if (shard.count > shard.sketch_entries) {
          shard.sketch_entries *= 2;
          shard.sketch.ensure_capacity(shard.sketch_entries);
        }
      }
      shard.evict(removed);
    });
  }

  /// Removes `key`; true when it was present (live or expired).
  bool invalidate(const K& key) {
    const std::uint64_t hash = hash_of(key);
    Shard& shard = shard_for(hash);
    bool found = false;
    write(shard, false, [&](Removed& removed) {
      Node* node = shard.find_locked(hash, key);
      if (node == nullptr) return;
      found = true;
      shard.detach(node);
      removed.push_back({node, CacheRemovalCause::explicit_, true});
    });
    return found;
  }

  /// Removes every entry.
  void invalidate_all() {
    for (auto& shard : shards_) {
      write(*shard, false, [&](Removed& removed) { shard->detach_all(removed); });
    }
  }

  /// Removes every expired entry now (expired entries are otherwise removed when touched or evicted);
  /// returns how many. O(entries): for a maintenance thread, not the request path.
  std::size_t purge_expired() {
    std::size_t count = 0;
    const std::int64_t now = now_ns();
    for (auto& shard : shards_) {
      write(*shard, false, [&](Removed& removed) {
        const std::size_t before = removed.size();
        shard->collect_expired(now, removed);
        count += removed.size() - before;
      });
    }
    return count;
  }

  [[nodiscard]] L1CacheStats stats() const {
    L1CacheStats s;
    s.max_weight = options_.max_weight;
    s.shards = static_cast<std::uint32_t>(shards_.size());
    for (const auto& shard : shards_) {
      for (const ReadRing& ring : shard->rings) {
        s.hits += ring.hits.load(std::memory_order_relaxed);
        s.misses += ring.misses.load(std::memory_order_relaxed);
      }
      const std::lock_guard lock(shard->mutex);
      shard->drain_reads();  // so window size and queues reflect every recorded access
      s.evictions += shard->evictions;
      s.rejected_admissions += shard->rejected;
      s.expirations += shard->expirations;
      s.entries += shard->count;
      s.weight += shard->total_weight();
      s.window_max_weight += shard->window_max;
    }
    return s;
  }

  [[nodiscard]] std::uint64_t weight() const { return stats().weight; }
  [[nodiscard]] std::uint64_t size() const { return stats().entries; }
  [[nodiscard]] std::uint64_t max_weight() const noexcept { return options_.max_weight; }

 private:
  using Shard = cache_detail::CacheShard<K, V, KeyEqual>;
  using Node = typename Shard::Node;
  using Removed = typename Shard::Removed;
  using Removal = typename Removed::value_type;
  using Garbage = typename Shard::Garbage;
  using ReadRing = cache_detail::ReadRing;
  using ReadSection = cache_detail::ReadSection<Shard>;

  // Runs `body` under the shard lock after replaying recorded reads, then tells the listener about the
  // removals and frees what the grace periods allow, both after the lock is released. With a listener,
  // the writer stays inside a read section from before the lock until the listener returns, so no node
  // handed to it can be freed meanwhile (by this or another writer).
  template <typename Body>
  void write(Shard& shard, bool try_only, Body&& body) {
    Removed removed;
    Garbage garbage;
    {
      const ReadSection section(shard, cache_detail::reader_stripe(), static_cast<bool>(options_.listener));
      {
        std::unique_lock lock(shard.mutex, std::defer_lock);
        if (try_only) {
          if (!lock.try_lock()) return;
        } else {
          lock.lock();
        }
        shard.drain_reads();
        body(removed);
        shard.reclaim(garbage);
      }
      notify(removed);
    }
    garbage.free();
  }

  // A reader found an expired entry: remove it if the lock is free (else a later writer, eviction or
  // purge_expired() will).
  void remove_expired(Shard& shard, std::uint64_t hash, const K& key) {
    const std::int64_t now = now_ns();
    write(shard, true, [&](Removed& removed) {
      Node* node = shard.find_locked(hash, key);
      if (node == nullptr || node->expires_at == 0 || now < node->expires_at) return;
      shard.detach(node);
      ++shard.expirations;
      removed.push_back({node, CacheRemovalCause::expired, true});
    });
  }

  [[nodiscard]] std::uint64_t hash_of(const K& key) const noexcept {
    return cache_detail::mix(static_cast<std::uint64_t>(Hash{}(key)) ^ seed_);
  }
  [[nodiscard]] Shard& shard_for(std::uint64_t hash) const noexcept {
    return *shards_[shard_shift_ >= 64 ? 0 : (hash >> shard_shift_)];
  }
  [[nodiscard]] std::int64_t now_ns() const noexcept {
    if (options_.clock != nullptr) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(options_.clock->steady_now().time_since_epoch())
          .count();
    }
    return cache_detail::coarse_now_ns();
  }

  // A listener must not throw; if it does, the exception is dropped so the removed entries are still freed
  // and the cache stays consistent (the caller's put/get already succeeded). Unpublished nodes (refused
  // before any reader could see them) are freed here; published ones by the grace period.
  void notify(Removed& removed) noexcept {
    for (const Removal& r : removed) {
      if (options_.listener) {
        try {
          options_.listener(r.node->key, r.node->value, r.cause);
        } catch (...) {
        }
      }
    }
    for (const Removal& r : removed)
      if (!r.published) delete r.node;
  }

  Options options_;
  std::uint64_t seed_ = 0;
  int shard_shift_ = 64;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace riptide::performance
