// The tracker driven by a ManualClock: synthetic series go in through record(), real snapshots through
// sample_now(); no sleeping, no timed assertions.
#include "riptide/performance/memory/memory_tracker.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <memory>
#include <random>

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/memory/memory_json.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

rp::MemorySnapshot synthetic(const rp::Clock& clock, double heap_bytes, std::uint64_t allocations = 0) {
  rp::MemorySnapshot snapshot;
  snapshot.timestamp = clock.system_now();
  snapshot.steady_time = clock.steady_now();
  snapshot.allocator = "synthetic";
  snapshot.heap_bytes = static_cast<std::uint64_t>(std::llround(heap_bytes));
  snapshot.rss_bytes = static_cast<std::uint64_t>(std::llround(heap_bytes)) + 50 * 1024 * 1024;
  snapshot.allocation_count = allocations;
  snapshot.deallocation_count = allocations / 2;
  return snapshot;
}

rp::MemoryTrackerOptions week_options() {
  rp::MemoryTrackerOptions options;
  options.sample_interval = 1s;
  options.history = 1h;
  options.long_history = std::chrono::hours{24 * 7};
  options.long_history_interval = 1min;
  return options;
}

TEST(MemoryTracker, SampleNowPublishesARealSnapshotStampedByTheClock) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  EXPECT_EQ(tracker.latest(), nullptr);
  const auto first = tracker.sample_now();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(tracker.latest(), first);
  EXPECT_EQ(first->timestamp, clock.system_now());
  EXPECT_EQ(first->steady_time, clock.steady_now());
  EXPECT_TRUE(first->rss_bytes);
  EXPECT_TRUE(first->heap_bytes);
  clock.advance(1s);
  const auto second = tracker.sample_now();
  EXPECT_EQ(tracker.latest(), second);
  EXPECT_EQ(tracker.history_size(), 2u);
  EXPECT_EQ(tracker.retained_span(), 1s);
}

TEST(MemoryTracker, SteadyGrowthOfOneMiBPerSecondIsFoundWithHighRSquared) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> noise(-256 * 1024.0, 256 * 1024.0);
  const double base = 200 * kMiB;
  for (int second = 0; second <= 3600; ++second) {
    tracker.record(synthetic(clock, base + kMiB * second + noise(random), 1000u * second));
    clock.advance(1s);
  }
  const auto trend = tracker.trend(1h, 1min);
  EXPECT_GE(trend.data_points.size(), 59u);
  EXPECT_LE(trend.data_points.size(), 60u);
  const auto& analysis = trend.trend_analysis;
  EXPECT_NEAR(analysis.growth_rate, kMiB, 0.05 * kMiB);
  EXPECT_GT(analysis.r_squared, 0.9);
  EXPECT_GT(analysis.peak_usage, static_cast<std::uint64_t>(base + 3590 * kMiB));
  EXPECT_LT(analysis.min_usage, static_cast<std::uint64_t>(base + 10 * kMiB));
  EXPECT_NEAR(analysis.average_usage, base + 1800 * kMiB, 40 * kMiB);
  // A uniform ramp over T seconds has standard deviation rate x T / sqrt(12).
  EXPECT_NEAR(analysis.volatility, kMiB * 3600 / std::sqrt(12.0), 0.05 * kMiB * 3600 / std::sqrt(12.0));
  // Counters are cumulative: the last point carries the newest value of its interval.
  ASSERT_TRUE(trend.data_points.back().allocation_count);
  EXPECT_GE(*trend.data_points.back().allocation_count, 1000u * 3590);
  EXPECT_FALSE(trend.downsampled_history);
}

TEST(MemoryTracker, FlatNoisySeriesIsNotGrowth) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  std::mt19937_64 random(7);
  std::normal_distribution<double> noise(0.0, 5 * kMiB);
  for (int second = 0; second <= 3600; ++second) {
    tracker.record(synthetic(clock, 300 * kMiB + noise(random)));
    clock.advance(1s);
  }
  for (const std::chrono::seconds interval : {std::chrono::seconds{60}, std::chrono::seconds{10}}) {
    const auto analysis = tracker.trend(1h, interval).trend_analysis;
    EXPECT_LT(analysis.r_squared, 0.3) << "interval " << interval.count();
    // 5 MiB of noise must not look like more than 10 KiB/s of growth (1 MiB/s is what leaks look like).
    EXPECT_LT(std::abs(analysis.growth_rate), 10 * 1024.0) << "interval " << interval.count();
    EXPECT_GT(analysis.volatility, 0.0);
  }
}

TEST(MemoryTracker, RingsStayBoundedOverASimulatedWeek) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  const auto full_capacity = tracker.history_capacity();
  const auto long_capacity = tracker.long_history_capacity();
  EXPECT_EQ(full_capacity, 3601u);
  EXPECT_EQ(long_capacity, 7u * 24 * 60 + 1);
  // 8 days at one snapshot a second, growing 1 KiB/s.
  constexpr int kSeconds = 8 * 24 * 3600;
  for (int second = 0; second <= kSeconds; ++second) {
    tracker.record(synthetic(clock, 100 * kMiB + 1024.0 * second));
    clock.advance(1s);
    if (second % 86400 == 0) {
      EXPECT_LE(tracker.history_size(), full_capacity);
      EXPECT_LE(tracker.long_history_size(), long_capacity);
    }
  }
  EXPECT_EQ(tracker.history_size(), full_capacity);
  EXPECT_EQ(tracker.long_history_size(), long_capacity);
  // The library's own memory for this history: well inside the 16 MiB budget.
  EXPECT_LT(tracker.ring_bytes(), 4u * 1024 * 1024);
  // Nothing older than the configured week (plus one downsampling interval) is kept.
  EXPECT_LE(tracker.retained_span(), std::chrono::hours{24 * 7} + 2min);
  EXPECT_GE(tracker.retained_span(), std::chrono::hours{24 * 7} - 2min);

  // A week-long trend stitches the downsampled ring to the full one and still sees 1 KiB/s.
  const auto week = tracker.trend(std::chrono::hours{24 * 7}, 1h);
  EXPECT_TRUE(week.downsampled_history);
  EXPECT_GE(week.data_points.size(), 167u);
  EXPECT_LE(week.data_points.size(), 168u);
  EXPECT_NEAR(week.trend_analysis.growth_rate, 1024.0, 1024.0 * 0.01);
  EXPECT_GT(week.trend_analysis.r_squared, 0.999);
  // Asking for more than is kept returns what is kept.
  const auto longer = tracker.trend(std::chrono::hours{24 * 8}, 1h);
  EXPECT_LE(longer.data_points.size(), 169u);
  // Samples in the week trend: every second of the week is represented at most once.
  std::uint64_t samples = 0;
  for (const auto& point : week.data_points) {
    samples += point.samples;
  }
  EXPECT_LE(samples, 7u * 24 * 3600 + 1);
  EXPECT_GE(samples, 7u * 24 * 3600 - 3 * 60);
}

// The rate over a window reads the window's first and last counted samples in place: the same figure as
// allocation_rate() over a copy of the history, across both rings.
TEST(MemoryTracker, AllocationRateOverAWindowMatchesTheHistory) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  EXPECT_FALSE(tracker.allocation_rate(1min).has_value()) << "no samples: no rate";
  for (int second = 0; second <= 2 * 3600; ++second) {  // the first hour moves to the downsampled ring
    tracker.record(synthetic(clock, 10 * kMiB, 1000u * static_cast<std::uint64_t>(second)));
    clock.advance(1s);
  }
  for (const auto window : {std::chrono::nanoseconds{1min}, std::chrono::nanoseconds{1h},
                            std::chrono::nanoseconds{std::chrono::hours{3}}}) {
    const auto in_place = tracker.allocation_rate(window);
    const auto copied = rp::allocation_rate(tracker.history(window));
    ASSERT_TRUE(in_place.has_value());
    ASSERT_TRUE(copied.has_value());
    EXPECT_DOUBLE_EQ(in_place->allocations_per_second, copied->allocations_per_second);
    EXPECT_DOUBLE_EQ(in_place->deallocations_per_second, copied->deallocations_per_second);
    EXPECT_EQ(in_place->span, copied->span);
    EXPECT_NEAR(in_place->allocations_per_second, 1000.0, 1e-6);
    EXPECT_NEAR(in_place->deallocations_per_second, 500.0, 1e-6);
  }
}

TEST(MemoryTracker, TrendCapsThePointsByWideningTheInterval) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  for (int second = 0; second <= 3600; ++second) {
    tracker.record(synthetic(clock, 10 * kMiB));
    clock.advance(1s);
  }
  const auto trend = tracker.trend(1h, 1s, 100);
  EXPECT_LE(trend.data_points.size(), 100u);
  EXPECT_EQ(trend.interval, 36s);
  EXPECT_EQ(trend.trend_analysis.growth_rate, 0.0);
  EXPECT_EQ(trend.trend_analysis.r_squared, 0.0);  // a flat line explains nothing
  EXPECT_EQ(trend.trend_analysis.volatility, 0.0);
  EXPECT_EQ(trend.trend_analysis.peak_usage, trend.trend_analysis.min_usage);
}

TEST(MemoryTracker, TrendOfAnEmptyTrackerIsEmpty) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  const auto trend = tracker.trend(1h, 1min);
  EXPECT_TRUE(trend.data_points.empty());
  EXPECT_EQ(trend.trend_analysis.point_count, 0u);
  EXPECT_EQ(tracker.retained_span(), 0s);
}

TEST(MemoryTracker, OutOfOrderSnapshotsAreIgnored) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  clock.advance(10s);
  tracker.record(synthetic(clock, 1000));
  rp::MemorySnapshot old = synthetic(clock, 2000);
  old.steady_time -= 5s;
  tracker.record(old);
  EXPECT_EQ(tracker.history_size(), 1u);
  EXPECT_EQ(*tracker.latest()->heap_bytes, 1000u);
}

TEST(MemoryTracker, TrendJsonHasTheSpecFieldNames) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  for (int second = 0; second <= 120; ++second) {
    tracker.record(synthetic(clock, 10 * kMiB + 1024.0 * second, second));
    clock.advance(1s);
  }
  const nlohmann::json json = tracker.trend(2min, 1min);
  EXPECT_EQ(json["duration"], "2m");
  EXPECT_EQ(json["interval"], "1m");
  ASSERT_TRUE(json["data_points"].is_array());
  ASSERT_FALSE(json["data_points"].empty());
  for (const char* key : {"timestamp", "memory_usage", "allocation_count", "deallocation_count", "rss_bytes"}) {
    EXPECT_TRUE(json["data_points"][0].contains(key)) << key;
  }
  for (const char* key : {"average_usage", "peak_usage", "min_usage", "growth_rate", "volatility", "r_squared"}) {
    EXPECT_TRUE(json["trend_analysis"].contains(key)) << key;
  }
  EXPECT_TRUE(json["trend_analysis"]["growth_rate"].is_number_float());
  EXPECT_TRUE(json["data_points"][0]["memory_usage"].is_number_unsigned());
}

// The dashboard draws RSS, heap and jemalloc resident from the same trend points: a point carries the mean
// resident of its interval, and null where no snapshot of the interval had it.
TEST(MemoryTracker, TrendPointsCarryTheMeanResidentOfTheirInterval) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  for (int second = 0; second < 120; ++second) {
    rp::MemorySnapshot snapshot = synthetic(clock, 10 * kMiB, second);
    if (second >= 60) snapshot.resident_bytes = 20'000'000 + 1000 * static_cast<std::uint64_t>(second - 60);
    tracker.record(snapshot);
    clock.advance(1s);
  }
  const nlohmann::json json = tracker.trend(2min, 1min);
  ASSERT_EQ(json["data_points"].size(), 2U) << json.dump(2);
  EXPECT_TRUE(json["data_points"][0]["resident_bytes"].is_null()) << json.dump(2);
  EXPECT_EQ(json["data_points"][1]["resident_bytes"], 20'000'000 + 1000 * 59 / 2) << json.dump(2);  // mean of 0..59 k
  EXPECT_FALSE(json["data_points"][1]["rss_bytes"].is_null());
}

TEST(MemoryJson, AssignmentGivesWhatTheOtherSpellingsGive) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker(week_options(), clock);
  for (int second = 0; second <= 120; ++second) {
    tracker.record(synthetic(clock, 10 * kMiB + 1024.0 * second, second));
    clock.advance(1s);
  }
  const rp::MemoryTrend trend = tracker.trend(2min, 1min);
  const nlohmann::json trend_json = trend;
  EXPECT_EQ(trend_json["trend_analysis"], nlohmann::json(trend.trend_analysis));

  rp::MemorySnapshot snapshot = synthetic(clock, 10 * kMiB, 7);
  snapshot.size_classes = std::make_shared<const std::vector<rp::SizeClassStats>>(
      std::vector<rp::SizeClassStats>{rp::SizeClassStats{16, false, 3, 1, 3, 2}});
  const nlohmann::json snapshot_json = snapshot;
  EXPECT_FALSE(snapshot_json.contains("size_classes"));
  EXPECT_EQ(snapshot_json, rp::snapshot_to_json(snapshot));
  nlohmann::json with_classes = rp::snapshot_to_json(snapshot, {.include_size_classes = true});
  ASSERT_EQ(with_classes["size_classes"].size(), 1U);
  with_classes.erase("size_classes");
  EXPECT_EQ(with_classes, snapshot_json) << "the options only add to the ADL form";
  // trend_to_json is a forward kept for one release (deprecated, or about to be): called here on purpose,
  // so that it cannot drift from the ADL form while it exists.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  EXPECT_EQ(trend_json, rp::trend_to_json(trend));
#pragma GCC diagnostic pop
}

TEST(MemoryTracker, OptionsFromConfigAcceptFractionsAndRefuseNonsense) {
  rp::Config config;
  config.monitoring.sample_interval_sec = 0.25;
  const auto options = rp::MemoryTrackerOptions::from_config(config);
  EXPECT_EQ(options.sample_interval, 250ms);
  EXPECT_EQ(options.history, 1h);
  EXPECT_EQ(options.long_history_interval, 1min);
  EXPECT_EQ(rp::MemoryTracker(options, rp::system_clock()).history_capacity(), 4u * 3600 + 1);

  for (const double bad : {0.0, -1.0, std::nan("")}) {
    config.monitoring.sample_interval_sec = bad;
    try {
      (void)rp::MemoryTrackerOptions::from_config(config);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const rp::ConfigError& error) {
      EXPECT_EQ(error.key(), "monitoring.sample_interval_sec");
    }
  }
  rp::MemoryTrackerOptions zero;
  zero.history = 0s;
  EXPECT_THROW(rp::MemoryTracker(zero, rp::system_clock()), rp::ConfigError);
}

TEST(MemoryTracker, SamplerThreadPublishesAndStops) {
  rp::MemoryTrackerOptions options;
  options.sample_interval = 5ms;
  rp::MemoryTracker tracker(options);
  tracker.start();
  tracker.start();  // idempotent
  EXPECT_TRUE(tracker.running());
  // Wait for a few samples (no timing asserted: the generous bound only guards against a hang).
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (tracker.history_size() < 3 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(tracker.history_size(), 3u);
  ASSERT_NE(tracker.latest(), nullptr);
  tracker.stop();
  EXPECT_FALSE(tracker.running());
  const auto size = tracker.history_size();
  tracker.stop();  // idempotent
  EXPECT_EQ(tracker.history_size(), size);
  // Restartable.
  tracker.start();
  EXPECT_TRUE(tracker.running());
}

TEST(MemoryTracker, StopWakesASamplerWithALongInterval) {
  rp::MemoryTrackerOptions options;
  options.sample_interval = std::chrono::hours{1};
  rp::MemoryTracker tracker(options);
  tracker.start();
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (tracker.latest() == nullptr && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_NE(tracker.latest(), nullptr);  // the first sample is taken at once
  tracker.stop();                        // returns (the test would hang for an hour otherwise)
  EXPECT_FALSE(tracker.running());
}

TEST(FitLine, ExactLineAndDegenerateInputs) {
  const std::vector<double> x{0, 1, 2, 3};
  const std::vector<double> y{1, 3, 5, 7};
  const auto fit = rp::fit_line(x, y);
  EXPECT_DOUBLE_EQ(fit.slope, 2.0);
  EXPECT_DOUBLE_EQ(fit.intercept, 1.0);
  EXPECT_DOUBLE_EQ(fit.r_squared, 1.0);
  EXPECT_EQ(rp::fit_line(std::vector<double>{}, std::vector<double>{}).slope, 0.0);
  EXPECT_EQ(rp::fit_line(std::vector<double>{1}, std::vector<double>{5}).intercept, 5.0);
  EXPECT_EQ(rp::fit_line(std::vector<double>{1, 1, 1}, std::vector<double>{1, 2, 3}).slope, 0.0);
}

}  // namespace
