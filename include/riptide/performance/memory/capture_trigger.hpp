#pragma once
// When memory is high enough that a capture (heap profile, snapshot, leak report on disk) should be
// written before the OOM killer strikes. A pure policy over readings and times, so it is tested without
// a process that runs out of memory.
//
// Two thresholds, either one fires:
//   - RSS at or above targets.memory_alert_mb;
//   - the cgroup's working set (usage without inactive page cache) at or above
//     profiling.capture_cgroup_share of its effective limit (the lower of memory.max and memory.high).
// After a capture the trigger is disarmed. It re-arms once every reading is back below its re-arm level
// (95% of its threshold: a process hovering at the line does not capture at every check), and a capture
// never follows the previous one within profiling.capture_min_interval_sec, armed or not. So a process
// that climbs, is captured, stays high and is killed leaves one capture; one that climbs and falls
// repeatedly leaves at most one per interval.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "riptide/performance/memory/cgroup_memory.hpp"

namespace riptide::performance {

struct CaptureThresholds {
  std::optional<std::uint64_t> rss_alert_bytes;                    ///< empty: RSS does not trigger
  double cgroup_share = 0.9;                                       ///< of the cgroup's effective limit, in (0, 1]
  std::chrono::nanoseconds min_interval{std::chrono::minutes{5}};  ///< between two captures
  double rearm_fraction = 0.95;                                    ///< of each threshold, below which it re-arms
};

/// What the trigger saw at one check.
struct CaptureReading {
  std::chrono::steady_clock::time_point time;
  std::optional<std::uint64_t> rss_bytes;     ///< empty when it could not be read
  std::optional<CgroupMemoryReading> cgroup;  ///< empty without a memory cgroup
};

/// Why a capture is due: which threshold, and a sentence with the figures.
struct CaptureCause {
  std::string trigger;  ///< "memory_alert" or "cgroup_share"
  std::string reason;   ///< e.g. "RSS 700.0 MiB >= targets.memory_alert_mb (650 MiB)"
};

class CaptureTrigger {
 public:
  explicit CaptureTrigger(CaptureThresholds thresholds) : thresholds_(thresholds) {}

  /// The alert threshold follows reloads of targets.memory_alert_mb.
  void set_rss_alert_bytes(std::optional<std::uint64_t> bytes) noexcept { thresholds_.rss_alert_bytes = bytes; }
  [[nodiscard]] const CaptureThresholds& thresholds() const noexcept { return thresholds_; }

  /// Judges one reading: the cause when a capture is due now (armed, above a threshold, the interval
  /// since the last capture passed), else empty. Updates the arming from the reading either way.
  [[nodiscard]] std::optional<CaptureCause> observe(const CaptureReading& reading);
  /// A capture was written at `time` (by the trigger's cause or an explicit request): disarms and
  /// restarts the interval.
  void note_capture(std::chrono::steady_clock::time_point time) noexcept;

  [[nodiscard]] bool armed() const noexcept { return armed_; }
  /// The cgroup threshold in bytes for `reading` (share x effective limit); empty without a limit.
  [[nodiscard]] std::optional<std::uint64_t> cgroup_threshold_bytes(const CgroupMemoryReading& reading) const noexcept;

 private:
  CaptureThresholds thresholds_;
  bool armed_ = true;
  std::optional<std::chrono::steady_clock::time_point> last_capture_;
};

}  // namespace riptide::performance
