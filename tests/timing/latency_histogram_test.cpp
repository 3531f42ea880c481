// Accuracy against exact sorted data, exact counts under concurrency, and the sliding window on a
// driven clock.
#include "riptide/performance/timing/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "riptide/performance/timing/throughput.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

// Nearest-rank percentile of sorted data: the definition the histogram promises to approximate.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double percent) {
  auto rank = static_cast<std::size_t>(std::ceil(percent / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_accurate(std::vector<std::uint64_t> values, const char* name) {
  rp::ManualClock clock;
  rp::LatencyHistogram histogram(clock);
  for (auto v : values) {
    histogram.record_ns(v);
  }
  std::sort(values.begin(), values.end());
  const auto snap = histogram.cumulative();
  ASSERT_EQ(snap.count, values.size()) << name;
  EXPECT_EQ(snap.min_ns, values.front()) << name;
  EXPECT_EQ(snap.max_ns, values.back()) << name;
  long double sum = 0;
  for (auto v : values) sum += static_cast<long double>(v);
  EXPECT_EQ(static_cast<long double>(snap.sum_ns), sum) << name;
  double worst = 0;
  for (double p : {0.0, 0.1, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0}) {
    const auto exact = static_cast<double>(exact_percentile(values, p));
    const auto got = snap.percentile_ns(p);
    ASSERT_TRUE(got.has_value());
    const double error = std::fabs(static_cast<double>(*got) - exact) / std::max(exact, 1.0);
    worst = std::max(worst, error);
    EXPECT_LE(error, 0.01) << name << " p" << p << ": exact " << exact << " got " << *got;
  }
  // Also every percentile in 0.1 steps, the whole curve.
  for (int i = 0; i <= 1000; ++i) {
    const double p = i / 10.0;
    const auto exact = static_cast<double>(exact_percentile(values, p));
    const double error = std::fabs(static_cast<double>(*snap.percentile_ns(p)) - exact) / std::max(exact, 1.0);
    worst = std::max(worst, error);
    ASSERT_LE(error, 0.01) << name << " p" << p;
  }
  ::testing::Test::RecordProperty(std::string(name) + "_worst_relative_error", std::to_string(worst));
}

constexpr std::size_t kSamples = 200'000;

}  // namespace

TEST(HistogramLayout, BucketsAreContiguousAndNarrow) {
  using L = rp::HistogramLayout;
  EXPECT_EQ(L::index_of(0), 0U);
  EXPECT_EQ(L::index_of(L::kMaxTrackable), L::kBucketCount - 1);
  EXPECT_EQ(L::index_of(~std::uint64_t{0}), L::kBucketCount - 1);
  for (std::size_t i = 0; i + 1 < L::kBucketCount; ++i) {
    ASSERT_EQ(L::upper_bound(i) + 1, L::lower_bound(i + 1)) << i;
    ASSERT_EQ(L::index_of(L::lower_bound(i)), i);
    ASSERT_EQ(L::index_of(L::upper_bound(i)), i);
    const double width = static_cast<double>(L::upper_bound(i) - L::lower_bound(i) + 1);
    if (i < L::kLinearLimit) {
      ASSERT_EQ(width, 1.0);
      continue;
    }
    ASSERT_LE(width / std::max<double>(1, static_cast<double>(L::lower_bound(i))), 1.0 / 64 + 1e-12) << i;
  }
}

TEST(LatencyHistogramAccuracy, Uniform) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::uint64_t> dist(1'000, 5'000'000'000ULL);
  std::vector<std::uint64_t> values(kSamples);
  for (auto& v : values) v = dist(rng);
  expect_accurate(std::move(values), "uniform");
}

TEST(LatencyHistogramAccuracy, LogNormal) {
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> dist(std::log(200e6), 0.8);  // median 200 ms
  std::vector<std::uint64_t> values(kSamples);
  for (auto& v : values) v = static_cast<std::uint64_t>(dist(rng));
  expect_accurate(std::move(values), "lognormal");
}

TEST(LatencyHistogramAccuracy, Bimodal) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> fast(2e6, 2e5);    // cache hits ~2 ms
  std::normal_distribution<double> slow(1.2e9, 1e8);  // fetches ~1.2 s
  std::bernoulli_distribution pick_slow(0.3);
  std::vector<std::uint64_t> values(kSamples);
  for (auto& v : values) v = static_cast<std::uint64_t>(std::max(1.0, pick_slow(rng) ? slow(rng) : fast(rng)));
  expect_accurate(std::move(values), "bimodal");
}

TEST(LatencyHistogramAccuracy, HeavyTail) {
  std::mt19937_64 rng(4);
  // Pareto with alpha 1.1: a few values are thousands of times the median.
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::uint64_t> values(kSamples);
  for (auto& v : values) v = static_cast<std::uint64_t>(std::min(1e12, 50'000.0 / std::pow(1.0 - u(rng), 1 / 1.1)));
  expect_accurate(std::move(values), "heavy_tail");
}

TEST(LatencyHistogramAccuracy, SmallValuesAreExact) {
  std::vector<std::uint64_t> values;
  for (std::uint64_t v = 0; v < 128; ++v) values.push_back(v);
  rp::ManualClock clock;
  rp::LatencyHistogram histogram(clock);
  for (auto v : values) histogram.record_ns(v);
  const auto snap = histogram.cumulative();
  EXPECT_EQ(*snap.percentile_ns(50), 63U);
  EXPECT_EQ(*snap.percentile_ns(100), 127U);
  EXPECT_EQ(*snap.percentile_ns(0), 0U);
}

TEST(LatencyHistogram, EmptyHasNoPercentiles) {
  rp::ManualClock clock;
  rp::LatencyHistogram histogram(clock);
  const auto snap = histogram.cumulative();
  EXPECT_EQ(snap.count, 0U);
  EXPECT_FALSE(snap.percentile_ns(50).has_value());
  EXPECT_FALSE(snap.mean_ns().has_value());
  EXPECT_FALSE(histogram.window().percentile_ms(99).has_value());
}

TEST(LatencyHistogram, NegativeAndHugeValuesAreClamped) {
  rp::ManualClock clock;
  rp::LatencyHistogram histogram(clock);
  histogram.record(-5ns);
  histogram.record(std::chrono::hours{2});
  const auto snap = histogram.cumulative();
  EXPECT_EQ(snap.count, 2U);
  EXPECT_EQ(snap.min_ns, 0U);
  EXPECT_EQ(snap.max_ns, static_cast<std::uint64_t>(std::chrono::nanoseconds(std::chrono::hours{2}).count()));
  EXPECT_EQ(*snap.percentile_ns(100), snap.max_ns);  // clamped into [min, max]
}

TEST(LatencyHistogramConcurrency, EightThreadsMillionEachLoseNothing) {
  rp::ManualClock clock;
  rp::LatencyHistogram histogram(clock, {.stripes = 4});  // fewer stripes than threads: shared stripes too
  constexpr int kThreads = 8;
  constexpr std::uint64_t kPerThread = 1'000'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&histogram, t] {
      for (std::uint64_t i = 0; i < kPerThread; ++i) {
        histogram.record_ns(1'000 + (i % 1000) * 1000 + static_cast<std::uint64_t>(t));
      }
    });
  }
  // A reader running at the same time must see monotonic counts.
  std::uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    const auto c = histogram.count();
    ASSERT_GE(c, last);
    last = c;
    clock.advance(2s);
    (void)histogram.window();
  }
  for (auto& th : threads) th.join();
  const auto snap = histogram.cumulative();
  EXPECT_EQ(snap.count, kThreads * kPerThread);
  EXPECT_EQ(histogram.count(), kThreads * kPerThread);
  std::uint64_t expected_sum = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (std::uint64_t i = 0; i < kPerThread; ++i) expected_sum += 1'000 + (i % 1000) * 1000 + t;
  }
  EXPECT_EQ(snap.sum_ns, expected_sum);
  EXPECT_EQ(snap.min_ns, 1'000U);
  EXPECT_EQ(snap.max_ns, 1'000U + 999'000U + 7U);
}

TEST(LatencyHistogramWindow, ForgetsWhatIsOlderThanTheWindow) {
  rp::ManualClock clock;
  rp::LatencyHistogram histogram(clock, {.window = 60s, .sub_windows = 6});
  // Old traffic: slow.
  for (int i = 0; i < 1000; ++i) histogram.record(900ms);
  for (int s = 0; s < 70; ++s) {
    clock.advance(1s);
    histogram.advance();
  }
  // Recent traffic: fast.
  for (int i = 0; i < 500; ++i) histogram.record(10ms);
  clock.advance(1s);
  const auto window = histogram.window();
  EXPECT_EQ(window.count, 500U);
  EXPECT_NEAR(*window.percentile_ms(99), 10.0, 0.1);
  EXPECT_GE(window.span, 50s);
  EXPECT_LE(window.span, 60s);
  EXPECT_EQ(window.sum_ns, 500ULL * 10'000'000ULL);
  const auto cumulative = histogram.cumulative();
  EXPECT_EQ(cumulative.count, 1500U);
  EXPECT_NEAR(*cumulative.percentile_ms(99), 900.0, 9.0);
}

TEST(LatencyHistogramWindow, ThroughputOverWindowAndSinceStart) {
  rp::ManualClock clock;
  rp::LatencyHistogram histogram(clock, {.window = 60s, .sub_windows = 6});
  // 100 pages/s for 60 s, then 10 pages/s for 60 s.
  for (int s = 0; s < 60; ++s) {
    for (int i = 0; i < 100; ++i) histogram.record(5ms);
    clock.advance(1s);
    histogram.advance();
  }
  for (int s = 0; s < 60; ++s) {
    for (int i = 0; i < 10; ++i) histogram.record(5ms);
    clock.advance(1s);
    histogram.advance();
  }
  const auto t = rp::measure_throughput(histogram.window(), histogram.cumulative());
  ASSERT_TRUE(t.window_pps && t.since_start_pps);
  EXPECT_NEAR(*t.window_pps, 10.0, 0.01);
  EXPECT_NEAR(*t.since_start_pps, 55.0, 0.01);
  EXPECT_EQ(t.total_pages, 6600U);
  EXPECT_EQ(t.window_span, 60s);
}

TEST(LatencyHistogramWindow, WithoutAdvanceTheSpanSaysHowLongItReallyIs) {
  rp::ManualClock clock;
  rp::LatencyHistogram histogram(clock, {.window = 60s, .sub_windows = 6});
  for (int i = 0; i < 300; ++i) histogram.record(1ms);
  clock.advance(300s);  // nobody advanced: the only mark is the start
  const auto window = histogram.window();
  EXPECT_EQ(window.count, 300U);
  EXPECT_EQ(window.span, 300s);
  EXPECT_NEAR(*window.rate_per_second(), 1.0, 1e-9);
}

TEST(LatencyHistogramWindow, BackToBackReadsAfterIdleSeeTheSameData) {
  rp::ManualClock clock;
  rp::LatencyHistogram histogram(clock, {.window = 60s, .sub_windows = 6});
  for (int i = 0; i < 90; ++i) histogram.record(1ms);
  clock.advance(90s);
  const auto first = histogram.window();  // places a mark at now
  const auto second = histogram.window();
  EXPECT_EQ(first.count, 90U);
  EXPECT_EQ(second.count, 90U);
  EXPECT_EQ(second.span, 90s);
  clock.advance(10s);
  histogram.record(1ms);
  const auto later = histogram.window();  // base: the mark placed at 90 s
  EXPECT_EQ(later.count, 1U);
  EXPECT_EQ(later.span, 10s);
}
