// Cost growth: how the library's periodic and on-demand work scales with what it has accumulated.
//   BM_Snapshot/<history>            one sampler tick (snapshot + ring append) with a full ring of <history>
//                                    samples (and a full week of downsampled history)
//   BM_TrendQuery/<history>/<step_s> GET .../trend over the whole ring at <step_s> resolution
//   BM_LeakCycle/<sites>/<depth>     one background leak-detector cycle (heap dump, parse, aggregate,
//                                    record, analyse) with <sites> live allocation sites and <depth>
//                                    earlier observations per site
//   BM_LeakAnalyze/<sites>/<depth>   the analysis alone (what /leaks adds to a cached observation)
//   BM_Endpoint/<route>/<sites>      one request through the router (no socket) with <sites> live sites
//                                    and a full hour of history: 0 /metrics, 1 /metrics/memory/snapshot,
//                                    2 /trend?duration=1h&interval=1m, 3 /leaks, 4 /allocations,
//                                    5 /debug/pprof/heap, 6 /metrics/performance
// Every allocation site is its own function (a template instance), its block sampled with certainty
// (lg_prof_sample 0 while the blocks are made), so <sites> is what the profiler really sees. 8000 sites
// is beyond the leak detector's bound (profiling.max_tracked_sites = 4096) and shows its eviction path.
#include <benchmark/benchmark.h>

#include <riptide/performance/core/clock.hpp>
#include <riptide/performance/core/config.hpp>
#include <riptide/performance/http/memory_metrics_router.hpp>
#include <riptide/performance/manager/memory_profiler.hpp>
#include <riptide/performance/manager/performance_manager.hpp>
#include <riptide/performance/memory/memory_tracker.hpp>
#include <riptide/performance/profiling/enable_heap_profiling.hpp>
#include <riptide/performance/profiling/heap_profiling_control.hpp>
#include <riptide/performance/profiling/leak_detector.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

RIPTIDE_PERF_ENABLE_HEAP_PROFILING();

namespace rp = riptide::performance;
using namespace std::chrono_literals;

// kMaxSites allocation sites: one function per site, each calling operator new with its own size, so no
// two are folded together and each has its own return address (the leak detector's and the allocation
// analyzer's key).
constexpr std::size_t kMaxSites = 8192;

template <std::size_t N>
__attribute__((noinline)) void* cost_growth_site() {
  void* block = ::operator new(4096 + N);
  asm volatile("" ::: "memory");  // no tail call: the return address must stay this function's
  return block;
}

template <std::size_t... N>
constexpr std::array<void* (*)(), sizeof...(N)> make_sites(std::index_sequence<N...>) {
  return {&cost_growth_site<N>...};
}

namespace {

constexpr std::uint32_t kDefaultLgSample = 19;

// `sites` live blocks from distinct sites, each certainly sampled (lg_prof_sample 0 while they are made).
// Sampling then stays paused (prof.reset would drop the samples), so what the measured calls allocate adds
// no stacks: the dumps hold these sites and what the process sampled before. jemalloc's recent-allocation
// ring (read by the leak analysis for ages) is full from the burst, as it is in a long-running process.
class LiveSites {
 public:
  explicit LiveSites(std::size_t sites) {
    static constexpr auto kSites = make_sites(std::make_index_sequence<kMaxSites>{});
    (void)rp::HeapProfilingControl::reset(0);
    for (int i = 0; i < 512; ++i) {  // the next sample was scheduled at the old interval: allocate past it
      void* burn = ::operator new(64 * 1024);
      benchmark::DoNotOptimize(burn);
      ::operator delete(burn);
    }
    blocks_.reserve(sites);
    for (std::size_t i = 0; i < sites && i < kMaxSites; ++i) blocks_.push_back(kSites[i]());
    (void)rp::HeapProfilingControl::set_active(false);
  }
  ~LiveSites() {
    for (void* block : blocks_) ::operator delete(block);
    // prof.reset drops the sampled stacks, so the next benchmark starts from its own sites only.
    (void)rp::HeapProfilingControl::reset(kDefaultLgSample);
    (void)rp::HeapProfilingControl::set_active(true);
  }
  LiveSites(const LiveSites&) = delete;
  LiveSites& operator=(const LiveSites&) = delete;

 private:
  std::vector<void*> blocks_;
};

bool require_profiling(benchmark::State& state) {
  if (!rp::HeapProfilingControl::available()) {
    state.SkipWithError(("heap profiling unavailable: " + rp::HeapProfilingControl::status().reason).c_str());
    return false;
  }
  return true;
}

// A tracker whose full-resolution ring holds exactly `history` one-second samples (so it stays full while
// the benchmark appends) and whose downsampled ring holds a week of minutes.
struct FilledTracker {
  rp::ManualClock clock;
  std::unique_ptr<rp::MemoryTracker> tracker;

  explicit FilledTracker(std::size_t history) {
    rp::MemoryTrackerOptions options;
    options.history = std::chrono::seconds{history};
    tracker = std::make_unique<rp::MemoryTracker>(options, clock);
    rp::MemorySnapshot snapshot = tracker->take_snapshot();
    auto append = [&](std::chrono::seconds step) {
      clock.advance(step);
      snapshot.steady_time = clock.steady_now();
      snapshot.timestamp = clock.system_now();
      if (snapshot.heap_bytes) *snapshot.heap_bytes += 4096;  // a slow climb, so trends have a slope
      tracker->record(snapshot);
    };
    for (int minute = 0; minute < 7 * 24 * 60; ++minute) append(60s);
    for (std::size_t i = 0; i < history; ++i) append(1s);
  }
};

void BM_Snapshot(benchmark::State& state) {
  FilledTracker filled(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    filled.clock.advance(1s);
    benchmark::DoNotOptimize(filled.tracker->sample_now());
  }
  state.counters["samples"] = static_cast<double>(filled.tracker->history_size());
  state.counters["long_samples"] = static_cast<double>(filled.tracker->long_history_size());
  state.counters["ring_bytes"] = static_cast<double>(filled.tracker->ring_bytes());
}
BENCHMARK(BM_Snapshot)->Arg(60)->Arg(3600)->Arg(65536)->Unit(benchmark::kMicrosecond);

void BM_TrendQuery(benchmark::State& state) {
  const auto history = static_cast<std::size_t>(state.range(0));
  FilledTracker filled(history);
  const auto duration = std::chrono::seconds{history};
  const auto step = std::chrono::seconds{state.range(1)};
  std::size_t points = 0;
  for (auto _ : state) {
    const auto trend = filled.tracker->trend(duration, step, 1000);
    points = trend.data_points.size();
    benchmark::DoNotOptimize(trend);
  }
  state.counters["points"] = static_cast<double>(points);
}
BENCHMARK(BM_TrendQuery)->ArgsProduct({{60, 3600, 16384, 65536}, {1, 60}})->Unit(benchmark::kMicrosecond);

void BM_TrendWeek(benchmark::State& state) {
  FilledTracker filled(3600);
  for (auto _ : state) benchmark::DoNotOptimize(filled.tracker->trend(7 * 24h, 1h, 1000));
}
BENCHMARK(BM_TrendWeek)->Unit(benchmark::kMicrosecond);

rp::ProfilingConfig leak_config() {
  rp::ProfilingConfig config;
  config.max_tracked_sites = 4096;  // the default bound
  return config;
}

void BM_LeakCycle(benchmark::State& state) {
  if (!require_profiling(state)) return;
  LiveSites live(static_cast<std::size_t>(state.range(0)));
  rp::ManualClock clock;
  rp::LeakDetector detector(leak_config(), clock);
  for (std::int64_t i = 0; i < state.range(1); ++i) {
    clock.advance(10s);
    (void)detector.observe();
  }
  rp::LeakReport report;
  for (auto _ : state) {
    clock.advance(10s);
    (void)detector.observe();
    report = detector.analyze();
    benchmark::DoNotOptimize(report);
  }
  state.counters["tracked_sites"] = static_cast<double>(report.tracked_sites);
  state.counters["observations"] = static_cast<double>(report.observations);
}
BENCHMARK(BM_LeakCycle)->ArgsProduct({{100, 1000, 4000, 8000}, {1, 64}})->Unit(benchmark::kMillisecond);

void BM_LeakAnalyze(benchmark::State& state) {
  if (!require_profiling(state)) return;
  LiveSites live(static_cast<std::size_t>(state.range(0)));
  rp::ManualClock clock;
  rp::LeakDetector detector(leak_config(), clock);
  for (std::int64_t i = 0; i < state.range(1); ++i) {
    clock.advance(10s);
    (void)detector.observe();
  }
  for (auto _ : state) benchmark::DoNotOptimize(detector.analyze());
}
BENCHMARK(BM_LeakAnalyze)->ArgsProduct({{100, 1000, 4000, 8000}, {1, 64}})->Unit(benchmark::kMillisecond);

const char* const kRoutes[] = {
    "/metrics",
    "/metrics/memory/snapshot",
    "/metrics/memory/trend?duration=1h&interval=1m",
    "/metrics/memory/leaks",
    "/metrics/memory/allocations",
    "/debug/pprof/heap",
    "/metrics/performance",
};

void BM_Endpoint(benchmark::State& state) {
  if (!require_profiling(state)) return;
  const char* route = kRoutes[state.range(0)];
  state.SetLabel(route);
  LiveSites live(static_cast<std::size_t>(state.range(1)));
  rp::Config config;
  config.http.port = 0;
  // A manual clock: the leak detector's reports are never "fresh" for /leaks, so every request takes
  // a new heap profile, as a scrape every second (or slower) does.
  static rp::ManualClock clock;
  auto manager = rp::PerformanceManager::with_config(config, clock);
  auto& tracker = manager->memory_profiler().tracker();
  rp::MemorySnapshot snapshot = tracker.take_snapshot();
  for (int i = 0; i < 3600; ++i) {
    clock.advance(1s);
    snapshot.steady_time = clock.steady_now();
    snapshot.timestamp = clock.system_now();
    tracker.record(snapshot);
  }
  rp::http::MemoryMetricsOptions options;
  options.leak_detector = manager->memory_profiler().leak_detector();
  options.performance_json = [m = manager.get()] { return m->performance_json(); };
  rp::http::MemoryMetricsRouter router(std::shared_ptr<rp::MemoryProfiler>(manager, &manager->memory_profiler()),
                                       manager->session_id(), options);
  rp::http::Request request;
  request.method = "GET";
  request.target = route;
  request.remote_address = "127.0.0.1";
  std::size_t bytes = 0;
  for (auto _ : state) {
    clock.advance(1s);
    const auto response = router.handle(request);
    if (response.status != 200) {
      state.SkipWithError((std::string{route} + " answered " + std::to_string(response.status)).c_str());
      return;
    }
    bytes = response.body.size();
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Endpoint)->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {100, 1000, 4000}})->Unit(benchmark::kMillisecond);

}  // namespace
