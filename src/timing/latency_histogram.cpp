#include "riptide/performance/timing/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <thread>

namespace riptide::performance {

// One copy of the counters. Threads are spread over stripes so that two threads recording the same
// latency do not fight over one cache line; alignment keeps stripes (and the hot sum/min/max line) apart.
struct alignas(64) LatencyHistogram::Stripe {
  std::atomic<std::uint64_t> sum_ns{0};
  std::atomic<std::uint64_t> min_ns{std::numeric_limits<std::uint64_t>::max()};
  std::atomic<std::uint64_t> max_ns{0};
  alignas(64) std::array<std::atomic<std::uint64_t>, HistogramLayout::kBucketCount> buckets{};
};

namespace {

// Threads take stripe numbers round-robin on first use; a trivially initialised thread_local needs no
// allocation and is a single TLS load afterwards.
std::atomic<std::uint32_t> g_next_stripe_ticket{0};
thread_local std::uint32_t t_stripe_ticket = 0;  // 0 = not assigned yet

std::uint32_t stripe_ticket() noexcept {
  if (t_stripe_ticket == 0) {
    t_stripe_ticket = g_next_stripe_ticket.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  return t_stripe_ticket - 1;
}

std::size_t default_stripes(std::uint32_t requested) {
  std::size_t n = requested;
  if (n == 0) {
    n = std::max(1U, std::thread::hardware_concurrency());
  }
  return std::min<std::size_t>(std::bit_ceil(n), 8);
}

}  // namespace

std::optional<std::uint64_t> HistogramSnapshot::percentile_ns(double percent) const noexcept {
  if (count == 0 || counts.empty()) {
    return std::nullopt;
  }
  const double clamped = std::clamp(percent, 0.0, 100.0);
  // Nearest rank: the smallest value with at least ceil(p * n) values at or below it.
  auto rank = static_cast<std::uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(count)));
  rank = std::clamp<std::uint64_t>(rank, 1, count);
  if (rank == count) {
    return max_ns;
  }
  if (rank == 1) {
    return min_ns;
  }
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank) {
      const std::uint64_t lo = HistogramLayout::lower_bound(i);
      const std::uint64_t hi = HistogramLayout::upper_bound(i);
      const std::uint64_t mid = lo + (hi - lo) / 2;
      return std::clamp(mid, min_ns, std::max(min_ns, max_ns));
    }
  }
  return max_ns;
}

std::optional<double> HistogramSnapshot::percentile_ms(double percent) const noexcept {
  const auto ns = percentile_ns(percent);
  if (!ns) {
    return std::nullopt;
  }
  return static_cast<double>(*ns) / 1e6;
}

std::optional<double> HistogramSnapshot::mean_ns() const noexcept {
  if (count == 0) {
    return std::nullopt;
  }
  return static_cast<double>(sum_ns) / static_cast<double>(count);
}

std::optional<double> HistogramSnapshot::rate_per_second() const noexcept {
  if (span.count() <= 0) {
    return std::nullopt;
  }
  return static_cast<double>(count) / std::chrono::duration<double>(span).count();
}

LatencyHistogram::LatencyHistogram(const Clock& clock) : LatencyHistogram(clock, Options{}) {}

LatencyHistogram::LatencyHistogram(const Clock& clock, Options options)
    : clock_(clock), options_(options), created_(clock.steady_now()) {
  if (options_.sub_windows == 0) {
    options_.sub_windows = 1;
  }
  if (options_.window.count() <= 0) {
    options_.window = std::chrono::seconds{60};
  }
  const std::size_t n = default_stripes(options_.stripes);
  options_.stripes = static_cast<std::uint32_t>(n);
  stripe_mask_ = n - 1;
  stripes_ = std::make_unique<Stripe[]>(n);
  marks_.push_back(Mark{created_, {}, 0, 0});
}

LatencyHistogram::~LatencyHistogram() = default;

LatencyHistogram::Stripe& LatencyHistogram::stripe_for_this_thread() noexcept {
  return stripes_[stripe_ticket() & stripe_mask_];
}

void LatencyHistogram::record_ns(std::uint64_t value_ns) noexcept {
  Stripe& s = stripe_for_this_thread();
  s.buckets[HistogramLayout::index_of(value_ns)].fetch_add(1, std::memory_order_relaxed);
  s.sum_ns.fetch_add(value_ns, std::memory_order_relaxed);
  // min/max change rarely once warmed up: a plain load settles most calls without a write.
  std::uint64_t seen = s.min_ns.load(std::memory_order_relaxed);
  while (value_ns < seen && !s.min_ns.compare_exchange_weak(seen, value_ns, std::memory_order_relaxed)) {
  }
  seen = s.max_ns.load(std::memory_order_relaxed);
  while (value_ns > seen && !s.max_ns.compare_exchange_weak(seen, value_ns, std::memory_order_relaxed)) {
  }
}

void LatencyHistogram::merge_into(HistogramSnapshot& out) const {
  out.counts.assign(HistogramLayout::kBucketCount, 0);
  out.count = 0;
  out.sum_ns = 0;
  std::uint64_t min_ns = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ns = 0;
  for (std::size_t s = 0; s <= stripe_mask_; ++s) {
    const Stripe& stripe = stripes_[s];
    // Not one atomic cut across counters: a record racing with this read may show in its bucket and not
    // yet in the sum. Each counter only grows, so window differences stay non-negative.
    out.sum_ns += stripe.sum_ns.load(std::memory_order_relaxed);
    min_ns = std::min(min_ns, stripe.min_ns.load(std::memory_order_relaxed));
    max_ns = std::max(max_ns, stripe.max_ns.load(std::memory_order_relaxed));
    for (std::size_t i = 0; i < HistogramLayout::kBucketCount; ++i) {
      const std::uint64_t c = stripe.buckets[i].load(std::memory_order_relaxed);
      out.counts[i] += c;
      out.count += c;
    }
  }
  out.min_ns = out.count == 0 ? 0 : std::min(min_ns, max_ns);
  out.max_ns = out.count == 0 ? 0 : max_ns;
}

HistogramSnapshot LatencyHistogram::cumulative() const {
  HistogramSnapshot out;
  merge_into(out);
  out.span = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.steady_now() - created_);
  if (out.count == 0) {
    out.counts.clear();
  }
  return out;
}

std::uint64_t LatencyHistogram::count() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t s = 0; s <= stripe_mask_; ++s) {
    for (const auto& bucket : stripes_[s].buckets) {
      total += bucket.load(std::memory_order_relaxed);
    }
  }
  return total;
}

void LatencyHistogram::advance() {
  const std::lock_guard lock(marks_mutex_);
  advance_locked(clock_.steady_now());
}

void LatencyHistogram::advance_locked(std::chrono::steady_clock::time_point now) {
  const auto step = options_.window / options_.sub_windows;
  if (now - marks_.back().at < step) {
    return;
  }
  HistogramSnapshot current;
  merge_into(current);
  Mark mark;
  mark.at = now;
  mark.count = current.count;
  mark.sum_ns = current.sum_ns;
  for (std::size_t i = 0; i < current.counts.size(); ++i) {
    if (current.counts[i] != 0) {
      mark.buckets.emplace_back(static_cast<std::uint32_t>(i), current.counts[i]);
    }
  }
  // Keep sub_windows + 1 marks: enough for a base at most one window old.
  if (marks_.size() > options_.sub_windows) {
    marks_.erase(marks_.begin());
  }
  marks_.push_back(std::move(mark));
}

HistogramSnapshot LatencyHistogram::window() {
  const std::lock_guard lock(marks_mutex_);
  const auto now = clock_.steady_now();
  // Base: the oldest mark inside the window, so the view spans window - step .. window when marks are
  // placed regularly. When that mark is less than a step old (marks were not placed for a while, and a
  // previous read just placed one), the newest mark at least a step old instead: the view is then longer
  // than the window and the span says so, rather than an almost empty view.
  const auto step = options_.window / options_.sub_windows;
  const Mark* base = nullptr;
  for (const Mark& mark : marks_) {
    if (now - mark.at <= options_.window) {
      base = &mark;
      break;
    }
  }
  if (base == nullptr || now - base->at < step) {
    base = &marks_.front();
    for (auto it = marks_.rbegin(); it != marks_.rend(); ++it) {
      if (now - it->at >= step) {
        base = &*it;
        break;
      }
    }
  }
  HistogramSnapshot out;
  merge_into(out);
  out.span = std::chrono::duration_cast<std::chrono::nanoseconds>(now - base->at);
  for (const auto& [index, count] : base->buckets) {
    out.counts[index] -= std::min(out.counts[index], count);
  }
  out.count -= std::min(out.count, base->count);
  out.sum_ns -= std::min(out.sum_ns, base->sum_ns);
  advance_locked(now);  // invalidates `base`
  if (out.count == 0) {
    out.counts.clear();
    out.min_ns = 0;
    out.max_ns = 0;
    return out;
  }
  // Exact extremes are only known since start; in a window the first and last occupied buckets give
  // them to within a bucket (their midpoints, kept inside the cumulative extremes).
  std::size_t first = 0;
  while (out.counts[first] == 0) {
    ++first;
  }
  std::size_t last = out.counts.size() - 1;
  while (out.counts[last] == 0) {
    --last;
  }
  const auto mid = [](std::size_t i) {
    return HistogramLayout::lower_bound(i) + (HistogramLayout::upper_bound(i) - HistogramLayout::lower_bound(i)) / 2;
  };
  const std::uint64_t cumulative_min = out.min_ns;
  const std::uint64_t cumulative_max = out.max_ns;
  out.min_ns = std::clamp(mid(first), cumulative_min, cumulative_max);
  out.max_ns = std::clamp(mid(last), cumulative_min, cumulative_max);
  return out;
}

}  // namespace riptide::performance
