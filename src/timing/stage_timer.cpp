#include "riptide/performance/timing/stage_timer.hpp"

#include <algorithm>
#include <new>

namespace riptide::performance {

StageRegistry::StageRegistry(const Clock& clock, LatencyHistogram::Options options,
                             const std::vector<std::string>& preregistered)
    : clock_(clock), options_(options) {
  for (const auto& name : preregistered) {
    (void)find_or_add(name);
  }
}

StageRegistry::~StageRegistry() = default;

LatencyHistogram* StageRegistry::find(std::string_view name) const noexcept {
  const std::size_t n = size_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; ++i) {
    if (slots_[i].name == name) {
      return slots_[i].histogram.get();
    }
  }
  return nullptr;
}

LatencyHistogram* StageRegistry::find_or_add(std::string_view name) noexcept {
  if (LatencyHistogram* found = find(name)) {
    return found;
  }
  if (name.empty() || name.size() > kMaxNameLength) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  const std::lock_guard lock(add_mutex_);
  const std::size_t n = size_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) {
    if (slots_[i].name == name) {
      return slots_[i].histogram.get();
    }
  }
  if (n == kMaxStages) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  try {
    slots_[n].histogram = std::make_unique<LatencyHistogram>(clock_, options_);
    slots_[n].name.assign(name);
  } catch (const std::bad_alloc&) {
    slots_[n].histogram.reset();
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  size_.store(n + 1, std::memory_order_release);
  return slots_[n].histogram.get();
}

void StageRegistry::record(std::string_view name, std::chrono::nanoseconds duration) noexcept {
  if (LatencyHistogram* histogram = find_or_add(name)) {
    histogram->record(duration);
  }
}

std::vector<std::string> StageRegistry::names() const {
  const std::size_t n = size_.load(std::memory_order_acquire);
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(slots_[i].name);
  }
  return out;
}

void StageRegistry::advance() {
  const std::size_t n = size_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; ++i) {
    slots_[i].histogram->advance();
  }
}

StageBreakdown StageRegistry::breakdown(std::chrono::nanoseconds request_time) const {
  return make_breakdown(request_time, [](LatencyHistogram& h) { return h.cumulative(); });
}

StageBreakdown StageRegistry::window_breakdown(std::chrono::nanoseconds request_time) {
  return make_breakdown(request_time, [](LatencyHistogram& h) { return h.window(); });
}

template <typename SnapshotOf>
StageBreakdown StageRegistry::make_breakdown(std::chrono::nanoseconds request_time, SnapshotOf snapshot_of) const {
  StageBreakdown out;
  out.dropped_records = dropped_.load(std::memory_order_relaxed);
  const std::size_t n = size_.load(std::memory_order_acquire);
  std::chrono::nanoseconds stage_total{0};
  std::chrono::nanoseconds ai_total{0};
  bool has_ai = false;
  for (std::size_t i = 0; i < n; ++i) {
    const HistogramSnapshot snap = snapshot_of(*slots_[i].histogram);
    StageStats stats;
    stats.name = slots_[i].name;
    stats.count = snap.count;
    stats.total = std::chrono::nanoseconds{static_cast<std::int64_t>(snap.sum_ns)};
    if (const auto mean = snap.mean_ns()) {
      stats.mean_ms = *mean / 1e6;
    }
    stats.p50_ms = snap.percentile_ms(50);
    stats.p95_ms = snap.percentile_ms(95);
    stats.p99_ms = snap.percentile_ms(99);
    stage_total += stats.total;
    if (stats.name == kAiStage) {
      ai_total = stats.total;
      has_ai = true;
    }
    out.stages.push_back(std::move(stats));
  }
  out.reference_is_requests = request_time.count() > 0;
  out.reference_time = out.reference_is_requests ? request_time : stage_total;
  const double reference = static_cast<double>(out.reference_time.count());
  for (auto& stats : out.stages) {
    if (reference > 0) {
      stats.share_percent = static_cast<double>(stats.total.count()) / reference * 100.0;
    }
  }
  std::stable_sort(out.stages.begin(), out.stages.end(),
                   [](const StageStats& a, const StageStats& b) { return a.total > b.total; });
  if (!out.stages.empty() && out.stages.front().total.count() > 0) {
    out.bottleneck = out.stages.front().name;
  }
  if (reference > 0) {
    // No "ai" stage recorded means no AI time: 0%, not unknown.
    out.ai_overhead_percent = has_ai ? static_cast<double>(ai_total.count()) / reference * 100.0 : 0.0;
  }
  return out;
}

}  // namespace riptide::performance
