#pragma once
// One immutable reading of the process's memory: kernel figures, allocator figures and cumulative
// allocation counters. docs/memory.md says where each field comes from and how exact it is.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/memory/allocator_stats.hpp"
#include "riptide/performance/memory/jemalloc_stats.hpp"
#include "riptide/performance/memory/process_stats.hpp"

namespace riptide::performance {

struct MemorySnapshot {
  std::chrono::system_clock::time_point timestamp;    ///< wall time of the reading (shown to people)
  std::chrono::steady_clock::time_point steady_time;  ///< monotonic time of the reading (for rates)
  std::string allocator;  ///< "jemalloc", "glibc", "asan", "tsan" or "unknown": source of the heap figures

  // Kernel (ProcessStats).
  std::optional<std::uint64_t> rss_bytes;           ///< resident set size now
  std::optional<std::uint64_t> virtual_bytes;       ///< virtual address space size now
  std::optional<std::uint64_t> peak_rss_bytes;      ///< RSS high-water mark since the process started
  std::optional<std::uint64_t> cgroup_limit_bytes;  ///< cgroup memory limit; empty when unlimited or none
  std::optional<std::uint64_t> cgroup_usage_bytes;  ///< cgroup memory usage (page cache included)

  // Heap: what the application holds now and the highest value seen by any snapshot so far.
  std::optional<std::uint64_t> heap_bytes;       ///< jemalloc stats.allocated, or the fallback's in-use bytes
  std::optional<std::uint64_t> peak_heap_bytes;  ///< max heap_bytes over snapshots taken (sampled peak)

  // jemalloc only (empty under other allocators).
  std::optional<std::uint64_t> active_bytes;    ///< stats.active
  std::optional<std::uint64_t> metadata_bytes;  ///< stats.metadata
  std::optional<std::uint64_t> resident_bytes;  ///< stats.resident
  std::optional<std::uint64_t> mapped_bytes;    ///< stats.mapped, or the fallback's bytes taken from the OS
  std::optional<std::uint64_t> retained_bytes;  ///< stats.retained
  std::optional<std::uint64_t> tcache_bytes;    ///< bytes parked in thread caches
  std::optional<std::uint64_t> dirty_bytes;     ///< freed pages kept resident for reuse (pdirty x page)
  std::optional<std::uint64_t> muzzy_bytes;     ///< pages advised free, resident until reclaimed (pmuzzy x page)

  // Cumulative since process start (jemalloc only: glibc keeps no such counters).
  std::optional<std::uint64_t> allocation_count;         ///< objects handed out (sum of nmalloc)
  std::optional<std::uint64_t> deallocation_count;       ///< objects returned (sum of ndalloc)
  std::optional<std::uint64_t> request_count;            ///< malloc calls served (sum of nrequests)
  std::optional<std::uint64_t> total_allocated_bytes;    ///< sum of usable size x nmalloc
  std::optional<std::uint64_t> total_deallocated_bytes;  ///< sum of usable size x ndalloc

  // Fallback allocators only.
  std::optional<std::uint64_t> free_bytes;  ///< free bytes held inside the allocator (glibc fordblks)

  /// Per-size-class counters (jemalloc only, classes with traffic); null when not read.
  std::shared_ptr<const std::vector<SizeClassStats>> size_classes;
};

/// What a MemorySnapshotter reads besides the kernel figures.
struct SnapshotOptions {
  bool allocator_stats = true;  ///< read the allocator's figures (profiling.jemalloc_stats)
  bool size_classes = true;     ///< read jemalloc's per-size-class counters (needed for the counts)
  /// Empty: /proc/self plus cgroup discovery. Otherwise a directory holding statm and status read instead,
  /// without cgroup figures: lets tests feed missing, empty or malformed kernel files.
  std::filesystem::path proc_self;
};

/// Takes snapshots: owns the open /proc and cgroup files, the cached jemalloc MIBs and the running heap
/// peak. Thread-safe.
class MemorySnapshotter {
 public:
  explicit MemorySnapshotter(SnapshotOptions options = {});

  /// A snapshot now. `refresh_epoch` advances jemalloc's epoch first (heavy; background or on request).
  [[nodiscard]] MemorySnapshot take(const Clock& clock, bool refresh_epoch);

  /// The allocator the heap figures come from.
  [[nodiscard]] AllocatorKind allocator() const noexcept { return allocator_; }
  /// Highest heap_bytes seen by any snapshot so far.
  [[nodiscard]] std::optional<std::uint64_t> peak_heap_bytes() const noexcept;

 private:
  SnapshotOptions options_;
  AllocatorKind allocator_;
  ProcessStats process_;
  JemallocStats jemalloc_;
  std::atomic<std::uint64_t> peak_heap_{0};
  std::atomic<bool> has_peak_{false};
};

}  // namespace riptide::performance
