#pragma once
// What the memory endpoints and the memory families of /metrics show, gathered in one immutable value:
// the sampler's latest snapshot, allocation rates over fixed windows, the leak detector's latest report, the
// library's own heap and the health verdict derived from them. The PerformanceManager builds one per periodic
// check and publishes it inside its PerformanceState; readers serialize it and change nothing.
//   std::shared_ptr<const rp::PerformanceState> state = manager->state();
//   const rp::MemoryState& memory = state->memory;   // memory.health.status, memory.leaks->leak_count

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "riptide/performance/memory/fragmentation.hpp"
#include "riptide/performance/memory/memory_health.hpp"
#include "riptide/performance/memory/memory_snapshot.hpp"
#include "riptide/performance/memory/memory_trend.hpp"
#include "riptide/performance/profiling/allocation_lifetimes.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"
#include "riptide/performance/profiling/self_heap.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

namespace riptide::performance {

class PrometheusWriter;

struct MemoryState {
  std::chrono::system_clock::time_point taken_at{};        ///< when this state was assembled
  std::shared_ptr<const MemorySnapshot> snapshot;          ///< the sampler's latest (a fresh reading before its first)
  std::optional<AllocationRate> allocation_rate;           ///< over the last minute of samples
  std::optional<AllocationRate> allocation_rate_baseline;  ///< over the retained history (up to an hour)
  bool heap_profiling_available = false;                   ///< jemalloc's heap profiler runs (leak figures need it)
  /// The leak detector's latest published report; null before its first observation, when profiling is off
  /// or compiled out (`leaks_unavailable_reason` says which).
  std::shared_ptr<const LeakReport> leaks;
  std::string leaks_unavailable_reason;       ///< why `leaks` is null; empty otherwise
  std::optional<SelfHeapEstimate> self_heap;  ///< the library's own heap; empty without heap profiling
  std::optional<SymbolizerStats> symbolizer;  ///< empty when heap profiling is compiled out
  MemoryHealth health;                        ///< the verdict of GET /metrics/memory/health
  /// How long each site's allocations live (jemalloc's record of recent sampled allocations); null before the
  /// first reading or without heap profiling (`lifetimes_unavailable_reason` says why).
  std::shared_ptr<const AllocationLifetimes> lifetimes;
  std::string lifetimes_unavailable_reason;
  FragmentationReport fragmentation;  ///< RSS down to the program's bytes (GET /metrics/memory/fragmentation)
};

/// The memory, allocation-rate and profiling families of GET /metrics (riptide_process_*, riptide_heap_*,
/// riptide_jemalloc_*, riptide_leak_*, riptide_self_heap_*, riptide_symbolizer_*).
void write_prometheus(PrometheusWriter& out, const MemoryState& state);

/// riptide_info{version, allocator, session_id} 1: what build watches which session.
void write_build_info(PrometheusWriter& out, std::string_view session_id, const MemoryState& state);

}  // namespace riptide::performance
