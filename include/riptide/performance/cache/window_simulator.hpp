#pragma once
// WindowSimulator: chooses a shard's W-TinyLFU window share by simulation. A fixed sample of the shard's
// keys (chosen by hash, so a key is always in the sample or always out) is replayed through small W-TinyLFU
// caches that differ only in their window share; at the end of every period the shard's window moves to a
// share whose simulation has clearly beaten the current one (decide() says what "clearly" means). A class
// of its own because it is a pure decision over the keys it is shown: the shard applies the answer (moving
// entries between window and main space).
//
// Why simulation rather than hill climbing on the shard's own hit rate: a climber learns one step per
// period and mistakes noise for a trend, so it reaches a distant best share late (a recency-heavy workload
// wants 80%, a frequency-heavy one 1%) and wanders on a flat curve. The simulations measure every share at
// once, on the same requests, and a sample of keys keeps the cost to a fraction of a request.

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "riptide/performance/cache/frequency_sketch.hpp"

namespace riptide::performance::cache_detail {

/// One W-TinyLFU cache of at most `capacity` keys (hashes), with an LRU window, a segmented main space
/// (probation, protected = 80%) and admission by the frequency sketch it is given. Only counts hits: no
/// values, no weights. Fixed storage, no allocation after construction.
// Its queues link entries by 32-bit index into one array rather than reusing the shard's pointer-linked
// AccessOrderDeque: an entry stays at 24 bytes (a shard runs nine of these caches) and the class stays
// movable, which a deque whose sentinel its entries point at is not.
class SimulatedCache {
 public:
  SimulatedCache(std::uint32_t capacity, double window_share)
      : capacity_(std::max<std::uint32_t>(capacity, 2)),
        window_max_(std::clamp<std::uint32_t>(static_cast<std::uint32_t>(std::lround(window_share * capacity_)), 1,
                                              capacity_ - 1)),
        protected_max_(static_cast<std::uint32_t>(0.8 * (capacity_ - window_max_))),
        entries_(capacity_ + 1 + kSentinels),
        index_(std::bit_ceil(std::uint64_t{capacity_} * 2), kEmpty),
        index_mask_(index_.size() - 1) {
    for (std::uint32_t queue = 0; queue < kSentinels; ++queue) {
      const std::uint32_t head = sentinel(static_cast<Queue>(queue));
      entries_[head].prev = entries_[head].next = head;
    }
    // One slot more than the capacity: a new key always has a slot before admission frees one.
    for (std::uint32_t i = 0; i <= capacity_; ++i) entries_[i].next = i < capacity_ ? i + 1 : kNone;
    free_ = 0;
  }

  /// Replays one request for `hash`; true on a hit. `sketch` already counts this request.
  bool access(std::uint64_t hash, const FrequencySketch& sketch) noexcept {
    if (const std::uint32_t found = find(hash); found != kNone) {
      on_hit(found);
      return true;
    }
    admit_new(hash, sketch);
    return false;
  }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  static constexpr std::uint32_t kEmpty = UINT32_MAX;
  enum Queue : std::uint32_t { window = 0, probation = 1, protected_ = 2 };
  static constexpr std::uint32_t kSentinels = 3;

  struct Entry {
    std::uint64_t hash = 0;
    std::uint32_t prev = kNone;
    std::uint32_t next = kNone;
    Queue queue = window;
  };

  [[nodiscard]] std::uint32_t sentinel(Queue queue) const noexcept { return capacity_ + 1 + queue; }

  void unlink(std::uint32_t i) noexcept {
    Entry& entry = entries_[i];
    entries_[entry.prev].next = entry.next;
    entries_[entry.next].prev = entry.prev;
    --sizes_[entry.queue];
  }

  void push_mru(std::uint32_t i, Queue queue) noexcept {
    const std::uint32_t head = sentinel(queue);
    Entry& entry = entries_[i];
    entry.queue = queue;
    entry.prev = entries_[head].prev;
    entry.next = head;
    entries_[entry.prev].next = i;
    entries_[head].prev = i;
    ++sizes_[queue];
  }

  [[nodiscard]] std::uint32_t lru(Queue queue) const noexcept {
    const std::uint32_t first = entries_[sentinel(queue)].next;
    return first == sentinel(queue) ? kNone : first;
  }

  void on_hit(std::uint32_t i) noexcept {
    const Queue queue = entries_[i].queue;
    unlink(i);
    if (queue == window) {
      push_mru(i, window);
      return;
    }
    push_mru(i, protected_);
    while (sizes_[protected_] > protected_max_) {
      const std::uint32_t demoted = lru(protected_);
      unlink(demoted);
      push_mru(demoted, probation);
    }
  }

  // At most capacity_ keys are resident before the call, so the spare slot is free.
  void admit_new(std::uint64_t hash, const FrequencySketch& sketch) noexcept {
    const std::uint32_t i = free_;
    free_ = entries_[i].next;
    entries_[i].hash = hash;
    insert_index(hash, i);
    push_mru(i, window);
    if (sizes_[window] <= window_max_) return;
    // The window's LRU entry competes with probation's LRU entry for a place in the main space.
    const std::uint32_t candidate = lru(window);
    unlink(candidate);
    if (sizes_[probation] + sizes_[protected_] < capacity_ - window_max_) {
      push_mru(candidate, probation);
      return;
    }
    std::uint32_t victim = lru(probation);
    if (victim == kNone) victim = lru(protected_);
    if (sketch.frequency(entries_[candidate].hash) > sketch.frequency(entries_[victim].hash)) {
      release(victim);
      push_mru(candidate, probation);
    } else {
      release(candidate, /*linked=*/false);
    }
  }

  void release(std::uint32_t i, bool linked = true) noexcept {
    if (linked) unlink(i);
    erase_index(entries_[i].hash);
    entries_[i].next = free_;
    free_ = i;
  }

  [[nodiscard]] std::uint32_t find(std::uint64_t hash) const noexcept {
    for (std::uint64_t slot = hash & index_mask_;; slot = (slot + 1) & index_mask_) {
      const std::uint32_t i = index_[slot];
      if (i == kEmpty) return kNone;
      if (entries_[i].hash == hash) return i;
    }
  }

  void insert_index(std::uint64_t hash, std::uint32_t i) noexcept {
    std::uint64_t slot = hash & index_mask_;
    while (index_[slot] != kEmpty) slot = (slot + 1) & index_mask_;
    index_[slot] = i;
  }

  // Linear probing with backward-shift deletion: no tombstones, probes stay short.
  void erase_index(std::uint64_t hash) noexcept {
    std::uint64_t hole = hash & index_mask_;
    while (entries_[index_[hole]].hash != hash) hole = (hole + 1) & index_mask_;
    for (std::uint64_t next = (hole + 1) & index_mask_; index_[next] != kEmpty; next = (next + 1) & index_mask_) {
      const std::uint64_t home = entries_[index_[next]].hash & index_mask_;
      // The entry at `next` may move into the hole unless its home lies cyclically in (hole, next].
      const bool stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next);
      if (stays) continue;
      index_[hole] = index_[next];
      hole = next;
    }
    index_[hole] = kEmpty;
  }

  std::uint32_t capacity_;
  std::uint32_t window_max_;
  std::uint32_t protected_max_;
  std::array<std::uint32_t, kSentinels> sizes_{};
  std::vector<Entry> entries_;  // capacity_ + 1 slots, then one sentinel per queue
  std::vector<std::uint32_t> index_;
  std::uint64_t index_mask_;
  std::uint32_t free_ = kNone;
};

class WindowSimulator {
 public:
  /// The window shares simulated side by side (0 stands for the smallest window, one entry).
  static constexpr std::array<double, 9> kShares{0.0, 0.01, 0.02, 0.05, 0.10, 0.20, 0.40, 0.60, 0.80};
  /// Keys per simulated cache: a larger shard's key space is sampled down to this many cache entries.
  static constexpr std::uint32_t kSimulatedEntries = 512;
  /// Weight a period's evidence keeps in the next period's (about ten periods of memory).
  static constexpr double kEvidenceDecay = 0.9;
  /// How many standard deviations a share's lead over the chosen one must reach before the window moves.
  static constexpr double kLeadThreshold = 2.0;
  /// `shard_entries`: the entries the shard holds when full; `initial_share`: its window share at start
  /// (the simulated share nearest to it is the one to beat).
  WindowSimulator(std::uint64_t shard_entries, double initial_share)
      : chosen_(nearest_share(initial_share)),
        sampled_entries_(static_cast<std::uint32_t>(std::clamp<std::uint64_t>(shard_entries, 2, kSimulatedEntries))),
        sample_threshold_(sample_threshold(shard_entries, sampled_entries_)) {
    sketch_.ensure_capacity(sampled_entries_);
    caches_.reserve(kShares.size());
    for (const double share : kShares) caches_.emplace_back(sampled_entries_, share);
  }

  /// Shows one request for the key with `hash`. When this request ends a period (as many sampled requests
  /// as a simulated cache holds) and another share has clearly won, returns the window share the shard
  /// should have from now on; otherwise a negative number.
  [[nodiscard]] double record(std::uint64_t hash) noexcept {
    if (!sampled(hash)) return -1;
    sketch_.increment(hash);
    std::array<bool, kShares.size()> hit{};
    for (std::size_t k = 0; k < caches_.size(); ++k) hit[k] = caches_[k].access(hash, sketch_);
    for (std::size_t k = 0; k < caches_.size(); ++k) {
      wins_[k] += hit[k] && !hit[chosen_] ? 1 : 0;
      losses_[k] += !hit[k] && hit[chosen_] ? 1 : 0;
    }
    if (++period_requests_ < sampled_entries_) return -1;
    period_requests_ = 0;
    return decide() ? kShares[chosen_] : -1;
  }

 private:
  // The simulations see the same requests, so only the requests on which two of them disagree tell them
  // apart: a share takes over when its wins minus losses against the chosen share exceed kLeadThreshold
  // standard deviations of that difference (sqrt of wins + losses, a sign test). The evidence then starts
  // afresh against the new choice. On a flat or sparse curve (few disagreements) the window stays put
  // instead of chasing noise; a clear difference moves it at once, however far.
  // True when the choice changed.
  bool decide() noexcept {
    std::size_t best = chosen_;
    double best_lead = 0;
    for (std::size_t k = 0; k < caches_.size(); ++k) {
      const double lead = wins_[k] - losses_[k];
      if (lead > best_lead && lead > kLeadThreshold * std::sqrt(wins_[k] + losses_[k])) {
        best = k;
        best_lead = lead;
      }
    }
    if (best != chosen_) {
      chosen_ = best;
      wins_.fill(0);
      losses_.fill(0);
      return true;
    }
    for (std::size_t k = 0; k < caches_.size(); ++k) {
      wins_[k] *= kEvidenceDecay;
      losses_[k] *= kEvidenceDecay;
    }
    return false;
  }

  static std::size_t nearest_share(double share) noexcept {
    std::size_t nearest = 0;
    for (std::size_t k = 1; k < kShares.size(); ++k) {
      if (std::abs(kShares[k] - share) < std::abs(kShares[nearest] - share)) nearest = k;
    }
    return nearest;
  }

  // Keys whose remixed hash falls below the threshold (out of 2^32) are sampled: shard_entries -> sampled.
  static std::uint64_t sample_threshold(std::uint64_t shard_entries, std::uint32_t sampled_entries) noexcept {
    if (shard_entries <= sampled_entries) return std::uint64_t{1} << 32;
    return (std::uint64_t{sampled_entries} << 32) / shard_entries;
  }

  [[nodiscard]] bool sampled(std::uint64_t hash) const noexcept {
    // A multiplicative remix: the low bits already chose the table slot, the high bits the shard.
    return ((hash * 0x9E3779B97F4A7C15ULL) >> 32) < sample_threshold_;
  }

  std::size_t chosen_;  // index into kShares
  std::uint32_t sampled_entries_;
  std::uint64_t sample_threshold_;
  FrequencySketch sketch_;
  std::vector<SimulatedCache> caches_;
  std::array<double, kShares.size()> wins_{};    // requests share k hit and the chosen share missed
  std::array<double, kShares.size()> losses_{};  // requests the chosen share hit and share k missed
  std::uint32_t period_requests_ = 0;
};

}  // namespace riptide::performance::cache_detail
