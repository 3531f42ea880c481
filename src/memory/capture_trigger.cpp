#include "riptide/performance/memory/capture_trigger.hpp"

#include <cmath>
#include <cstdio>

namespace riptide::performance {
namespace {

std::string mib(std::uint64_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

std::uint64_t fraction_of(std::uint64_t bytes, double fraction) noexcept {
  return static_cast<std::uint64_t>(std::floor(static_cast<double>(bytes) * fraction));
}

}  // namespace

std::optional<std::uint64_t> CaptureTrigger::cgroup_threshold_bytes(const CgroupMemoryReading& reading) const noexcept {
  const auto limit = reading.effective_limit_bytes();
  if (!limit) return std::nullopt;
  return fraction_of(*limit, thresholds_.cgroup_share);
}

std::optional<CaptureCause> CaptureTrigger::observe(const CaptureReading& reading) {
  std::optional<CaptureCause> cause;
  bool below_rearm = true;
  if (thresholds_.rss_alert_bytes && reading.rss_bytes) {
    const std::uint64_t threshold = *thresholds_.rss_alert_bytes;
    if (*reading.rss_bytes >= threshold) {
      cause = CaptureCause{"memory_alert",
                           "RSS " + mib(*reading.rss_bytes) + " >= targets.memory_alert_mb (" + mib(threshold) + ")"};
    }
    below_rearm = below_rearm && *reading.rss_bytes < fraction_of(threshold, thresholds_.rearm_fraction);
  }
  if (reading.cgroup) {
    if (const auto threshold = cgroup_threshold_bytes(*reading.cgroup)) {
      const std::uint64_t working_set = reading.cgroup->working_set_bytes();
      if (working_set >= *threshold && !cause) {
        const bool high_applies =
            reading.cgroup->high_bytes && reading.cgroup->effective_limit_bytes() == reading.cgroup->high_bytes;
        char share[32];
        std::snprintf(share, sizeof share, "%g", thresholds_.cgroup_share);
        cause = CaptureCause{"cgroup_share", "cgroup working set " + mib(working_set) + " >= " + share + " x " +
                                                 (high_applies ? "memory.high" : "memory limit") + " (" +
                                                 mib(*reading.cgroup->effective_limit_bytes()) + ")"};
      }
      below_rearm = below_rearm && working_set < fraction_of(*threshold, thresholds_.rearm_fraction);
    }
  }
  if (!cause) {
    if (below_rearm) armed_ = true;
    return std::nullopt;
  }
  if (!armed_) return std::nullopt;
  if (last_capture_ && reading.time - *last_capture_ < thresholds_.min_interval) return std::nullopt;
  return cause;
}

void CaptureTrigger::note_capture(std::chrono::steady_clock::time_point time) noexcept {
  armed_ = false;
  last_capture_ = time;
}

}  // namespace riptide::performance
