#pragma once
// Per-stage timing ("fetch", "parse", "ai", ...): a histogram per stage name, an RAII timer, and the
// breakdown that names the bottleneck and the AI overhead. Lookups on the hot path scan a small
// fixed-capacity table published with release/acquire: no global lock, no allocation once a name exists.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/timing/latency_histogram.hpp"

namespace riptide::performance {

/// The stage whose time counts as AI overhead (docs/timing.md).
inline constexpr std::string_view kAiStage = "ai";

/// Times one stage from construction to destruction (or stop()). Move-only; a default-constructed or
/// moved-from timer records nothing.
class StageTimer {
 public:
  StageTimer() noexcept = default;
  explicit StageTimer(LatencyHistogram* target) noexcept
      : target_(target), start_(target ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}) {}
  StageTimer(StageTimer&& other) noexcept : target_(other.target_), start_(other.start_) { other.target_ = nullptr; }
  StageTimer& operator=(StageTimer&& other) noexcept {
    if (this != &other) {
      stop();
      target_ = other.target_;
      start_ = other.start_;
      other.target_ = nullptr;
    }
    return *this;
  }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;
  ~StageTimer() { stop(); }

  /// Records the elapsed time now (once) and returns it; zero when nothing is being timed.
  std::chrono::nanoseconds stop() noexcept {
    if (target_ == nullptr) {
      return std::chrono::nanoseconds{0};
    }
    const auto elapsed = std::chrono::steady_clock::now() - start_;
    target_->record(elapsed);
    target_ = nullptr;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed);
  }

 private:
  LatencyHistogram* target_ = nullptr;
  std::chrono::steady_clock::time_point start_;
};

/// One stage in a breakdown. Times are cumulative since the registry was created.
struct StageStats {
  std::string name;                     ///< stage name as recorded
  std::uint64_t count = 0;              ///< timings recorded
  std::chrono::nanoseconds total{0};    ///< summed time (exact)
  std::optional<double> mean_ms;        ///< total / count
  std::optional<double> p50_ms;         ///< typical time
  std::optional<double> p95_ms;         ///< tail
  std::optional<double> p99_ms;         ///< far tail
  std::optional<double> share_percent;  ///< total / reference time (see StageBreakdown) * 100
};

/// All stages, largest total first.
struct StageBreakdown {
  std::vector<StageStats> stages;         ///< sorted by total time, descending
  std::optional<std::string> bottleneck;  ///< the stage with the largest total time; nullopt when none
  /// What shares are relative to: summed request latency when requests were recorded, else the summed
  /// time of all stages.
  std::chrono::nanoseconds reference_time{0};
  bool reference_is_requests = false;         ///< true when reference_time is summed request latency
  std::optional<double> ai_overhead_percent;  ///< time in stage "ai" / reference_time * 100
  std::uint64_t dropped_records = 0;          ///< timings refused because the stage table was full
};

class StageRegistry {
 public:
  static constexpr std::size_t kMaxStages = 32;
  static constexpr std::size_t kMaxNameLength = 64;

  /// `preregistered` names get their histograms now, so their first timing allocates nothing.
  explicit StageRegistry(const Clock& clock = system_clock(), LatencyHistogram::Options options = {},
                         const std::vector<std::string>& preregistered = {});
  ~StageRegistry();
  StageRegistry(const StageRegistry&) = delete;
  StageRegistry& operator=(const StageRegistry&) = delete;

  /// The stage's histogram, created on first use (that first call takes a lock and allocates); nullptr
  /// when the table is full, the name is empty or longer than kMaxNameLength, or memory ran out.
  [[nodiscard]] LatencyHistogram* find_or_add(std::string_view name) noexcept;
  /// The histogram when the stage exists; never creates one.
  [[nodiscard]] LatencyHistogram* find(std::string_view name) const noexcept;

  void record(std::string_view name, std::chrono::nanoseconds duration) noexcept;
  [[nodiscard]] StageTimer time(std::string_view name) noexcept { return StageTimer(find_or_add(name)); }

  /// Per-stage figures since creation; `request_time` is the summed request latency over the same span
  /// (zero when unknown).
  [[nodiscard]] StageBreakdown breakdown(std::chrono::nanoseconds request_time) const;
  /// The same over each stage's sliding window (LatencyHistogram::window); `request_time` must cover the
  /// same window.
  [[nodiscard]] StageBreakdown window_breakdown(std::chrono::nanoseconds request_time);
  /// Stage names in registration order.
  [[nodiscard]] std::vector<std::string> names() const;
  /// Places sub-window marks on every stage histogram (see LatencyHistogram::advance).
  void advance();

 private:
  template <typename SnapshotOf>
  [[nodiscard]] StageBreakdown make_breakdown(std::chrono::nanoseconds request_time, SnapshotOf snapshot_of) const;

  struct Slot {
    std::string name;
    std::unique_ptr<LatencyHistogram> histogram;
  };

  const Clock& clock_;
  LatencyHistogram::Options options_;
  std::array<Slot, kMaxStages> slots_;
  std::atomic<std::size_t> size_{0};  // slots [0, size_) are published and immutable
  std::mutex add_mutex_;              // serialises additions only
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace riptide::performance
