#pragma once
// WindowClimber: decides how a shard's W-TinyLFU window should change, by hill climbing on the hit rate.
// Separate from the shard because it is a pure decision over counts: it sees hits and misses and answers with
// a change of the window bound; the shard applies it (moving entries between window and main space).

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace riptide::performance::cache_detail {

/// Caffeine's hill climber with an adaptive step. Every sample period it compares the hit rate with the
/// previous period's: if it did not drop, the window keeps moving the same way, otherwise it turns around.
/// Caffeine's step only decays (0.98 per period); here the step also grows by 1.2 while the climber keeps
/// going the same way (up to 25% of the bound) and halves when it turns around. A steady trend therefore
/// crosses the range in a few periods, while a noisy plateau, where turning around is frequent, shrinks the
/// step to nothing instead of letting the window wander. A hit-rate jump of 5 points or more is taken as a
/// workload change and restarts the step at 6.25%.
class WindowClimber {
 public:
  static constexpr double kInitialStepShare = 0.0625;  // of the bound, at start and after a restart
  static constexpr double kMaxStepShare = 0.25;        // of the bound
  static constexpr double kStepDecay = 0.98;           // every period
  static constexpr double kStepGrowth = 1.2;           // when the hit rate improved going the same way
  static constexpr double kStepShrink = 0.5;           // when the climber turns around
  static constexpr double kRestartThreshold = 0.05;    // hit-rate change taken as a workload change
  // Requests per period: 5 x the shard's entries, at least 1024. Caffeine samples 10 x; measured with
  // cache_window_sweep (docs/PERFORMANCE.md ## Cache), 10 x with this step adapted too slowly on the
  // recency-heavy traces and 3 x chased noise on the bursty P3 trace.
  static constexpr std::uint64_t kSampleFactor = 5;
  static constexpr std::uint64_t kMinSample = 1024;

  WindowClimber(std::uint64_t max_weight, std::uint64_t expected_entries)
      : max_weight_(static_cast<double>(max_weight)),
        sample_size_(std::max<std::uint64_t>(kMinSample, kSampleFactor * std::min(max_weight, expected_entries))),
        step_(-kInitialStepShare * max_weight_) {}

  /// Counts one request; at the end of a period returns the change of the window bound to apply (positive:
  /// grow), else 0.
  [[nodiscard]] std::int64_t record(bool hit) noexcept {
    hits_ += hit ? 1 : 0;
    if (++requests_ < sample_size_) return 0;
    return climb();
  }

 private:
  std::int64_t climb() noexcept {
    const double hit_rate = static_cast<double>(hits_) / static_cast<double>(requests_);
    hits_ = 0;
    requests_ = 0;
    const double change = hit_rate - previous_hit_rate_;
    previous_hit_rate_ = hit_rate;
    const double amount = change >= 0 ? step_ : -step_;
    const bool turned = (amount >= 0) != (step_ >= 0);
    double magnitude = std::abs(step_) * kStepDecay;
    if (std::abs(change) >= kRestartThreshold) {
      magnitude = kInitialStepShare * max_weight_;
    } else if (turned) {
      magnitude *= kStepShrink;
    } else if (change > 0) {
      magnitude = std::min(magnitude * kStepGrowth, kMaxStepShare * max_weight_);
    }
    step_ = amount >= 0 ? magnitude : -magnitude;
    return std::llround(amount);
  }

  double max_weight_;
  std::uint64_t sample_size_;
  double step_;  // signed: the next move if the hit rate does not drop
  std::uint64_t hits_ = 0;
  std::uint64_t requests_ = 0;
  double previous_hit_rate_ = 0;
};

}  // namespace riptide::performance::cache_detail
