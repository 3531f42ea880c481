// The window simulation on its own: a simulated W-TinyLFU cache keeps its index and queues consistent
// under churn (every key just put is found, never more keys than it holds, an LRU-friendly loop hits), and
// the simulator moves the window only on clear evidence, to the share that wins.
#include "riptide/performance/cache/window_simulator.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

namespace cd = riptide::performance::cache_detail;

namespace {

std::uint64_t mix(std::uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  return key | 1;
}

}  // namespace

TEST(SimulatedCache, FindsEveryKeyJustSeenUnderChurn) {
  cd::FrequencySketch sketch;
  sketch.ensure_capacity(64);
  cd::SimulatedCache cache(64, 0.2);
  std::mt19937_64 random(7);
  for (int i = 0; i < 200'000; ++i) {
    const std::uint64_t hash = mix(random() % 5'000);
    sketch.increment(hash);
    (void)cache.access(hash, sketch);
    // A new key enters the window, so asking again at once must hit: the index found what it inserted
    // after thousands of backward-shift deletions.
    sketch.increment(hash);
    ASSERT_TRUE(cache.access(hash, sketch)) << "request " << i;
  }
}

TEST(SimulatedCache, HoldsALoopThatFitsAndRejectsNothingOfIt) {
  cd::FrequencySketch sketch;
  sketch.ensure_capacity(100);
  cd::SimulatedCache cache(100, 0.01);
  int hits = 0;
  for (int round = 0; round < 10; ++round) {
    for (std::uint64_t key = 0; key < 100; ++key) {
      sketch.increment(mix(key));
      hits += cache.access(mix(key), sketch) ? 1 : 0;
    }
  }
  EXPECT_EQ(hits, 900);  // every round after the first
}

TEST(WindowSimulator, MovesToALargeWindowOnARecencyStreamAndStaysOnZipf) {
  // Recency: each key is read a few times soon after it appears, then never again.
  cd::WindowSimulator recency(10'000, 0.01);
  double chosen = 0.01;
  std::mt19937_64 random(3);
  std::uint64_t newest = 0;
  for (int i = 0; i < 2'000'000; ++i) {
    const bool fresh = random() % 4 == 0;
    const std::uint64_t age = fresh ? 0 : random() % 10'000;
    if (fresh) ++newest;
    const double share = recency.record(mix(newest > age ? newest - age : 0));
    if (share >= 0) chosen = share;
  }
  EXPECT_GE(chosen, 0.4);

  // Static Zipf-like popularity (uniform bit length, then a uniform key of that length): frequency wins,
  // the window must not grow.
  cd::WindowSimulator zipf(10'000, 0.01);
  chosen = 0.01;
  for (int i = 0; i < 2'000'000; ++i) {
    const unsigned bits = 1 + static_cast<unsigned>(random() % 20);
    const double share = zipf.record(mix(random() & ((std::uint64_t{1} << bits) - 1)));
    if (share >= 0) chosen = share;
  }
  EXPECT_LE(chosen, 0.05);
}
