#pragma once
// Run-time control of jemalloc's sampling heap profiler: whether it can run in this process, switching
// sampling on and off, and changing the sampling interval. Every call answers "unavailable" with the
// reason and the fix when jemalloc or its profiler is missing, never with a crash.

#include <cstdint>
#include <optional>
#include <string>

#include "riptide/performance/profiling/profiling_error.hpp"

namespace riptide::performance {

/// Text of the fix shown whenever profiling was not enabled at process start.
inline constexpr const char* kHeapProfilingFix =
    "start the process with MALLOC_CONF=prof:true,prof_active:true,lg_prof_sample:19,prof_accum:true or put "
    "RIPTIDE_PERF_ENABLE_HEAP_PROFILING() (from <riptide/performance/profiling/enable_heap_profiling.hpp>) in the "
    "file with main()";

struct HeapProfilingStatus {
  bool available = false;                   ///< prof.* controls work: dumps and leak detection can run
  bool jemalloc = false;                    ///< jemalloc serves malloc in this process
  bool compiled_with_prof = false;          ///< config.prof: this jemalloc build has the profiler at all
  bool enabled_at_start = false;            ///< opt.prof: the process started with prof:true (cannot change later)
  bool active = false;                      ///< prof.active: sampling is running now
  bool accumulating = false;                ///< opt.prof_accum: cumulative counts are kept, so hot spots cover all time
  std::uint32_t lg_sample = 0;              ///< prof.lg_sample now: mean sampling interval is 2^lg_sample bytes
  std::uint64_t sample_interval_bytes = 0;  ///< 2^lg_sample; 0 when unavailable
  std::string reason;                       ///< why profiling is unavailable; empty when available
  std::string fix;                          ///< how to make it available; empty when available
};

class HeapProfilingControl {
 public:
  /// Reads config.prof, opt.prof, prof.active, opt.prof_accum and prof.lg_sample. Cheap (a few mallctls).
  [[nodiscard]] static HeapProfilingStatus status();
  [[nodiscard]] static bool available();

  /// The "unavailable" error with reason and fix, for callers that need to refuse an operation.
  [[nodiscard]] static ProfilingError unavailable_error();

  /// prof.active: starts or stops sampling. Stopping keeps the counts gathered so far.
  [[nodiscard]] static std::optional<ProfilingError> set_active(bool active);

  /// prof.reset with a new lg_prof_sample (0..62). Discards every sampled count so far (jemalloc cannot change
  /// the rate without a reset), so leak history built on old counts must be cleared by the caller.
  [[nodiscard]] static std::optional<ProfilingError> reset(std::uint32_t lg_sample);

  /// prof.lg_sample; nullopt when unavailable.
  [[nodiscard]] static std::optional<std::uint32_t> lg_sample();
};

}  // namespace riptide::performance
