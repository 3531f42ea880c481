#pragma once
// TinyLfuCache<K, V>: a bounded in-process cache with W-TinyLFU admission and eviction (Caffeine's
// design): a small LRU window takes new entries, a segmented LRU main space (probation + 80% protected)
// keeps the proven ones, and a 4-bit count-min sketch decides whether a window leaver may replace the
// main space's victim. The window share adapts by hill climbing on the hit rate, so one configuration
// serves recency-heavy and frequency-heavy workloads. Entries weigh 1 unless a weigher says otherwise;
// the total weight never exceeds max_weight. TTL per cache and per entry.
//
// Concurrency: the key space is split over independent shards, each with its own lock, table and policy,
// so hits on different shards never contend (there is no global lock). The shard count defaults to what
// the bound can feed (one shard per 4096 weight units, at most 4 per hardware thread, a power of two).
// Listener callbacks and value destructors run after the shard lock is released.

#include <time.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "riptide/performance/cache/cache_stats.hpp"
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

/// Caffeine's blocked count-min sketch: 4-bit counters, depth 4, all four in one 64-byte block so an
/// increment touches one cache line. Counts saturate at 15 and are halved every `sample_size` increments
/// so old popularity fades.
class FrequencySketch {
 public:
  void ensure_capacity(std::uint64_t entries) {
    const std::uint64_t wanted = std::bit_ceil(std::max<std::uint64_t>(entries, 8));
    if (wanted <= table_.size()) return;
    table_.assign(wanted, 0);
    block_mask_ = (wanted >> 3) - 1;
    sample_size_ = 10 * std::max<std::uint64_t>(entries, 1);
    size_ = 0;
  }

  [[nodiscard]] std::uint32_t frequency(std::uint64_t hash) const noexcept {
    const std::uint64_t block_hash = hash;
    const std::uint64_t counter_hash = rehash(block_hash);
    const std::uint64_t block = (block_hash & block_mask_) << 3;
    std::uint32_t result = 15;
    for (unsigned i = 0; i < 4; ++i) {
      const auto h = static_cast<std::uint32_t>(counter_hash >> (i << 3));
      const unsigned index = (h >> 1) & 15;
      const std::uint64_t slot = block + (h & 1) + (i << 1);
      result = std::min(result, static_cast<std::uint32_t>((table_[slot] >> (index << 2)) & 15));
    }
    return result;
  }

  void increment(std::uint64_t hash) noexcept {
    const std::uint64_t block_hash = hash;
    const std::uint64_t counter_hash = rehash(block_hash);
    const std::uint64_t block = (block_hash & block_mask_) << 3;
    bool added = false;
    for (unsigned i = 0; i < 4; ++i) {
      const auto h = static_cast<std::uint32_t>(counter_hash >> (i << 3));
      const unsigned index = (h >> 1) & 15;
      std::uint64_t& word = table_[block + (h & 1) + (i << 1)];
      const std::uint64_t shift = static_cast<std::uint64_t>(index) << 2;
      if (((word >> shift) & 15) != 15) {
        word += std::uint64_t{1} << shift;
        added = true;
      }
    }
    if (added && ++size_ >= sample_size_) reset();
  }

 private:
  static std::uint64_t rehash(std::uint64_t x) noexcept {
    x *= 0x31848bab;
    x ^= x >> 14;
    return x * 0x9e3779b97f4a7c15ULL;
  }

  void reset() noexcept {
    std::uint64_t odd = 0;
    for (auto& word : table_) {
      odd += static_cast<std::uint64_t>(std::popcount(word & 0x1111111111111111ULL));
      word = (word >> 1) & 0x7777777777777777ULL;
    }
    size_ = (size_ - (odd >> 2)) >> 1;
  }

  std::vector<std::uint64_t> table_;
  std::uint64_t block_mask_ = 0;
  std::uint64_t sample_size_ = 0;
  std::uint64_t size_ = 0;
};

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
    double initial_window = 0.01;        ///< window share at start (Caffeine's 1%); hill climbing moves it
    bool adaptive_window = true;         ///< hill-climb the window share (off: fixed initial_window)
    const Clock* clock = nullptr;        ///< time for TTLs; nullptr: the coarse monotonic clock
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
    std::random_device device;
    seed_ = (static_cast<std::uint64_t>(device()) << 32) ^ device();
    shards_.reserve(shards);
    for (std::uint32_t i = 0; i < shards; ++i) {
      std::uint64_t max = options_.max_weight / shards;
      if (i == 0) max += options_.max_weight % shards;
      shards_.push_back(std::make_unique<Shard>(max, expected / shards + 1, !options_.weigher, options_.initial_window,
                                                seed_ ^ (i * 0x9e3779b97f4a7c15ULL)));
    }
  }

  ~TinyLfuCache() {
    for (auto& shard : shards_) shard->destroy_all();
  }
  TinyLfuCache(const TinyLfuCache&) = delete;
  TinyLfuCache& operator=(const TinyLfuCache&) = delete;

  /// The live value for `key`, or nullopt (absent or expired). Counts a hit or a miss.
  [[nodiscard]] std::optional<V> get(const K& key) {
    const std::uint64_t hash = hash_of(key);
    Shard& shard = shard_for(hash);
    Node* expired = nullptr;
    {
      const std::lock_guard lock(shard.mutex);
      Node* node = shard.find(hash, key);
      if (node == nullptr) {
        ++shard.misses;
        record_sample(shard, false);
        return std::nullopt;
      }
      if (node->expires_at != 0 && now_ns() >= node->expires_at) {
        shard.unlink(node);
        ++shard.expirations;
        ++shard.misses;
        record_sample(shard, false);
        expired = node;
      } else {
        ++shard.hits;
        shard.sketch.increment(hash);
        shard.on_access(node);
        record_sample(shard, true);
        std::optional<V> value(node->value);
        return value;
      }
    }
    release(expired, CacheRemovalCause::expired);
    return std::nullopt;
  }

  /// True when `key` has a live entry; no statistics, no policy update.
  [[nodiscard]] bool contains(const K& key) const {
    const std::uint64_t hash = hash_of(key);
    Shard& shard = shard_for(hash);
    const std::lock_guard lock(shard.mutex);
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
    Removed removed;
    {
      const std::lock_guard lock(shard.mutex);
      shard.sketch.increment(hash);
      if (Node* node = shard.find(hash, key)) {
        if (options_.listener) {
          removed.push_back(
              {new Node(hash, key, std::move(node->value), node->weight, 0), CacheRemovalCause::replaced});
        }
        node->value = std::move(value);
        node->expires_at = expires_at;
        shard.reweigh(node, weight);
        shard.on_access(node);
        if (weight > shard.max_weight) {  // grew beyond what the shard can ever hold
          shard.unlink(node);
          ++shard.rejected;
          removed.push_back({node, CacheRemovalCause::rejected});
        }
      } else {
        auto* fresh = new Node(hash, key, std::move(value), weight, expires_at);
        if (weight > shard.max_weight) {  // could never fit: refused without disturbing residents
          ++shard.rejected;
          removed.push_back({fresh, CacheRemovalCause::rejected});
        } else {
          shard.insert(fresh);
          if (shard.count > shard.sketch_entries) {
            shard.sketch_entries *= 2;
            shard.sketch.ensure_capacity(shard.sketch_entries);
          }
        }
      }
      shard.evict(removed);
    }
    release_all(removed);
  }

  /// Removes `key`; true when it was present (live or expired).
  bool invalidate(const K& key) {
    const std::uint64_t hash = hash_of(key);
    Shard& shard = shard_for(hash);
    Node* node = nullptr;
    {
      const std::lock_guard lock(shard.mutex);
      node = shard.find(hash, key);
      if (node == nullptr) return false;
      shard.unlink(node);
    }
    release(node, CacheRemovalCause::explicit_);
    return true;
  }

  /// Removes every entry.
  void invalidate_all() {
    for (auto& shard : shards_) {
      Removed removed;
      {
        const std::lock_guard lock(shard->mutex);
        shard->drain_all(removed);
      }
      for (auto& r : removed) r.cause = CacheRemovalCause::explicit_;
      release_all(removed);
    }
  }

  /// Removes every expired entry now (expired entries are otherwise removed when touched or evicted);
  /// returns how many. O(entries): for a maintenance thread, not the request path.
  std::size_t purge_expired() {
    std::size_t count = 0;
    const std::int64_t now = now_ns();
    for (auto& shard : shards_) {
      Removed removed;
      {
        const std::lock_guard lock(shard->mutex);
        shard->collect_expired(now, removed);
      }
      count += removed.size();
      release_all(removed);
    }
    return count;
  }

  [[nodiscard]] L1CacheStats stats() const {
    L1CacheStats s;
    s.max_weight = options_.max_weight;
    s.shards = static_cast<std::uint32_t>(shards_.size());
    for (const auto& shard : shards_) {
      const std::lock_guard lock(shard->mutex);
      s.hits += shard->hits;
      s.misses += shard->misses;
      s.evictions += shard->evictions;
      s.rejected_admissions += shard->rejected;
      s.expirations += shard->expirations;
      s.entries += shard->count;
      s.weight += shard->window.weight + shard->probation.weight + shard->protected_.weight;
      s.window_max_weight += shard->window_max;
    }
    return s;
  }

  [[nodiscard]] std::uint64_t weight() const { return stats().weight; }
  [[nodiscard]] std::uint64_t size() const { return stats().entries; }
  [[nodiscard]] std::uint64_t max_weight() const noexcept { return options_.max_weight; }

 private:
  enum class Queue : std::uint8_t { window, probation, protected_ };

  struct Links {
    Links* prev = this;
    Links* next = this;
  };

  struct Node : Links {
    Node(std::uint64_t h, const K& k, V&& v, std::uint64_t w, std::int64_t e)
        : key(k), value(std::move(v)), hash(h), weight(w), expires_at(e) {}
    K key;
    V value;
    std::uint64_t hash;
    std::uint64_t weight;
    std::int64_t expires_at;  // coarse/Clock ns; 0: never
    Node* chain = nullptr;    // next in the hash bucket
    Queue queue = Queue::window;
  };

  struct Removal {
    Node* node;
    CacheRemovalCause cause;
  };
  using Removed = std::vector<Removal>;

  struct List {
    Links sentinel;
    std::uint64_t weight = 0;

    [[nodiscard]] bool empty() const noexcept { return sentinel.next == &sentinel; }
    [[nodiscard]] Node* lru() noexcept { return empty() ? nullptr : static_cast<Node*>(sentinel.next); }
    void push_mru(Node* node) noexcept {
      node->prev = sentinel.prev;
      node->next = &sentinel;
      sentinel.prev->next = node;
      sentinel.prev = node;
      weight += node->weight;
    }
    void remove(Node* node) noexcept {
      node->prev->next = node->next;
      node->next->prev = node->prev;
      weight -= node->weight;
    }
    [[nodiscard]] bool is_end(const Links* link) const noexcept { return link == &sentinel; }
  };

  struct alignas(64) Shard {
    Shard(std::uint64_t max, std::uint64_t expected_entries, bool size_sketch_now, double window_share,
          std::uint64_t seed)
        : max_weight(max), rng(seed | 1) {
      window_max = std::min<std::uint64_t>(max, static_cast<std::uint64_t>(std::llround(window_share * max)));
      if (window_max == 0 && max > 1) window_max = 1;
      protected_max = static_cast<std::uint64_t>(0.8 * static_cast<double>(max - window_max));
      step = -kStepPercent * static_cast<double>(max);
      sample_size = std::max<std::uint64_t>(kMinSample, kSampleFactor * std::min<std::uint64_t>(max, expected_entries));
      // An entry-bounded shard knows its entry count and sizes the sketch once. A weighed one (bytes) only
      // guesses, so its sketch starts small and doubles with the resident count (memory follows use).
      sketch_entries = size_sketch_now ? expected_entries : std::min<std::uint64_t>(expected_entries, 256);
      sketch.ensure_capacity(sketch_entries);
      buckets.assign(16, nullptr);
    }

    mutable std::mutex mutex;
    std::vector<Node*> buckets;
    std::uint64_t count = 0;
    List window;
    List probation;
    List protected_;
    std::uint64_t max_weight;
    std::uint64_t window_max = 0;
    std::uint64_t protected_max = 0;
    cache_detail::FrequencySketch sketch;
    std::uint64_t sketch_entries = 0;  // entries the sketch is sized for
    std::uint64_t rng;
    // Hill climber.
    std::uint64_t sample_hits = 0;
    std::uint64_t sample_misses = 0;
    std::uint64_t sample_size = 0;
    double previous_hit_rate = 0.0;
    double step = 0.0;
    // Statistics.
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t evictions = 0;
    std::uint64_t rejected = 0;
    std::uint64_t expirations = 0;

    static constexpr double kStepPercent = 0.0625;     // Caffeine's HILL_CLIMBER_STEP_PERCENT
    static constexpr double kStepDecay = 0.98;         // HILL_CLIMBER_STEP_DECAY_RATE
    static constexpr double kRestartThreshold = 0.05;  // HILL_CLIMBER_RESTART_THRESHOLD
    // Requests per climb step = 5 x capacity (entries), at least 1024. Caffeine samples 10 x capacity; on
    // the ARC traces 5 x adapts fast enough for OLTP at 10k entries without chasing noise on P3
    // (docs/PERFORMANCE.md ## Cache has the comparison).
    static constexpr std::uint64_t kSampleFactor = 5;
    static constexpr std::uint64_t kMinSample = 1024;
    static constexpr std::uint32_t kAdmitHashDosThreshold = 6;

    [[nodiscard]] List& list_of(Queue q) noexcept {
      return q == Queue::window ? window : q == Queue::probation ? probation : protected_;
    }
    [[nodiscard]] std::uint64_t total_weight() const noexcept {
      return window.weight + probation.weight + protected_.weight;
    }

    [[nodiscard]] Node* find(std::uint64_t hash, const K& key) const {
      Node* node = buckets[hash & (buckets.size() - 1)];
      while (node != nullptr && !(node->hash == hash && KeyEqual{}(node->key, key))) node = node->chain;
      return node;
    }

    void insert(Node* node) {
      if (count >= buckets.size()) grow();
      Node*& head = buckets[node->hash & (buckets.size() - 1)];
      node->chain = head;
      head = node;
      ++count;
      node->queue = Queue::window;
      window.push_mru(node);
    }

    void grow() {
      std::vector<Node*> bigger(buckets.size() * 2, nullptr);
      for (Node* head : buckets) {
        while (head != nullptr) {
          Node* next = head->chain;
          Node*& slot = bigger[head->hash & (bigger.size() - 1)];
          head->chain = slot;
          slot = head;
          head = next;
        }
      }
      buckets.swap(bigger);
    }

    // Takes the node out of the table and its queue; the caller owns it afterwards.
    void unlink(Node* node) noexcept {
      Node** link = &buckets[node->hash & (buckets.size() - 1)];
      while (*link != node) link = &(*link)->chain;
      *link = node->chain;
      --count;
      list_of(node->queue).remove(node);
    }

    void reweigh(Node* node, std::uint64_t weight) noexcept {
      List& list = list_of(node->queue);
      list.weight = list.weight - node->weight + weight;
      node->weight = weight;
    }

    void on_access(Node* node) noexcept {
      switch (node->queue) {
        case Queue::window:
          if (window.sentinel.prev == node) break;  // already MRU: no writes to neighbours
          window.remove(node);
          window.push_mru(node);
          break;
        case Queue::probation:
          probation.remove(node);
          node->queue = Queue::protected_;
          protected_.push_mru(node);
          demote_protected_overflow();
          break;
        case Queue::protected_:
          if (protected_.sentinel.prev == node) break;
          protected_.remove(node);
          protected_.push_mru(node);
          break;
      }
    }

    void demote_protected_overflow() noexcept {
      while (protected_.weight > protected_max) {
        Node* lru = protected_.lru();
        if (lru == nullptr) break;
        protected_.remove(lru);
        lru->queue = Queue::probation;
        probation.push_mru(lru);
      }
    }

    std::uint64_t next_random() noexcept {  // xorshift64
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      return rng;
    }

    // W-TinyLFU admission: the candidate must be more frequent than the victim. A warm candidate that
    // is not still gets in now and then (1/128), so an attacker who inflates a victim's count through
    // hash collisions cannot pin it forever (Caffeine's defence against hash flooding).
    bool admit(const Node* candidate, const Node* victim) noexcept {
      const std::uint32_t candidate_freq = sketch.frequency(candidate->hash);
      const std::uint32_t victim_freq = sketch.frequency(victim->hash);
      if (candidate_freq > victim_freq) return true;
      if (candidate_freq >= kAdmitHashDosThreshold) return (next_random() & 127) == 0;
      return false;
    }

    void evict(Removed& removed) {
      // Window leavers become candidates at the MRU end of probation.
      Links* candidate = nullptr;
      while (window.weight > window_max) {
        Node* lru = window.lru();
        if (lru == nullptr) break;
        window.remove(lru);
        lru->queue = Queue::probation;
        probation.push_mru(lru);
        if (candidate == nullptr) candidate = lru;
      }
      while (total_weight() > max_weight) {
        Node* victim = probation.lru();
        if (victim == nullptr) victim = protected_.lru();
        if (victim == nullptr) victim = window.lru();
        if (victim == nullptr) break;
        if (candidate == nullptr || candidate == victim) {
          if (candidate == victim) candidate = advance(candidate);
          drop(victim, CacheRemovalCause::size, removed);
          continue;
        }
        Node* contender = static_cast<Node*>(candidate);
        candidate = advance(candidate);
        if (admit(contender, victim)) {
          drop(victim, CacheRemovalCause::size, removed);
        } else {
          drop(contender, CacheRemovalCause::rejected, removed);
        }
      }
    }

    Links* advance(Links* candidate) noexcept {
      Links* next = candidate->next;
      return probation.is_end(next) ? nullptr : next;
    }

    void drop(Node* node, CacheRemovalCause cause, Removed& removed) {
      unlink(node);
      if (cause == CacheRemovalCause::size) ++evictions;
      if (cause == CacheRemovalCause::rejected) ++rejected;
      removed.push_back({node, cause});
    }

    // Caffeine's hill climber: keep moving the window the same way while the hit rate improves, turn
    // around when it drops; steps decay, and restart large when the hit rate jumps (workload change).
    void climb() {
      const std::uint64_t requests = sample_hits + sample_misses;
      const double hit_rate = static_cast<double>(sample_hits) / static_cast<double>(requests);
      const double change = hit_rate - previous_hit_rate;
      const double amount = change >= 0 ? step : -step;
      const double next_step = std::abs(change) >= kRestartThreshold
                                   ? kStepPercent * static_cast<double>(max_weight) * (amount >= 0 ? 1 : -1)
                                   : kStepDecay * amount;
      previous_hit_rate = hit_rate;
      step = next_step;
      sample_hits = 0;
      sample_misses = 0;
      const auto quota = static_cast<std::int64_t>(std::llround(amount));
      if (quota > 0) increase_window(static_cast<std::uint64_t>(quota));
      if (quota < 0) decrease_window(static_cast<std::uint64_t>(-quota));
    }

    void increase_window(std::uint64_t quota) noexcept {
      quota = std::min(quota, protected_max);
      protected_max -= quota;
      window_max += quota;
      demote_protected_overflow();
      // Hand main-space entries to the window so the new space is used at once.
      while (quota > 0) {
        Node* node = probation.lru();
        if (node == nullptr || node->weight > quota) node = protected_.lru();
        if (node == nullptr || node->weight > quota) break;
        list_of(node->queue).remove(node);
        node->queue = Queue::window;
        window.push_mru(node);
        quota -= node->weight;
      }
      protected_max += quota;
      window_max -= quota;
    }

    void decrease_window(std::uint64_t quota) noexcept {
      quota = std::min(quota, window_max > 0 ? window_max - 1 : 0);
      protected_max += quota;
      window_max -= quota;
      while (quota > 0) {
        Node* node = window.lru();
        if (node == nullptr || node->weight > quota) break;
        window.remove(node);
        node->queue = Queue::probation;
        probation.push_mru(node);
        quota -= node->weight;
      }
      protected_max -= quota;
      window_max += quota;
    }

    void drain_all(Removed& removed) {
      for (List* list : {&window, &probation, &protected_}) {
        while (Node* node = list->lru()) {
          unlink(node);
          removed.push_back({node, CacheRemovalCause::explicit_});
        }
      }
    }

    void collect_expired(std::int64_t now, Removed& removed) {
      for (List* list : {&window, &probation, &protected_}) {
        Links* link = list->sentinel.next;
        while (!list->is_end(link)) {
          Node* node = static_cast<Node*>(link);
          link = link->next;
          if (node->expires_at != 0 && now >= node->expires_at) {
            unlink(node);
            ++expirations;
            removed.push_back({node, CacheRemovalCause::expired});
          }
        }
      }
    }

    void destroy_all() noexcept {
      for (Node* head : buckets) {
        while (head != nullptr) {
          Node* next = head->chain;
          delete head;
          head = next;
        }
      }
      buckets.clear();
    }
  };

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

  void record_sample(Shard& shard, bool hit) {
    if (!options_.adaptive_window) return;
    (hit ? shard.sample_hits : shard.sample_misses) += 1;
    if (shard.sample_hits + shard.sample_misses >= shard.sample_size) shard.climb();
  }

  // A listener must not throw; if it does, the exception is dropped so the removed entries are still freed
  // and the cache stays consistent (the caller's put/get already succeeded).
  void release(Node* node, CacheRemovalCause cause) noexcept {
    if (node == nullptr) return;
    if (options_.listener) {
      try {
        options_.listener(node->key, node->value, cause);
      } catch (...) {
      }
    }
    delete node;
  }
  void release_all(Removed& removed) {
    for (auto& r : removed) release(r.node, r.cause);
  }

  Options options_;
  std::uint64_t seed_ = 0;
  int shard_shift_ = 64;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace riptide::performance
