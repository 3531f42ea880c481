#pragma once
// What the window sweep needs, shared by cache_window_sweep, cache_trace_replay and the test that guards the
// adaptive window (tests/cache/adaptive_window_test.cpp): seeded synthetic traces, an ARC-format trace reader,
// an exact LRU, and replays of TinyLfuCache with the adaptive window and with each fixed window share.
//
// Everything is deterministic: the generators use std::mt19937_64 with integer-to-double conversions of their
// own (no standard distribution, whose output differs between standard libraries) and the cache's hash seed is
// pinned, so a sweep prints the same figures on every run.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "riptide/performance/cache/tiny_lfu_cache.hpp"

namespace riptide::performance::window_sweep {

/// Window shares a sweep fixes, as fractions of the bound. 0 leaves a window of one entry per shard (the
/// least the cache keeps).
inline constexpr std::array<double, 9> kFixedWindowShares{0.0, 0.01, 0.02, 0.05, 0.10, 0.20, 0.40, 0.60, 0.80};

/// The hash seed every replay uses, so that runs repeat exactly.
inline constexpr std::uint64_t kReplaySeed = 0x5eed'0f'5ca1e;

/// Uniform in [0, 1) from the top 53 bits.
[[nodiscard]] inline double unit_interval(std::mt19937_64& random) {
  return static_cast<double>(random() >> 11) * 0x1.0p-53;
}

/// Ranks 0 .. keys-1 drawn with probability proportional to 1 / (rank + 1)^skew (inverse of the cumulative
/// weights by binary search).
class ZipfRanks {
 public:
  ZipfRanks(std::uint64_t keys, double skew) : cumulative_(keys) {
    double sum = 0;
    for (std::uint64_t rank = 0; rank < keys; ++rank) {
      sum += 1.0 / std::pow(static_cast<double>(rank + 1), skew);
      cumulative_[rank] = sum;
    }
    for (double& c : cumulative_) c /= sum;
  }
  [[nodiscard]] std::uint64_t operator()(std::mt19937_64& random) const {
    const double u = unit_interval(random);
    const auto found = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
    return static_cast<std::uint64_t>(
        std::min<std::ptrdiff_t>(found - cumulative_.begin(), static_cast<std::ptrdiff_t>(cumulative_.size()) - 1));
  }

 private:
  std::vector<double> cumulative_;
};

/// Independent draws from a Zipf popularity over `keys` keys that never changes: frequency decides, the
/// smallest window is best.
[[nodiscard]] inline std::vector<std::uint64_t> zipf_trace(std::uint64_t keys, double skew, std::uint64_t length,
                                                           std::uint64_t seed) {
  std::mt19937_64 random(seed);
  const ZipfRanks ranks(keys, skew);
  std::vector<std::uint64_t> trace(length);
  for (auto& key : trace) key = ranks(random);
  return trace;
}

/// A stream of fresh keys, each re-read a few times soon after it first appears and then forgotten: an
/// entry's past frequency says little, recency says a lot, so a large window (close to LRU) is best. A quarter
/// of the accesses introduce a new key; the others re-read a key introduced on average `capacity / 2` new keys
/// ago (exponentially distributed). Keys start at `first_key`.
inline void append_recency(std::vector<std::uint64_t>& trace, std::uint64_t capacity, std::uint64_t length,
                           std::uint64_t first_key, std::mt19937_64& random) {
  std::uint64_t newest = first_key;
  const double mean_age = static_cast<double>(capacity) / 2;
  for (std::uint64_t i = 0; i < length; ++i) {
    if (newest == first_key || unit_interval(random) < 0.25) {
      trace.push_back(++newest);
      continue;
    }
    const auto age = static_cast<std::uint64_t>(-mean_age * std::log1p(-unit_interval(random)));
    trace.push_back(newest - std::min(age, newest - first_key - 1));
  }
}

[[nodiscard]] inline std::vector<std::uint64_t> recency_trace(std::uint64_t capacity, std::uint64_t length,
                                                              std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<std::uint64_t> trace;
  trace.reserve(length);
  append_recency(trace, capacity, length, 0, random);
  return trace;
}

/// Phases that alternate between frequency-heavy (Zipf 0.9 over 8 × capacity keys) and recency-heavy
/// (append_recency) behaviour, `phase_length` accesses each, starting with frequency. Each phase uses keys of
/// its own, so a change of phase is a change of workload the window has to follow.
[[nodiscard]] inline std::vector<std::uint64_t> phase_trace(std::uint64_t capacity, std::uint64_t phase_length,
                                                            unsigned phases, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  const ZipfRanks ranks(8 * capacity, 0.9);
  std::vector<std::uint64_t> trace;
  trace.reserve(phase_length * phases);
  for (unsigned phase = 0; phase < phases; ++phase) {
    const std::uint64_t first_key = (std::uint64_t{phase} + 1) << 40;
    if (phase % 2 == 0) {
      for (std::uint64_t i = 0; i < phase_length; ++i) trace.push_back(first_key + ranks(random));
    } else {
      append_recency(trace, capacity, phase_length, first_key, random);
    }
  }
  return trace;
}

/// A hot set of capacity / 2 keys (uniform, 30% of the accesses) mixed with a loop over 4 × capacity keys
/// (70%, in order, over and over): the loop flushes an LRU between two uses of a hot key, the frequency filter
/// keeps the hot set and refuses the loop.
[[nodiscard]] inline std::vector<std::uint64_t> scan_trace(std::uint64_t capacity, std::uint64_t length,
                                                           std::uint64_t seed) {
  std::mt19937_64 random(seed);
  const std::uint64_t hot_keys = std::max<std::uint64_t>(1, capacity / 2);
  const std::uint64_t loop_keys = 4 * capacity;
  const std::uint64_t loop_base = std::uint64_t{1} << 40;
  std::uint64_t loop_position = 0;
  std::vector<std::uint64_t> trace(length);
  for (auto& key : trace) {
    if (unit_interval(random) < 0.3) {
      key = random() % hot_keys;
    } else {
      key = loop_base + loop_position;
      loop_position = (loop_position + 1) % loop_keys;
    }
  }
  return trace;
}

/// The accesses of an ARC-format trace ("start count ignored request" per line; .zst files through
/// `zstd -dc`): a request for `count` blocks from `start` is the keys start .. start + count - 1, as cache
/// simulators replay them. nullopt when the file cannot be read.
[[nodiscard]] inline std::optional<std::vector<std::uint64_t>> read_arc_trace(const std::string& path) {
  const bool compressed = path.size() > 4 && path.compare(path.size() - 4, 4, ".zst") == 0;
  std::string quoted = "'";
  for (const char c : path) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  quoted += "'";
  FILE* input =
      compressed ? ::popen(("zstd -dc -- " + quoted + " 2>/dev/null").c_str(), "r") : std::fopen(path.c_str(), "r");
  if (input == nullptr) return std::nullopt;
  std::vector<std::uint64_t> accesses;
  char line[512];
  while (std::fgets(line, sizeof(line), input) != nullptr) {
    char* end = nullptr;
    const unsigned long long start = std::strtoull(line, &end, 10);
    if (end == line) continue;  // blank or comment line
    const unsigned long long count = std::strtoull(end, nullptr, 10);
    for (unsigned long long i = 0; i < count; ++i) accesses.push_back(start + i);
  }
  const int status = compressed ? ::pclose(input) : std::fclose(input);
  if (status != 0 || accesses.empty()) return std::nullopt;
  return accesses;
}

/// Hit ratio of an exact LRU of `capacity` entries.
[[nodiscard]] inline double replay_lru(const std::vector<std::uint64_t>& accesses, std::uint64_t capacity) {
  std::list<std::uint64_t> order;  // front = most recent
  std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> index;
  index.reserve(capacity * 2);
  std::uint64_t hits = 0;
  for (const std::uint64_t key : accesses) {
    const auto found = index.find(key);
    if (found != index.end()) {
      ++hits;
      order.splice(order.begin(), order, found->second);
      continue;
    }
    if (index.size() >= capacity) {
      index.erase(order.back());
      order.pop_back();
    }
    order.push_front(key);
    index.emplace(key, order.begin());
  }
  return static_cast<double>(hits) / static_cast<double>(accesses.size());
}

struct TinyLfuReplay {
  double hit_ratio = 0;
  double final_window_share = 0;  ///< window bound at the end, as a share of the cache's bound
  std::uint32_t shards = 0;
};

/// Replays `accesses` through a TinyLfuCache of `capacity` entries (automatic shard count, pinned seed): get,
/// and put after a miss, as a read-through cache does. `fixed_window_share` empty: the adaptive window.
[[nodiscard]] inline TinyLfuReplay replay_tinylfu(const std::vector<std::uint64_t>& accesses, std::uint64_t capacity,
                                                  std::optional<double> fixed_window_share) {
  TinyLfuCache<std::uint64_t, std::uint64_t>::Options options;
  options.max_weight = capacity;
  options.hash_seed = kReplaySeed;
  if (fixed_window_share) {
    options.initial_window = *fixed_window_share;
    options.adaptive_window = false;
  }
  TinyLfuCache<std::uint64_t, std::uint64_t> cache(options);
  std::uint64_t hits = 0;
  for (const std::uint64_t key : accesses) {
    if (cache.get(key)) {
      ++hits;
    } else {
      cache.put(key, key);
    }
  }
  const L1CacheStats stats = cache.stats();
  return {static_cast<double>(hits) / static_cast<double>(accesses.size()),
          static_cast<double>(stats.window_max_weight) / static_cast<double>(capacity), stats.shards};
}

struct FixedWindowResult {
  double window_share = 0;
  double hit_ratio = 0;
};

struct WindowComparison {
  TinyLfuReplay adaptive;
  std::vector<FixedWindowResult> fixed;  ///< one per share of kFixedWindowShares, in that order
  FixedWindowResult best_fixed;          ///< the highest hit ratio of `fixed` (the smaller share on a tie)

  /// The adaptive window's hit ratio relative to the best fixed share's (1 when both are 0).
  [[nodiscard]] double adaptive_to_best() const {
    return best_fixed.hit_ratio > 0 ? adaptive.hit_ratio / best_fixed.hit_ratio : 1.0;
  }
};

/// The adaptive window beside every fixed share of kFixedWindowShares on one trace and capacity.
[[nodiscard]] inline WindowComparison compare_windows(const std::vector<std::uint64_t>& accesses,
                                                      std::uint64_t capacity) {
  WindowComparison result;
  result.adaptive = replay_tinylfu(accesses, capacity, std::nullopt);
  for (const double share : kFixedWindowShares) {
    const FixedWindowResult fixed{share, replay_tinylfu(accesses, capacity, share).hit_ratio};
    result.fixed.push_back(fixed);
    if (fixed.hit_ratio > result.best_fixed.hit_ratio || result.fixed.size() == 1) result.best_fixed = fixed;
  }
  return result;
}

}  // namespace riptide::performance::window_sweep
