#include "riptide/performance/memory/memory_trend.hpp"

#include <algorithm>
#include <cmath>

namespace riptide::performance {
namespace {

using std::chrono::nanoseconds;

/// Running sums of one interval's samples, weighted by the snapshots each sample merges.
struct Bucket {
  std::uint32_t samples = 0;
  double time_sum = 0;  // seconds since window start, weighted
  double heap_sum = 0;
  double heap_weight = 0;
  WeightedMean rss;
  WeightedMean resident;
  std::optional<std::uint64_t> heap_min;
  std::optional<std::uint64_t> heap_max;
  std::optional<std::uint64_t> allocation_count;
  std::optional<std::uint64_t> deallocation_count;
};

}  // namespace

LineFit fit_line(std::span<const double> x, std::span<const double> y) noexcept {
  LineFit fit;
  const std::size_t n = std::min(x.size(), y.size());
  if (n < 2) {
    fit.intercept = n == 1 ? y[0] : 0.0;
    return fit;
  }
  // Centered sums: numerically stable for large x (seconds) and y (bytes).
  double mean_x = 0;
  double mean_y = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mean_x += x[i];
    mean_y += y[i];
  }
  mean_x /= static_cast<double>(n);
  mean_y /= static_cast<double>(n);
  double sxx = 0;
  double sxy = 0;
  double syy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dx = x[i] - mean_x;
    const double dy = y[i] - mean_y;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx <= 0) {
    fit.intercept = mean_y;
    return fit;
  }
  fit.slope = sxy / sxx;
  fit.intercept = mean_y - fit.slope * mean_x;
  if (n >= 3 && syy > 0) {
    fit.r_squared = std::clamp((sxy * sxy) / (sxx * syy), 0.0, 1.0);
  }
  return fit;
}

MemoryTrend build_trend(std::span<const MemorySample> samples, std::chrono::steady_clock::time_point steady_now,
                        std::chrono::system_clock::time_point system_now, nanoseconds duration, nanoseconds interval,
                        std::size_t max_points) {
  MemoryTrend trend;
  duration = std::max(duration, nanoseconds{1});
  interval = std::clamp(interval, nanoseconds{1}, duration);
  max_points = std::max<std::size_t>(max_points, 1);
  auto bucket_count = static_cast<std::size_t>((duration.count() + interval.count() - 1) / interval.count());
  if (bucket_count > max_points) {
    interval = nanoseconds{(duration.count() + static_cast<std::int64_t>(max_points) - 1) /
                           static_cast<std::int64_t>(max_points)};
    bucket_count = static_cast<std::size_t>((duration.count() + interval.count() - 1) / interval.count());
  }
  trend.duration = duration;
  trend.interval = interval;

  const auto start = steady_now - duration;
  std::vector<Bucket> buckets(bucket_count);
  for (const MemorySample& sample : samples) {
    if (sample.steady_time < start || sample.steady_time > steady_now) {
      continue;
    }
    const auto offset = sample.steady_time - start;
    const auto index = std::min<std::size_t>(static_cast<std::size_t>(offset / interval), bucket_count - 1);
    Bucket& bucket = buckets[index];
    const double weight = std::max<std::uint32_t>(sample.samples, 1);
    bucket.samples += std::max<std::uint32_t>(sample.samples, 1);
    bucket.time_sum += weight * std::chrono::duration<double>(offset).count();
    if (sample.heap_bytes) {
      bucket.heap_sum += weight * static_cast<double>(*sample.heap_bytes);
      bucket.heap_weight += weight;
    }
    bucket.rss.add(sample.rss_bytes, weight);
    bucket.resident.add(sample.resident_bytes, weight);
    const auto low = sample.heap_min_bytes ? sample.heap_min_bytes : sample.heap_bytes;
    const auto high = sample.heap_max_bytes ? sample.heap_max_bytes : sample.heap_bytes;
    if (low) {
      bucket.heap_min = std::min(bucket.heap_min.value_or(*low), *low);
    }
    if (high) {
      bucket.heap_max = std::max(bucket.heap_max.value_or(*high), *high);
    }
    if (sample.allocation_count) {
      bucket.allocation_count = sample.allocation_count;
    }
    if (sample.deallocation_count) {
      bucket.deallocation_count = sample.deallocation_count;
    }
  }

  std::vector<double> xs;
  std::vector<double> ys;
  TrendAnalysis& analysis = trend.trend_analysis;
  std::optional<std::uint64_t> peak;
  std::optional<std::uint64_t> low;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const Bucket& bucket = buckets[i];
    if (bucket.samples == 0) {
      continue;
    }
    TrendPoint point;
    const auto bucket_start = start + interval * static_cast<std::int64_t>(i);
    point.timestamp =
        system_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(steady_now - bucket_start);
    point.samples = bucket.samples;
    if (bucket.heap_weight > 0) {
      const double mean = bucket.heap_sum / bucket.heap_weight;
      point.memory_usage = static_cast<std::uint64_t>(std::llround(mean));
      // The regression uses each interval's mean sample time, so a partly filled interval does not bend it.
      xs.push_back(bucket.time_sum / bucket.samples);
      ys.push_back(mean);
    }
    point.rss_bytes = bucket.rss.mean();
    point.resident_bytes = bucket.resident.mean();
    point.allocation_count = bucket.allocation_count;
    point.deallocation_count = bucket.deallocation_count;
    if (bucket.heap_max) {
      peak = std::max(peak.value_or(*bucket.heap_max), *bucket.heap_max);
    }
    if (bucket.heap_min) {
      low = std::min(low.value_or(*bucket.heap_min), *bucket.heap_min);
    }
    trend.data_points.push_back(point);
  }

  analysis.point_count = ys.size();
  analysis.peak_usage = peak.value_or(0);
  analysis.min_usage = low.value_or(0);
  if (!ys.empty()) {
    double sum = 0;
    for (const double y : ys) {
      sum += y;
    }
    analysis.average_usage = sum / static_cast<double>(ys.size());
    double squares = 0;
    for (const double y : ys) {
      squares += (y - analysis.average_usage) * (y - analysis.average_usage);
    }
    analysis.volatility = std::sqrt(squares / static_cast<double>(ys.size()));
    const LineFit fit = fit_line(xs, ys);
    analysis.growth_rate = fit.slope;
    analysis.r_squared = fit.r_squared;
  }
  return trend;
}

std::optional<AllocationRate> allocation_rate(std::span<const MemorySample> samples) noexcept {
  const MemorySample* first = nullptr;
  const MemorySample* last = nullptr;
  for (const auto& sample : samples) {
    if (!sample.allocation_count || !sample.deallocation_count) continue;
    if (first == nullptr) first = &sample;
    last = &sample;
  }
  if (first == nullptr || first == last) return std::nullopt;
  const auto span = last->last_steady_time - first->last_steady_time;
  const double seconds = std::chrono::duration<double>(span).count();
  if (seconds <= 0) return std::nullopt;
  // Counters never go down; a smaller later figure (a tcache flushed late) counts as no change.
  const auto delta = [](std::uint64_t before, std::uint64_t after) {
    return static_cast<double>(after - std::min(after, before));
  };
  return AllocationRate{delta(*first->allocation_count, *last->allocation_count) / seconds,
                        delta(*first->deallocation_count, *last->deallocation_count) / seconds,
                        std::chrono::duration_cast<std::chrono::nanoseconds>(span)};
}

}  // namespace riptide::performance
