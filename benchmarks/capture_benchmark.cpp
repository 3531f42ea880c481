// Memory captures: the periodic check (cgroup files + the trigger) and one whole capture (fresh heap
// dump, pprof encoding, snapshot and leak JSON, atomic write with fsyncs) over a heap of a realistic shape.
// docs/PERFORMANCE.md ("Memory captures") has the figures and the command.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "riptide/performance/manager/memory_capture_monitor.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/cgroup_memory.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING();

namespace rp = riptide::performance;
namespace fs = std::filesystem;

namespace {

// A heap of 64 MiB from 200 call sites (a template instantiated per site gives distinct stacks).
template <int Site>
[[gnu::noinline]] void hold(std::vector<std::unique_ptr<char[]>>& kept, std::size_t bytes) {
  for (std::size_t done = 0; done < bytes; done += 4096) kept.push_back(std::make_unique<char[]>(4096));
}
template <int... Sites>
void hold_all(std::vector<std::unique_ptr<char[]>>& kept, std::size_t per_site, std::integer_sequence<int, Sites...>) {
  (hold<Sites>(kept, per_site), ...);
}
std::vector<std::unique_ptr<char[]>>& heap_of_200_sites() {
  static auto* kept = [] {
    auto* held = new std::vector<std::unique_ptr<char[]>>;
    hold_all(*held, (64u << 20) / 200, std::make_integer_sequence<int, 200>{});
    return held;
  }();
  return *kept;
}

fs::path capture_dir() {
  const char* dir = std::getenv("RIPTIDE_PERF_BENCH_CAPTURE_DIR");
  return dir != nullptr ? fs::path(dir)
                        : fs::temp_directory_path() / ("riptide-capture-bench-" + std::to_string(::getpid()));
}

}  // namespace

// One reading of the process's memory cgroup: limit(s), usage and memory.stat, by pread.
static void BM_CgroupMemoryRead(benchmark::State& state) {
  const rp::CgroupMemoryReader reader;
  if (!reader.available()) {
    state.SkipWithError(("no memory cgroup: " + reader.unavailable_reason()).c_str());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(reader.read());
  state.SetLabel("cgroup v" + std::to_string(reader.version()));
}
BENCHMARK(BM_CgroupMemoryRead);

// The periodic check below its thresholds: the sampler's snapshot, the cgroup reading, the trigger.
static void BM_CaptureCheck(benchmark::State& state) {
  rp::Config config;
  config.http.enabled = false;
  config.cache.enabled = false;
  config.profiling.capture_dir = capture_dir().string();
  config.targets.max_memory_mb = 1 << 20;
  config.targets.memory_alert_mb = 1 << 20;
  config.profiling.capture_cgroup_share = 1.0;
  rp::MemoryProfiler profiler("benchmark", config);
  rp::MemoryCaptureMonitor monitor(config, profiler, "benchmark", rp::system_clock(), nullptr,
                                   [&config] { return config.targets; });
  for (auto _ : state) monitor.check();
  fs::remove_all(capture_dir());
}
BENCHMARK(BM_CaptureCheck);

// One whole capture over a 64 MiB heap of 200 sites.
static void BM_CaptureNow(benchmark::State& state) {
  (void)heap_of_200_sites();
  rp::Config config;
  config.http.enabled = false;
  config.cache.enabled = false;
  config.profiling.capture_dir = capture_dir().string();
  config.profiling.capture_max_files = 3;
  config.profiling.capture_min_free_mb = 0;
  auto manager = rp::PerformanceManager::with_config(config);
  // The first capture of a process also loads the symbolizer's DWARF for every module: reported apart.
  const auto first_start = std::chrono::steady_clock::now();
  (void)manager->capture_now("warm-up");
  const double first_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - first_start).count();
  std::uint64_t bytes = 0;
  std::uint64_t heap_bytes = 0;
  for (auto _ : state) {
    const rp::CaptureOutcome outcome = manager->capture_now("benchmark");
    if (!outcome.performed) {
      state.SkipWithError(outcome.reason.c_str());
      break;
    }
    bytes = outcome.capture->bytes;
    heap_bytes = outcome.capture->files.front().bytes;
  }
  state.counters["first_capture_ms"] = first_ms;
  state.counters["capture_bytes"] = static_cast<double>(bytes);
  state.counters["heap_pb_gz_bytes"] = static_cast<double>(heap_bytes);
  fs::remove_all(capture_dir());
}
BENCHMARK(BM_CaptureNow)->Unit(benchmark::kMillisecond)->Iterations(20);
