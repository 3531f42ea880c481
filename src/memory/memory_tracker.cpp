#include "riptide/performance/memory/memory_tracker.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <system_error>

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/error.hpp"

namespace riptide::performance {
namespace {

using std::chrono::nanoseconds;
using std::chrono::steady_clock;
using std::chrono::system_clock;

nanoseconds seconds_option(double seconds, const char* key) {
  // Also bounded above: a year is far beyond any sensible history and keeps the nanosecond count finite.
  constexpr double kMaxSeconds = 366.0 * 24 * 3600;
  if (!(seconds > 0.0) || seconds > kMaxSeconds) {
    throw ConfigError({.source = "code",
                       .key = key,
                       .value = std::to_string(seconds),
                       .problem = "must be a positive number of seconds",
                       .accepted = "a number of seconds greater than 0 and at most 31622400 (fractions allowed)"});
  }
  return nanoseconds{static_cast<std::int64_t>(std::llround(seconds * 1e9))};
}

std::size_t ring_capacity(nanoseconds span, nanoseconds step) {
  const auto steps = static_cast<std::size_t>((span.count() + step.count() - 1) / step.count());
  // One more than the span holds so that a window of exactly `span` is fully covered.
  return std::clamp<std::size_t>(steps + 1, 2, MemoryTracker::kMaxRingEntries);
}

const MemoryTrackerOptions& validated(const MemoryTrackerOptions& options) {
  if (options.sample_interval <= nanoseconds::zero() || options.history <= nanoseconds::zero() ||
      options.long_history <= nanoseconds::zero() || options.long_history_interval <= nanoseconds::zero()) {
    throw ConfigError({.source = "code",
                       .key = "monitoring",
                       .value = "",
                       .problem = "sample interval, histories and long history interval must be positive",
                       .accepted = "durations greater than zero"});
  }
  return options;
}

}  // namespace

MemoryTrackerOptions MemoryTrackerOptions::from_config(const Config& config) {
  MemoryTrackerOptions options;
  options.sample_interval = seconds_option(config.monitoring.sample_interval_sec, "monitoring.sample_interval_sec");
  options.history = seconds_option(config.monitoring.history_sec, "monitoring.history_sec");
  options.long_history = seconds_option(config.monitoring.long_history_sec, "monitoring.long_history_sec");
  options.long_history_interval =
      seconds_option(config.monitoring.long_history_interval_sec, "monitoring.long_history_interval_sec");
  options.snapshot.allocator_stats = config.profiling.jemalloc_stats;
  options.snapshot.size_classes = config.profiling.jemalloc_stats;
  return options;
}

// --- SampleRing

MemoryTracker::SampleRing::SampleRing(std::size_t capacity) : slots_(capacity) {}

void MemoryTracker::SampleRing::push(const MemorySample& sample) {
  slots_[head_] = sample;
  head_ = (head_ + 1) % slots_.size();
  size_ = std::min(size_ + 1, slots_.size());
}

const MemorySample& MemoryTracker::SampleRing::at(std::size_t i) const noexcept {
  const std::size_t oldest = (head_ + slots_.size() - size_) % slots_.size();
  return slots_[(oldest + i) % slots_.size()];
}

// --- Accumulator

MemorySample MemoryTracker::Accumulator::to_sample() const {
  MemorySample sample;
  const auto mean_offset = nanoseconds{static_cast<std::int64_t>(std::llround(time_offset_sum_ns / samples))};
  sample.steady_time = first_time + mean_offset;
  sample.last_steady_time = last_time;
  sample.system_time = first_system_time + std::chrono::duration_cast<system_clock::duration>(mean_offset);
  sample.samples = samples;
  if (heap_samples > 0) {
    sample.heap_bytes = static_cast<std::uint64_t>(std::llround(heap_sum / heap_samples));
  }
  sample.heap_min_bytes = heap_min;
  sample.heap_max_bytes = heap_max;
  sample.rss_bytes = rss.mean();
  sample.resident_bytes = resident.mean();
  sample.allocation_count = allocation_count;
  sample.deallocation_count = deallocation_count;
  return sample;
}

// --- MemoryTracker

MemoryTracker::MemoryTracker(MemoryTrackerOptions options, const Clock& clock,
                             std::shared_ptr<PeriodicScheduler> scheduler)
    : options_(validated(options)),
      clock_(clock),
      snapshotter_(options_.snapshot),
      full_(ring_capacity(options_.history, options_.sample_interval)),
      long_(ring_capacity(options_.long_history, options_.long_history_interval)),
      // Paced by the real steady clock: the injected Clock stamps snapshots, it does not pace threads.
      sampler_(std::move(scheduler), "riptide-sampler", options_.sample_interval, [this] { (void)sample_now(); }) {}

MemoryTracker::~MemoryTracker() {
  stop();
}

void MemoryTracker::start() {
  sampler_.start();
}

void MemoryTracker::stop() noexcept {
  sampler_.stop();
}

bool MemoryTracker::running() const noexcept {
  return sampler_.running();
}

std::shared_ptr<const MemorySnapshot> MemoryTracker::sample_now() {
  auto snapshot = std::make_shared<const MemorySnapshot>(snapshotter_.take(clock_, /*refresh_epoch=*/true));
  std::lock_guard lock(data_mutex_);
  record_locked(*snapshot);
  if (!latest_ || latest_->steady_time <= snapshot->steady_time) {
    latest_ = snapshot;
  }
  return snapshot;
}

void MemoryTracker::record(MemorySnapshot snapshot) {
  auto shared = std::make_shared<const MemorySnapshot>(std::move(snapshot));
  std::lock_guard lock(data_mutex_);
  if (latest_ && shared->steady_time < latest_->steady_time) {
    return;
  }
  record_locked(*shared);
  latest_ = std::move(shared);
}

MemorySnapshot MemoryTracker::take_snapshot(bool refresh_epoch) {
  return snapshotter_.take(clock_, refresh_epoch);
}

std::shared_ptr<const MemorySnapshot> MemoryTracker::latest() const {
  std::lock_guard lock(data_mutex_);
  return latest_;
}

void MemoryTracker::record_locked(const MemorySnapshot& snapshot) {
  MemorySample sample;
  sample.steady_time = snapshot.steady_time;
  sample.last_steady_time = snapshot.steady_time;
  sample.system_time = snapshot.timestamp;
  sample.heap_bytes = snapshot.heap_bytes;
  sample.heap_min_bytes = snapshot.heap_bytes;
  sample.heap_max_bytes = snapshot.heap_bytes;
  sample.rss_bytes = snapshot.rss_bytes;
  sample.resident_bytes = snapshot.resident_bytes;
  sample.allocation_count = snapshot.allocation_count;
  sample.deallocation_count = snapshot.deallocation_count;
  if (full_.size() > 0 && snapshot.steady_time < full_.at(full_.size() - 1).steady_time) {
    return;  // out of order: the rings stay sorted
  }
  full_.push(sample);

  if (!origin_) {
    origin_ = snapshot.steady_time;
  }
  const std::int64_t bucket = (snapshot.steady_time - *origin_) / options_.long_history_interval;
  if (pending_ && pending_->bucket != bucket) {
    long_.push(pending_->to_sample());
    pending_.reset();
  }
  if (!pending_) {
    pending_.emplace();
    pending_->bucket = bucket;
    pending_->first_time = snapshot.steady_time;
    pending_->first_system_time = snapshot.timestamp;
  }
  Accumulator& acc = *pending_;
  acc.samples += 1;
  acc.time_offset_sum_ns += static_cast<double>((snapshot.steady_time - acc.first_time).count());
  acc.last_time = snapshot.steady_time;
  if (snapshot.heap_bytes) {
    acc.heap_sum += static_cast<double>(*snapshot.heap_bytes);
    acc.heap_samples += 1;
    acc.heap_min = std::min(acc.heap_min.value_or(*snapshot.heap_bytes), *snapshot.heap_bytes);
    acc.heap_max = std::max(acc.heap_max.value_or(*snapshot.heap_bytes), *snapshot.heap_bytes);
  }
  acc.rss.add(snapshot.rss_bytes);
  acc.resident.add(snapshot.resident_bytes);
  if (snapshot.allocation_count) {
    acc.allocation_count = snapshot.allocation_count;
  }
  if (snapshot.deallocation_count) {
    acc.deallocation_count = snapshot.deallocation_count;
  }
}

template <typename Visit>
void MemoryTracker::visit_history_locked(steady_clock::time_point since, Visit&& visit) const {
  const bool has_full = full_.size() > 0;
  const steady_clock::time_point full_oldest = has_full ? full_.at(0).steady_time : steady_clock::time_point::max();
  // Downsampled points only for the stretch the full ring has already forgotten; a point that straddles
  // the boundary is left out rather than counted twice.
  for (std::size_t i = 0; i < long_.size(); ++i) {
    const MemorySample& sample = long_.at(i);
    if (sample.last_steady_time >= full_oldest) {
      break;
    }
    if (sample.last_steady_time >= since) {
      visit(sample);
    }
  }
  if (pending_ && pending_->last_time < full_oldest && pending_->last_time >= since) {
    visit(pending_->to_sample());
  }
  for (std::size_t i = 0; i < full_.size(); ++i) {
    const MemorySample& sample = full_.at(i);
    if (sample.steady_time >= since) {
      visit(sample);
    }
  }
}

std::vector<MemorySample> MemoryTracker::history_locked(steady_clock::time_point since) const {
  std::vector<MemorySample> result;
  visit_history_locked(since, [&result](const MemorySample& sample) { result.push_back(sample); });
  return result;
}

std::optional<AllocationRate> MemoryTracker::allocation_rate(nanoseconds duration) const {
  const auto since = clock_.steady_now() - duration;
  // The rate rests on the first and the last counted sample: keep those two, not the window.
  std::array<MemorySample, 2> ends;
  std::size_t counted = 0;
  {
    std::lock_guard lock(data_mutex_);
    visit_history_locked(since, [&](const MemorySample& sample) {
      if (!sample.allocation_count || !sample.deallocation_count) return;
      ends[counted == 0 ? 0 : 1] = sample;
      ++counted;
    });
  }
  if (counted < 2) return std::nullopt;
  return riptide::performance::allocation_rate(ends);
}

std::vector<MemorySample> MemoryTracker::history(nanoseconds duration) const {
  const auto since = clock_.steady_now() - duration;
  std::lock_guard lock(data_mutex_);
  return history_locked(since);
}

MemoryTrend MemoryTracker::trend(nanoseconds duration, nanoseconds interval, std::size_t max_points) const {
  const auto steady_now = clock_.steady_now();
  const auto system_now = clock_.system_now();
  std::vector<MemorySample> samples;
  bool downsampled = false;
  {
    std::lock_guard lock(data_mutex_);
    samples = history_locked(steady_now - duration);
    downsampled = std::any_of(samples.begin(), samples.end(), [](const MemorySample& s) { return s.samples > 1; });
  }
  MemoryTrend trend = build_trend(samples, steady_now, system_now, duration, interval, max_points);
  trend.downsampled_history = downsampled;
  return trend;
}

nanoseconds MemoryTracker::retained_span() const {
  const auto now = clock_.steady_now();
  std::lock_guard lock(data_mutex_);
  std::optional<steady_clock::time_point> oldest;
  if (long_.size() > 0) {
    oldest = long_.at(0).steady_time;
  }
  if (full_.size() > 0 && (!oldest || full_.at(0).steady_time < *oldest)) {
    oldest = full_.at(0).steady_time;
  }
  return oldest ? std::max(nanoseconds::zero(), std::chrono::duration_cast<nanoseconds>(now - *oldest))
                : nanoseconds::zero();
}

std::size_t MemoryTracker::history_size() const {
  std::lock_guard lock(data_mutex_);
  return full_.size();
}

std::size_t MemoryTracker::long_history_size() const {
  std::lock_guard lock(data_mutex_);
  return long_.size();
}

std::size_t MemoryTracker::ring_bytes() const noexcept {
  return (full_.capacity() + long_.capacity()) * sizeof(MemorySample);
}

}  // namespace riptide::performance
