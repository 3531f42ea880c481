#include "riptide/performance/profiling/allocation_lifetimes.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/json_optional.hpp"
#include "riptide/performance/core/time_format.hpp"
#include "riptide/performance/profiling/self_heap.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

namespace riptide::performance {
namespace {

double milliseconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

// The q-quantile of `sorted` (nearest rank).
double quantile(const std::vector<double>& sorted, double q) {
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct SiteRecords {
  SiteLifetimes figures;
  std::vector<double> lifetimes_ms;
};

void finish(SiteRecords& site) {
  SiteLifetimes& f = site.figures;
  const std::uint64_t decided = f.sampled - f.undecided;
  if (decided > 0) {
    const double p = static_cast<double>(f.temporary) / static_cast<double>(decided);
    f.temporary_share = p;
    f.temporary_share_error = std::sqrt(p * (1.0 - p) / static_cast<double>(decided));
  }
  if (!site.lifetimes_ms.empty()) {
    std::sort(site.lifetimes_ms.begin(), site.lifetimes_ms.end());
    f.lifetime_p50_ms = quantile(site.lifetimes_ms, 0.5);
    f.lifetime_p99_ms = quantile(site.lifetimes_ms, 0.99);
  }
}

}  // namespace

AllocationLifetimes assess_lifetimes(const RecentAllocations& recent, Symbolizer& symbolizer,
                                     std::chrono::nanoseconds now, double temporary_threshold_ms,
                                     std::size_t max_sites) {
  AllocationLifetimes result;
  result.available = true;
  result.taken_at = std::chrono::system_clock::now();
  result.temporary_threshold_ms = temporary_threshold_ms;
  result.records = recent.records.size();
  result.capacity = recent.capacity;
  result.sample_interval = recent.sample_interval;
  SiteAttributor attribute(symbolizer);
  std::unordered_map<std::string, SiteRecords> sites;
  std::chrono::nanoseconds oldest = now;
  for (const RecentAllocation& allocation : recent.records) {
    oldest = std::min(oldest, allocation.allocated_at);
    if (owner_of_stack(allocation.frames, symbolizer) == StackOwner::library) continue;
    SiteLocation location = attribute(allocation.frames);
    auto [it, inserted] = sites.try_emplace(location.key());
    SiteRecords& site = it->second;
    if (inserted) site.figures.location = std::move(location);
    SiteLifetimes& f = site.figures;
    ++f.sampled;
    if (allocation.freed_at) {
      const double lived = milliseconds(*allocation.freed_at - allocation.allocated_at);
      ++f.freed;
      if (lived <= temporary_threshold_ms) ++f.temporary;
      site.lifetimes_ms.push_back(std::max(lived, 0.0));
    } else {
      const double age = milliseconds(now - allocation.allocated_at);
      ++f.alive;
      if (age < temporary_threshold_ms) ++f.undecided;
      f.oldest_alive_ms = std::max(f.oldest_alive_ms.value_or(0.0), age);
    }
  }
  result.span_seconds = std::chrono::duration<double>(now - oldest).count();
  result.sites.reserve(sites.size());
  for (auto& [key, site] : sites) {
    finish(site);
    result.sites.push_back(std::move(site.figures));
  }
  std::sort(result.sites.begin(), result.sites.end(), [](const SiteLifetimes& a, const SiteLifetimes& b) {
    return a.sampled != b.sampled ? a.sampled > b.sampled : a.location.key() < b.location.key();
  });
  if (result.sites.size() > max_sites) result.sites.resize(max_sites);
  return result;
}

LifetimeRecorder::LifetimeRecorder(double temporary_threshold_ms, std::chrono::nanoseconds interval,
                                   std::shared_ptr<PeriodicScheduler> scheduler, Symbolizer* symbolizer)
    : temporary_threshold_ms_(temporary_threshold_ms),
      refresh_period_(std::max<std::chrono::steady_clock::duration>(
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval), kRefreshPeriod)),
      symbolizer_(symbolizer != nullptr ? symbolizer : &Symbolizer::shared()),
      worker_(std::move(scheduler), "riptide-lifetimes",
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval),
              [this] { record_when_due(); }) {}

LifetimeRecorder::~LifetimeRecorder() {
  stop();
}

void LifetimeRecorder::start() {
  worker_.start();
}

void LifetimeRecorder::stop() noexcept {
  worker_.stop();
}

void LifetimeRecorder::record() {
  auto view = std::make_shared<AllocationLifetimes>();
  view->taken_at = std::chrono::system_clock::now();
  view->temporary_threshold_ms = temporary_threshold_ms_;
  const auto recorded = ensure_recent_allocations_recorded();
  ProfilingResult<RecentAllocations> recent =
      recorded ? read_recent_allocations() : ProfilingResult<RecentAllocations>(recorded.error());
  if (recent) {
    *view = assess_lifetimes(recent.value(), *symbolizer_, recent_allocation_clock_now(), temporary_threshold_ms_,
                             kMaxSites);
  } else {
    view->reason = recent.error().to_string();
  }
  const std::lock_guard lock(mutex_);
  latest_ = std::move(view);
  latest_read_at_ = std::chrono::steady_clock::now();
}

void LifetimeRecorder::record_when_due() {
  {
    const std::lock_guard lock(mutex_);
    const bool has_records = latest_ && latest_->available && latest_->records > 0;
    if (has_records && std::chrono::steady_clock::now() - latest_read_at_ < refresh_period_) return;
  }
  record();
}

std::shared_ptr<const AllocationLifetimes> LifetimeRecorder::latest() const {
  const std::lock_guard lock(mutex_);
  return latest_;
}

void to_json(nlohmann::json& json, const AllocationLifetimes& lifetimes) {
  json = nlohmann::json::object();
  json["available"] = lifetimes.available;
  json["taken_at"] = format_rfc3339_utc(lifetimes.taken_at);
  if (!lifetimes.available) {
    json["reason"] = lifetimes.reason;
    return;
  }
  json["temporary_threshold_ms"] = lifetimes.temporary_threshold_ms;
  json["records"] = lifetimes.records;
  json["capacity"] = lifetimes.capacity;
  json["sample_interval_bytes"] = lifetimes.sample_interval;
  json["span_seconds"] = lifetimes.span_seconds;
  auto& sites = json["sites"] = nlohmann::json::array();
  for (const SiteLifetimes& site : lifetimes.sites) {
    sites.push_back({{"location", site.location.location()},
                     {"function", site.location.display_name},
                     {"file", site.location.file},
                     {"line", site.location.line},
                     {"sampled", site.sampled},
                     {"freed", site.freed},
                     {"temporary", site.temporary},
                     {"alive", site.alive},
                     {"undecided", site.undecided},
                     {"temporary_share", site.temporary_share},
                     {"temporary_share_error", site.temporary_share_error},
                     {"lifetime_p50_ms", optional_json(site.lifetime_p50_ms)},
                     {"lifetime_p99_ms", optional_json(site.lifetime_p99_ms)},
                     {"oldest_alive_ms", optional_json(site.oldest_alive_ms)}});
  }
}

}  // namespace riptide::performance
