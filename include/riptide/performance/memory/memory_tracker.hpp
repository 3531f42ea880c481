#pragma once
// The memory sampler: a background thread takes a MemorySnapshot every sample interval, publishes it
// as the latest (immutable, shared) and appends a compact sample to two bounded rings: full resolution
// for `history` and one merged sample per `long_history_interval` for `long_history`. The library's own
// memory therefore stays bounded however long the process runs.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/periodic_worker.hpp"
#include "riptide/performance/memory/memory_snapshot.hpp"
#include "riptide/performance/memory/memory_trend.hpp"

namespace riptide::performance {

struct Config;

struct MemoryTrackerOptions {
  std::chrono::nanoseconds sample_interval = std::chrono::seconds{1};        ///< monitoring.sample_interval_sec
  std::chrono::nanoseconds history = std::chrono::hours{1};                  ///< monitoring.history_sec
  std::chrono::nanoseconds long_history = std::chrono::hours{24 * 7};        ///< monitoring.long_history_sec
  std::chrono::nanoseconds long_history_interval = std::chrono::minutes{1};  ///< ..._interval_sec
  SnapshotOptions snapshot;  ///< allocator figures and size classes (profiling.jemalloc_stats)

  /// From monitoring.* and profiling.jemalloc_stats; throws ConfigError for non-positive or NaN values.
  [[nodiscard]] static MemoryTrackerOptions from_config(const Config& config);
};

class MemoryTracker {
 public:
  /// Upper bound on the entries of either ring, whatever the configuration asks (8 MiB of samples).
  static constexpr std::size_t kMaxRingEntries = 65536;

  /// `scheduler`: the thread the sampler runs on (a PerformanceManager's, shared with its other periodic
  /// work); null: a thread of its own, `riptide-sampler`.
  explicit MemoryTracker(MemoryTrackerOptions options = {}, const Clock& clock = system_clock(),
                         std::shared_ptr<PeriodicScheduler> scheduler = nullptr);
  ~MemoryTracker();
  MemoryTracker(const MemoryTracker&) = delete;
  MemoryTracker& operator=(const MemoryTracker&) = delete;

  /// Starts the sampler thread (takes a first snapshot at once). Idempotent. Throws Error when the
  /// thread cannot be created.
  void start();
  /// Stops and joins the sampler; returns within one snapshot's time. Idempotent.
  void stop() noexcept;
  [[nodiscard]] bool running() const noexcept;

  /// Takes a snapshot now (epoch refreshed), records and publishes it. What the sampler thread runs;
  /// tests call it directly with a ManualClock instead of starting the thread.
  std::shared_ptr<const MemorySnapshot> sample_now();
  /// Records and publishes a snapshot taken elsewhere (a test's synthetic series, a host's own reading).
  /// Snapshots must come in time order; older ones than the newest recorded are ignored.
  void record(MemorySnapshot snapshot);

  /// A snapshot taken now that is not recorded in the rings. `refresh_epoch` true costs an epoch
  /// refresh (locks jemalloc) and is what an explicit caller request wants.
  [[nodiscard]] MemorySnapshot take_snapshot(bool refresh_epoch = true);

  /// The latest published snapshot; null before the first sample.
  [[nodiscard]] std::shared_ptr<const MemorySnapshot> latest() const;

  /// Trend over the last `duration` at `interval` resolution, at most `max_points` points.
  [[nodiscard]] MemoryTrend trend(std::chrono::nanoseconds duration, std::chrono::nanoseconds interval,
                                  std::size_t max_points = 1000) const;

  /// The samples of the last `duration`, oldest first: downsampled ring for the part the full ring no
  /// longer covers, then the full ring.
  [[nodiscard]] std::vector<MemorySample> history(std::chrono::nanoseconds duration) const;
  /// allocation_rate() over the last `duration` of history, without copying it (the periodic state reads the
  /// hour's baseline every check).
  [[nodiscard]] std::optional<AllocationRate> allocation_rate(std::chrono::nanoseconds duration) const;

  /// How far back recorded data reaches now (zero before the first sample).
  [[nodiscard]] std::chrono::nanoseconds retained_span() const;

  [[nodiscard]] std::size_t history_size() const;
  [[nodiscard]] std::size_t history_capacity() const noexcept { return full_.capacity(); }
  [[nodiscard]] std::size_t long_history_size() const;
  [[nodiscard]] std::size_t long_history_capacity() const noexcept { return long_.capacity(); }
  /// Bytes the rings reserve (they never grow past this).
  [[nodiscard]] std::size_t ring_bytes() const noexcept;

  [[nodiscard]] const MemoryTrackerOptions& options() const noexcept { return options_; }
  [[nodiscard]] const Clock& clock() const noexcept { return clock_; }
  [[nodiscard]] AllocatorKind allocator() const noexcept { return snapshotter_.allocator(); }

 private:
  /// Fixed-capacity ring of samples, oldest overwritten first.
  class SampleRing {
   public:
    explicit SampleRing(std::size_t capacity);
    void push(const MemorySample& sample);
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }
    /// i = 0 is the oldest.
    [[nodiscard]] const MemorySample& at(std::size_t i) const noexcept;

   private:
    std::vector<MemorySample> slots_;
    std::size_t head_ = 0;  // next slot written
    std::size_t size_ = 0;
  };

  /// Merges snapshots of one long_history_interval before they enter the downsampled ring.
  struct Accumulator {
    std::int64_t bucket = 0;
    std::uint32_t samples = 0;
    double time_offset_sum_ns = 0;  // relative to `first_time`
    std::chrono::steady_clock::time_point first_time;
    std::chrono::steady_clock::time_point last_time;
    std::chrono::system_clock::time_point first_system_time;
    double heap_sum = 0;
    std::uint32_t heap_samples = 0;
    std::optional<std::uint64_t> heap_min;
    std::optional<std::uint64_t> heap_max;
    WeightedMean rss;
    WeightedMean resident;
    std::optional<std::uint64_t> allocation_count;
    std::optional<std::uint64_t> deallocation_count;
    [[nodiscard]] MemorySample to_sample() const;
  };

  void record_locked(const MemorySnapshot& snapshot);
  std::vector<MemorySample> history_locked(std::chrono::steady_clock::time_point since) const;
  // Calls `visit` for every retained sample since `since`, oldest first (downsampled points only where the
  // full-resolution ring has forgotten). Needs data_mutex_.
  template <typename Visit>
  void visit_history_locked(std::chrono::steady_clock::time_point since, Visit&& visit) const;

  MemoryTrackerOptions options_;
  const Clock& clock_;
  MemorySnapshotter snapshotter_;

  mutable std::mutex data_mutex_;  // rings, accumulator, latest_
  SampleRing full_;
  SampleRing long_;
  std::optional<Accumulator> pending_;
  std::optional<std::chrono::steady_clock::time_point> origin_;  // bucket 0 of the downsampled ring
  std::shared_ptr<const MemorySnapshot> latest_;

  PeriodicWorker sampler_;  // last: stopped before the rings it fills are destroyed
};

}  // namespace riptide::performance
