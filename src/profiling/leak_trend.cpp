#include "riptide/performance/profiling/leak_trend.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

namespace riptide::performance {
namespace {

// Running sums of one segment, so a split's two fits cost O(1) each.
struct Sums {
  double n = 0, t = 0, y = 0, tt = 0, ty = 0, yy = 0;
  void add(const GrowthPoint& p, double t0) {
    const double t_rel = p.t_sec - t0;
    n += 1;
    t += t_rel;
    y += p.bytes;
    tt += t_rel * t_rel;
    ty += t_rel * p.bytes;
    yy += p.bytes * p.bytes;
  }
  [[nodiscard]] Sums minus(const Sums& o) const { return {n - o.n, t - o.t, y - o.y, tt - o.tt, ty - o.ty, yy - o.yy}; }
};

struct LineFit {
  double slope = 0;
  double r_squared = 0;
  double sse = 0;  // residual sum of squares
};

LineFit fit_line(const Sums& s) {
  LineFit fit;
  if (s.n < 2) return fit;
  const double stt = s.tt - s.t * s.t / s.n;
  const double sty = s.ty - s.t * s.y / s.n;
  const double syy = std::max(s.yy - s.y * s.y / s.n, 0.0);
  if (!(stt > 0)) {
    fit.sse = syy;
    return fit;
  }
  fit.slope = sty / stt;
  fit.sse = std::max(syy - fit.slope * sty, 0.0);
  fit.r_squared = syy > 0 ? std::clamp(1.0 - fit.sse / syy, 0.0, 1.0) : (fit.slope != 0 ? 1.0 : 0.0);
  return fit;
}

constexpr std::size_t kMinSegment = 3;
// How unlikely the last part's few samples must be, had the growth gone on, to call it stopped.
constexpr double kStoppedSignificance = 0.001;
// Observations without a new high before a stop counts: a leak that skips one interval has not stopped.
constexpr std::size_t kMinSincePeak = 3;
// A releasing site is a leak underneath only when its lows rise by this many samples at least, each of
// the last kRisingLows above the one before, along a line this straight.
constexpr double kMinLowRise = 4.0;
constexpr std::size_t kRisingLows = 3;
constexpr double kLowsMinRSquared = 0.9;

// Samples behind a rise of `bytes` (none for a fall).
long samples_in(double bytes, double bytes_per_sample) {
  return bytes > 0 ? std::lround(bytes / bytes_per_sample) : 0;
}

struct Regime {
  std::size_t start = 0;
  double trough = 0;  // lowest estimate in the regime
  double trough_t = 0;
};

// Splits the history at its releases: each regime starts where the site fell from its peak since the
// previous release by a tenth of that peak and at least two samples. A fall is always real: a sample
// leaves the estimate only when its object is freed.
std::vector<Regime> regimes_of(std::span<const GrowthPoint> history, double bytes_per_sample) {
  std::vector<Regime> regimes;
  if (history.empty()) return regimes;
  regimes.push_back({0, history.front().bytes, history.front().t_sec});
  double peak = history.front().bytes;
  for (std::size_t i = 1; i < history.size(); ++i) {
    const double bytes = history[i].bytes;
    const double given_back = peak - bytes;
    if (given_back >= 0.1 * peak && given_back >= 2 * bytes_per_sample) {
      regimes.push_back({i, bytes, history[i].t_sec});
      peak = bytes;
      continue;
    }
    Regime& current = regimes.back();
    if (bytes < current.trough) {
      current.trough = bytes;
      current.trough_t = history[i].t_sec;
    }
    peak = std::max(peak, bytes);
  }
  return regimes;
}

// Step 1, a site with releases: judged by its lows. It grows only when its last lows each rose, all of them
// lie along a rising line (the growth threshold, r^2 >= kLowsMinRSquared), and the latest is the highest and
// above the first by kMinLowRise samples and three random-walk deviations.
GrowthAssessment assess_lows(const std::vector<Regime>& regimes, std::size_t history_size, std::size_t min_points,
                             const GrowthRules& rules, double per_sample) {
  GrowthAssessment result;
  const Regime& last = regimes.back();
  result.regime_start = last.start;
  result.regime_points = history_size - last.start;
  if (result.regime_points < min_points) return result;
  Sums lows;
  double highest_earlier = 0;
  for (std::size_t r = 0; r < regimes.size(); ++r) {
    lows.add({regimes[r].trough_t, regimes[r].trough}, regimes.front().trough_t);
    if (r + 1 < regimes.size()) highest_earlier = std::max(highest_earlier, regimes[r].trough);
  }
  const LineFit fit = fit_line(lows);
  result.slope = fit.slope;
  result.r_squared = fit.r_squared;
  // Churn moves a site's samples like a random walk around its level (a deviation of about the square
  // root of its samples): the lows must rise beyond three of those.
  const double rise = last.trough - regimes.front().trough;
  const double walk = 3.0 * std::sqrt(std::max(last.trough, 0.0) / per_sample);
  // Each of the last kRisingLows lows above the one before: a site whose lows rose once (a cache filling
  // up under churn) and then wander has stopped.
  bool still_rising = regimes.size() > kRisingLows;
  for (std::size_t r = regimes.size() - kRisingLows; still_rising && r < regimes.size(); ++r) {
    still_rising = regimes[r].trough > regimes[r - 1].trough;
  }
  const bool lows_rise = still_rising && fit.slope >= rules.min_growth_bytes_per_sec &&
                         fit.r_squared >= kLowsMinRSquared && last.trough >= highest_earlier &&
                         rise >= std::max(kMinLowRise, walk) * per_sample;
  result.verdict = lows_rise ? GrowthVerdict::growing : GrowthVerdict::returns_to_earlier_levels;
  return result;
}

// Step 2, a plateau: no new high since the maximum was first reached. Had the growth just before it gone
// on (n samples over the span_before preceding the peak, twice the time since), no sample would have landed
// since with probability (span_before / (span_before + span_after))^n: the estimates move in whole
// samples, so counting them is exact where a slope fitted to a few points is not. The recent growth, not
// the whole history's: a leak that slowed down has not stopped.
std::optional<GrowthAssessment> plateau_of(std::span<const GrowthPoint> history, const GrowthRules& rules,
                                           double per_sample) {
  const auto peak = std::max_element(history.begin(), history.end(),
                                     [](const GrowthPoint& a, const GrowthPoint& b) { return a.bytes < b.bytes; });
  const auto since_peak = static_cast<std::size_t>(history.end() - peak) - 1;
  const double span_after = history.back().t_sec - peak->t_sec;
  if (!(span_after > 0) || since_peak < kMinSincePeak) return std::nullopt;
  const double window_start = peak->t_sec - 2.0 * span_after;
  const auto from = std::find_if(history.begin(), peak, [&](const GrowthPoint& p) { return p.t_sec >= window_start; });
  const double span_before = peak->t_sec - from->t_sec;
  const long grown = samples_in(peak->bytes - from->bytes, per_sample);
  if (!(span_before > 0) || grown <= 0 || (peak->bytes - from->bytes) / span_before < rules.min_growth_bytes_per_sec) {
    return std::nullopt;
  }
  const double none_since = std::pow(span_before / (span_before + span_after), static_cast<double>(grown));
  if (none_since >= kStoppedSignificance) return std::nullopt;
  GrowthAssessment result;
  result.verdict = GrowthVerdict::plateau;
  result.regime_start = static_cast<std::size_t>(peak - history.begin());
  result.regime_points = static_cast<std::size_t>(history.end() - peak);
  return result;
}

// Prefix sums of a history's points, so any segment's line fit costs O(1).
struct HistorySums {
  explicit HistorySums(std::span<const GrowthPoint> history) : prefix(history.size() + 1) {
    const double t0 = history.empty() ? 0.0 : history.front().t_sec;
    for (std::size_t i = 0; i < history.size(); ++i) {
      prefix[i + 1] = prefix[i];
      prefix[i + 1].add(history[i], t0);
    }
  }
  [[nodiscard]] const Sums& all() const { return prefix.back(); }
  [[nodiscard]] Sums before(std::size_t k) const { return prefix[k]; }
  [[nodiscard]] Sums from(std::size_t k) const { return all().minus(prefix[k]); }
  // Where two lines fit best (least squared error), both parts at least kMinSegment long; 0 when the
  // history is too short to split.
  [[nodiscard]] std::size_t best_split() const {
    const std::size_t size = prefix.size() - 1;
    std::size_t split = 0;
    double best_sse = std::numeric_limits<double>::infinity();
    for (std::size_t k = kMinSegment; k + kMinSegment <= size; ++k) {
      const double sse = fit_line(before(k)).sse + fit_line(from(k)).sse;
      if (sse < best_sse) {
        best_sse = sse;
        split = k;
      }
    }
    return split;
  }
  std::vector<Sums> prefix;
};

// How a site's estimate moved between observations, in samples: what arrived and what left.
struct StepTotals {
  double rises = 0;          // sum of the rises
  double falls = 0;          // sum of the falls (positive)
  double squared_steps = 0;  // sum of squared steps
  std::size_t steps = 0;
  [[nodiscard]] bool fell() const { return falls >= 1.0; }
};

StepTotals steps_of(std::span<const GrowthPoint> history, double per_sample) {
  StepTotals totals;
  for (std::size_t i = 1; i < history.size(); ++i) {
    const double step = (history[i].bytes - history[i - 1].bytes) / per_sample;
    (step > 0 ? totals.rises : totals.falls) += std::abs(step);
    totals.squared_steps += step * step;
    ++totals.steps;
  }
  return totals;
}

// Step 3, the fit: the whole history, or its last part when growth started late (the split with the least
// squared error, both parts at least kMinSegment long). A site whose estimate also fell churns: its samples
// come and go, so its estimate wanders even when its true size is flat, and two checks guard the fit:
//  - the whole judged part: the net rise must exceed three deviations of a random walk with the steps
//    seen (sqrt(steps * mean squared step), the mean over the whole history);
//  - its recent half (at least 2 * min_observations): the rise there must exceed three deviations of the
//    samples that arrived and left there (counts, each varying by about its square root). A cache that
//    filled and then only replaces entries still fits a rising line over its whole history for minutes,
//    and wanders to new highs by chance; its recent half does not rise beyond its own churn.
// (A site that never fell is exempt: a slow leak's steps are all rises.)
bool rises_beyond_churn(std::span<const GrowthPoint> history, std::size_t from, std::size_t min_points,
                        double mean_squared_step, double per_sample) {
  const std::size_t judged = history.size() - from;
  const double net = (history.back().bytes - history[from].bytes) / per_sample;
  if (net < 3.0 * std::sqrt(static_cast<double>(judged - 1) * mean_squared_step)) return false;
  const auto recent = history.last(std::max(judged / 2, std::min(judged, 2 * min_points)));
  const StepTotals moved = steps_of(recent, per_sample);
  const double recent_rise = (recent.back().bytes - recent.front().bytes) / per_sample;
  return recent_rise >= 3.0 * std::sqrt(moved.rises + moved.falls);
}

GrowthAssessment assess_fit(std::span<const GrowthPoint> history, std::size_t min_points, const GrowthRules& rules,
                            double per_sample) {
  const HistorySums sums(history);
  const StepTotals all_steps = steps_of(history, per_sample);
  const double mean_squared_step =
      all_steps.steps > 0 ? all_steps.squared_steps / static_cast<double>(all_steps.steps) : 0;
  const auto passes = [&](const LineFit& fit, std::size_t from) {
    return fit.slope >= rules.min_growth_bytes_per_sec && fit.r_squared >= rules.min_r_squared &&
           (!all_steps.fell() || rises_beyond_churn(history, from, min_points, mean_squared_step, per_sample));
  };

  GrowthAssessment result;
  result.regime_points = history.size();
  const LineFit whole = fit_line(sums.all());
  result.slope = whole.slope;
  result.r_squared = whole.r_squared;
  if (passes(whole, 0)) {
    result.verdict = GrowthVerdict::growing;
    return result;
  }
  result.verdict = GrowthVerdict::too_slow;
  const std::size_t split = sums.best_split();
  if (split == 0) return result;
  const LineFit late = fit_line(sums.from(split));
  if (history.size() - split >= min_points && passes(late, split)) {
    result.verdict = GrowthVerdict::growing;
    result.slope = late.slope;
    result.r_squared = late.r_squared;
    result.regime_start = split;
    result.regime_points = history.size() - split;
  }
  return result;
}

}  // namespace

const char* to_string(GrowthVerdict verdict) noexcept {
  switch (verdict) {
    case GrowthVerdict::too_short:
      return "too_short";
    case GrowthVerdict::growing:
      return "growing";
    case GrowthVerdict::too_slow:
      return "too_slow";
    case GrowthVerdict::plateau:
      return "plateau";
    case GrowthVerdict::returns_to_earlier_levels:
      return "returns_to_earlier_levels";
  }
  return "unknown";
}

GrowthAssessment assess_growth(std::span<const GrowthPoint> history, const GrowthRules& rules,
                               double bytes_per_sample) {
  const std::size_t min_points = std::max<std::size_t>(rules.min_observations, 2);
  const double per_sample = std::max(bytes_per_sample, 1.0);
  const std::vector<Regime> regimes = regimes_of(history, per_sample);
  if (regimes.size() > 1) return assess_lows(regimes, history.size(), min_points, rules, per_sample);
  if (history.size() < min_points) {
    GrowthAssessment too_short;
    too_short.regime_points = history.size();
    return too_short;
  }
  if (auto plateau = plateau_of(history, rules, per_sample)) return *plateau;
  return assess_fit(history, min_points, rules, per_sample);
}

}  // namespace riptide::performance
