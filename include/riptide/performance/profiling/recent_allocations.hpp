#pragma once
// jemalloc's record of its most recent sampled allocations (`experimental.prof_recent`): for each, the
// stack, the size, when it was allocated and, once freed, when. One reader and one parser, shared by the
// leak detector (how old a suspect's oldest live allocation is) and the lifetime view (how long a site's
// allocations live).
//
// The record is a ring: it holds the last `capacity` sampled allocations (one sample per
// 2^lg_prof_sample bytes allocated, 512 KiB by default), so it covers the time in which the process
// allocated about capacity x 512 KiB. Times come from jemalloc's clock: CLOCK_MONOTONIC, at a coarse
// resolution (the kernel's tick, 1-4 ms) unless MALLOC_CONF has prof_time_resolution:high.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "riptide/performance/profiling/profiling_error.hpp"

namespace riptide::performance {

struct RecentAllocation {
  std::vector<std::uint64_t> frames;                 ///< the allocating stack, innermost first (alloc_trace)
  std::uint64_t size = 0;                            ///< bytes handed out (usize)
  std::chrono::nanoseconds allocated_at{};           ///< CLOCK_MONOTONIC time of the allocation
  std::optional<std::chrono::nanoseconds> freed_at;  ///< CLOCK_MONOTONIC time of the free; empty while alive
};

struct RecentAllocations {
  std::uint64_t sample_interval = 0;  ///< bytes per sample
  std::uint64_t capacity = 0;         ///< records the ring keeps (recent_alloc_max)
  std::vector<RecentAllocation> records;
};

/// How many records the library asks jemalloc to keep when the record is off (its default).
inline constexpr std::int64_t kRecentAllocationCapacity = 4096;

/// Parses the JSON of `experimental.prof_recent.alloc_dump`. A record without a usable stack or time is
/// skipped; a document that is not that JSON is a parse error saying what was expected.
[[nodiscard]] ProfilingResult<RecentAllocations> parse_recent_allocations(std::string_view json);

/// Turns the record on (kRecentAllocationCapacity records) when it is off; true when it was already on, so
/// a caller knows whether this reading can hold anything yet. Unavailable without jemalloc's profiler.
[[nodiscard]] ProfilingResult<bool> ensure_recent_allocations_recorded();

/// Dumps and parses the record now. Unavailable without jemalloc's profiler or while the record is off.
[[nodiscard]] ProfilingResult<RecentAllocations> read_recent_allocations();

/// CLOCK_MONOTONIC now, the clock of the records' times.
[[nodiscard]] std::chrono::nanoseconds recent_allocation_clock_now() noexcept;

}  // namespace riptide::performance
