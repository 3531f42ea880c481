#pragma once
// TinyLfuCache<K, V>: a bounded in-process cache with W-TinyLFU admission and eviction (Caffeine's
// design): a small LRU window takes new entries, a segmented LRU main space (probation + 80% protected)
// keeps the proven ones, and a 4-bit count-min sketch decides whether a window leaver may replace the
// main space's victim. The window share adapts by hill climbing on the hit rate, so one configuration
// serves recency-heavy and frequency-heavy workloads. Entries weigh 1 unless a weigher says otherwise;
// the total weight never exceeds max_weight. TTL per cache and per entry.
//
// Concurrency: the key space is split over shards, each with its own writer lock, table and policy. Reads
// take no lock and write no shared line (Caffeine's read path, without a garbage collector):
// - lookups probe an open-addressing table of atomic node pointers; nodes are immutable once published
//   (a put over an existing key publishes a new node in the old one's slot);
// - unlinked nodes and replaced tables are freed only after every reader that might still see them has
//   left (two-parity striped reader counters, a grace period that writers poll and never wait for);
// - a hit is recorded in the reader's own ring of hashes; a full ring is replayed into the policy (sketch,
//   LRU move, hill climber) by whoever gets the shard lock with try_lock, else the accesses are dropped.
// Listener callbacks and value destructors run after the shard lock is released.

#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
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

  /// Starts loading the counter block of `hash`, so a batch of increments overlaps its cache misses.
  void prefetch(std::uint64_t hash) const noexcept { __builtin_prefetch(&table_[(hash & block_mask_) << 3], 1); }

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

inline constexpr std::uint32_t kReaderStripes = 16;                 // reader counters and read rings per shard
inline constexpr std::uint32_t kSharedStripe = kReaderStripes - 1;  // for threads beyond the first 15

/// A thread's stripe. The first 15 threads (at a time) that read any TinyLfuCache each own one stripe
/// exclusively, so their read path updates its counters with plain stores (one fence per read instead of
/// three atomic read-modify-writes); further threads share the last stripe with atomic RMWs. A stripe is
/// handed back when its thread exits.
class StripeLease {
 public:
  StripeLease() noexcept {
    std::uint32_t taken = owners().load(std::memory_order_relaxed);
    for (;;) {
      const std::uint32_t free = ~taken & ((1U << kSharedStripe) - 1);
      if (free == 0) return;  // index_ = shared stripe
      const auto bit = static_cast<std::uint32_t>(std::countr_zero(free));
      if (owners().compare_exchange_weak(taken, taken | (1U << bit), std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
        index_ = bit;
        return;
      }
    }
  }
  ~StripeLease() {
    if (exclusive()) owners().fetch_and(~(1U << index_), std::memory_order_release);
  }
  StripeLease(const StripeLease&) = delete;
  StripeLease& operator=(const StripeLease&) = delete;

  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  [[nodiscard]] bool exclusive() const noexcept { return index_ != kSharedStripe; }

  /// Bit i set: stripe i has an owner. Drains only visit owned stripes and the shared one. On its own
  /// line: every drain reads it, so no frequently written neighbour may share it.
  static std::atomic<std::uint32_t>& owners() noexcept {
    struct alignas(64) Mask {
      std::atomic<std::uint32_t> bits{0};
    };
    static Mask mask;
    return mask.bits;
  }

 private:
  std::uint32_t index_ = kSharedStripe;
};

[[nodiscard]] inline const StripeLease& reader_stripe() noexcept {
  thread_local const StripeLease lease;
  return lease;
}

/// +1 on a counter: a plain load and store when only this thread writes it, an atomic add otherwise.
inline void bump(std::atomic<std::uint64_t>& counter, bool exclusive) noexcept {
  if (exclusive) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    counter.fetch_add(1, std::memory_order_relaxed);
  }
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
      shard.record_read(ring, kMissMarker);
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
  enum class Queue : std::uint8_t { window, probation, protected_ };

  struct Links {
    Links* prev = this;
    Links* next = this;
  };

  // Readers touch only hash, expires_at, key and value, which never change after publication; the links,
  // weight and queue belong to the shard lock holder. Both halves share one line for small entries: a
  // drain's LRU moves then cost readers on other cores a line transfer per moved hot node and batch, but
  // putting the halves on separate lines doubles small nodes and measured slower for one thread on a
  // large working set (docs/PERFORMANCE.md ## Cache).
  struct Node : Links {
    Node(std::uint64_t h, const K& k, V&& v, std::uint64_t w, std::int64_t e)
        : weight(w), hash(h), expires_at(e), key(k), value(std::move(v)) {}
    std::uint64_t weight;
    Queue queue = Queue::window;
    std::uint64_t hash;
    std::int64_t expires_at;  // coarse/Clock ns; 0: never
    K key;
    V value;
  };

  // Open-addressing slots in one allocation with their mask: a reader follows one pointer to the
  // table, then probes. Slots hold nullptr (end of probe), a node, or the tombstone of a removed node
  // (so a concurrent probe for a later key does not stop early).
  struct Table {
    std::uint64_t mask;

    [[nodiscard]] std::atomic<Node*>* slots() noexcept { return reinterpret_cast<std::atomic<Node*>*>(this + 1); }
    [[nodiscard]] std::uint64_t capacity() const noexcept { return mask + 1; }

    static Table* create(std::uint64_t capacity) {
      void* raw = ::operator new(sizeof(Table) + capacity * sizeof(std::atomic<Node*>));
      auto* table = new (raw) Table{capacity - 1};
      for (std::uint64_t i = 0; i < capacity; ++i) new (table->slots() + i) std::atomic<Node*>(nullptr);
      return table;
    }
    static void destroy(Table* table) noexcept {
      if (table == nullptr) return;
      table->~Table();
      ::operator delete(static_cast<void*>(table));
    }
  };
  static_assert(sizeof(std::atomic<void*>) == sizeof(std::uint64_t) && alignof(std::atomic<void*>) <= 8);

  [[nodiscard]] static Node* tombstone() noexcept { return reinterpret_cast<Node*>(std::uintptr_t{1}); }

  // A hash of 0 never occurs (hash_of maps it to 1), so 0 marks a miss in a read ring: misses feed the
  // hill climber in the order they happened.
  static constexpr std::uint64_t kMissMarker = 0;
  // Reads recorded per stripe before a drain (power of two). 64 rather than Caffeine's 16: each drain
  // moves the mutex, the other stripes' rings and the policy lines between cores once, so larger batches
  // amortize that better with two threads (measured in docs/PERFORMANCE.md ## Cache).
  static constexpr std::uint64_t kRingSize = 64;
  static constexpr std::size_t kRetireBatch = 64;

  // Readers currently inside a read section, for one parity of one stripe. Each on its own line: readers
  // on the current parity never share a line with the one a writer polls.
  struct alignas(64) ReaderCount {
    std::atomic<std::int64_t> value{0};
  };

  // One stripe's read buffer: a single-producer ring drained by the shard lock holder (tail written by the
  // stripe's owner, head by the drainer), plus that stripe's hit and miss counts. Threads sharing the
  // overflow stripe may lose or repeat a recorded access there; only policy precision suffers (the ring
  // holds hashes, not pointers).
  struct alignas(64) ReadRing {
    std::atomic<std::uint64_t> tail{0};
    std::atomic<std::uint64_t> head{0};
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::array<std::atomic<std::uint64_t>, kRingSize> slots{};
  };

  struct Removal {
    Node* node;
    CacheRemovalCause cause;
    bool published;  // readers may have seen it: freed by the grace period, not by the caller
  };
  using Removed = std::vector<Removal>;

  // What a writer may free once its lock is released.
  struct Garbage {
    std::vector<Node*> nodes;
    std::vector<Table*> tables;
    void free() noexcept {
      for (Node* node : nodes) delete node;
      for (Table* table : tables) Table::destroy(table);
      nodes.clear();
      tables.clear();
    }
  };

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
    void clear() noexcept {
      sentinel.prev = sentinel.next = &sentinel;
      weight = 0;
    }
    [[nodiscard]] bool is_end(const Links* link) const noexcept { return link == &sentinel; }
  };

  struct Shard {
    Shard(std::uint64_t max, std::uint64_t expected_entries, bool size_sketch_now, double window_share,
          bool adaptive_window, std::uint64_t seed)
        : max_weight(max), adaptive(adaptive_window), rng(seed | 1) {
      window_max = std::min<std::uint64_t>(max, static_cast<std::uint64_t>(std::llround(window_share * max)));
      if (window_max == 0 && max > 1) window_max = 1;
      protected_max = static_cast<std::uint64_t>(0.8 * static_cast<double>(max - window_max));
      step = -kStepPercent * static_cast<double>(max);
      sample_size = std::max<std::uint64_t>(kMinSample, kSampleFactor * std::min<std::uint64_t>(max, expected_entries));
      // An entry-bounded shard knows its entry count and sizes the sketch once. A weighed one (bytes) only
      // guesses, so its sketch starts small and doubles with the resident count (memory follows use).
      sketch_entries = size_sketch_now ? expected_entries : std::min<std::uint64_t>(expected_entries, 256);
      sketch.ensure_capacity(sketch_entries);
      table.store(Table::create(kMinTable), std::memory_order_relaxed);
    }

    // --- Read-mostly: loaded by every reader, stored only when a table is replaced or a grace period
    // starts.
    alignas(64) std::atomic<Table*> table{nullptr};
    std::atomic<std::uint32_t> parity{0};

    // --- Reader-owned lines.
    std::array<std::array<ReaderCount, 2>, cache_detail::kReaderStripes> readers{};
    std::array<ReadRing, cache_detail::kReaderStripes> rings{};

    // --- Everything below belongs to the holder of `mutex`.
    alignas(64) mutable std::mutex mutex;
    std::uint64_t count = 0;       // live nodes in the table
    std::uint64_t tombstones = 0;  // tombstone slots in the table
    List window;
    List probation;
    List protected_;
    std::uint64_t max_weight;
    std::uint64_t window_max = 0;
    std::uint64_t protected_max = 0;
    cache_detail::FrequencySketch sketch;
    std::uint64_t sketch_entries = 0;  // entries the sketch is sized for
    bool adaptive;
    std::uint64_t rng;
    // Safe reclamation: unlinked nodes and replaced tables wait in `retired` until a grace period starts
    // (parity flip), then in `pending` until no reader of the old parity is left.
    std::vector<Node*> retired_nodes;
    std::vector<Table*> retired_tables;
    std::vector<Node*> pending_nodes;
    std::vector<Table*> pending_tables;
    // Hill climber.
    std::uint64_t sample_hits = 0;
    std::uint64_t sample_misses = 0;
    std::uint64_t sample_size = 0;
    double previous_hit_rate = 0.0;
    double step = 0.0;
    // Statistics (hits and misses live in the read rings).
    std::uint64_t evictions = 0;
    std::uint64_t rejected = 0;
    std::uint64_t expirations = 0;

    static constexpr std::uint64_t kMinTable = 16;
    static constexpr double kStepPercent = 0.0625;     // Caffeine's HILL_CLIMBER_STEP_PERCENT
    static constexpr double kStepDecay = 0.98;         // HILL_CLIMBER_STEP_DECAY_RATE
    static constexpr double kRestartThreshold = 0.05;  // HILL_CLIMBER_RESTART_THRESHOLD
    // Requests per climb step = 5 x capacity (entries), at least 1024. Caffeine samples 10 x capacity; on
    // the ARC traces 5 x adapts fast enough for OLTP at 10k entries without chasing noise on P3
    // (docs/PERFORMANCE.md ## Cache has the comparison).
    static constexpr std::uint64_t kSampleFactor = 5;
    static constexpr std::uint64_t kMinSample = 1024;
    static constexpr std::uint32_t kAdmitHashDosThreshold = 6;

    // ---------------------------------------------------------------- lock-free read side

    // The live node for key, or nullptr. Caller is inside a read section.
    [[nodiscard]] const Node* find(std::uint64_t hash, const K& key) const noexcept {
      Table* t = table.load(std::memory_order_acquire);
      std::atomic<Node*>* slots = t->slots();
      for (std::uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        const Node* node = slots[i].load(std::memory_order_acquire);
        if (node == nullptr) return nullptr;
        if (node != tombstone() && node->hash == hash && KeyEqual{}(node->key, key)) return node;
      }
    }

    // Read side of the grace period: register on the current parity, and re-check it so a writer that
    // flipped in between (and may already have found the old parity empty) is not missed. The increment
    // is a seq_cst RMW (the fence between it and the re-check); an owned stripe leaves with a plain
    // release store.
    std::uint32_t enter(const cache_detail::StripeLease& stripe) noexcept {
      for (;;) {
        const std::uint32_t p = parity.load(std::memory_order_seq_cst);
        std::atomic<std::int64_t>& counter = readers[stripe.index()][p].value;
        if (stripe.exclusive()) {
          counter.exchange(counter.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
        } else {
          counter.fetch_add(1, std::memory_order_seq_cst);
        }
        if (parity.load(std::memory_order_seq_cst) == p) return p;
        leave(stripe, p);
      }
    }
    void leave(const cache_detail::StripeLease& stripe, std::uint32_t p) noexcept {
      std::atomic<std::int64_t>& counter = readers[stripe.index()][p].value;
      if (stripe.exclusive()) {  // the writer's poll acquires it
        counter.store(counter.load(std::memory_order_relaxed) - 1, std::memory_order_release);
      } else {
        counter.fetch_sub(1, std::memory_order_release);
      }
    }

    // Appends to this stripe's ring; a full ring is replayed into the policy if the lock is free, and
    // dropped otherwise (a read never waits).
    void record_read(ReadRing& ring, std::uint64_t entry) noexcept {
      const std::uint64_t tail = ring.tail.load(std::memory_order_relaxed);
      const std::uint64_t head = ring.head.load(std::memory_order_acquire);
      if (tail - head < kRingSize) {
        ring.slots[tail & (kRingSize - 1)].store(entry, std::memory_order_relaxed);
        ring.tail.store(tail + 1, std::memory_order_release);
        if (tail + 1 - head < kRingSize) return;
      }
      if (mutex.try_lock()) {
        drain_reads();
        mutex.unlock();
      }
    }

    // ---------------------------------------------------------------- under the lock

    // Replays every recorded read in ring order: sketch increment, queue move, hill-climber sample. Only
    // owned stripes and the shared one can have new entries (a released stripe's leftovers wait for its
    // next owner).
    void drain_reads() noexcept {
      std::uint32_t stripes =
          cache_detail::StripeLease::owners().load(std::memory_order_acquire) | (1U << cache_detail::kSharedStripe);
      for (; stripes != 0; stripes &= stripes - 1) {
        ReadRing& ring = rings[static_cast<std::size_t>(std::countr_zero(stripes))];
        const std::uint64_t tail = ring.tail.load(std::memory_order_acquire);
        std::uint64_t head = ring.head.load(std::memory_order_relaxed);
        if (tail == head) continue;
        if (tail - head > kRingSize) head = tail - kRingSize;  // the shared stripe raced; keep the newest
        // Two passes: look up every node and prefetch its sketch block and queue neighbours first, so the
        // misses of a batch overlap instead of queueing one behind the other; then replay in order.
        std::array<std::uint64_t, kRingSize> entries;
        std::array<Node*, kRingSize> nodes;
        std::uint32_t n = 0;
        for (; head != tail; ++head, ++n) {
          const std::uint64_t entry = ring.slots[head & (kRingSize - 1)].load(std::memory_order_relaxed);
          entries[n] = entry;
          nodes[n] = nullptr;
          if (entry == kMissMarker) continue;
          sketch.prefetch(entry);
          Node* node = find_by_hash(entry);
          if (node == nullptr) continue;
          nodes[n] = node;
          __builtin_prefetch(node->prev, 1);  // the queue neighbours an LRU move will write
          __builtin_prefetch(node->next, 1);
        }
        ring.head.store(tail, std::memory_order_release);
        for (std::uint32_t i = 0; i < n; ++i) replay(entries[i], nodes[i]);
      }
    }

    void replay(std::uint64_t entry, Node* node) noexcept {
      if (entry == kMissMarker) {
        sample(false);
        return;
      }
      sketch.increment(entry);
      if (node != nullptr) on_access(node);
      sample(true);
    }

    void sample(bool hit) noexcept {
      if (!adaptive) return;
      (hit ? sample_hits : sample_misses) += 1;
      if (sample_hits + sample_misses >= sample_size) climb();
    }

    [[nodiscard]] Table* current() const noexcept { return table.load(std::memory_order_relaxed); }

    [[nodiscard]] Node* find_locked(std::uint64_t hash, const K& key) const noexcept {
      Table* t = current();
      std::atomic<Node*>* slots = t->slots();
      for (std::uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        Node* node = slots[i].load(std::memory_order_relaxed);
        if (node == nullptr) return nullptr;
        if (node != tombstone() && node->hash == hash && KeyEqual{}(node->key, key)) return node;
      }
    }

    // The node a recorded hit refers to (a 64-bit hash collision would credit the other key; harmless).
    [[nodiscard]] Node* find_by_hash(std::uint64_t hash) const noexcept {
      Table* t = current();
      std::atomic<Node*>* slots = t->slots();
      for (std::uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        Node* node = slots[i].load(std::memory_order_relaxed);
        if (node == nullptr) return nullptr;
        if (node != tombstone() && node->hash == hash) return node;
      }
    }

    [[nodiscard]] std::atomic<Node*>& slot_of(const Node* node) const noexcept {
      Table* t = current();
      std::atomic<Node*>* slots = t->slots();
      std::uint64_t i = node->hash & t->mask;
      while (slots[i].load(std::memory_order_relaxed) != node) i = (i + 1) & t->mask;
      return slots[i];
    }

    // Load stays <= 1/2 and live + tombstones <= 3/4 (probes always reach an empty slot). A rebuild sizes
    // for load 1/4..1/2: sparser tables spread hot nodes over more lines and miss the CPU cache more.
    void insert(Node* node) {
      Table* t = current();
      if ((count + 1) * 2 > t->capacity() || (count + tombstones + 1) * 4 > t->capacity() * 3) {
        rebuild(count + 1);
        t = current();
      }
      std::atomic<Node*>* slots = t->slots();
      std::uint64_t i = node->hash & t->mask;
      for (;; i = (i + 1) & t->mask) {
        Node* occupant = slots[i].load(std::memory_order_relaxed);
        if (occupant == nullptr) break;
        if (occupant == tombstone()) {
          --tombstones;
          break;
        }
      }
      slots[i].store(node, std::memory_order_release);  // publishes the node's fields to readers
      ++count;
      node->queue = Queue::window;
      window.push_mru(node);
    }

    void rebuild(std::uint64_t needed) {
      Table* old = current();
      Table* fresh = Table::create(std::max<std::uint64_t>(kMinTable, std::bit_ceil(needed * 2)));
      std::atomic<Node*>* from = old->slots();
      std::atomic<Node*>* to = fresh->slots();
      for (std::uint64_t j = 0; j <= old->mask; ++j) {
        Node* node = from[j].load(std::memory_order_relaxed);
        if (node == nullptr || node == tombstone()) continue;
        std::uint64_t i = node->hash & fresh->mask;
        while (to[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & fresh->mask;
        to[i].store(node, std::memory_order_relaxed);
      }
      table.store(fresh, std::memory_order_release);  // publishes the filled slots
      tombstones = 0;
      retired_tables.push_back(old);
    }

    // Takes the node out of the table and its queue and retires it (freed after a grace period).
    void detach(Node* node) {
      clear_slot(slot_of(node));
      --count;
      list_of(node->queue).remove(node);
      retired_nodes.push_back(node);
    }

    // A removed node's slot becomes a tombstone, or empty when the next slot is empty (no probe can need
    // to pass it then: a key never sits beyond an empty slot from its home), and so do the tombstones
    // before it. Fewer tombstones, fewer O(capacity) rebuilds under churn.
    void clear_slot(std::atomic<Node*>& slot) noexcept {
      Table* t = current();
      std::atomic<Node*>* slots = t->slots();
      auto i = static_cast<std::uint64_t>(&slot - slots);
      if (slots[(i + 1) & t->mask].load(std::memory_order_relaxed) != nullptr) {
        slot.store(tombstone(), std::memory_order_release);
        ++tombstones;
        return;
      }
      slot.store(nullptr, std::memory_order_release);
      for (i = (i - 1) & t->mask; slots[i].load(std::memory_order_relaxed) == tombstone(); i = (i - 1) & t->mask) {
        slots[i].store(nullptr, std::memory_order_release);
        --tombstones;
      }
    }

    // `fresh` takes `old`'s slot, queue and list position; `old` is retired.
    void replace(Node* old, Node* fresh) {
      fresh->queue = old->queue;
      fresh->prev = old->prev;
      fresh->next = old->next;
      old->prev->next = fresh;
      old->next->prev = fresh;
      List& list = list_of(old->queue);
      list.weight = list.weight - old->weight + fresh->weight;
      slot_of(old).store(fresh, std::memory_order_release);
      retired_nodes.push_back(old);
    }

    // Grace periods. Never waits: a writer starts one when enough is retired and none is running, and
    // frees the previous one's garbage once no reader of the old parity is left.
    void reclaim(Garbage& garbage) {
      for (int round = 0; round < 2; ++round) {
        if (!pending_nodes.empty() || !pending_tables.empty()) {
          if (!quiescent(1 - parity.load(std::memory_order_relaxed))) return;
          append(garbage.nodes, pending_nodes);
          append(garbage.tables, pending_tables);
        }
        if (retired_nodes.size() < kRetireBatch && retired_tables.empty()) return;
        pending_nodes.swap(retired_nodes);
        pending_tables.swap(retired_tables);
        parity.store(1 - parity.load(std::memory_order_relaxed), std::memory_order_seq_cst);
      }
    }

    [[nodiscard]] bool quiescent(std::uint32_t old_parity) const noexcept {
      for (const auto& stripe : readers)
        if (stripe[old_parity].value.load(std::memory_order_seq_cst) != 0) return false;
      return true;
    }

    template <typename T>
    static void append(std::vector<T>& to, std::vector<T>& from) {
      if (to.empty()) {
        to.swap(from);
      } else {
        to.insert(to.end(), from.begin(), from.end());
        from.clear();
      }
    }

    [[nodiscard]] List& list_of(Queue q) noexcept {
      return q == Queue::window ? window : q == Queue::probation ? probation : protected_;
    }
    [[nodiscard]] std::uint64_t total_weight() const noexcept {
      return window.weight + probation.weight + protected_.weight;
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
      detach(node);
      if (cause == CacheRemovalCause::size) ++evictions;
      if (cause == CacheRemovalCause::rejected) ++rejected;
      removed.push_back({node, cause, true});
    }

    // Caffeine's hill climber: keep moving the window the same way while the hit rate improves, turn
    // around when it drops; steps decay, and restart large when the hit rate jumps (workload change).
    void climb() noexcept {
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

    // Empties the shard: readers switch to a fresh table, the old one and every node are retired.
    void detach_all(Removed& removed) {
      for (List* list : {&window, &probation, &protected_}) {
        for (Links* link = list->sentinel.next; !list->is_end(link); link = link->next) {
          Node* node = static_cast<Node*>(link);
          retired_nodes.push_back(node);
          removed.push_back({node, CacheRemovalCause::explicit_, true});
        }
        list->clear();
      }
      retired_tables.push_back(current());
      table.store(Table::create(kMinTable), std::memory_order_release);
      count = 0;
      tombstones = 0;
    }

    void collect_expired(std::int64_t now, Removed& removed) {
      for (List* list : {&window, &probation, &protected_}) {
        Links* link = list->sentinel.next;
        while (!list->is_end(link)) {
          Node* node = static_cast<Node*>(link);
          link = link->next;
          if (node->expires_at != 0 && now >= node->expires_at) {
            detach(node);
            ++expirations;
            removed.push_back({node, CacheRemovalCause::expired, true});
          }
        }
      }
    }

    // Only when no other thread can use the cache any more.
    void destroy_all() noexcept {
      for (List* list : {&window, &probation, &protected_}) {
        Links* link = list->sentinel.next;
        while (!list->is_end(link)) {
          Node* node = static_cast<Node*>(link);
          link = link->next;
          delete node;
        }
        list->clear();
      }
      for (Node* node : retired_nodes) delete node;
      for (Node* node : pending_nodes) delete node;
      for (Table* t : retired_tables) Table::destroy(t);
      for (Table* t : pending_tables) Table::destroy(t);
      retired_nodes.clear();
      pending_nodes.clear();
      retired_tables.clear();
      pending_tables.clear();
      Table::destroy(table.exchange(nullptr));
    }
  };

  // RAII read section on one shard; an inactive one (a writer without a listener) does nothing.
  class ReadSection {
   public:
    ReadSection(Shard& shard, const cache_detail::StripeLease& stripe, bool active = true) noexcept
        : shard_(active ? &shard : nullptr), stripe_(stripe), parity_(active ? shard.enter(stripe) : 0) {}
    ~ReadSection() {
      if (shard_ != nullptr) shard_->leave(stripe_, parity_);
    }
    ReadSection(const ReadSection&) = delete;
    ReadSection& operator=(const ReadSection&) = delete;

   private:
    Shard* shard_;
    const cache_detail::StripeLease& stripe_;
    std::uint32_t parity_;
  };

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
    const std::uint64_t hash = cache_detail::mix(static_cast<std::uint64_t>(Hash{}(key)) ^ seed_);
    return hash == kMissMarker ? 1 : hash;
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
