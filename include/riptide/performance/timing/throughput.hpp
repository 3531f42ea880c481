#pragma once
// Pages per second, derived from the request histogram's counts: every recorded request is one page, so
// throughput costs nothing on the hot path beyond the histogram record itself.

#include <chrono>
#include <cstdint>
#include <optional>

#include "riptide/performance/timing/latency_histogram.hpp"

namespace riptide::performance {

struct Throughput {
  std::optional<double> window_pps;         ///< pages/s over the sliding window (nullopt: zero-length span)
  std::optional<double> since_start_pps;    ///< pages/s since monitoring started
  std::chrono::nanoseconds window_span{0};  ///< how long the window really was (nominal ± one sub-window)
  std::uint64_t window_pages = 0;           ///< pages counted in the window
  std::uint64_t total_pages = 0;            ///< pages counted since start
};

/// Rates from a windowed and a cumulative snapshot of the same histogram.
[[nodiscard]] inline Throughput measure_throughput(const HistogramSnapshot& window,
                                                   const HistogramSnapshot& cumulative) noexcept {
  return Throughput{window.rate_per_second(), cumulative.rate_per_second(), window.span, window.count,
                    cumulative.count};
}

}  // namespace riptide::performance
