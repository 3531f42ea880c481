#pragma once
// Allocation patterns: exact totals, rates and size distribution from jemalloc's per-size-class counters,
// plus the top allocation sites from the sampled heap profile, and advice a developer can act on.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/memory/jemalloc_stats.hpp"
#include "riptide/performance/memory/memory_trend.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profile_cache.hpp"

namespace riptide::performance {

class Symbolizer;

/// One allocation site ("top allocator").
struct AllocationSite {
  std::string location;                ///< "function (file:line)": the program's own line that allocated
  std::string function;                ///< readable function name (templates and parameters elided)
  std::string function_full;           ///< the full demangled name (JSON function_full)
  std::string file;                    ///< source file (empty without debug info)
  std::uint32_t line = 0;              ///< source line (0 without debug info)
  std::uint64_t count = 0;             ///< estimated allocations (JSON allocation_count); sampled, see relative_error
  std::uint64_t total_bytes = 0;       ///< estimated bytes
  std::uint64_t average_size = 0;      ///< total_bytes / count
  double percentage_of_total = 0;      ///< share of all sampled bytes in the same basis, 0-100
  double relative_error = 0;           ///< ~1/sqrt(samples): how far the estimates may be off
  std::uint64_t size_error_bytes = 0;  ///< one standard deviation of total_bytes from sampling
  std::vector<std::string> stack;      ///< symbolized frames from this site outwards
  /// From the lifetime view (allocation_lifetimes.hpp) when it has the site: the share of its sampled
  /// allocations freed within profiling.temporary_allocation_ms, and their median lifetime.
  std::optional<double> temporary_share;
  std::optional<double> lifetime_p50_ms;
};

/// jemalloc's per-size-class counters read once (after an epoch refresh).
struct AllocationCounters {
  std::vector<SizeClassStats> size_classes;         ///< small bins then large extents, ascending size
  std::chrono::steady_clock::time_point read_at{};  ///< when they were read
};

struct AllocationStats {
  std::chrono::system_clock::time_point timestamp{};  ///< when the stats were computed
  bool available = false;                             ///< exact counters could be read (jemalloc serves malloc)
  std::string reason;  ///< why counters or sites are missing; empty when everything is there

  std::vector<AllocationSite> top_allocators;           ///< sites by estimated count, largest first
  std::vector<AllocationSite> top_allocators_by_bytes;  ///< sites by estimated bytes, largest first
  bool sites_available = false;                         ///< the heap profiler produced sites (needs prof:true)
  std::string sites_basis;  ///< "cumulative" (prof_accum: all allocations so far) or "in_use" (live only)
  std::uint64_t sample_interval_bytes = 0;  ///< R the site estimates were sampled with
  double sites_age_seconds = 0;  ///< age of the heap profile behind the sites (shared for up to the leak interval)

  std::uint64_t total_allocations = 0;       ///< exact count of allocation requests since start
  std::uint64_t total_deallocations = 0;     ///< exact count of frees since start
  std::uint64_t total_allocated_bytes = 0;   ///< sum over classes of requests x class size
  double average_allocation_size = 0;        ///< total_allocated_bytes / total_allocations
  std::uint64_t median_allocation_size = 0;  ///< size class holding the median allocation
  double allocation_rate_per_second = 0;     ///< allocations/s over `rate_window_seconds`
  double deallocation_rate_per_second = 0;   ///< frees/s over the same window
  /// The window the rates cover: the sampler's last minute when the caller passed it, else the process
  /// lifetime so far.
  double rate_window_seconds = 0;
  std::int64_t live_allocations = 0;         ///< allocations - deallocations: objects alive now
  double allocation_deallocation_ratio = 0;  ///< allocations / deallocations over the window; > 1 means growth
  std::vector<SizeClassStats> size_classes;  ///< distribution (nrequests per class), classes with traffic

  std::vector<std::string> recommendations;  ///< concrete advice derived from the figures above
};

/// Reads jemalloc's per-class counters (refreshes the epoch: call from a background thread or an explicit
/// request, never a hot path). nullopt without jemalloc.
/// Small-class counts include each thread's tcache only once it flushes, so they may lag slightly.
[[nodiscard]] std::optional<AllocationCounters> read_allocation_counters();

class AllocationAnalyzer {
 public:
  /// `top_n` bounds each site list. `symbolizer` defaults to Symbolizer::shared(). Sites come from
  /// `profiles` (shared with the leak detector); null: a private cache.
  explicit AllocationAnalyzer(ProfilingConfig config, const Clock& clock = system_clock(),
                              Symbolizer* symbolizer = nullptr, std::size_t top_n = 20,
                              std::shared_ptr<HeapProfileCache> profiles = nullptr);

  /// Reads the counters now; the sites come from a heap profile at most
  /// profiling.leak_detection_interval_sec old (one dump serves every reader). Rates are `recent` (e.g.
  /// allocation_rate() over the sampler's last minute); without it, the process lifetime's averages. Asking
  /// twice gives the same answer: no call changes what the next one reports. Thread-safe.
  [[nodiscard]] AllocationStats analyze(const std::optional<AllocationRate>& recent = std::nullopt);
  /// As analyze(counters, profile.get(), accumulates), reusing the site ranking while `profile` is the
  /// same as the previous call's: repeated polls between two dumps cost no symbolization or sorting.
  [[nodiscard]] AllocationStats analyze(const std::optional<AllocationCounters>& counters,
                                        const HeapProfileCache::Profile& profile, bool profile_accumulates,
                                        const std::optional<AllocationRate>& recent = std::nullopt);

  /// Pure computation from given inputs (either may be missing), for tests and for callers that already hold
  /// a profile. Rates as in analyze(recent).
  [[nodiscard]] AllocationStats analyze(const std::optional<AllocationCounters>& counters, const HeapProfile* profile,
                                        bool profile_accumulates,
                                        const std::optional<AllocationRate>& recent = std::nullopt);

 private:
  ProfilingConfig config_;
  const Clock& clock_;
  Symbolizer* symbolizer_;
  std::size_t top_n_;
  std::shared_ptr<HeapProfileCache> profiles_;
  std::mutex mutex_;
  // The ranking of the last shared profile. A weak reference: it names the profile (its control block
  // outlives it, so no later profile can be mistaken for it) without keeping a superseded one in memory.
  struct RankedSites {
    std::weak_ptr<const HeapProfile> profile;
    bool accumulates = false;
    std::vector<AllocationSite> by_count;
    std::vector<AllocationSite> by_bytes;
  };
  RankedSites ranked_;
  [[nodiscard]] RankedSites rank_sites(const HeapProfile& profile, bool accumulates) const;
  // Both need mutex_ held: re-rank unless ranked_ is already `profile`'s, then compute the stats.
  void rank_locked(const HeapProfile& profile, bool accumulates, const HeapProfileCache::Profile& keep);
  [[nodiscard]] AllocationStats analyze_locked(const std::optional<AllocationCounters>& counters,
                                               const HeapProfile* profile, bool profile_accumulates,
                                               const std::optional<AllocationRate>& recent);
  std::chrono::steady_clock::time_point created_at_;
};

}  // namespace riptide::performance
