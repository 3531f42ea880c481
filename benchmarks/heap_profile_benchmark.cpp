// Heap profiling costs (part of memory_benchmark):
//   BM_HeapDumpParseAggregate/<stacks>  prof.dump to a private file + read + parse + unbias + group by site,
//                                       with N distinct live stacks (budget: <= 20 ms at 1,000 stacks)
//   BM_HeapParseOnly/<stacks>           the parse + unbias + aggregate part alone, on the same dump text
//   BM_PeakCapture/<stacks>             one peak profile capture: dump + parse + rank + name the top 20 sites
//   BM_SelfHeapEstimate/<stacks>        the self-heap pass of an observation on a parsed profile
//   BM_Symbolize/cold, /warm            libdw symbolization per address, fresh symbolizer vs cached
//   BM_SamplingCost                     an allocation-heavy loop with sampling off (prof.active false) and on
//                                       at lg_prof_sample 19, interleaved in one run; counter sampled_over_off
//                                       (thread CPU time, so machine load does not skew the ratio)
// The executable defines malloc_conf (prof:true) here, so jemalloc's profiler is on for the whole
// memory_benchmark binary; other TUs of it must not define malloc_conf again.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/allocation_lifetimes.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/peak_heap_profile.hpp"
#include "riptide/performance/profiling/self_heap.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING();

namespace rp = riptide::performance;

// Two functions calling each other by the bits of `path` give 2^depth distinct call stacks.
__attribute__((noinline)) void heap_bench_branch_a(int depth, unsigned path, std::vector<void*>& out);
__attribute__((noinline)) void heap_bench_branch_b(int depth, unsigned path, std::vector<void*>& out);

static void heap_bench_descend(int depth, unsigned path, std::vector<void*>& out) {
  if (depth == 0) {
    out.push_back(::operator new(64));
    return;
  }
  if ((path & 1U) != 0) {
    heap_bench_branch_a(depth - 1, path >> 1, out);
  } else {
    heap_bench_branch_b(depth - 1, path >> 1, out);
  }
}
void heap_bench_branch_a(int depth, unsigned path, std::vector<void*>& out) {
  heap_bench_descend(depth, path, out);
  asm volatile("" ::: "memory");  // no tail call: the frame must stay on the stack
}
void heap_bench_branch_b(int depth, unsigned path, std::vector<void*>& out) {
  heap_bench_descend(depth, path, out);
  asm volatile("" ::: "memory");
}

namespace {

constexpr std::uint32_t kDefaultLgSample = 19;

// `stacks` live allocations on distinct stacks, each certainly sampled (lg_prof_sample 0 while they are
// made); sampling is then paused so the measurement itself adds no stacks.
class DistinctStacks {
 public:
  explicit DistinctStacks(std::size_t stacks) {
    (void)rp::HeapProfilingControl::reset(0);
    // A thread's next sample was scheduled at the old interval (up to MiBs away); allocate past it so every
    // allocation below is sampled.
    for (int i = 0; i < 512; ++i) {
      void* burn = ::operator new(64 * 1024);
      benchmark::DoNotOptimize(burn);
      ::operator delete(burn);
    }
    int depth = 0;
    while ((std::size_t{1} << depth) < stacks) {
      ++depth;
    }
    blocks_.reserve(stacks);
    for (unsigned path = 0; path < stacks; ++path) {
      heap_bench_descend(depth, path, blocks_);
    }
    (void)rp::HeapProfilingControl::set_active(false);
  }
  ~DistinctStacks() {
    for (void* block : blocks_) {
      ::operator delete(block);
    }
    (void)rp::HeapProfilingControl::reset(kDefaultLgSample);
    (void)rp::HeapProfilingControl::set_active(true);
  }

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

void BM_HeapDumpParseAggregate(benchmark::State& state) {
  if (!require_profiling(state)) return;
  DistinctStacks live(static_cast<std::size_t>(state.range(0)));
  std::size_t stacks = 0;
  std::size_t sites = 0;
  {  // warm the symbolizer: steady state of a periodic detector
    auto profile = rp::capture_heap_profile();
    if (profile) benchmark::DoNotOptimize(rp::aggregate_by_site(profile.value(), rp::Symbolizer::shared()));
  }
  for (auto _ : state) {
    auto profile = rp::capture_heap_profile();
    if (!profile) {
      state.SkipWithError(profile.error().to_string().c_str());
      return;
    }
    const auto aggregated = rp::aggregate_by_site(profile.value(), rp::Symbolizer::shared());
    stacks = profile.value().stacks.size();
    sites = aggregated.size();
    benchmark::DoNotOptimize(aggregated.data());
  }
  state.counters["stacks"] = static_cast<double>(stacks);
  state.counters["sites"] = static_cast<double>(sites);
}
BENCHMARK(BM_HeapDumpParseAggregate)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

void BM_HeapParseOnly(benchmark::State& state) {
  if (!require_profiling(state)) return;
  DistinctStacks live(static_cast<std::size_t>(state.range(0)));
  const auto text = rp::capture_heap_dump_text();
  if (!text) {
    state.SkipWithError(text.error().to_string().c_str());
    return;
  }
  {
    auto profile = rp::parse_heap_profile(text.value());
    if (profile) benchmark::DoNotOptimize(rp::aggregate_by_site(profile.value(), rp::Symbolizer::shared()));
  }
  for (auto _ : state) {
    auto profile = rp::parse_heap_profile(text.value());
    const auto aggregated = rp::aggregate_by_site(profile.value(), rp::Symbolizer::shared());
    benchmark::DoNotOptimize(aggregated.data());
  }
  state.counters["dump_bytes"] = static_cast<double>(text.value().size());
}
BENCHMARK(BM_HeapParseOnly)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// One peak capture as the periodic thread makes it: a recorder's first reading always captures, so each
// iteration is one dump + parse + site ranking + naming of the top 20 (symbolizer warm, as in a running
// process; building the recorder costs nothing measurable: its job is never started).
void BM_PeakCapture(benchmark::State& state) {
  if (!require_profiling(state)) return;
  DistinctStacks live(static_cast<std::size_t>(state.range(0)));
  rp::ProfilingConfig config;
  config.peak_profile_growth = 0.1;
  auto reading = std::make_shared<rp::MemorySnapshot>();
  reading->heap_bytes = std::uint64_t{1} << 30;
  const std::shared_ptr<const rp::MemorySnapshot> snapshot = reading;
  const auto capture = [&] {
    rp::PeakHeapRecorder recorder(config, std::chrono::seconds{1}, [&snapshot] { return snapshot; });
    if (!recorder.check()) return std::string("no capture: " + recorder.status().last_error);
    return std::to_string(recorder.latest()->profile->stacks.size());
  };
  (void)capture();  // warms the symbolizer
  std::string outcome;
  for (auto _ : state) {
    outcome = capture();
    if (outcome.starts_with("no capture")) {
      state.SkipWithError(outcome.c_str());
      return;
    }
  }
  state.counters["stacks"] = std::stod(outcome);
}
BENCHMARK(BM_PeakCapture)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// One lifetime reading (LifetimeRecorder::record, the periodic job at the leak interval): jemalloc's record
// of its recent sampled allocations (4,096 of them, freed ones included, as in any process that ran a while)
// dumped as JSON, parsed and grouped by site, the symbolizer warm.
void BM_LifetimeReading(benchmark::State& state) {
  if (!require_profiling(state)) return;
  if (const auto recorded = rp::ensure_recent_allocations_recorded(); !recorded) {
    state.SkipWithError(recorded.error().to_string().c_str());
    return;
  }
  for (int i = 0; i < 8192; ++i) {  // ~2 samples per MiB at 512 KiB: the ring fills up
    void* volatile block = std::malloc(std::size_t{1} << 20);
    std::free(block);
  }
  rp::LifetimeRecorder recorder(100.0, std::chrono::hours(1));
  recorder.record();  // warms the symbolizer
  for (auto _ : state) recorder.record();
  state.counters["records"] = static_cast<double>(recorder.latest()->records);
}
BENCHMARK(BM_LifetimeReading)->Unit(benchmark::kMillisecond);

// The self-heap pass an observation adds (estimate_self_heap on the parsed profile, frame classes warm):
// host stacks are walked whole, so this is its worst case per stack.
void BM_SelfHeapEstimate(benchmark::State& state) {
  if (!require_profiling(state)) return;
  DistinctStacks live(static_cast<std::size_t>(state.range(0)));
  auto profile = rp::capture_heap_profile();
  if (!profile) {
    state.SkipWithError(profile.error().to_string().c_str());
    return;
  }
  benchmark::DoNotOptimize(rp::estimate_self_heap(profile.value(), rp::Symbolizer::shared()));
  std::size_t frames = 0;
  for (const auto& stack : profile.value().stacks) frames += stack.frames.size();
  for (auto _ : state) {
    benchmark::DoNotOptimize(rp::estimate_self_heap(profile.value(), rp::Symbolizer::shared()));
  }
  state.counters["stacks"] = static_cast<double>(profile.value().stacks.size());
  state.counters["frames"] = static_cast<double>(frames);
}
BENCHMARK(BM_SelfHeapEstimate)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

std::vector<std::uint64_t> addresses_from_live_dump() {
  DistinctStacks live(1000);
  std::vector<std::uint64_t> addresses;
  auto profile = rp::capture_heap_profile();
  if (!profile) return addresses;
  std::unordered_set<std::uint64_t> unique;
  for (const auto& stack : profile.value().stacks) {
    unique.insert(stack.frames.begin(), stack.frames.end());
  }
  addresses.assign(unique.begin(), unique.end());
  return addresses;
}

void BM_SymbolizeCold(benchmark::State& state) {
  if (!require_profiling(state)) return;
  const auto addresses = addresses_from_live_dump();
  for (auto _ : state) {
    rp::Symbolizer symbolizer;  // fresh: reads /proc/self/maps, opens ELF/DWARF, no cached addresses
    for (const auto address : addresses) {
      benchmark::DoNotOptimize(symbolizer.resolve(address));
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * addresses.size()));
  state.counters["addresses"] = static_cast<double>(addresses.size());
}
BENCHMARK(BM_SymbolizeCold)->Unit(benchmark::kMillisecond);

void BM_SymbolizeWarm(benchmark::State& state) {
  if (!require_profiling(state)) return;
  const auto addresses = addresses_from_live_dump();
  rp::Symbolizer symbolizer;
  for (const auto address : addresses) {
    benchmark::DoNotOptimize(symbolizer.resolve(address));
  }
  for (auto _ : state) {
    for (const auto address : addresses) {
      benchmark::DoNotOptimize(symbolizer.resolve(address));
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * addresses.size()));
  state.counters["addresses"] = static_cast<double>(addresses.size());
}
BENCHMARK(BM_SymbolizeWarm)->Unit(benchmark::kMicrosecond);

// CPU time of this thread: on a shared machine wall time mostly measures the other processes.
double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Allocation-heavy loop: 64k allocations of sizes uniform in [16, max_size] (a scraper's strings and buffers),
// freed in batches. Returns seconds; adds the bytes requested to `bytes`.
__attribute__((noinline)) double allocation_heavy_loop(std::mt19937& random, std::size_t max_size, double& bytes) {
  constexpr int kAllocations = 1 << 16;
  constexpr int kBatch = 256;
  std::uniform_int_distribution<std::size_t> size(16, max_size);
  void* batch[kBatch];
  std::size_t requested = 0;
  const double start = thread_cpu_seconds();
  for (int i = 0; i < kAllocations; i += kBatch) {
    for (int j = 0; j < kBatch; ++j) {
      const std::size_t n = size(random);
      requested += n;
      batch[j] = ::operator new(n);
      static_cast<char*>(batch[j])[0] = 1;
    }
    for (int j = kBatch - 1; j >= 0; --j) {
      ::operator delete(batch[j]);
    }
  }
  const double seconds = thread_cpu_seconds() - start;
  bytes += static_cast<double>(requested);
  return seconds;
}

void BM_SamplingCost(benchmark::State& state) {
  if (!require_profiling(state)) return;
  (void)rp::HeapProfilingControl::reset(kDefaultLgSample);
  const auto max_size = static_cast<std::size_t>(state.range(0));
  std::mt19937 random(7);
  double off_seconds = 0;
  double on_seconds = 0;
  double off_bytes = 0;
  double on_bytes = 0;
  for (auto _ : state) {
    // Interleaved so both variants see the same machine load.
    (void)rp::HeapProfilingControl::set_active(false);
    off_seconds += allocation_heavy_loop(random, max_size, off_bytes);
    (void)rp::HeapProfilingControl::set_active(true);
    on_seconds += allocation_heavy_loop(random, max_size, on_bytes);
  }
  (void)rp::HeapProfilingControl::set_active(true);
  const double allocations = static_cast<double>(state.iterations()) * (1 << 16);
  const double samples = on_bytes / static_cast<double>(std::uint64_t{1} << kDefaultLgSample);
  state.counters["off_ns_per_alloc"] = off_seconds * 1e9 / allocations;
  state.counters["on_ns_per_alloc"] = on_seconds * 1e9 / allocations;
  state.counters["sampled_over_off"] = off_seconds > 0 ? on_seconds / off_seconds : 0;
  state.counters["MB_per_s_off"] = off_seconds > 0 ? off_bytes / off_seconds / 1e6 : 0;
  state.counters["us_per_sample"] = samples > 0 ? (on_seconds - off_seconds) * 1e6 / samples : 0;
}
BENCHMARK(BM_SamplingCost)->Arg(256)->Arg(4096)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace
