#include "riptide/performance/profiling/peak_heap_profile.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include "riptide/performance/core/time_format.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/site_attribution.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

namespace riptide::performance {
namespace {

std::uint64_t whole(double value) {
  return value > 0 ? static_cast<std::uint64_t>(std::llround(value)) : 0;
}

std::chrono::steady_clock::duration steady_interval(std::chrono::nanoseconds interval) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::max(interval, std::chrono::nanoseconds{std::chrono::milliseconds{10}}));
}

}  // namespace

// --- PeakCapturePolicy ---------------------------------------------------------------------------------

PeakCapturePolicy::PeakCapturePolicy(double growth_share) noexcept
    : growth_share_(std::isfinite(growth_share) && growth_share > 0 ? growth_share : 0) {}

std::optional<std::uint64_t> PeakCapturePolicy::next_capture_above() const noexcept {
  if (!enabled() || !last_) return std::nullopt;
  const double above = static_cast<double>(*last_) * (1.0 + growth_share_);
  if (above >= static_cast<double>(std::numeric_limits<std::uint64_t>::max())) {
    return std::numeric_limits<std::uint64_t>::max();
  }
  return static_cast<std::uint64_t>(above);
}

bool PeakCapturePolicy::should_capture(std::uint64_t heap_bytes) const noexcept {
  if (!enabled() || heap_bytes == 0) return false;
  const auto above = next_capture_above();
  return !above || heap_bytes > *above;
}

void PeakCapturePolicy::note_capture(std::uint64_t heap_bytes) noexcept {
  last_ = std::max(heap_bytes, last_.value_or(0));
}

std::uint64_t PeakCapturePolicy::capture_bound(std::uint64_t lowest, std::uint64_t highest,
                                               double growth_share) noexcept {
  const PeakCapturePolicy policy(growth_share);
  if (!policy.enabled() || highest == 0) return 0;
  lowest = std::max<std::uint64_t>(lowest, 1);
  if (highest <= lowest) return 1;
  // Captures c1 < c2 < ... < ck within [lowest, highest], each above the previous by more than the share:
  // highest >= ck > c1 (1 + share)^(k-1) >= lowest (1 + share)^(k-1), so k - 1 < ln(highest/lowest)/ln(1+share).
  const double steps =
      std::log(static_cast<double>(highest) / static_cast<double>(lowest)) / std::log1p(policy.growth_share());
  return 1 + static_cast<std::uint64_t>(std::floor(steps + 1e-9));
}

// --- Sites -----------------------------------------------------------------------------------------------

std::vector<PeakHeapSite> top_sites_in_use(const HeapProfile& profile, Symbolizer& symbolizer, std::size_t count) {
  std::vector<HeapSite> sites = aggregate_by_site(profile, symbolizer);
  double total = 0;
  for (const auto& site : sites) total += std::max(0.0, site.counts.live_bytes);
  std::erase_if(sites, [](const HeapSite& site) { return !(site.counts.live_bytes > 0); });
  const auto n = std::min(count, sites.size());
  // Ties broken by site id so repeated rankings of one profile agree.
  std::partial_sort(sites.begin(), sites.begin() + static_cast<std::ptrdiff_t>(n), sites.end(),
                    [](const HeapSite& a, const HeapSite& b) {
                      if (a.counts.live_bytes != b.counts.live_bytes) return a.counts.live_bytes > b.counts.live_bytes;
                      return a.id < b.id;
                    });
  std::vector<PeakHeapSite> top;
  top.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const HeapSite& site = sites[i];
    PeakHeapSite entry;
    entry.location = site.location.location();
    entry.function = site.location.display_name;
    entry.function_full = site.location.function;
    entry.file = site.location.file;
    entry.line = site.location.line;
    entry.inuse_bytes = whole(site.counts.live_bytes);
    entry.inuse_objects = whole(site.counts.live_objects);
    entry.size_error_bytes = whole(std::sqrt(std::max(0.0, site.counts.live_bytes_variance)));
    entry.share_percent = total > 0 ? 100.0 * site.counts.live_bytes / total : 0;
    entry.stack = describe_stack(site.stack, symbolizer, kMaxSiteStackFrames);
    top.push_back(std::move(entry));
  }
  symbolizer.trim();
  return top;
}

namespace {

std::optional<std::uint64_t> jemalloc_heap_now() {
  if (!JemallocCtl::refresh_epoch()) return std::nullopt;
  return JemallocCtl::read_u64("stats.allocated");
}

}  // namespace

// --- PeakHeapRecorder ----------------------------------------------------------------------------------

PeakHeapRecorder::PeakHeapRecorder(const ProfilingConfig& config, std::chrono::nanoseconds interval,
                                   SnapshotSource latest_snapshot, std::shared_ptr<PeriodicScheduler> scheduler,
                                   Symbolizer* symbolizer, HeapReading heap_now)
    : config_(config),
      latest_snapshot_(std::move(latest_snapshot)),
      symbolizer_(symbolizer),
      heap_now_(heap_now ? std::move(heap_now) : HeapReading(jemalloc_heap_now)),
      policy_(config.peak_profile_growth),
      worker_(std::move(scheduler), "riptide-peak", steady_interval(interval), [this] { (void)check(); }) {}

PeakHeapRecorder::~PeakHeapRecorder() {
  stop();
}

void PeakHeapRecorder::start() {
  if (policy_.enabled()) worker_.start();
}

void PeakHeapRecorder::stop() noexcept {
  worker_.stop();
}

bool PeakHeapRecorder::running() const noexcept {
  return worker_.running();
}

bool PeakHeapRecorder::check() {
  const std::shared_ptr<const MemorySnapshot> snapshot = latest_snapshot_ ? latest_snapshot_() : nullptr;
  if (!snapshot || !snapshot->heap_bytes) return false;
  const std::uint64_t heap_bytes = *snapshot->heap_bytes;
  std::uint64_t number = 0;
  {
    const std::lock_guard lock(mutex_);
    if (last_checked_ == snapshot->steady_time) return false;  // no new reading since the last check
    last_checked_ = snapshot->steady_time;
    if (!policy_.should_capture(heap_bytes)) return false;
    // Noted before the dump: a failing dump directory costs one attempt per growth step, not one per sample.
    policy_.note_capture(heap_bytes);
    number = captures_ + 1;
  }
  auto captured = capture_heap_profile(config_.dump_directory);
  if (!captured) {
    const std::lock_guard lock(mutex_);
    ++failures_;
    last_error_ = captured.error().to_string();
    return false;
  }
  // The heap was read (by the sampler) before the dump: a host that freed what made the peak in between
  // leaves a profile of the fall, which is not the peak's.
  if (const auto now = heap_now_();
      now && static_cast<double>(*now) * (1.0 + policy_.growth_share()) < static_cast<double>(heap_bytes)) {
    const std::lock_guard lock(mutex_);
    ++stale_;
    return false;
  }
  auto peak = std::make_shared<PeakHeapProfile>();
  peak->profile = std::make_shared<const HeapProfile>(std::move(captured).value());
  peak->observed_at = snapshot->timestamp;
  peak->captured_at = peak->profile->captured_at;
  peak->heap_bytes = heap_bytes;
  peak->rss_bytes = snapshot->rss_bytes;
  double in_use = 0;
  for (const auto& stack : peak->profile->stacks) {
    in_use += unbias(stack.sampled, peak->profile->sample_period).live_bytes;
  }
  peak->profile_inuse_bytes = whole(in_use);
  peak->capture_number = number;
  peak->top_sites =
      top_sites_in_use(*peak->profile, symbolizer_ != nullptr ? *symbolizer_ : Symbolizer::shared(), kTopSites);
  const std::lock_guard lock(mutex_);
  captures_ = number;
  latest_ = std::move(peak);
  return true;
}

std::shared_ptr<const PeakHeapProfile> PeakHeapRecorder::latest() const {
  const std::lock_guard lock(mutex_);
  return latest_;
}

PeakRecorderStatus PeakHeapRecorder::status() const {
  const std::lock_guard lock(mutex_);
  return {.growth_share = policy_.growth_share(),
          .captures = captures_,
          .failures = failures_,
          .stale = stale_,
          .next_capture_above = policy_.next_capture_above(),
          .last_error = last_error_};
}

// --- JSON ----------------------------------------------------------------------------------------------

void to_json(nlohmann::json& json, const PeakHeapSite& site) {
  json = {
      {"location", site.location},
      {"function", site.function},
      {"function_full", site.function_full},
      {"file", site.file},
      {"line", site.line},
      {"inuse_bytes", site.inuse_bytes},
      {"inuse_objects", site.inuse_objects},
      {"size_error_bytes", site.size_error_bytes},
      {"share_percent", site.share_percent},
      {"stack", site.stack},
  };
}

void to_json(nlohmann::json& json, const PeakHeapProfile& peak) {
  json = {
      {"observed_at", format_rfc3339_utc_millis(peak.observed_at)},
      {"captured_at", format_rfc3339_utc_millis(peak.captured_at)},
      {"heap_bytes", peak.heap_bytes},
      {"rss_bytes", peak.rss_bytes ? nlohmann::json(*peak.rss_bytes) : nlohmann::json(nullptr)},
      {"profile_inuse_bytes", peak.profile_inuse_bytes},
      {"sample_interval_bytes", peak.profile ? peak.profile->sample_period : 0},
      {"capture_number", peak.capture_number},
      {"top_sites", peak.top_sites},
  };
}

void to_json(nlohmann::json& json, const PeakRecorderStatus& status) {
  json = {
      {"growth_share", status.growth_share},
      {"captures", status.captures},
      {"failures", status.failures},
      {"stale", status.stale},
      {"next_capture_above_bytes",
       status.next_capture_above ? nlohmann::json(*status.next_capture_above) : nlohmann::json(nullptr)},
      {"last_error", status.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(status.last_error)},
  };
}

}  // namespace riptide::performance
