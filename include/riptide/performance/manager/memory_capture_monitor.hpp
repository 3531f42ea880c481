#pragma once
// Memory captures before the OOM killer: a PerformanceManager's periodic job that watches RSS against
// targets.memory_alert_mb and the cgroup's working set against profiling.capture_cgroup_share of its
// limit (memory/capture_trigger.hpp has the policy), and the action that writes one capture (heap
// profile, snapshot, leak report; memory/capture_store.hpp has the layout) into profiling.capture_dir.
// docs/captures.md describes the whole feature.
//
// The check runs on the manager's `riptide-periodic` thread as job `riptide-captures`, every
// monitoring.sample_interval_sec while monitoring. Writing a capture is an action: the periodic check
// calls it when the trigger fires, and a host or operator calls PerformanceManager::capture_now().
// Readers (GET /metrics/memory/captures) read the published list, never the directory.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/periodic_worker.hpp"
#include "riptide/performance/memory/capture_store.hpp"
#include "riptide/performance/memory/capture_trigger.hpp"
#include "riptide/performance/memory/cgroup_memory.hpp"

namespace riptide::performance {

class MemoryProfiler;

/// What GET /metrics/memory/captures shows besides the list: whether captures are on, the thresholds
/// and what happened so far.
struct CaptureStatus {
  bool enabled = false;                                 ///< profiling.capture_dir is set
  std::string directory;                                ///< profiling.capture_dir
  std::uint32_t max_captures = 0;                       ///< profiling.capture_max_files
  std::optional<std::uint64_t> rss_alert_bytes;         ///< targets.memory_alert_mb in bytes
  double cgroup_share = 0;                              ///< profiling.capture_cgroup_share
  bool cgroup_available = false;                        ///< a memory cgroup was found
  std::string cgroup_unavailable_reason;                ///< why not
  std::optional<std::uint64_t> cgroup_threshold_bytes;  ///< share x limit at the latest check; empty: no limit
  bool armed = true;                                    ///< the next crossing captures
  std::uint64_t written = 0;                            ///< captures written by this process
  std::uint64_t skipped = 0;                            ///< captures skipped (disk space, size bound)
  std::uint64_t failed = 0;                             ///< captures that failed to write (I/O errors)
  std::string last_problem;                             ///< the latest skip or failure; empty when none
};

/// One file of a capture for download.
struct CaptureFileContents {
  enum class Status { found, unknown_capture, unknown_file, unreadable };
  Status status = Status::found;
  std::string body;     ///< the file's bytes when found
  std::string message;  ///< what went wrong otherwise
};

class MemoryCaptureMonitor {
 public:
  /// `targets` gives the targets in effect (reloads of memory_alert_mb apply at the next check). Creates
  /// profiling.capture_dir when set; throws ConfigError naming the key when it cannot be created or is
  /// not writable. `cgroup_root`: where /proc and the cgroup mounts are (tests).
  MemoryCaptureMonitor(const Config& config, MemoryProfiler& profiler, std::string session_id, const Clock& clock,
                       std::shared_ptr<PeriodicScheduler> scheduler, std::function<PerformanceTargets()> targets,
                       const std::filesystem::path& cgroup_root = "/");
  ~MemoryCaptureMonitor();
  MemoryCaptureMonitor(const MemoryCaptureMonitor&) = delete;
  MemoryCaptureMonitor& operator=(const MemoryCaptureMonitor&) = delete;

  /// Schedules the periodic check (nothing when captures are off). Idempotent.
  void start();
  /// Unschedules it and waits for a running check. Idempotent, never throws.
  void stop() noexcept;

  /// One periodic check: reads RSS (the sampler's latest snapshot) and the cgroup, and writes a capture
  /// when the trigger fires. Logs instead of throwing.
  void check();
  /// The action: writes a capture now with `reason` (trigger "manual"), whatever the thresholds, the
  /// arming or the interval; it counts as a capture for the interval. Skipped (performed false) when
  /// captures are off or the disk bounds refuse it; throws Error when writing fails.
  [[nodiscard]] CaptureOutcome capture_now(const std::string& reason);

  /// The published list, oldest first (read at start from the directory, then updated by each capture).
  [[nodiscard]] std::shared_ptr<const std::vector<MemoryCapture>> captures() const;
  [[nodiscard]] CaptureStatus status() const;
  /// File `file` of capture `name`, when both are in the published list. A read.
  [[nodiscard]] CaptureFileContents read_file(const std::string& name, const std::string& file) const;

 private:
  struct Cause {
    std::string trigger;
    std::string reason;
  };
  // What a cgroup reading that fails means: the periodic check loses its cgroup threshold (said once),
  // a manual capture only the manifest's figures.
  enum class CgroupFailure { log_once, ignore };
  // RSS now and the cgroup's figures when they can be read.
  CaptureReading read_memory(CgroupFailure on_failure);
  CaptureOutcome write_locked(const Cause& cause, const std::optional<CaptureReading>& reading);
  void publish_list();
  void note_problem_locked(const std::string& problem, bool failure);

  Config config_;
  MemoryProfiler& profiler_;
  std::string session_id_;
  const Clock& clock_;
  std::function<PerformanceTargets()> targets_;
  std::unique_ptr<CaptureStore> store_;  // null when captures are off
  CgroupMemoryReader cgroup_;

  std::mutex capture_mutex_;  // one check or capture at a time; trigger_
  CaptureTrigger trigger_;
  bool cgroup_error_logged_ = false;  // only the periodic job touches it
  mutable std::mutex status_mutex_;   // status_: held briefly, so readers never wait for a capture
  CaptureStatus status_;

  mutable std::mutex published_mutex_;
  std::shared_ptr<const std::vector<MemoryCapture>> published_;

  PeriodicWorker worker_;  // last: stopped before what its runs read
};

/// ADL JSON of the status (the "status" object of GET /metrics/memory/captures).
void to_json(nlohmann::json& out, const CaptureStatus& status);

}  // namespace riptide::performance
