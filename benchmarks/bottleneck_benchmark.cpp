// Hot-path costs of the timing area: histogram record (budget <= 15 ns uncontended), the same from two
// threads, stage lookup + record, and the RAII stage timer (two steady_clock reads + a record).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include "riptide/performance/timing/latency_histogram.hpp"
#include "riptide/performance/timing/stage_timer.hpp"

namespace rp = riptide::performance;

namespace {

// Shared by every thread of a multi-threaded run (Google Benchmark runs the same function per thread).
rp::LatencyHistogram& shared_histogram() {
  static rp::LatencyHistogram histogram;
  return histogram;
}

rp::StageRegistry& shared_stages() {
  static rp::StageRegistry stages(rp::system_clock(), {}, {"fetch", "parse", "extract", "ai", "store"});
  return stages;
}

// Latencies that spread over a few hundred buckets like real request times (1 ms .. ~1 s).
std::uint64_t next_latency(std::uint64_t& state) {
  state = state * 6364136223846793005ULL + 1442695040888963407ULL;
  return 1'000'000 + (state >> 34);
}

void BM_HistogramRecord(benchmark::State& state) {
  auto& histogram = shared_histogram();
  std::uint64_t rng = static_cast<std::uint64_t>(state.thread_index()) + 1;
  for (auto _ : state) {
    histogram.record_ns(next_latency(rng));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramRecord)->Threads(1)->Threads(2)->UseRealTime();

void BM_HistogramRecordSameValue(benchmark::State& state) {
  // Worst case for sharing: every thread hits the same bucket.
  auto& histogram = shared_histogram();
  for (auto _ : state) {
    histogram.record_ns(5'000'000);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramRecordSameValue)->Threads(1)->Threads(2)->UseRealTime();

void BM_StageRecordByName(benchmark::State& state) {
  auto& stages = shared_stages();
  std::uint64_t rng = 7;
  for (auto _ : state) {
    stages.record("ai", std::chrono::nanoseconds(next_latency(rng)));  // 4th in the table
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StageRecordByName)->Threads(1)->Threads(2)->UseRealTime();

void BM_StageTimer(benchmark::State& state) {
  auto& stages = shared_stages();
  for (auto _ : state) {
    auto timer = stages.time("parse");
    benchmark::DoNotOptimize(timer);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StageTimer)->Threads(1)->Threads(2)->UseRealTime();

void BM_HistogramPercentiles(benchmark::State& state) {
  // Reader side: merge stripes and compute p50/p95/p99 (what get_metrics pays per histogram).
  auto& histogram = shared_histogram();
  std::uint64_t rng = 3;
  for (int i = 0; i < 100'000; ++i) histogram.record_ns(next_latency(rng));
  for (auto _ : state) {
    const auto snap = histogram.cumulative();
    benchmark::DoNotOptimize(snap.percentile_ns(50));
    benchmark::DoNotOptimize(snap.percentile_ns(95));
    benchmark::DoNotOptimize(snap.percentile_ns(99));
  }
}
BENCHMARK(BM_HistogramPercentiles);

}  // namespace
