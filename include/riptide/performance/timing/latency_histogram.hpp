#pragma once
// A latency histogram for hot paths: log-linear buckets (HdrHistogram-like) so every percentile is within
// 0.79% of the exact value, lock-free recording from any number of threads, and two views: cumulative
// (since construction) and a sliding window (e.g. the last 60 s) built from rotating sub-window marks.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "riptide/performance/core/clock.hpp"

namespace riptide::performance {

/// Bucket layout shared by every histogram. Values are nanoseconds. Below 128 ns each value has its own
/// bucket; above, each power of two is split into 64 equal buckets, so a bucket is at most 1/64 of its
/// lower edge wide and its midpoint is within 1/128 (0.79%) of any value in it. Values from 2^40 ns
/// (~18 min) up are counted in the last bucket; min/max/sum stay exact.
struct HistogramLayout {
  static constexpr unsigned kSubBucketBits = 6;
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBucketBits;  // per power of two
  static constexpr std::uint64_t kLinearLimit = kSubBuckets * 2;                    // exact below this
  static constexpr unsigned kMaxExponent = 40;
  static constexpr std::uint64_t kMaxTrackable = (std::uint64_t{1} << kMaxExponent) - 1;
  static constexpr std::size_t kBucketCount =
      static_cast<std::size_t>(kLinearLimit + (kMaxExponent - kSubBucketBits - 1) * kSubBuckets);

  [[nodiscard]] static constexpr std::size_t index_of(std::uint64_t value_ns) noexcept {
    if (value_ns < kLinearLimit) {
      return static_cast<std::size_t>(value_ns);
    }
    if (value_ns > kMaxTrackable) {
      value_ns = kMaxTrackable;
    }
    const unsigned exponent = 63U - static_cast<unsigned>(__builtin_clzll(value_ns));  // >= kSubBucketBits + 1
    const unsigned shift = exponent - kSubBucketBits;
    return static_cast<std::size_t>(kLinearLimit + (exponent - kSubBucketBits - 1) * kSubBuckets +
                                    ((value_ns >> shift) & (kSubBuckets - 1)));
  }
  /// Smallest value that lands in bucket `index`.
  [[nodiscard]] static constexpr std::uint64_t lower_bound(std::size_t index) noexcept {
    if (index < kLinearLimit) {
      return index;
    }
    const std::uint64_t above = index - kLinearLimit;
    const unsigned exponent = static_cast<unsigned>(above / kSubBuckets) + kSubBucketBits + 1;
    const std::uint64_t sub = above % kSubBuckets;
    return (std::uint64_t{1} << exponent) + (sub << (exponent - kSubBucketBits));
  }
  /// Largest value that lands in bucket `index`.
  [[nodiscard]] static constexpr std::uint64_t upper_bound(std::size_t index) noexcept {
    return index + 1 >= kBucketCount ? kMaxTrackable : lower_bound(index + 1) - 1;
  }
};

/// A point-in-time copy of a histogram (cumulative or windowed): plain data, safe to keep and pass around.
struct HistogramSnapshot {
  std::vector<std::uint64_t> counts;  ///< per bucket of HistogramLayout; empty when count == 0
  std::uint64_t count = 0;            ///< values recorded in the covered span (exact)
  std::uint64_t sum_ns = 0;           ///< sum of those values (exact) — the time spent, for shares
  std::uint64_t min_ns = 0;           ///< smallest value (exact cumulative; within a bucket in a window)
  std::uint64_t max_ns = 0;           ///< largest value (exact cumulative; within a bucket in a window)
  std::chrono::nanoseconds span{0};   ///< time the snapshot covers (for rates)

  /// Nearest-rank percentile, `percent` in [0, 100]; nullopt when empty. Within 0.79% of the exact
  /// value of the recorded data (the bucket midpoint, clamped to [min, max]).
  [[nodiscard]] std::optional<std::uint64_t> percentile_ns(double percent) const noexcept;
  [[nodiscard]] std::optional<double> percentile_ms(double percent) const noexcept;
  [[nodiscard]] std::optional<double> mean_ns() const noexcept;
  /// Values per second over `span`; nullopt when the span is zero.
  [[nodiscard]] std::optional<double> rate_per_second() const noexcept;
};

class LatencyHistogram {
 public:
  struct Options {
    std::chrono::nanoseconds window{std::chrono::seconds{60}};  ///< length of the sliding-window view
    std::uint32_t sub_windows = 6;  ///< window granularity: the view covers window - window/sub_windows .. window
    std::uint32_t stripes = 0;      ///< counter copies that threads spread over; 0 = by hardware threads (<= 8)
  };

  explicit LatencyHistogram(const Clock& clock = system_clock());
  LatencyHistogram(const Clock& clock, Options options);
  ~LatencyHistogram();
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  /// Hot path: one relaxed fetch_add on a bucket and one on the sum, in the calling thread's stripe; no
  /// lock, no allocation, no clock read. Negative durations count as 0.
  void record(std::chrono::nanoseconds latency) noexcept { record_ns(latency.count() < 0 ? 0 : latency.count()); }
  void record_ns(std::uint64_t value_ns) noexcept;

  /// Everything recorded since construction.
  [[nodiscard]] HistogramSnapshot cumulative() const;

  /// Roughly the last `Options::window`: what was recorded since the oldest sub-window mark that is not
  /// older than the window (see docs/timing.md). Marks are placed by advance(); this calls it first.
  [[nodiscard]] HistogramSnapshot window();

  /// Places a sub-window mark when one is due. Cheap when none is; call it at least once per sub-window
  /// (the manager's monitoring thread does) so the window view stays close to its nominal length.
  void advance();

  [[nodiscard]] std::uint64_t count() const noexcept;
  [[nodiscard]] const Options& options() const noexcept { return options_; }

 private:
  struct Stripe;
  struct Mark {
    std::chrono::steady_clock::time_point at;
    std::vector<std::pair<std::uint32_t, std::uint64_t>> buckets;  // sparse: only non-empty buckets
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
  };

  [[nodiscard]] Stripe& stripe_for_this_thread() noexcept;
  void merge_into(HistogramSnapshot& out) const;
  void advance_locked(std::chrono::steady_clock::time_point now);

  const Clock& clock_;
  Options options_;
  std::chrono::steady_clock::time_point created_;
  std::size_t stripe_mask_ = 0;
  std::unique_ptr<Stripe[]> stripes_;

  std::mutex marks_mutex_;   // readers only; record() never takes it
  std::vector<Mark> marks_;  // oldest first, at most sub_windows + 1
};

}  // namespace riptide::performance
