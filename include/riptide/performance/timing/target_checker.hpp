#pragma once
// Compares measurements with PerformanceTargets. Pure: no clock, no I/O, so every rule is testable with
// made-up figures. Ceilings (latency, memory, AI share) warn at >= 90% of the limit and are violated
// above it; the throughput floor warns when it is >= 90% of the measured rate and is violated below it.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "riptide/performance/core/config.hpp"

namespace riptide::performance {

/// What check() judges; a target whose figure is nullopt is reported as not measured and not judged.
struct TargetMeasurements {
  std::optional<double> p50_latency_ms;       ///< windowed median request latency
  std::optional<double> p95_latency_ms;       ///< windowed tail request latency
  std::optional<double> memory_rss_mb;        ///< resident set size in MiB
  std::optional<double> throughput_pps;       ///< windowed pages per second
  std::optional<double> ai_overhead_percent;  ///< share of request time in stage "ai"
};

enum class TargetState { met, warning, violated, not_measured };

[[nodiscard]] const char* to_string(TargetState state) noexcept;

/// The verdict on one target.
struct TargetCheck {
  std::string target;                             ///< the config key, e.g. "p95_latency_ms"
  TargetState state = TargetState::not_measured;  ///< the verdict
  std::optional<double> measured;                 ///< the figure judged
  double limit = 0;                               ///< the target it was judged against
  std::string message;                            ///< one readable sentence with measured value and target
};

struct TargetStatus {
  bool all_targets_met = true;          ///< no violations (warnings and unmeasured targets do not count)
  std::vector<std::string> violations;  ///< sentences, one per violated target
  std::vector<std::string> warnings;    ///< sentences, one per target at >= 90% of its limit
  bool memory_alert = false;            ///< RSS above memory_alert_mb (logged when alert_on_violations)
  std::vector<TargetCheck> checks;      ///< every target, in the order of PerformanceTargets
};

class TargetChecker {
 public:
  static constexpr double kWarningRatio = 0.9;

  explicit TargetChecker(PerformanceTargets targets) noexcept : targets_(targets) {}

  [[nodiscard]] TargetStatus check(const TargetMeasurements& measured) const;
  [[nodiscard]] const PerformanceTargets& targets() const noexcept { return targets_; }

 private:
  PerformanceTargets targets_;
};

}  // namespace riptide::performance
