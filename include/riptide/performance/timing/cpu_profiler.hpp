#pragma once
// On-demand CPU profiles of the whole process, in the legacy binary CPU-profile format Google's pprof
// reads (the one gperftools writes). One profile at a time per process: the sampler is process-wide
// (ITIMER_PROF delivers SIGPROF at 100 Hz of the process's CPU time to the thread that is running).
//
// The signal handler walks the interrupted stack with the C++ runtime's unwinder (libgcc), which on
// glibc 2.35+ finds unwind tables through _dl_find_object without taking the dynamic loader's lock and
// never allocates. That is why this is not gperftools' profiler: its libunwind-based handler takes the
// loader's lock from the signal handler and deadlocks the process when the interrupted thread holds an
// allocator lock another thread needs while it holds the loader's lock (dl_iterate_phdr, dlopen).
// Under ThreadSanitizer, which runs signal handlers late from elsewhere on the stack, a sample holds
// only the interrupted instruction.

#include <chrono>
#include <cstdint>
#include <string>

namespace riptide::performance {

struct CpuProfileResult {
  enum class Status {
    ok,           ///< `profile` holds the bytes
    busy,         ///< another profile is being taken; retry after it ends
    unavailable,  ///< not in this build or on this platform (`reason` says which)
    failed,       ///< the sampler could not start (`reason` says why; e.g. SIGPROF is another profiler's)
  };
  Status status = Status::failed;
  std::string profile;                   ///< the CPU profile (legacy binary format), empty unless ok
  std::string reason;                    ///< why not ok, for people (empty when ok)
  std::chrono::nanoseconds duration{0};  ///< how long sampling ran
  std::uint64_t samples = 0;             ///< stacks recorded (each one sampling period of CPU time)
  std::uint64_t dropped_samples = 0;     ///< stacks not recorded because the sample buffer was full
};

[[nodiscard]] const char* to_string(CpuProfileResult::Status status) noexcept;

class CpuProfiler {
 public:
  /// Sampling rate in samples per second of the process's CPU time.
  static constexpr unsigned kSamplesPerSecond = 100;
  /// Frames kept per sample, the interrupted function first.
  static constexpr unsigned kMaxFrames = 64;

  /// Whether this build and platform can take CPU profiles: x86-64 or AArch64 Linux, glibc 2.35+, and a
  /// loaded libgcc_s that finds unwind tables with _dl_find_object (GCC 12+), checked once.
  [[nodiscard]] static bool available() noexcept;

  /// Whether a profile is being taken right now.
  [[nodiscard]] static bool running() noexcept;

  /// Samples every thread of the process for `duration` (blocking the caller), then returns the
  /// profile with /proc/self/maps appended so pprof can symbolize it. The first call installs a SIGPROF
  /// handler that stays installed (it does nothing between profiles): a SIGPROF still pending when a
  /// profile ends must not meet the default action, which terminates the process. Refuses (failed) when
  /// SIGPROF already has another handler or ITIMER_PROF is armed by someone else. Never throws.
  [[nodiscard]] static CpuProfileResult profile(std::chrono::nanoseconds duration) noexcept;
};

}  // namespace riptide::performance
