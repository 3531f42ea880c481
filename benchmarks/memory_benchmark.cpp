// Memory tracker costs (budget: one snapshot <= 50 us). Figures go to docs/PERFORMANCE.md
// under "## Memory tracker".
#include <benchmark/benchmark.h>

#include <chrono>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/memory/memory_snapshot.hpp"
#include "riptide/performance/memory/memory_tracker.hpp"
#include "riptide/performance/memory/process_stats.hpp"

namespace rp = riptide::performance;

namespace {

void label_allocator(benchmark::State& state) {
  state.SetLabel(std::string(rp::allocator_name(rp::detect_allocator())));
}

// What the sampler pays per tick besides the epoch: statm, status, cgroup files, cached-MIB reads of
// every counter and size class.
void BM_MemorySnapshot(benchmark::State& state) {
  rp::MemorySnapshotter snapshotter;
  for (auto _ : state) {
    benchmark::DoNotOptimize(snapshotter.take(rp::system_clock(), /*refresh_epoch=*/false));
  }
  label_allocator(state);
}
BENCHMARK(BM_MemorySnapshot);

// The sampler's full tick: epoch refresh, then the snapshot.
void BM_MemorySnapshotWithEpoch(benchmark::State& state) {
  rp::MemorySnapshotter snapshotter;
  for (auto _ : state) {
    benchmark::DoNotOptimize(snapshotter.take(rp::system_clock(), /*refresh_epoch=*/true));
  }
  label_allocator(state);
}
BENCHMARK(BM_MemorySnapshotWithEpoch);

void BM_EpochRefresh(benchmark::State& state) {
  if (!rp::JemallocCtl::usable()) {
    state.SkipWithError("jemalloc does not serve malloc in this build");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(rp::JemallocCtl::refresh_epoch());
  }
}
BENCHMARK(BM_EpochRefresh);

void BM_JemallocCounters(benchmark::State& state) {
  const rp::JemallocStats stats;
  if (!stats.available()) {
    state.SkipWithError("jemalloc does not serve malloc in this build");
    return;
  }
  const bool size_classes = state.range(0) != 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(stats.read(size_classes));
  }
  state.SetLabel(size_classes ? "totals + size classes" : "totals only");
}
BENCHMARK(BM_JemallocCounters)->Arg(0)->Arg(1);

void BM_ProcessStatm(benchmark::State& state) {
  const rp::ProcessStats stats;
  for (auto _ : state) {
    benchmark::DoNotOptimize(stats.read_statm());
  }
}
BENCHMARK(BM_ProcessStatm);

void BM_ProcessStatsFull(benchmark::State& state) {
  const rp::ProcessStats stats;
  for (auto _ : state) {
    benchmark::DoNotOptimize(stats.read());
  }
}
BENCHMARK(BM_ProcessStatsFull);

// A trend query over a full hour of 1 s samples at 1 min resolution (what /trend?duration=1h does).
void BM_TrendOneHour(benchmark::State& state) {
  rp::ManualClock clock;
  rp::MemoryTracker tracker({}, clock);
  for (int second = 0; second < 3600; ++second) {
    rp::MemorySnapshot snapshot;
    snapshot.timestamp = clock.system_now();
    snapshot.steady_time = clock.steady_now();
    snapshot.heap_bytes = 100u << 20;
    snapshot.rss_bytes = 150u << 20;
    tracker.record(snapshot);
    clock.advance(std::chrono::seconds{1});
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(tracker.trend(std::chrono::hours{1}, std::chrono::minutes{1}));
  }
}
BENCHMARK(BM_TrendOneHour);

}  // namespace
