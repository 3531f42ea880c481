#pragma once
// How long each allocation site's allocations live, from jemalloc's record of recent sampled allocations
// (recent_allocations.hpp): per site, how many of its sampled allocations were temporary (freed within
// profiling.temporary_allocation_ms), the median and 99th percentile lifetime of those freed, and how many
// are still alive. GET /metrics/memory/lifetimes serializes it; /metrics/memory/allocations shows each top
// site's temporary share.
//
// What sampling means for these figures: the record holds sampled allocations (one per 2^lg_prof_sample
// bytes allocated, so large allocations are more likely to be in it than small ones, in proportion to their
// size). A site's temporary share is a share of its sampled allocations: with n of them decided, its
// standard error is sqrt(p (1 - p) / n) (`temporary_share_error`). An allocation still alive and younger
// than the threshold is undecided and left out of the share. The record is a ring of its last capacity
// samples: allocations that live longer than the ring's span are seen alive, never freed.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "riptide/performance/core/periodic_worker.hpp"
#include "riptide/performance/profiling/recent_allocations.hpp"
#include "riptide/performance/profiling/site_attribution.hpp"

namespace riptide::performance {

class Symbolizer;

struct SiteLifetimes {
  SiteLocation location;                  ///< the user's frame, as for leaks and allocation sites
  std::uint64_t sampled = 0;              ///< sampled allocations of the site in the record
  std::uint64_t freed = 0;                ///< of those, freed
  std::uint64_t temporary = 0;            ///< freed within the threshold
  std::uint64_t alive = 0;                ///< still allocated
  std::uint64_t undecided = 0;            ///< alive and younger than the threshold: not counted in the share
  double temporary_share = 0;             ///< temporary / (sampled - undecided)
  double temporary_share_error = 0;       ///< its standard error from sampling
  std::optional<double> lifetime_p50_ms;  ///< of the freed ones
  std::optional<double> lifetime_p99_ms;
  std::optional<double> oldest_alive_ms;  ///< age of the oldest still alive
};

struct AllocationLifetimes {
  bool available = false;
  std::string reason;  ///< why not available
  std::chrono::system_clock::time_point taken_at{};
  double temporary_threshold_ms = 100;
  std::uint64_t records = 0;          ///< sampled allocations in the record (the host's and the library's)
  std::uint64_t capacity = 0;         ///< the ring's size
  std::uint64_t sample_interval = 0;  ///< bytes per sample
  double span_seconds = 0;            ///< from the oldest record's allocation to now
  std::vector<SiteLifetimes> sites;   ///< the host's sites, most sampled first, at most `max_sites`
};

/// Groups `recent` by site (the library's own stacks left out, as everywhere) as of `now` (CLOCK_MONOTONIC).
[[nodiscard]] AllocationLifetimes assess_lifetimes(const RecentAllocations& recent, Symbolizer& symbolizer,
                                                   std::chrono::nanoseconds now, double temporary_threshold_ms,
                                                   std::size_t max_sites);

/// Keeps the latest lifetime view: a PeriodicWorker that reads jemalloc's record and assesses it. Its first
/// reading turns the record on when it is off (so the first view may be empty).
///
/// The job runs every `interval` but reads only while the view is empty and then every kRefreshPeriod (or
/// every `interval` when that is longer): one reading of a full record costs ~50 ms of CPU, mostly jemalloc
/// writing it as JSON and its parse, and each reading covers only the latest few thousand samples anyway,
/// so reading more often buys freshness, not accuracy.
class LifetimeRecorder {
 public:
  static constexpr std::size_t kMaxSites = 50;
  static constexpr std::chrono::seconds kRefreshPeriod{300};

  /// `scheduler`: the thread the readings run on (a PerformanceManager's); null: a thread of its own,
  /// `riptide-lifetimes`. `symbolizer` null: the shared one.
  LifetimeRecorder(double temporary_threshold_ms, std::chrono::nanoseconds interval,
                   std::shared_ptr<PeriodicScheduler> scheduler = nullptr, Symbolizer* symbolizer = nullptr);
  ~LifetimeRecorder();
  LifetimeRecorder(const LifetimeRecorder&) = delete;
  LifetimeRecorder& operator=(const LifetimeRecorder&) = delete;

  void start();
  void stop() noexcept;
  /// One reading, published for latest(), whenever called (tests and benchmarks call it).
  void record();
  /// What the periodic job runs: record() while the view is empty or older than the refresh period.
  void record_when_due();
  /// The latest view; null before the first reading.
  [[nodiscard]] std::shared_ptr<const AllocationLifetimes> latest() const;

 private:
  double temporary_threshold_ms_;
  std::chrono::steady_clock::duration refresh_period_;
  Symbolizer* symbolizer_;
  mutable std::mutex mutex_;
  std::shared_ptr<const AllocationLifetimes> latest_;
  // When latest_ was read, guarded by mutex_. A steady clock beside the view's wall-clock taken_at, so
  // that a jump of the system clock neither stalls nor hurries the refresh.
  std::chrono::steady_clock::time_point latest_read_at_;
  PeriodicWorker worker_;  // last: stopped before what its readings write is destroyed
};

/// {available, taken_at (RFC 3339), reason?, temporary_threshold_ms, records, capacity,
///  sample_interval_bytes, span_seconds,
///  sites[{location, function, file, line, sampled, freed, temporary, alive, undecided, temporary_share,
///  temporary_share_error, lifetime_p50_ms, lifetime_p99_ms, oldest_alive_ms}]}.
void to_json(nlohmann::json& json, const AllocationLifetimes& lifetimes);

}  // namespace riptide::performance
