// Memory over time in the profiling area: when the peak recorder captures (PeakCapturePolicy, a pure
// policy fed with made-up readings), how two profiles are subtracted stack by stack (diff_heap_profiles on
// hand-written dumps), and the recorder over a real heap (jemalloc's profiler on in this executable; those
// tests skip where jemalloc does not serve malloc).
#include "riptide/performance/profiling/peak_heap_profile.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile_delta.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"
#include "support/jemalloc_skip.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <vector>

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true");

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

// Feeds `readings` to a policy the way the recorder does; returns the readings it captured at.
std::vector<std::uint64_t> captures_for(const std::vector<std::uint64_t>& readings, double share) {
  rp::PeakCapturePolicy policy(share);
  std::vector<std::uint64_t> captured;
  for (const std::uint64_t heap : readings) {
    if (policy.should_capture(heap)) {
      policy.note_capture(heap);
      captured.push_back(heap);
    }
  }
  return captured;
}

}  // namespace

TEST(PeakCapturePolicy, CapturesTheFirstReadingThenOnlyAboveTheShare) {
  rp::PeakCapturePolicy policy(0.10);
  EXPECT_TRUE(policy.enabled());
  EXPECT_FALSE(policy.next_capture_above().has_value());
  EXPECT_FALSE(policy.should_capture(0)) << "no reading, nothing to explain";
  EXPECT_TRUE(policy.should_capture(100 * kMiB));
  policy.note_capture(100 * kMiB);
  EXPECT_EQ(policy.last_capture_bytes(), 100 * kMiB);
  EXPECT_EQ(policy.next_capture_above(), 110 * kMiB);
  EXPECT_FALSE(policy.should_capture(100 * kMiB));
  EXPECT_FALSE(policy.should_capture(110 * kMiB)) << "more than the share, not equal to it";
  EXPECT_TRUE(policy.should_capture(110 * kMiB + 1));
  EXPECT_FALSE(policy.should_capture(50 * kMiB)) << "a fall is never a peak";
}

TEST(PeakCapturePolicy, ZeroNegativeOrNotFiniteTurnsItOff) {
  for (const double share : {0.0, -0.5, std::nan(""), -std::numeric_limits<double>::infinity()}) {
    rp::PeakCapturePolicy policy(share);
    EXPECT_FALSE(policy.enabled()) << share;
    EXPECT_FALSE(policy.should_capture(1 * kMiB)) << share;
    EXPECT_EQ(rp::PeakCapturePolicy::capture_bound(1, 1000, share), 0U) << share;
  }
}

TEST(PeakCapturePolicy, ASteadyClimbCostsAtMostTheLogarithmicBound) {
  // 1 MiB to 1 GiB in steps of 0.5%: 1,386 readings, each a new high.
  std::vector<std::uint64_t> readings;
  for (double heap = kMiB; heap <= 1024.0 * kMiB; heap *= 1.005) readings.push_back(static_cast<std::uint64_t>(heap));
  for (const double share : {0.01, 0.05, 0.10, 0.5, 1.0}) {
    const auto captured = captures_for(readings, share);
    const auto bound = rp::PeakCapturePolicy::capture_bound(readings.front(), readings.back(), share);
    EXPECT_LE(captured.size(), bound) << "share " << share;
    // Not far below it either: each step overshoots the threshold by less than one 0.5% reading.
    EXPECT_GE(captured.size() + 1, static_cast<std::size_t>(std::log(1024.0) / std::log((1 + share) * 1.005)))
        << "share " << share;
    for (std::size_t i = 1; i < captured.size(); ++i) {
      EXPECT_GT(static_cast<double>(captured[i]), static_cast<double>(captured[i - 1]) * (1 + share));
    }
  }
  EXPECT_EQ(rp::PeakCapturePolicy::capture_bound(kMiB, 1024 * kMiB, 0.10), 73U);  // 1 + floor(72.68)
  EXPECT_EQ(rp::PeakCapturePolicy::capture_bound(kMiB, kMiB, 0.10), 1U);
}

TEST(PeakCapturePolicy, NoiseAndRepeatedPeaksDoNotAddCaptures) {
  // A heap that rises, falls and rises again to the same height, with noise, for 100,000 readings: the
  // captures stay within the bound of the range it covered, whatever the seed.
  for (const unsigned seed : {1U, 2U, 3U, 4U, 5U}) {
    std::mt19937_64 random(seed);
    std::uniform_real_distribution<double> noise(0.9, 1.1);
    std::vector<std::uint64_t> readings;
    for (int i = 0; i < 100'000; ++i) {
      const double wave = 200.0 + 150.0 * std::sin(i / 500.0);  // 50 .. 350 MiB
      readings.push_back(static_cast<std::uint64_t>(wave * noise(random) * kMiB));
    }
    const auto captured = captures_for(readings, 0.10);
    std::uint64_t lowest = readings.front();
    std::uint64_t highest = 0;
    for (const auto heap : readings) highest = std::max(highest, heap);
    EXPECT_LE(captured.size(), rp::PeakCapturePolicy::capture_bound(lowest, highest, 0.10)) << "seed " << seed;
    EXPECT_GE(static_cast<double>(captured.back()) * 1.1, static_cast<double>(highest))
        << "the last capture is within the share of the top";
  }
}

// Two dumps of one process: stack A grew, B was freed entirely (absent later), C is new, D did not change.
constexpr const char* kBaseDump =
    "heap_v2/524288\n"
    "  t*: 4: 4194304 [4: 4194304]\n"
    "@ 0x1000 0x2000\n"
    "  t*: 1: 1048576 [1: 1048576]\n"
    "@ 0x1000 0x3000\n"
    "  t*: 2: 2097152 [2: 2097152]\n"
    "@ 0x1000 0x5000\n"
    "  t*: 1: 1048576 [1: 1048576]\n"
    "\n"
    "MAPPED_LIBRARIES:\n"
    "55b631353000-55b631354000 r-xp 00001000 fe:00 10953681                   /tmp/prof_exp/old\n";
constexpr const char* kLaterDump =
    "heap_v2/524288\n"
    "  t*: 5: 5242880 [8: 8388608]\n"
    "@ 0x1000 0x5000\n"
    "  t*: 1: 1048576 [1: 1048576]\n"
    "@ 0x1000 0x2000\n"
    "  t*: 3: 3145728 [3: 3145728]\n"
    "@ 0x1000 0x3000\n"
    "  t*: 0: 0 [2: 2097152]\n"
    "@ 0x1000 0x4000\n"
    "  t*: 1: 1048576 [2: 2097152]\n"
    "\n"
    "MAPPED_LIBRARIES:\n"
    "55b631363000-55b631364000 r-xp 00001000 fe:00 10953682                   /tmp/prof_exp/new\n";

TEST(HeapProfileDelta, SubtractsStackByStackWithNegativeInUseWhereMemoryWasFreed) {
  auto base = rp::parse_heap_profile(kBaseDump);
  auto later = rp::parse_heap_profile(kLaterDump);
  ASSERT_TRUE(base.ok()) << base.error().to_string();
  ASSERT_TRUE(later.ok()) << later.error().to_string();
  base.value().captured_at = std::chrono::system_clock::time_point{1000s};
  later.value().captured_at = std::chrono::system_clock::time_point{1010s};
  const rp::HeapProfileDelta delta = rp::diff_heap_profiles(base.value(), later.value());
  const double one = rp::unbias({1, kMiB, 1, kMiB}, 524288).live_bytes;  // one sampled 1 MiB object
  ASSERT_EQ(delta.stacks.size(), 3U) << "the unchanged stack is left out";
  const auto find = [&](std::uint64_t leaf) -> const rp::HeapStackChange* {
    for (const auto& stack : delta.stacks) {
      if (stack.frames.size() == 2 && stack.frames[1] == leaf) return &stack;
    }
    return nullptr;
  };
  const auto* grew = find(0x2000);
  const auto* freed = find(0x3000);
  const auto* fresh = find(0x4000);
  ASSERT_NE(grew, nullptr);
  ASSERT_NE(freed, nullptr);
  ASSERT_NE(fresh, nullptr);
  EXPECT_NEAR(grew->live_bytes, 2 * one, 1);
  EXPECT_NEAR(grew->alloc_bytes, 2 * one, 1);
  EXPECT_NEAR(freed->live_bytes, -2 * one, 1) << "freed memory shows as negative in-use bytes";
  EXPECT_NEAR(freed->live_objects, -2 * rp::unbias({1, kMiB, 1, kMiB}, 524288).live_objects, 1e-6);
  EXPECT_NEAR(freed->alloc_bytes, 0, 1) << "nothing was allocated there in between";
  EXPECT_NEAR(fresh->live_bytes, one, 1);
  EXPECT_NEAR(fresh->alloc_bytes, 2 * one, 1);
  EXPECT_NEAR(delta.live_bytes_change(), one, 1);
  EXPECT_EQ(delta.sample_period, 524288U);
  EXPECT_EQ(delta.captured_at - delta.base_captured_at, 10s);
  ASSERT_EQ(delta.mappings.size(), 2U) << "the later mappings and the earlier one it no longer has";
  EXPECT_EQ(delta.mappings[0].path, "/tmp/prof_exp/old");
  EXPECT_EQ(delta.mappings[1].path, "/tmp/prof_exp/new");

  // The same dump on both sides: nothing changed.
  EXPECT_TRUE(rp::diff_heap_profiles(later.value(), later.value()).stacks.empty());
  // Encodes (gzip magic); pprof reads it in the http tests.
  const std::string body = rp::write_pprof_heap_delta(delta, rp::Symbolizer::shared());
  ASSERT_GE(body.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(body[0]), 0x1f);
}

TEST(HeapProfileDelta, RefusesANegativeDurationAndSaysWhy) {
  const auto result = rp::capture_heap_profile_delta(-1s);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, rp::ProfilingErrorKind::invalid_argument);
  EXPECT_NE(result.error().message.find("duration"), std::string::npos) << result.error().message;
}

TEST(HeapProfileDelta, AStopDuringTheWaitEndsItEarly) {
  SKIP_UNLESS_JEMALLOC();
  std::stop_source stop;
  stop.request_stop();
  const auto started = std::chrono::steady_clock::now();
  const auto result = rp::capture_heap_profile_delta(60s, {}, stop.get_token());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, rp::ProfilingErrorKind::interrupted);
}

namespace {

std::vector<void*> g_peak_blocks;

// The one site that climbs to the peak in these tests.
[[gnu::noinline]] void climb_to_peak_for_recorder_test(std::size_t mebibytes) {
  for (std::size_t i = 0; i < mebibytes; ++i) {
    void* block = std::malloc(kMiB);
    static_cast<volatile char*>(block)[0] = 1;
    g_peak_blocks.push_back(block);
  }
}

void fall_back() {
  for (void* block : g_peak_blocks) std::free(block);
  g_peak_blocks.clear();
}

// Snapshots the test makes up: the recorder sees exactly the readings it is given.
struct ScriptedSnapshots {
  std::shared_ptr<const rp::MemorySnapshot> current;
  void set(std::uint64_t heap_bytes, std::chrono::seconds at) {
    auto snapshot = std::make_shared<rp::MemorySnapshot>();
    snapshot->heap_bytes = heap_bytes;
    snapshot->rss_bytes = heap_bytes + 10 * kMiB;
    snapshot->steady_time = std::chrono::steady_clock::time_point{at};
    snapshot->timestamp = std::chrono::system_clock::time_point{at};
    current = std::move(snapshot);
  }
};

}  // namespace

TEST(PeakHeapRecorder, CapturesAtEachGrowthStepAndKeepsTheSitesOfTheHighest) {
  SKIP_UNLESS_JEMALLOC();
  rp::ProfilingConfig config;
  config.peak_profile_growth = 0.5;
  ScriptedSnapshots snapshots;
  // The heap read after each dump is the scripted one too (not jemalloc's, which the readings exceed).
  rp::PeakHeapRecorder recorder(
      config, 1s, [&snapshots] { return snapshots.current; }, nullptr, nullptr,
      [&snapshots]() -> std::optional<std::uint64_t> { return snapshots.current->heap_bytes; });
  EXPECT_FALSE(recorder.check()) << "no snapshot yet";
  EXPECT_EQ(recorder.latest(), nullptr);

  snapshots.set(100 * kMiB, 1s);
  EXPECT_TRUE(recorder.check());
  EXPECT_FALSE(recorder.check()) << "the same snapshot is checked once";
  snapshots.set(140 * kMiB, 2s);
  EXPECT_FALSE(recorder.check()) << "40% is below the 50% share";
  climb_to_peak_for_recorder_test(64);
  snapshots.set(160 * kMiB, 3s);
  EXPECT_TRUE(recorder.check());
  fall_back();
  snapshots.set(20 * kMiB, 4s);
  EXPECT_FALSE(recorder.check()) << "a fall keeps the peak";

  const auto peak = recorder.latest();
  ASSERT_NE(peak, nullptr);
  EXPECT_EQ(peak->heap_bytes, 160 * kMiB);
  EXPECT_EQ(peak->rss_bytes, 170 * kMiB);
  EXPECT_EQ(peak->capture_number, 2U);
  EXPECT_EQ(peak->observed_at, std::chrono::system_clock::time_point{3s});
  ASSERT_NE(peak->profile, nullptr);
  ASSERT_FALSE(peak->top_sites.empty());
  EXPECT_NE(peak->top_sites.front().function.find("climb_to_peak_for_recorder_test"), std::string::npos)
      << peak->top_sites.front().location;
  // 1 MiB blocks are sampled almost surely at R = 16 KiB: the estimate is the truth within a few percent.
  EXPECT_NEAR(static_cast<double>(peak->top_sites.front().inuse_bytes), 64.0 * kMiB, 3.0 * kMiB);
  EXPECT_GE(peak->profile_inuse_bytes, peak->top_sites.front().inuse_bytes);

  const rp::PeakRecorderStatus status = recorder.status();
  EXPECT_EQ(status.captures, 2U);
  EXPECT_EQ(status.failures, 0U);
  EXPECT_EQ(status.next_capture_above, 240 * kMiB);
  const nlohmann::json json = *peak;
  EXPECT_EQ(json["heap_bytes"], 160 * kMiB);
  EXPECT_TRUE(json["top_sites"].is_array());
  EXPECT_EQ(json["top_sites"][0]["inuse_bytes"], peak->top_sites.front().inuse_bytes);
}

TEST(PeakHeapRecorder, AFailedDumpIsCountedNamedAndNotRetriedBeforeTheNextStep) {
  SKIP_UNLESS_JEMALLOC();
  rp::ProfilingConfig config;
  config.peak_profile_growth = 0.1;
  config.dump_directory = "/nonexistent/riptide-peak-test";
  ScriptedSnapshots snapshots;
  rp::PeakHeapRecorder recorder(config, 1s, [&snapshots] { return snapshots.current; });
  snapshots.set(100 * kMiB, 1s);
  EXPECT_FALSE(recorder.check());
  snapshots.set(105 * kMiB, 2s);
  EXPECT_FALSE(recorder.check());
  const auto status = recorder.status();
  EXPECT_EQ(status.failures, 1U) << "one attempt per growth step, not one per sample";
  EXPECT_NE(status.last_error.find("/nonexistent/riptide-peak-test"), std::string::npos) << status.last_error;
  EXPECT_EQ(recorder.latest(), nullptr);
}

TEST(PeakHeapRecorder, OffWhenTheShareIsZero) {
  rp::ProfilingConfig config;
  config.peak_profile_growth = 0;
  ScriptedSnapshots snapshots;
  snapshots.set(100 * kMiB, 1s);
  rp::PeakHeapRecorder recorder(config, 1s, [&snapshots] { return snapshots.current; });
  recorder.start();
  EXPECT_FALSE(recorder.running());
  EXPECT_FALSE(recorder.check());
  EXPECT_EQ(recorder.status().captures, 0U);
}
