#pragma once
// CacheShard: one lock domain of a TinyLfuCache, with its own node table, W-TinyLFU policy (window,
// probation and protected deques, frequency sketch, admission, eviction, simulated window size), read
// buffers and grace periods. Everything that happens inside one shard is here; the facade
// (tiny_lfu_cache.hpp) keeps the public contract and what spans shards: options, key hashing and shard
// choice, TTL time, writes under a shard's lock, statistics, listener calls and freeing after the lock.

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "riptide/performance/cache/access_order_deque.hpp"
#include "riptide/performance/cache/cache_node.hpp"
#include "riptide/performance/cache/cache_stats.hpp"
#include "riptide/performance/cache/frequency_sketch.hpp"
#include "riptide/performance/cache/node_table.hpp"
#include "riptide/performance/cache/read_buffer.hpp"
#include "riptide/performance/cache/reader_stripe.hpp"
#include "riptide/performance/cache/reclamation.hpp"
#include "riptide/performance/cache/window_simulator.hpp"

namespace riptide::performance::cache_detail {

/// A node leaving the cache, for the listener and for freeing.
template <typename Node>
struct Removal {
  Node* node;
  CacheRemovalCause cause;
  bool published;  // readers may have seen it: freed by the grace period, not by the caller
};

template <typename K, typename V, typename KeyEqual>
struct CacheShard {
  using Node = cache_detail::Node<K, V>;
  using Table = NodeTable<Node>;
  using List = AccessOrderDeque<Node>;
  using Garbage = cache_detail::Garbage<Node, Table>;
  using Removed = std::vector<Removal<Node>>;

  CacheShard(std::uint64_t max, std::uint64_t expected_entries, bool size_sketch_now, double window_share,
             bool adaptive_window, std::uint64_t seed)
      : max_weight(max), adaptive(adaptive_window), rng(seed | 1), simulator(expected_entries, window_share) {
    window_max = std::min<std::uint64_t>(max, static_cast<std::uint64_t>(std::llround(window_share * max)));
    if (window_max == 0 && max > 1) window_max = 1;
    protected_max = static_cast<std::uint64_t>(0.8 * static_cast<double>(max - window_max));
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
  ReaderCounts readers{};
  std::array<ReadRing, kReaderStripes> rings{};

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
  FrequencySketch sketch;
  std::uint64_t sketch_entries = 0;  // entries the sketch is sized for
  bool adaptive;
  std::uint64_t rng;
  // Unlinked nodes and replaced tables waiting for grace periods.
  Retirement<Node, Table> retirement;
  WindowSimulator simulator;  // used only when `adaptive`
  // Statistics (hits and misses live in the read rings).
  std::uint64_t evictions = 0;
  std::uint64_t rejected = 0;
  std::uint64_t expirations = 0;

  static constexpr std::uint64_t kMinTable = 16;
  static constexpr std::uint32_t kAdmitHashDosThreshold = 6;

  // ---------------------------------------------------------------- lock-free read side

  // The live node for key, or nullptr. Caller is inside a read section.
  [[nodiscard]] const Node* find(std::uint64_t hash, const K& key) const noexcept {
    Table* t = table.load(std::memory_order_acquire);
    std::atomic<Node*>* slots = t->slots();
    for (std::uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
      const Node* node = slots[i].load(std::memory_order_acquire);
      if (node == nullptr) return nullptr;
      if (node != Table::tombstone() && node->hash == hash && KeyEqual{}(node->key, key)) return node;
    }
  }

  // Read side of the grace periods (reclamation.hpp).
  std::uint32_t enter(const StripeLease& stripe) noexcept { return enter_read_section(parity, readers, stripe); }
  void leave(const StripeLease& stripe, std::uint32_t p) noexcept { leave_read_section(readers, stripe, p); }

  // Appends to this stripe's ring; a full ring is replayed into the policy if the lock is free, and
  // dropped otherwise (a read never waits).
  void record_read(ReadRing& ring, std::uint64_t entry) noexcept {
    if (!ring.push(entry)) return;
    if (mutex.try_lock()) {
      drain_reads();
      mutex.unlock();
    }
  }

  // ---------------------------------------------------------------- under the lock

  // Replays every recorded read in ring order: sketch increment, queue move, window simulation. Only
  // owned stripes and the shared one can have new entries (a released stripe's leftovers wait for its
  // next owner).
  void drain_reads() noexcept {
    std::uint32_t stripes = StripeLease::owners().load(std::memory_order_acquire) | (1U << kSharedStripe);
    for (; stripes != 0; stripes &= stripes - 1) {
      ReadRing& ring = rings[static_cast<std::size_t>(std::countr_zero(stripes))];
      // Two passes: look up every node and prefetch its sketch block and queue neighbours first, so the
      // misses of a batch overlap instead of queueing one behind the other; then replay in order.
      std::array<std::uint64_t, kRingSize> entries;
      std::array<Node*, kRingSize> nodes;
      std::uint32_t n = 0;
      ring.drain([&](std::uint64_t entry) noexcept {
        const std::uint32_t i = n++;
        entries[i] = entry;
        nodes[i] = nullptr;
        sketch.prefetch(entry);
        Node* node = find_by_hash(entry);
        if (node == nullptr) return;
        nodes[i] = node;
        __builtin_prefetch(node->prev, 1);  // the queue neighbours an LRU move will write
        __builtin_prefetch(node->next, 1);
      });
      for (std::uint32_t i = 0; i < n; ++i) replay(entries[i], nodes[i]);
    }
  }

  // Misses are not recorded: the sketch and the window simulation see that request when the key is put.
  void replay(std::uint64_t entry, Node* node) noexcept {
    sketch.increment(entry);
    if (node != nullptr) on_access(node);
    simulate(entry);
  }

  // Shows a request to the window simulation and applies the window share it chooses.
  void simulate(std::uint64_t hash) noexcept {
    if (!adaptive) return;
    const double share = simulator.record(hash);
    if (share < 0) return;
    const std::uint64_t target =
        std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(share * static_cast<double>(max_weight))));
    if (target > window_max) increase_window(target - window_max);
    if (target < window_max) decrease_window(window_max - target);
  }

  [[nodiscard]] Table* current() const noexcept { return table.load(std::memory_order_relaxed); }

  [[nodiscard]] Node* find_locked(std::uint64_t hash, const K& key) const noexcept {
    Table* t = current();
    std::atomic<Node*>* slots = t->slots();
    for (std::uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
      Node* node = slots[i].load(std::memory_order_relaxed);
      if (node == nullptr) return nullptr;
      if (node != Table::tombstone() && node->hash == hash && KeyEqual{}(node->key, key)) return node;
    }
  }

  // The node a recorded hit refers to (a 64-bit hash collision would credit the other key; harmless).
  [[nodiscard]] Node* find_by_hash(std::uint64_t hash) const noexcept {
    Table* t = current();
    std::atomic<Node*>* slots = t->slots();
    for (std::uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
      Node* node = slots[i].load(std::memory_order_relaxed);
      if (node == nullptr) return nullptr;
      if (node != Table::tombstone() && node->hash == hash) return node;
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
      if (occupant == Table::tombstone()) {
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
      if (node == nullptr || node == Table::tombstone()) continue;
      std::uint64_t i = node->hash & fresh->mask;
      while (to[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & fresh->mask;
      to[i].store(node, std::memory_order_relaxed);
    }
    table.store(fresh, std::memory_order_release);  // publishes the filled slots
    tombstones = 0;
    retirement.retire(old);
  }

  // Takes the node out of the table and its queue and retires it (freed after a grace period).
  void detach(Node* node) {
    clear_slot(slot_of(node));
    --count;
    list_of(node->queue).remove(node);
    retirement.retire(node);
  }

  // A removed node's slot becomes a tombstone, or empty when the next slot is empty (no probe can need
  // to pass it then: a key never sits beyond an empty slot from its home), and so do the tombstones
  // before it. Fewer tombstones, fewer O(capacity) rebuilds under churn.
  void clear_slot(std::atomic<Node*>& slot) noexcept {
    Table* t = current();
    std::atomic<Node*>* slots = t->slots();
    auto i = static_cast<std::uint64_t>(&slot - slots);
    if (slots[(i + 1) & t->mask].load(std::memory_order_relaxed) != nullptr) {
      slot.store(Table::tombstone(), std::memory_order_release);
      ++tombstones;
      return;
    }
    slot.store(nullptr, std::memory_order_release);
    for (i = (i - 1) & t->mask; slots[i].load(std::memory_order_relaxed) == Table::tombstone(); i = (i - 1) & t->mask) {
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
    retirement.retire(old);
  }

  // Grace periods (reclamation.hpp): frees nothing itself, hands the writer what it may free after unlocking.
  void reclaim(Garbage& garbage) { retirement.reclaim(parity, readers, garbage); }

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
        retirement.retire(node);
        removed.push_back({node, CacheRemovalCause::explicit_, true});
      }
      list->clear();
    }
    retirement.retire(current());
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
    retirement.destroy_all();
    Table::destroy(table.exchange(nullptr));
  }
};

}  // namespace riptide::performance::cache_detail
