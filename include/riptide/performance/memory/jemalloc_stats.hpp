#pragma once
// jemalloc's global counters and per-size-class statistics, read through MIBs translated once.
// The figures are as of the last `epoch` refresh; refreshing locks every arena, so only the sampler
// thread (or a caller that explicitly asks for a fresh reading) does it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "riptide/performance/memory/jemalloc_ctl.hpp"

namespace riptide::performance {

/// Cumulative counters of one size class, summed over all arenas (MALLCTL_ARENAS_ALL = 4096).
struct SizeClassStats {
  std::uint64_t size = 0;       ///< usable size of every object of the class (arenas.bin/lextent.<j>.size)
  bool large = false;           ///< large extent (lextents.<j>) rather than small bin (bins.<j>)
  std::uint64_t nmalloc = 0;    ///< objects handed out by arenas, including batch fills of thread caches
  std::uint64_t ndalloc = 0;    ///< objects returned to arenas, including thread-cache flushes
  std::uint64_t nrequests = 0;  ///< malloc calls served, thread-cache hits included (merged lazily)
  std::uint64_t current = 0;    ///< objects out of the arena now (curregs / curlextents), cached ones included
  // Small classes only (0 for large ones): the slabs holding the class's objects.
  std::uint64_t slabs = 0;             ///< slabs in use (stats.arenas.<i>.bins.<j>.curslabs)
  std::uint64_t regions_per_slab = 0;  ///< objects one slab holds (arenas.bin.<j>.nregs)
  std::uint64_t slab_size = 0;         ///< bytes of one slab (arenas.bin.<j>.slab_size)
};

/// One reading of jemalloc's statistics.
struct JemallocCounters {
  std::uint64_t allocated = 0;  ///< bytes in objects handed out (stats.allocated; thread-cached ones included)
  std::uint64_t active = 0;     ///< bytes in active pages (stats.active), >= allocated
  std::uint64_t metadata = 0;   ///< bytes of jemalloc's own bookkeeping (stats.metadata)
  std::uint64_t resident = 0;   ///< bytes in physically resident data pages jemalloc maps (stats.resident)
  std::uint64_t mapped = 0;     ///< bytes in active extents mapped by jemalloc (stats.mapped)
  std::uint64_t retained = 0;   ///< virtual memory kept for reuse, not returned to the OS (stats.retained)
  std::optional<std::uint64_t> tcache_bytes;  ///< bytes parked in thread caches (stats.arenas.4096.tcache_bytes)
  std::optional<std::uint64_t> dirty_bytes;   ///< freed pages kept for reuse, all arenas (pdirty x page)
  std::optional<std::uint64_t> muzzy_bytes;   ///< pages advised free (MADV_FREE), all arenas (pmuzzy x page)

  std::uint64_t allocation_count = 0;         ///< sum of nmalloc over size classes
  std::uint64_t deallocation_count = 0;       ///< sum of ndalloc over size classes
  std::uint64_t request_count = 0;            ///< sum of nrequests over size classes
  std::uint64_t total_allocated_bytes = 0;    ///< sum of size x nmalloc (exact per usable size)
  std::uint64_t total_deallocated_bytes = 0;  ///< sum of size x ndalloc (exact per usable size)

  /// Classes that have seen any traffic, small first, by size. Shared: snapshots copy cheaply.
  std::shared_ptr<const std::vector<SizeClassStats>> size_classes;
};

/// Reads jemalloc's statistics through cached MIBs. Construction translates every name once; it is
/// cheap and harmless when jemalloc is not the allocator (available() is then false).
class JemallocStats {
 public:
  JemallocStats();

  /// True when jemalloc serves malloc in this process and its statistics can be read.
  [[nodiscard]] bool available() const noexcept { return available_; }

  /// Advances `epoch`. Heavy (locks all arenas): background threads and explicit requests only.
  static bool refresh_epoch() noexcept { return JemallocCtl::refresh_epoch(); }

  /// The counters as of the last epoch; empty when jemalloc is unavailable or a read fails.
  /// `with_size_classes` false skips the per-class reads (the totals then stay 0 as well).
  [[nodiscard]] std::optional<JemallocCounters> read(bool with_size_classes = true) const;

  /// Number of small bins and large extent classes this jemalloc has.
  [[nodiscard]] std::size_t bin_count() const noexcept { return bin_sizes_.size(); }
  [[nodiscard]] std::size_t large_class_count() const noexcept { return large_sizes_.size(); }

 private:
  // Templates with the class index at component 4 ("stats.arenas.4096.bins.<j>.nmalloc"), filled per read.
  struct ClassMibs {
    JemallocCtl::Mib nmalloc;
    JemallocCtl::Mib ndalloc;
    JemallocCtl::Mib nrequests;
    JemallocCtl::Mib current;
  };

  bool available_ = false;
  JemallocCtl::Mib allocated_;
  JemallocCtl::Mib active_;
  JemallocCtl::Mib metadata_;
  JemallocCtl::Mib resident_;
  JemallocCtl::Mib mapped_;
  JemallocCtl::Mib retained_;
  JemallocCtl::Mib tcache_bytes_;
  JemallocCtl::Mib dirty_pages_;
  JemallocCtl::Mib muzzy_pages_;
  std::uint64_t page_size_ = 0;
  JemallocCtl::Mib bin_slabs_;                 // stats.arenas.4096.bins.<j>.curslabs
  std::vector<std::uint64_t> bin_regions_;     // arenas.bin.<j>.nregs
  std::vector<std::uint64_t> bin_slab_sizes_;  // arenas.bin.<j>.slab_size
  std::vector<std::uint64_t> bin_sizes_;
  std::vector<std::uint64_t> large_sizes_;
  ClassMibs bin_mibs_;
  ClassMibs large_mibs_;
  // Aggregate over all large classes; lets read() stop at the last large class with traffic instead of
  // reading all ~200 (most of which, up to 2^63 bytes, never see an allocation).
  JemallocCtl::Mib large_nmalloc_;
};

}  // namespace riptide::performance
