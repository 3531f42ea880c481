#pragma once
// Memory over time: the compact samples the tracker's history rings hold, and the trend computed from
// them over any window and interval (downsampled, with a least-squares growth rate and its R^2).

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace riptide::performance {

/// One point of a history ring: a snapshot, or the merge of several (the downsampled ring keeps one
/// per long_history_interval). Kept small: the rings hold thousands of these.
struct MemorySample {
  std::chrono::steady_clock::time_point steady_time;       ///< mean time of the snapshots merged here
  std::chrono::steady_clock::time_point last_steady_time;  ///< time of the newest snapshot merged here
  std::chrono::system_clock::time_point system_time;       ///< wall time matching steady_time
  std::uint32_t samples = 1;                               ///< snapshots merged into this point
  std::optional<std::uint64_t> heap_bytes;                 ///< mean heap bytes in use
  std::optional<std::uint64_t> heap_min_bytes;             ///< lowest heap bytes among the merged snapshots
  std::optional<std::uint64_t> heap_max_bytes;             ///< highest heap bytes among the merged snapshots
  std::optional<std::uint64_t> rss_bytes;                  ///< mean RSS
  std::optional<std::uint64_t> resident_bytes;             ///< mean jemalloc resident (jemalloc only)
  std::optional<std::uint64_t> allocation_count;           ///< cumulative count at the newest merged snapshot
  std::optional<std::uint64_t> deallocation_count;         ///< cumulative count at the newest merged snapshot
};

/// A weighted mean of a figure some readings lack: what merging snapshots into a sample, and samples into a
/// trend point, does to each figure.
class WeightedMean {
 public:
  void add(std::optional<std::uint64_t> value, double weight = 1.0) noexcept {
    if (!value) return;
    sum_ += weight * static_cast<double>(*value);
    weight_ += weight;
  }
  /// Empty when no reading had the figure.
  [[nodiscard]] std::optional<std::uint64_t> mean() const noexcept {
    if (!(weight_ > 0)) return std::nullopt;
    return static_cast<std::uint64_t>(std::llround(sum_ / weight_));
  }

 private:
  double sum_ = 0;
  double weight_ = 0;
};

/// One point of a trend: the snapshots of one interval merged.
struct TrendPoint {
  std::chrono::system_clock::time_point timestamp;  ///< start of the interval
  std::optional<std::uint64_t> memory_usage;        ///< mean heap bytes in use over the interval
  std::optional<std::uint64_t> rss_bytes;           ///< mean RSS over the interval
  std::optional<std::uint64_t> resident_bytes;      ///< mean jemalloc resident over the interval
  std::optional<std::uint64_t> allocation_count;    ///< cumulative allocations at the interval's end
  std::optional<std::uint64_t> deallocation_count;  ///< cumulative deallocations at the interval's end
  std::uint32_t samples = 0;                        ///< snapshots merged into this point
};

/// The `trend_analysis` object of GET /metrics/memory/trend, plus the fit quality. Usage figures are heap bytes in use.
struct TrendAnalysis {
  double average_usage = 0.0;    ///< mean of the points' memory_usage
  std::uint64_t peak_usage = 0;  ///< highest heap bytes of any snapshot in the window
  std::uint64_t min_usage = 0;   ///< lowest heap bytes of any snapshot in the window
  double growth_rate = 0.0;      ///< least-squares slope of memory_usage over time, bytes per second
  double volatility = 0.0;       ///< standard deviation of the points' memory_usage, bytes
  double r_squared = 0.0;        ///< share of the variance the line explains (0: noise or flat, 1: steady)
  std::size_t point_count = 0;   ///< points that had a memory_usage value
};

struct MemoryTrend {
  std::chrono::nanoseconds duration{};  ///< window looked at (ends now)
  std::chrono::nanoseconds interval{};  ///< effective interval (widened when the point cap required it)
  bool downsampled_history = false;     ///< part of the window came from the downsampled ring
  std::vector<TrendPoint> data_points;  ///< oldest first; intervals without snapshots are left out
  TrendAnalysis trend_analysis;
};

/// Allocations and frees per second between the first and the last sample that carry jemalloc's counts.
struct AllocationRate {
  double allocations_per_second = 0.0;
  double deallocations_per_second = 0.0;
  std::chrono::nanoseconds span{};  ///< time between the two samples the rates rest on
};
/// The rate over `samples` (oldest first); empty with fewer than two counted samples or no time between them.
[[nodiscard]] std::optional<AllocationRate> allocation_rate(std::span<const MemorySample> samples) noexcept;

/// Least-squares line through (x, y); r_squared 0 when y does not vary or fewer than 3 points.
struct LineFit {
  double slope = 0.0;
  double intercept = 0.0;
  double r_squared = 0.0;
};
[[nodiscard]] LineFit fit_line(std::span<const double> x, std::span<const double> y) noexcept;

/// Builds a trend from `samples` (oldest first): the window [now - duration, now] cut into intervals
/// (at most `max_points`, the interval is widened to respect it), each interval's samples merged into a
/// point weighted by how many snapshots they hold.
[[nodiscard]] MemoryTrend build_trend(std::span<const MemorySample> samples,
                                      std::chrono::steady_clock::time_point steady_now,
                                      std::chrono::system_clock::time_point system_now,
                                      std::chrono::nanoseconds duration, std::chrono::nanoseconds interval,
                                      std::size_t max_points);

}  // namespace riptide::performance
