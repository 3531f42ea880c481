#pragma once
// What changed on the heap between two profiles: Go's delta heap profile (GET /debug/pprof/heap?seconds=N).
// Two profiles of one process are matched stack by stack (the same return addresses, innermost first, are
// the same stack: jemalloc records one entry per distinct backtrace), and each stack's unbiased estimates
// at the start are subtracted from those at the end. In-use figures go down where memory was freed, so
// they may be negative, as in Go's delta profiles; allocated figures (prof_accum) only grow.
//
//   auto delta = rp::capture_heap_profile_delta(std::chrono::seconds{10});
//   if (delta) body = rp::write_pprof_heap_delta(delta.value(), rp::Symbolizer::shared());

#include <chrono>
#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"
#include "riptide/performance/profiling/profiling_error.hpp"

namespace riptide::performance {

class Symbolizer;

/// One stack's change between two profiles: unbiased estimates at the end minus those at the start.
struct HeapStackChange {
  std::vector<std::uint64_t> frames;  ///< return addresses, innermost first, as in HeapStack
  double live_objects = 0;            ///< change of objects in use (negative: more freed than allocated)
  double live_bytes = 0;              ///< change of bytes in use
  double alloc_objects = 0;           ///< objects allocated between the two profiles (prof_accum; else 0)
  double alloc_bytes = 0;             ///< bytes allocated between the two profiles
};

struct HeapProfileDelta {
  std::uint64_t sample_period = 0;                           ///< R of the later profile
  std::chrono::system_clock::time_point base_captured_at{};  ///< wall time of the first profile
  std::chrono::system_clock::time_point captured_at{};       ///< wall time of the second profile
  std::vector<HeapStackChange> stacks;                       ///< stacks whose figures changed, later's order first
  std::vector<MappedRegion> mappings;  ///< the later profile's, plus the earlier's regions it no longer has

  /// Sum of live_bytes over the stacks: the sampled estimate of how much the heap grew (negative: shrank).
  [[nodiscard]] double live_bytes_change() const noexcept;
};

/// `later` minus `base`, stack by stack (a stack in only one of them counts as zero in the other). Stacks
/// whose four figures all round to zero are left out. Both must come from the same process: stacks are
/// matched by address.
[[nodiscard]] HeapProfileDelta diff_heap_profiles(const HeapProfile& base, const HeapProfile& later);

/// Takes a fresh heap profile, waits `duration`, takes another and returns their difference. Fresh dumps at
/// both ends (not a shared cached profile), so the delta covers exactly the wait. Returns the capture's
/// error (unavailable with the fix, dump or I/O failures), or `interrupted` when `stop` is requested during
/// the wait. Blocks the calling thread for `duration` plus two dumps.
[[nodiscard]] ProfilingResult<HeapProfileDelta> capture_heap_profile_delta(std::chrono::nanoseconds duration,
                                                                           const std::string& dump_directory = {},
                                                                           std::stop_token stop = {});

/// The delta in pprof's format, like write_pprof_heap_profile (the same sample types, locations, mappings
/// and options), with signed values, time_nanos the start and duration_nanos the span between the dumps.
[[nodiscard]] std::string write_pprof_heap_delta(const HeapProfileDelta& delta, Symbolizer& symbolizer,
                                                 const PprofOptions& options = {});

}  // namespace riptide::performance
