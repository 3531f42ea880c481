// The adaptive window's promise: with one configuration (the defaults) it reaches at least 95% of the hit ratio
// of the best fixed window share, whatever kind of workload it serves. Checked here on small synthetic traces
// of three kinds (frequency-heavy Zipf, a loop mixed with a hot set, and a change from frequency-heavy to
// recency-heavy behaviour); cache_window_sweep measures the same on larger traces and the ARC traces
// (docs/PERFORMANCE.md ## Cache). Deterministic: seeded traces and a pinned hash seed.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "window_sweep.hpp"

namespace ws = riptide::performance::window_sweep;

namespace {

// Small enough that the ten replays per trace take seconds under ASan (Debug).
constexpr std::uint64_t kCapacity = 500;
constexpr double kPromise = 0.95;

ws::WindowComparison expect_close_to_best_fixed(const std::vector<std::uint64_t>& accesses) {
  ws::WindowComparison windows = ws::compare_windows(accesses, kCapacity);
  EXPECT_GE(windows.adaptive_to_best(), kPromise)
      << "adaptive " << windows.adaptive.hit_ratio << " (final window share " << windows.adaptive.final_window_share
      << ") vs best fixed " << windows.best_fixed.hit_ratio << " at window share " << windows.best_fixed.window_share;
  return windows;
}

}  // namespace

TEST(AdaptiveWindow, FrequencyHeavyZipfKeepsTheWindowSmall) {
  const ws::WindowComparison windows = expect_close_to_best_fixed(ws::zipf_trace(25'000, 0.8, 75'000, 1));
  // Static popularity: a small fixed window is the best, which the adaptive window has to find.
  EXPECT_LT(windows.best_fixed.window_share, 0.05);
}

TEST(AdaptiveWindow, LoopOverMoreKeysThanTheCacheWithAHotSet) {
  expect_close_to_best_fixed(ws::scan_trace(kCapacity, 50'000, 4));
}

TEST(AdaptiveWindow, FollowsAChangeFromFrequencyToRecency) {
  const ws::WindowComparison windows = expect_close_to_best_fixed(ws::phase_trace(kCapacity, 75'000, 2, 5));
  // The recency phase, last, needs a large window: the simulation must have moved it there.
  EXPECT_GT(windows.adaptive.final_window_share, 0.5);
}
