#pragma once
// The heap profile taken at the process's high-water mark: what held memory when the heap was largest.
//
// The basis is the heap (jemalloc's stats.allocated), not RSS: the profile accounts for heap bytes, so a
// peak of the heap is one the profile can explain. RSS also counts fragmentation, pages jemalloc retains
// after frees, thread stacks and code; its peak can fall at a moment when the heap is not at its largest.
//
// The check runs with the memory sampler, on the periodic thread: after each snapshot, a new profile is
// captured when the heap is above the last captured peak by more than profiling.peak_profile_growth (10%).
// So a heap that climbs from L to H bytes costs at most 1 + ln(H/L)/ln(1 + share) dumps, however long it
// runs (PeakCapturePolicy::capture_bound). A peak that rises and falls between two samples is not seen.
//
//   auto peak = profiler.peak_heap_profile();    // null before the first capture
//   if (peak) use(peak->heap_bytes, peak->top_sites, *peak->profile);

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/periodic_worker.hpp"
#include "riptide/performance/memory/memory_snapshot.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/profiling_error.hpp"

namespace riptide::performance {

class Symbolizer;

/// When to capture a new peak profile, as a pure function of the heap readings it is shown.
class PeakCapturePolicy {
 public:
  /// `growth_share`: a new capture needs a reading above the last captured one by more than this share of it
  /// (0.10: 10%). 0 (or a negative or non-finite value) turns capturing off.
  explicit PeakCapturePolicy(double growth_share) noexcept;

  [[nodiscard]] bool enabled() const noexcept { return growth_share_ > 0; }
  [[nodiscard]] double growth_share() const noexcept { return growth_share_; }
  /// True when a reading of `heap_bytes` calls for a capture: the first reading above 0, or one above
  /// next_capture_above().
  [[nodiscard]] bool should_capture(std::uint64_t heap_bytes) const noexcept;
  /// Records a capture made (or attempted: a failed dump is not retried before the next step) at `heap_bytes`.
  void note_capture(std::uint64_t heap_bytes) noexcept;
  /// The reading of the latest capture; empty before the first.
  [[nodiscard]] std::optional<std::uint64_t> last_capture_bytes() const noexcept { return last_; }
  /// A reading above this calls for the next capture; empty before the first capture or when off.
  [[nodiscard]] std::optional<std::uint64_t> next_capture_above() const noexcept;
  /// The most captures the policy makes while readings stay within [lowest, highest] (lowest >= 1):
  /// 1 + floor(ln(highest / lowest) / ln(1 + share)); 0 when off.
  [[nodiscard]] static std::uint64_t capture_bound(std::uint64_t lowest, std::uint64_t highest,
                                                   double growth_share) noexcept;

 private:
  double growth_share_;
  std::optional<std::uint64_t> last_;
};

/// One allocation site of the peak profile (grouped and named as the leak and allocation reports do).
struct PeakHeapSite {
  std::string location;                ///< "function (file:line)": the program's own line that allocated
  std::string function;                ///< readable function name
  std::string function_full;           ///< full demangled name
  std::string file;                    ///< source file (empty without debug info)
  std::uint32_t line = 0;              ///< source line (0 without debug info)
  std::uint64_t inuse_bytes = 0;       ///< estimated bytes in use at the site at the peak (sampled, unbiased)
  std::uint64_t inuse_objects = 0;     ///< estimated objects in use there
  std::uint64_t size_error_bytes = 0;  ///< one standard deviation of inuse_bytes from sampling
  double share_percent = 0;            ///< inuse_bytes / the host's in-use bytes in the profile, 0-100
  std::vector<std::string> stack;      ///< symbolized frames from the site outwards
};

/// The published peak: immutable, shared by every reader.
struct PeakHeapProfile {
  std::shared_ptr<const HeapProfile> profile;           ///< the dump taken right after the sample that saw the peak
  std::chrono::system_clock::time_point observed_at{};  ///< wall time of that sample
  std::chrono::system_clock::time_point captured_at{};  ///< wall time of the dump
  std::uint64_t heap_bytes = 0;                         ///< the sample's heap bytes (stats.allocated): the peak
  std::optional<std::uint64_t> rss_bytes;               ///< the sample's RSS; empty when unreadable
  std::uint64_t profile_inuse_bytes = 0;                ///< unbiased in-use bytes of the whole dump (sampled estimate)
  std::uint64_t capture_number = 0;                     ///< 1 for the process's first peak capture, and so on
  std::vector<PeakHeapSite> top_sites;                  ///< at most PeakHeapRecorder::kTopSites, most bytes first; the
                                                        ///< library's own stacks left out
};

/// What the recorder has done so far (GET /metrics/memory/peak shows it beside the peak).
struct PeakRecorderStatus {
  double growth_share = 0;     ///< profiling.peak_profile_growth
  std::uint64_t captures = 0;  ///< peak profiles captured and published
  std::uint64_t failures = 0;  ///< dumps that failed (last_error says why)
  /// Dumps not published: the heap had fallen by more than the growth share since it was read.
  std::uint64_t stale = 0;
  std::optional<std::uint64_t> next_capture_above;  ///< heap bytes that call for the next capture
  std::string last_error;                           ///< the latest failure with its fix; empty when none
};

/// Keeps the peak heap profile: a PeriodicWorker that, every `interval`, reads the latest memory snapshot
/// and captures a profile when PeakCapturePolicy says so.
class PeakHeapRecorder {
 public:
  /// Sites kept in PeakHeapProfile::top_sites.
  static constexpr std::size_t kTopSites = 20;
  using SnapshotSource = std::function<std::shared_ptr<const MemorySnapshot>()>;
  using HeapReading = std::function<std::optional<std::uint64_t>()>;

  /// `latest_snapshot` gives the sampler's newest snapshot (null before the first); `config` gives
  /// peak_profile_growth and dump_directory. `scheduler`: the thread the checks run on (a PerformanceManager's,
  /// beside the sampler); null: a thread of its own, `riptide-peak`. `symbolizer` null: the shared one.
  /// `heap_now` reads the heap right after a dump, to tell a dump taken after a fall (empty: jemalloc's
  /// stats.allocated).
  PeakHeapRecorder(const ProfilingConfig& config, std::chrono::nanoseconds interval, SnapshotSource latest_snapshot,
                   std::shared_ptr<PeriodicScheduler> scheduler = nullptr, Symbolizer* symbolizer = nullptr,
                   HeapReading heap_now = {});
  ~PeakHeapRecorder();
  PeakHeapRecorder(const PeakHeapRecorder&) = delete;
  PeakHeapRecorder& operator=(const PeakHeapRecorder&) = delete;

  /// Starts the periodic checks (nothing happens when the policy is off). Idempotent.
  void start();
  /// Stops them and waits for a check in progress. Idempotent, never throws.
  void stop() noexcept;
  [[nodiscard]] bool running() const noexcept;

  /// One check: reads the latest snapshot and, when its heap bytes call for it, captures and publishes a
  /// new peak profile. Returns true when it published one. What the periodic job runs; tests call it.
  bool check();

  /// The latest published peak; null before the first capture.
  [[nodiscard]] std::shared_ptr<const PeakHeapProfile> latest() const;
  [[nodiscard]] PeakRecorderStatus status() const;

 private:
  ProfilingConfig config_;
  SnapshotSource latest_snapshot_;
  Symbolizer* symbolizer_;
  HeapReading heap_now_;

  mutable std::mutex mutex_;  // everything below
  PeakCapturePolicy policy_;
  std::optional<std::chrono::steady_clock::time_point> last_checked_;  // the snapshot checked last
  std::uint64_t captures_ = 0;
  std::uint64_t failures_ = 0;
  std::uint64_t stale_ = 0;
  std::string last_error_;
  std::shared_ptr<const PeakHeapProfile> latest_;

  PeriodicWorker worker_;  // last: stopped before what its checks write is destroyed
};

/// The top sites of `profile` by in-use bytes, named and described as the reports do.
[[nodiscard]] std::vector<PeakHeapSite> top_sites_in_use(const HeapProfile& profile, Symbolizer& symbolizer,
                                                         std::size_t count);

void to_json(nlohmann::json& json, const PeakHeapSite& site);
/// The peak's figures and sites (the profile itself is served as pprof by GET /debug/pprof/peak).
void to_json(nlohmann::json& json, const PeakHeapProfile& peak);
void to_json(nlohmann::json& json, const PeakRecorderStatus& status);

}  // namespace riptide::performance
