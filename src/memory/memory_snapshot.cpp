#include "riptide/performance/memory/memory_snapshot.hpp"

#include <algorithm>

namespace riptide::performance {

MemorySnapshotter::MemorySnapshotter(SnapshotOptions options)
    : options_(std::move(options)), allocator_(detect_allocator()), process_([this]() -> ProcessStats {
        if (options_.proc_self.empty()) return ProcessStats();
        return ProcessStats(options_.proc_self, std::nullopt, 0);
      }()) {}

std::optional<std::uint64_t> MemorySnapshotter::peak_heap_bytes() const noexcept {
  if (!has_peak_.load(std::memory_order_acquire)) {
    return std::nullopt;
  }
  return peak_heap_.load(std::memory_order_relaxed);
}

MemorySnapshot MemorySnapshotter::take(const Clock& clock, bool refresh_epoch) {
  MemorySnapshot snapshot;
  snapshot.allocator = std::string(allocator_name(allocator_));

  if (options_.allocator_stats && allocator_ == AllocatorKind::jemalloc) {
    if (refresh_epoch) {
      JemallocStats::refresh_epoch();
    }
    if (const auto counters = jemalloc_.read(options_.size_classes)) {
      snapshot.heap_bytes = counters->allocated;
      snapshot.active_bytes = counters->active;
      snapshot.metadata_bytes = counters->metadata;
      snapshot.resident_bytes = counters->resident;
      snapshot.mapped_bytes = counters->mapped;
      snapshot.retained_bytes = counters->retained;
      snapshot.tcache_bytes = counters->tcache_bytes;
      snapshot.dirty_bytes = counters->dirty_bytes;
      snapshot.muzzy_bytes = counters->muzzy_bytes;
      if (counters->size_classes) {
        snapshot.allocation_count = counters->allocation_count;
        snapshot.deallocation_count = counters->deallocation_count;
        snapshot.request_count = counters->request_count;
        snapshot.total_allocated_bytes = counters->total_allocated_bytes;
        snapshot.total_deallocated_bytes = counters->total_deallocated_bytes;
        snapshot.size_classes = counters->size_classes;
      }
    }
  } else if (options_.allocator_stats) {
    if (const auto fallback = read_fallback_heap_stats()) {
      snapshot.heap_bytes = fallback->heap_bytes;
      snapshot.mapped_bytes = fallback->mapped_bytes;
      snapshot.free_bytes = fallback->free_bytes;
    }
  }

  // Kernel figures after the allocator's, so both describe (nearly) the same moment and RSS already
  // includes whatever the epoch refresh touched.
  const ProcessMemory process = process_.read();
  snapshot.rss_bytes = process.rss_bytes;
  snapshot.virtual_bytes = process.virtual_bytes;
  snapshot.peak_rss_bytes = process.peak_rss_bytes;
  snapshot.cgroup_limit_bytes = process.cgroup_limit_bytes;
  snapshot.cgroup_usage_bytes = process.cgroup_usage_bytes;

  if (snapshot.heap_bytes) {
    std::uint64_t peak = peak_heap_.load(std::memory_order_relaxed);
    while (peak < *snapshot.heap_bytes &&
           !peak_heap_.compare_exchange_weak(peak, *snapshot.heap_bytes, std::memory_order_relaxed)) {
    }
    has_peak_.store(true, std::memory_order_release);
    snapshot.peak_heap_bytes = std::max(peak, *snapshot.heap_bytes);
  }

  snapshot.timestamp = clock.system_now();
  snapshot.steady_time = clock.steady_now();
  return snapshot;
}

}  // namespace riptide::performance
