#include "riptide/performance/profiling/allocation_analyzer.hpp"

#include <unistd.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

namespace riptide::performance {
namespace {

// Seconds since this process started, for a first rate when there is no earlier reading.
double process_uptime_seconds() {
  std::ifstream stat("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = content.rfind(')');  // the command name may contain spaces
  std::ifstream uptime_file("/proc/uptime");
  double uptime = 0;
  uptime_file >> uptime;
  if (close == std::string::npos || uptime <= 0) {
    return 0;
  }
  std::istringstream fields(content.substr(close + 2));
  std::string field;
  // Fields after ")" start at field 3 (state); starttime is field 22.
  for (int index = 3; index <= 22 && (fields >> field); ++index) {
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double started = std::strtod(field.c_str(), nullptr) / (ticks > 0 ? ticks : 100.0);
  return std::max(0.0, uptime - started);
}

std::string human_bytes(double bytes) {
  std::array<char, 32> buffer{};
  if (bytes >= 1024.0 * 1024.0) {
    std::snprintf(buffer.data(), buffer.size(), "%.1f MiB", bytes / (1024.0 * 1024.0));
  } else if (bytes >= 1024.0) {
    std::snprintf(buffer.data(), buffer.size(), "%.1f KiB", bytes / 1024.0);
  } else {
    std::snprintf(buffer.data(), buffer.size(), "%.0f B", bytes);
  }
  return buffer.data();
}

std::string fixed(double value, int decimals) {
  std::array<char, 32> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%.*f", decimals, value);
  return buffer.data();
}

// Requests include thread-cache hits; frees that stay in a thread cache are not counted per object, but
// objects out of the arena are exact, so frees = requests - current.
std::uint64_t frees_of(const SizeClassStats& size_class) {
  return size_class.nrequests > size_class.current ? size_class.nrequests - size_class.current : 0;
}

}  // namespace

std::optional<AllocationCounters> read_allocation_counters() {
  static const JemallocStats stats;  // translates every MIB once
  if (!stats.available() || !JemallocStats::refresh_epoch()) {
    return std::nullopt;
  }
  auto counters = stats.read(/*with_size_classes=*/true);
  if (!counters || !counters->size_classes) {
    return std::nullopt;
  }
  AllocationCounters result;
  result.size_classes = *counters->size_classes;
  result.read_at = std::chrono::steady_clock::now();
  return result;
}

AllocationAnalyzer::AllocationAnalyzer(ProfilingConfig config, const Clock& clock, Symbolizer* symbolizer,
                                       std::size_t top_n, std::shared_ptr<HeapProfileCache> profiles)
    : config_(std::move(config)),
      clock_(clock),
      symbolizer_(symbolizer != nullptr ? symbolizer : &Symbolizer::shared()),
      top_n_(top_n),
      profiles_(profiles ? std::move(profiles) : std::make_shared<HeapProfileCache>(config_.dump_directory, clock)),
      created_at_(clock.steady_now()) {
  if (symbolizer == nullptr) {
    Symbolizer::shared().set_limits(symbolizer_limits(config_));
  }
}

AllocationStats AllocationAnalyzer::analyze(const std::optional<AllocationRate>& recent) {
  auto counters = read_allocation_counters();
  if (counters) {
    counters->read_at = clock_.steady_now();
  }
  const auto status = HeapProfilingControl::status();
  if (!config_.allocation_tracking || !status.available) {
    auto stats = analyze(counters, nullptr, false, recent);
    if (!config_.allocation_tracking) {
      stats.reason = "allocation sites are off (profiling.allocation_tracking = false)";
    }
    return stats;
  }
  auto profile = profiles_->get(shared_profile_max_age(config_));
  if (!profile) {
    auto stats = analyze(counters, nullptr, false, recent);
    stats.reason = "allocation sites unavailable: " + profile.error().to_string();
    return stats;
  }
  auto stats = analyze(counters, profile.value(), status.accumulating, recent);
  stats.sites_age_seconds =
      std::chrono::duration<double>(profiles_->age().value_or(std::chrono::nanoseconds{0})).count();
  return stats;
}

AllocationStats AllocationAnalyzer::analyze(const std::optional<AllocationCounters>& counters,
                                            const HeapProfileCache::Profile& profile, bool profile_accumulates,
                                            const std::optional<AllocationRate>& recent) {
  std::lock_guard lock(mutex_);
  if (profile) rank_locked(*profile, profile_accumulates, profile);
  return analyze_locked(counters, profile.get(), profile_accumulates, recent);
}

void AllocationAnalyzer::rank_locked(const HeapProfile& profile, bool accumulates,
                                     const HeapProfileCache::Profile& keep) {
  const bool same_profile =
      keep && keep.get() == &profile && !ranked_.profile.owner_before(keep) && !keep.owner_before(ranked_.profile);
  if (same_profile && ranked_.accumulates == accumulates) return;
  ranked_ = rank_sites(profile, accumulates);
  ranked_.profile = keep;  // empty for a caller's own profile: ranked now, never matched again
}

AllocationAnalyzer::RankedSites AllocationAnalyzer::rank_sites(const HeapProfile& profile, bool accumulates) const {
  RankedSites ranked;
  ranked.accumulates = accumulates;
  const auto sites = aggregate_by_site(profile, *symbolizer_);
  // Sites are named by attribution (each stack resolved up to the program's own frame); the full stacks
  // are symbolized only for the sites shown.
  struct Figures {
    const HeapSite* site;
    double count;
    double bytes;
    double bytes_variance;
    std::uint64_t samples;
  };
  double total_bytes = 0;
  std::vector<Figures> all;
  all.reserve(sites.size());
  for (const auto& site : sites) {
    const double count = accumulates ? site.counts.alloc_objects : site.counts.live_objects;
    const double bytes = accumulates ? site.counts.alloc_bytes : site.counts.live_bytes;
    const auto samples = accumulates ? site.counts.sampled_alloc_objects : site.counts.sampled_live_objects;
    if (samples == 0) {
      continue;
    }
    total_bytes += bytes;
    const double variance = accumulates ? site.counts.alloc_bytes_variance : site.counts.live_bytes_variance;
    all.push_back({&site, count, bytes, variance, samples});
  }
  const auto entry_of = [&](const Figures& figures) {
    AllocationSite entry;
    const SiteLocation& site = figures.site->location;
    entry.location = site.location();
    entry.function = site.display_name;
    entry.function_full = site.function;
    entry.file = site.file;
    entry.line = site.line;
    entry.count = static_cast<std::uint64_t>(std::llround(figures.count));
    entry.total_bytes = static_cast<std::uint64_t>(std::llround(figures.bytes));
    entry.average_size = entry.count > 0 ? entry.total_bytes / entry.count : 0;
    entry.relative_error = 1.0 / std::sqrt(static_cast<double>(figures.samples));
    entry.size_error_bytes = static_cast<std::uint64_t>(std::llround(std::sqrt(figures.bytes_variance)));
    entry.percentage_of_total = total_bytes > 0 ? 100.0 * figures.bytes / total_bytes : 0;
    entry.stack = describe_stack(figures.site->stack, *symbolizer_, kMaxSiteStackFrames);
    return entry;
  };
  const auto top = [&](auto key) {
    const auto n = std::min(top_n_, all.size());
    // Ties broken by site id so the two lists and repeated rankings agree.
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                      [&](const Figures& a, const Figures& b) {
                        const auto ka = key(a);
                        const auto kb = key(b);
                        return ka != kb ? ka > kb : a.site->id < b.site->id;
                      });
    std::vector<AllocationSite> sorted;
    sorted.reserve(n);
    for (std::size_t i = 0; i < n; ++i) sorted.push_back(entry_of(all[i]));
    return sorted;
  };
  ranked.by_count = top([](const Figures& f) { return std::llround(f.count); });
  ranked.by_bytes = top([](const Figures& f) { return std::llround(f.bytes); });
  symbolizer_->trim();
  return ranked;
}

AllocationStats AllocationAnalyzer::analyze(const std::optional<AllocationCounters>& counters,
                                            const HeapProfile* profile, bool profile_accumulates,
                                            const std::optional<AllocationRate>& recent) {
  std::lock_guard lock(mutex_);
  if (profile != nullptr) rank_locked(*profile, profile_accumulates, nullptr);
  return analyze_locked(counters, profile, profile_accumulates, recent);
}

AllocationStats AllocationAnalyzer::analyze_locked(const std::optional<AllocationCounters>& counters,
                                                   const HeapProfile* profile, bool profile_accumulates,
                                                   const std::optional<AllocationRate>& recent) {
  AllocationStats stats;
  stats.timestamp = clock_.system_now();

  if (counters) {
    stats.available = true;
    for (const auto& size_class : counters->size_classes) {
      stats.total_allocations += size_class.nrequests;
      stats.total_deallocations += frees_of(size_class);
      stats.total_allocated_bytes += size_class.nrequests * size_class.size;
      stats.size_classes.push_back(size_class);
    }
    stats.live_allocations =
        static_cast<std::int64_t>(stats.total_allocations) - static_cast<std::int64_t>(stats.total_deallocations);
    if (stats.total_allocations > 0) {
      stats.average_allocation_size =
          static_cast<double>(stats.total_allocated_bytes) / static_cast<double>(stats.total_allocations);
      const std::uint64_t half = (stats.total_allocations + 1) / 2;
      std::uint64_t seen = 0;
      for (const auto& size_class : counters->size_classes) {  // ascending size
        seen += size_class.nrequests;
        if (seen >= half) {
          stats.median_allocation_size = size_class.size;
          break;
        }
      }
    }
    // Rates over the window the caller measured (the sampler's last minute), else over the process lifetime.
    double allocated_per_second = 0;
    double freed_per_second = 0;
    if (recent) {
      allocated_per_second = recent->allocations_per_second;
      freed_per_second = recent->deallocations_per_second;
      stats.rate_window_seconds = std::chrono::duration<double>(recent->span).count();
    } else if (const double seconds = process_uptime_seconds(); seconds > 0) {
      allocated_per_second = static_cast<double>(stats.total_allocations) / seconds;
      freed_per_second = static_cast<double>(stats.total_deallocations) / seconds;
      stats.rate_window_seconds = seconds;
    }
    stats.allocation_rate_per_second = allocated_per_second;
    stats.deallocation_rate_per_second = freed_per_second;
    stats.allocation_deallocation_ratio =
        freed_per_second > 0 ? allocated_per_second / freed_per_second : (allocated_per_second > 0 ? INFINITY : 1.0);
  } else {
    stats.reason = JemallocCtl::availability().reason;
  }

  if (profile != nullptr) {
    stats.sites_available = true;
    stats.sites_basis = profile_accumulates ? "cumulative" : "in_use";
    stats.sample_interval_bytes = profile->sample_period;
    stats.top_allocators = ranked_.by_count;
    stats.top_allocators_by_bytes = ranked_.by_bytes;
  } else if (stats.reason.empty()) {
    stats.reason = HeapProfilingControl::unavailable_error().to_string();
  }

  // Advice a developer can act on, most specific first.
  auto& advice = stats.recommendations;
  if (!stats.top_allocators.empty()) {
    std::uint64_t counted = 0;
    for (const auto& site : stats.top_allocators) {
      counted += site.count;
    }
    const auto& hottest = stats.top_allocators.front();
    const double share = counted > 0 ? 100.0 * static_cast<double>(hottest.count) / static_cast<double>(counted) : 0;
    if (share >= 20.0) {
      advice.push_back(hottest.location + " makes " + fixed(share, 0) + "% of sampled allocations (average " +
                       human_bytes(static_cast<double>(hottest.average_size)) +
                       "): reuse one buffer across iterations, reserve() containers up front, or allocate from a "
                       "per-request arena");
    }
  }
  if (!stats.top_allocators_by_bytes.empty() && stats.sites_basis == "in_use") {
    const auto& biggest = stats.top_allocators_by_bytes.front();
    advice.push_back(biggest.location + " holds " + human_bytes(static_cast<double>(biggest.total_bytes)) +
                     " in use (" + fixed(biggest.percentage_of_total, 0) +
                     "%): check that it is bounded (cache size limit, ttl) or released when done");
  }
  if (stats.available && stats.median_allocation_size > 0 && stats.median_allocation_size <= 64 &&
      stats.allocation_rate_per_second >= 100'000) {
    advice.push_back("half of all allocations are " + std::to_string(stats.median_allocation_size) +
                     " bytes or smaller at " + fixed(stats.allocation_rate_per_second, 0) +
                     "/s: small-object churn; prefer values over heap nodes, small-buffer types, or object pools");
  }
  if (stats.available && stats.allocation_deallocation_ratio > 1.05 &&
      std::isfinite(stats.allocation_deallocation_ratio) && stats.allocation_rate_per_second > 0) {
    advice.push_back("allocations outpaced frees by " + fixed((stats.allocation_deallocation_ratio - 1.0) * 100.0, 0) +
                     "% over the rate window: if that persists, look at GET /metrics/memory/leaks");
  }
  if (stats.sites_available && stats.sites_basis == "in_use") {
    advice.push_back(
        "sites are ranked by live allocations only; start with prof_accum:true "
        "(RIPTIDE_PERF_ENABLE_HEAP_PROFILING() sets it) to rank every allocation made");
  }
  if (!stats.sites_available) {
    advice.push_back(std::string("allocation sites need the heap profiler: ") + kHeapProfilingFix);
  }
  return stats;
}

}  // namespace riptide::performance
