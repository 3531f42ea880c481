#pragma once
// FrequencySketch: the popularity estimate behind W-TinyLFU admission, a blocked count-min sketch of 4-bit
// counters that ages by halving. Separate from the cache because it is a self-contained data structure with
// no knowledge of entries, locks or readers: the shard owns one and feeds it hashes under its lock.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace riptide::performance::cache_detail {

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

}  // namespace riptide::performance::cache_detail
