#pragma once
// Why the process's memory is what it is: from what the program holds (jemalloc's allocated bytes) up to
// what the OS charges (RSS), each step with its bytes and its cause, the size classes that waste the most,
// and what to change about it. Derived once per periodic check from the sampler's snapshot (so all of
// jemalloc's figures come from one `epoch`) and published; GET /metrics/memory/fragmentation serializes it.
//
//   allocated                 bytes in objects the program holds
//   + free space in pages     active - allocated: free slots of partly used slabs, the rounding of large
//                             allocations to their size class
//   + dirty pages             freed pages jemalloc keeps for reuse; resident until they decay or a purge
//   + metadata                jemalloc's own bookkeeping
//   = jemalloc resident       (stats.resident, about active + dirty + metadata)
//   + outside jemalloc        RSS - resident: code, stacks, other libraries' mappings
//   = RSS
// Retained bytes are address space jemalloc kept for reuse: not resident, not in RSS.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "riptide/performance/memory/memory_snapshot.hpp"

namespace riptide::performance {

class PrometheusWriter;

/// One small size class (a jemalloc bin): its slabs and how full they are.
struct SizeClassUtilization {
  std::uint64_t size = 0;              ///< bytes per object of the class
  std::uint64_t live_objects = 0;      ///< objects in use (curregs; thread-cached ones included)
  std::uint64_t slabs = 0;             ///< slabs the class holds (curslabs)
  std::uint64_t regions_per_slab = 0;  ///< objects a slab holds (nregs)
  std::uint64_t slab_bytes = 0;        ///< bytes of those slabs
  std::uint64_t live_bytes = 0;        ///< live_objects x size
  std::uint64_t wasted_bytes = 0;      ///< slab_bytes - live_bytes: free slots nobody can use elsewhere
  double utilization = 0;              ///< live_objects / (slabs x regions_per_slab)
};

/// jemalloc's settings that decide how much freed memory stays resident; read once (they do not change).
struct AllocatorTuning {
  std::optional<std::int64_t> dirty_decay_ms;  ///< opt.dirty_decay_ms (-1: never decays)
  std::optional<std::int64_t> muzzy_decay_ms;  ///< opt.muzzy_decay_ms
  std::optional<bool> background_thread;       ///< background_thread (purging threads running)
  std::optional<std::uint32_t> arenas;         ///< arenas.narenas
  unsigned cpus = 1;                           ///< online CPUs (jemalloc's default is 4 arenas per CPU)

  /// This process's values; empty fields when jemalloc is not the allocator.
  [[nodiscard]] static AllocatorTuning read();
};

/// A change that would give memory back, with what it is expected to return.
struct FragmentationAdvice {
  std::string setting;            ///< what to change: a jemalloc option (MALLOC_CONF), or an action of the library
  std::string reason;             ///< what the figures show and why the change helps
  std::uint64_t up_to_bytes = 0;  ///< the most it can return (the bytes of the cause)
};

struct FragmentationReport {
  bool available = false;  ///< jemalloc's figures were read; without them only `reason` is set
  std::string reason;      ///< why not available
  std::optional<std::uint64_t> rss_bytes;
  std::uint64_t resident_bytes = 0;                     ///< stats.resident
  std::uint64_t active_bytes = 0;                       ///< stats.active
  std::uint64_t allocated_bytes = 0;                    ///< stats.allocated
  std::uint64_t metadata_bytes = 0;                     ///< stats.metadata
  std::uint64_t dirty_bytes = 0;                        ///< pdirty pages, all arenas
  std::uint64_t muzzy_bytes = 0;                        ///< pmuzzy pages, all arenas (advised away; the OS may reclaim)
  std::uint64_t retained_bytes = 0;                     ///< stats.retained (virtual only)
  std::uint64_t page_free_bytes = 0;                    ///< active - allocated
  std::optional<std::int64_t> outside_allocator_bytes;  ///< RSS - resident
  std::uint64_t small_wasted_bytes = 0;                 ///< sum of every small class's wasted bytes
  /// 1 - allocated / resident: the share of jemalloc's resident memory not holding the program's objects.
  double fragmentation_ratio = 0;
  std::vector<SizeClassUtilization> worst_classes;  ///< most wasted bytes first, at most kWorstClasses
  std::vector<FragmentationAdvice> recommendations;
  static constexpr std::size_t kWorstClasses = 10;
};

/// The report for `snapshot` (which must carry jemalloc's size classes with their slab figures).
[[nodiscard]] FragmentationReport assess_fragmentation(const MemorySnapshot& snapshot, const AllocatorTuning& tuning);

/// {available, reason?, rss_bytes, reconciliation{...}, fragmentation_ratio, worst_size_classes[...],
///  recommendations[...]}: `nlohmann::json j = report;`.
void to_json(nlohmann::json& json, const FragmentationReport& report);

/// riptide_memory_fragmentation_ratio, riptide_memory_page_free_bytes, riptide_memory_outside_allocator_bytes,
/// riptide_jemalloc_dirty_bytes, riptide_jemalloc_muzzy_bytes, riptide_size_class_wasted_bytes{size},
/// riptide_size_class_utilization{size} (the worst classes). Nothing when not available.
void write_prometheus(PrometheusWriter& out, const FragmentationReport& report);

}  // namespace riptide::performance
