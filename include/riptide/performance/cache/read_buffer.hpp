#pragma once
// ReadRing: the buffer a reader records a hit in instead of touching the eviction policy, one per
// reader stripe and shard; whoever holds the shard lock later replays it into the policy. Separate from the
// shard because the ring's producer/consumer protocol (who writes which index, with which ordering) is
// self-contained; the shard only decides when to drain and what a replayed entry does.

#include <array>
#include <atomic>
#include <cstdint>

namespace riptide::performance::cache_detail {

// Reads recorded per stripe before a drain (power of two). 64 rather than Caffeine's 16: each drain
// moves the mutex, the other stripes' rings and the policy lines between cores once, so larger batches
// amortize that better with two threads (measured in docs/PERFORMANCE.md ## Cache).
inline constexpr std::uint64_t kRingSize = 64;

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

  /// Producer side: appends `entry` unless the ring is full. True when the ring is full afterwards (or
  /// was, and `entry` was dropped): time to drain.
  [[nodiscard]] bool push(std::uint64_t entry) noexcept {
    const std::uint64_t t = tail.load(std::memory_order_relaxed);
    const std::uint64_t h = head.load(std::memory_order_acquire);
    if (t - h < kRingSize) {
      slots[t & (kRingSize - 1)].store(entry, std::memory_order_relaxed);
      tail.store(t + 1, std::memory_order_release);
      if (t + 1 - h < kRingSize) return false;
    }
    return true;
  }

  /// Consumer side, under the shard lock: hands every recorded entry to `visit`, oldest first, then frees
  /// their slots for the producer.
  template <typename Visit>
  void drain(Visit&& visit) noexcept {
    const std::uint64_t t = tail.load(std::memory_order_acquire);
    std::uint64_t h = head.load(std::memory_order_relaxed);
    if (t == h) return;
    if (t - h > kRingSize) h = t - kRingSize;  // the shared stripe raced; keep the newest
    for (; h != t; ++h) visit(slots[h & (kRingSize - 1)].load(std::memory_order_relaxed));
    head.store(t, std::memory_order_release);
  }
};

}  // namespace riptide::performance::cache_detail
