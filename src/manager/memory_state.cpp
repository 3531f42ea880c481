#include "riptide/performance/manager/memory_state.hpp"

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/prometheus_writer.hpp"

namespace riptide::performance {
namespace {

void write_optional(PrometheusWriter& out, const char* name, MetricType type, const char* help,
                    const std::optional<std::uint64_t>& value) {
  if (!value) return;
  out.family(name, type, help);
  out.sample(*value);
}

void write_snapshot(PrometheusWriter& out, const MemorySnapshot& snapshot) {
  const auto gauge = [&out](const char* name, const char* help, const std::optional<std::uint64_t>& value) {
    write_optional(out, name, MetricType::gauge, help, value);
  };
  const auto counter = [&out](const char* name, const char* help, const std::optional<std::uint64_t>& value) {
    write_optional(out, name, MetricType::counter, help, value);
  };
  gauge("process_resident_memory_bytes", "Resident set size of the process (/proc/self/statm).", snapshot.rss_bytes);
  gauge("process_virtual_memory_bytes", "Virtual address space size of the process.", snapshot.virtual_bytes);
  gauge("process_resident_memory_max_bytes", "Highest resident set size since the process started (VmHWM).",
        snapshot.peak_rss_bytes);
  gauge("process_cgroup_memory_limit_bytes", "Memory limit of the process's cgroup (absent when unlimited).",
        snapshot.cgroup_limit_bytes);
  gauge("process_cgroup_memory_usage_bytes", "Memory usage of the process's cgroup, page cache included.",
        snapshot.cgroup_usage_bytes);
  gauge("heap_bytes", "Bytes the application holds on the heap (jemalloc stats.allocated).", snapshot.heap_bytes);
  gauge("heap_max_bytes", "Highest heap bytes seen by any snapshot (sampled peak).", snapshot.peak_heap_bytes);
  gauge("jemalloc_active_bytes", "jemalloc stats.active: bytes in active pages.", snapshot.active_bytes);
  gauge("jemalloc_metadata_bytes", "jemalloc stats.metadata: allocator metadata.", snapshot.metadata_bytes);
  gauge("jemalloc_resident_bytes", "jemalloc stats.resident: physically resident allocator pages.",
        snapshot.resident_bytes);
  gauge("jemalloc_mapped_bytes", "jemalloc stats.mapped: bytes in active extents mapped by the allocator.",
        snapshot.mapped_bytes);
  gauge("jemalloc_retained_bytes", "jemalloc stats.retained: virtual memory kept for reuse, not resident.",
        snapshot.retained_bytes);
  gauge("jemalloc_tcache_bytes", "Bytes parked in jemalloc's thread caches.", snapshot.tcache_bytes);
  counter("allocations_total", "Objects allocated since the process started (jemalloc nmalloc, exact).",
          snapshot.allocation_count);
  counter("deallocations_total", "Objects freed since the process started (jemalloc ndalloc, exact).",
          snapshot.deallocation_count);
  counter("allocated_bytes_total", "Bytes allocated since the process started (size class x nmalloc).",
          snapshot.total_allocated_bytes);
  counter("deallocated_bytes_total", "Bytes freed since the process started (size class x ndalloc).",
          snapshot.total_deallocated_bytes);
}

#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
void write_profiling(PrometheusWriter& out, const MemoryState& state) {
  out.family("heap_profiling_available", MetricType::gauge,
             "1 when jemalloc's heap profiler runs in this process (leak figures need it).");
  out.sample(std::uint64_t{state.heap_profiling_available ? 1U : 0U});
  if (const auto& self = state.self_heap) {
    out.family("self_heap_bytes", MetricType::gauge,
               "Heap bytes held by riptide-performance itself, not the host's values in its caches: a sampled "
               "estimate from jemalloc's heap profile (one standard deviation: riptide_self_heap_error_bytes).");
    out.sample(self->bytes);
    out.family("self_heap_error_bytes", MetricType::gauge,
               "One standard deviation of the sampling error of riptide_self_heap_bytes.");
    out.sample(self->error_bytes);
  }
  if (const auto& symbols = state.symbolizer) {
    out.family("symbolizer_cache_bytes", MetricType::gauge,
               "Estimated bytes of the symbolizer's frame cache (bounded by profiling.symbolizer_cache_max_bytes).");
    out.sample(symbols->cache_bytes);
    out.family("symbolizer_cache_evictions_total", MetricType::counter,
               "Symbolized frames evicted to stay within profiling.symbolizer_cache_max_bytes.");
    out.sample(symbols->evicted_frames);
    write_optional(out, "symbolizer_dwarf_bytes", MetricType::gauge,
                   "Heap bytes libdw holds for the symbolizer's current session (bounded by "
                   "profiling.symbolizer_dwarf_max_bytes).",
                   symbols->dwarf_bytes);
    out.family("symbolizer_dwarf_rebuilds_total", MetricType::counter,
               "Symbolizer sessions ended to free libdw's state at profiling.symbolizer_dwarf_max_bytes.");
    out.sample(symbols->dwarf_rebuilds);
    out.family("symbolizer_lookup_cpu_seconds_total", MetricType::counter,
               "CPU time the symbolizer spent in libdw lookups (cache misses), all threads.");
    out.sample(symbols->lookup_cpu_seconds);
  }
  const auto& report = state.leaks;
  if (!report || !report->available) return;
  out.family("leak_suspects", MetricType::gauge, "Allocation sites whose in-use bytes grow steadily.");
  out.sample(std::uint64_t{report->leak_count});
  out.family("leaked_bytes", MetricType::gauge, "Estimated in-use bytes of the leak suspects (sampled).");
  out.sample(report->total_leaked_bytes);
  out.family("leak_growth_bytes_per_second", MetricType::gauge, "Summed growth rate of the leak suspects.");
  out.sample(report->total_growth_rate);
  out.family("leak_severity", MetricType::gauge, "Leak severity: 0 none, 1 low, 2 medium, 3 high.");
  out.sample(std::uint64_t{static_cast<std::uint64_t>(report->severity)});
  out.family("leak_observations_total", MetricType::counter, "Heap profiles the leak detector has taken.");
  out.sample(std::uint64_t{report->observations});
  out.family("leak_tracked_sites", MetricType::gauge,
             "Allocation sites with leak history (bounded by profiling.max_tracked_sites).");
  out.sample(std::uint64_t{report->tracked_sites});
  out.family("leak_dropped_sites_total", MetricType::counter,
             "Allocation sites whose leak history profiling.max_tracked_sites dropped (smallest first).");
  out.sample(report->dropped_sites);
}
#endif

}  // namespace

void write_prometheus(PrometheusWriter& out, const MemoryState& state) {
  if (state.snapshot) write_snapshot(out, *state.snapshot);
  if (state.allocation_rate) {
    out.family("allocation_rate_per_second", MetricType::gauge, "Allocations per second over the last minute.");
    out.sample(state.allocation_rate->allocations_per_second);
  }
  out.family("memory_health_status", MetricType::gauge,
             "Memory health verdict: 0 healthy, 1 degraded, 2 critical (GET /metrics/memory/health says why).");
  out.sample(std::uint64_t{static_cast<std::uint64_t>(state.health.status)});
  write_prometheus(out, state.fragmentation);
#if RIPTIDE_PERF_HAS_MEMORY_PROFILING
  write_profiling(out, state);
#endif
}

void write_build_info(PrometheusWriter& out, std::string_view session_id, const MemoryState& state) {
  out.family("info", MetricType::gauge, "Build and session of riptide-performance; the value is always 1.");
  out.sample(std::uint64_t{1}, {{"version", RIPTIDE_PERF_VERSION},
                                {"allocator", state.snapshot ? state.snapshot->allocator : "unknown"},
                                {"session_id", session_id}});
}

}  // namespace riptide::performance
