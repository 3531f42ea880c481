#pragma once
// Whether a site's in-use bytes are still growing: the leak detector's verdict on one site's history.
//
// A leak is something that keeps growing. A steady slope over the whole history is not enough: a cache
// that warmed up and then stayed flat still fits a rising line for minutes, and a buffer that grows and
// is released in cycles rises between releases. Jemalloc's estimates move in whole samples (one per R
// bytes allocated, kept until the sampled object is freed), so a slow leak rises in steps with flat
// stretches between them, and a stopped site's estimate stays put. The verdict has three steps:
//   1. Releases. Where the site fell from its peak by a tenth and at least two samples (a fall is always
//      real: a sample leaves the estimate only when its object is freed), a new regime starts. A site
//      with releases is judged by its lows (each regime's lowest estimate): it grows only when each of
//      its last 3 lows rose above the one before, all lows lie along a rising line (the growth threshold,
//      r^2 >= 0.9), and the latest is above the first by 4 samples and by three times the square root of
//      its samples (churn moves a site's samples like a random walk of that deviation): a sawtooth over a
//      leak. Else it returns to earlier levels (a buffer that grows and is freed, a cache that filled up
//      under churn).
//   2. Plateau. Without releases: when the site has not passed its highest estimate for at least 3
//      observations, and for so long that its growth over twice that span just before, had it gone on,
//      would have added a sample with probability over 99.9% ((2/3)^samples grown in that span < 0.1%),
//      growth has stopped. A cache that grew 1.6 MB/s at R = 512 KiB is retired 3 observations after it
//      stopped; a site that grew 128 KB/s takes about 45 s; a slow leak's dry spell and a leak that
//      slowed down are not plateaus.
//   3. Fit. The whole history, or its last part when growth started late (split where two lines fit
//      best, each part at least 3 observations), must rise at least `min_growth_bytes_per_sec` with r^2
//      of at least `min_r_squared`; and when its estimate also fell (churn: samples come and go like a
//      random walk), its net rise must exceed three times the walk's deviation (sqrt(steps * mean
//      squared step), in samples), and the rise of its recent half three times the deviation of the
//      samples that came and went there (sqrt(arrivals + departures)): a cache that filled up and then
//      only replaces entries wanders to new highs by chance, but its recent half does not rise beyond
//      its own churn. The price: a slow leak through the same line as such a cache is reported later.

#include <cstddef>
#include <span>

namespace riptide::performance {

struct GrowthPoint {
  double t_sec = 0;  ///< observation time, seconds (any origin, increasing)
  double bytes = 0;  ///< estimated in-use bytes then
};

struct GrowthRules {
  double min_growth_bytes_per_sec = 1024.0;  ///< profiling.leak_min_growth_bytes_per_sec
  double min_r_squared = 0.8;                ///< profiling.leak_min_r_squared
  std::size_t min_observations = 4;          ///< profiling.leak_min_observations
};

enum class GrowthVerdict {
  too_short,                  ///< fewer observations than min_observations in the judged regime
  growing,                    ///< a suspect
  too_slow,                   ///< slope below the threshold or the fit too poor
  plateau,                    ///< grew, then stopped (change point with a flat last part)
  returns_to_earlier_levels,  ///< released before, and its lows do not rise
};

struct GrowthAssessment {
  GrowthVerdict verdict = GrowthVerdict::too_short;
  double slope = 0;              ///< bytes/s of the judged regime
  double r_squared = 0;          ///< fit quality of that slope
  std::size_t regime_start = 0;  ///< index of the first observation judged
  std::size_t regime_points = 0;
  [[nodiscard]] bool suspect() const noexcept { return verdict == GrowthVerdict::growing; }
};

[[nodiscard]] const char* to_string(GrowthVerdict verdict) noexcept;

/// The verdict on `history` (oldest first). `bytes_per_sample`: what one sample of the site stands for
/// (its live bytes / sampled objects; about R for objects much smaller than R). Pure; O(n).
[[nodiscard]] GrowthAssessment assess_growth(std::span<const GrowthPoint> history, const GrowthRules& rules,
                                             double bytes_per_sample);

}  // namespace riptide::performance
