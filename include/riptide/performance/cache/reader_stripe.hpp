#pragma once
// Reader stripes: which slot of a shard's per-stripe arrays (reader counters, read buffers) the calling
// thread uses, and whether it owns that slot alone. On its own because both the grace periods
// (reclamation.hpp) and the read buffers (read_buffer.hpp) are indexed by it, and the lease is
// process-wide, shared by every cache.

#include <atomic>
#include <bit>
#include <cstdint>

namespace riptide::performance::cache_detail {

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

}  // namespace riptide::performance::cache_detail
