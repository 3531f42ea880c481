#pragma once
// On-demand CPU profiles from gperftools (ProfilerStart/ProfilerStop), in its legacy binary format that
// Google's pprof reads. One profile at a time per process: the profiler is process-wide (SIGPROF).

#include <chrono>
#include <filesystem>
#include <string>

namespace riptide::performance {

struct CpuProfileResult {
  enum class Status {
    ok,           ///< `profile` holds the bytes
    busy,         ///< another profile is being taken; retry after it ends
    unavailable,  ///< built without RIPTIDE_PERF_BOTTLENECK_ANALYSIS
    failed,       ///< the profiler could not start or its file could not be read
  };
  Status status = Status::failed;
  std::string profile;                   ///< the gperftools CPU profile (binary), empty unless ok
  std::string reason;                    ///< why not ok, for people (empty when ok)
  std::chrono::nanoseconds duration{0};  ///< how long sampling ran
};

[[nodiscard]] const char* to_string(CpuProfileResult::Status status) noexcept;

class CpuProfiler {
 public:
  /// Whether this build contains the gperftools profiler.
  [[nodiscard]] static bool available() noexcept;

  /// Samples every thread of the process for `duration` (blocking the caller), then returns the
  /// profile. The data goes through a private temporary file (gperftools writes files only) under
  /// `directory` (empty: the system temp directory) that is removed before returning. Never throws.
  [[nodiscard]] static CpuProfileResult profile(std::chrono::nanoseconds duration,
                                                const std::filesystem::path& directory = {}) noexcept;
};

}  // namespace riptide::performance
