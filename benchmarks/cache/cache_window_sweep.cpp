// The adaptive window against every fixed window share: for each trace and cache size, the hit ratio of
// TinyLfuCache with the adaptive (simulated) window, with each share of window_sweep::kFixedWindowShares fixed, and of
// an exact LRU. Prints a Markdown table (one row per trace and size) and the worst adaptive / best-fixed ratio.
//
//   cache_window_sweep [--traces DIR] [--only SUBSTRING] [--all-shares]
//
// Synthetic traces (seeded, the same on every run): Zipf popularity of several skews over a fixed key set,
// a recency-heavy stream, phases alternating between frequency-heavy and recency-heavy behaviour, and a loop
// over more keys than the cache mixed with a hot set. The synthetic traces other than Zipf are generated for
// the size they are replayed at (their key counts are multiples of it). DIR holds the ARC traces OLTP.lis.zst
// and P3.lis.zst (default ../shared/traces); without them those rows are skipped. Hit ratios involve no timing,
// so the figures do not depend on the machine's load.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "window_sweep.hpp"

namespace ws = riptide::performance::window_sweep;

namespace {

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr,
               "cache_window_sweep: %s\n"
               "usage: cache_window_sweep [--traces DIR] [--only SUBSTRING] [--all-shares]\n"
               "  DIR: holds OLTP.lis.zst and P3.lis.zst (default ../shared/traces)\n"
               "  --only: run the traces whose name contains SUBSTRING\n"
               "  --all-shares: add a column per fixed window share\n",
               problem);
  std::exit(2);
}

struct SweepCase {
  std::string name;
  std::vector<std::uint64_t> sizes;
  bool generated_per_size;  // false: one trace for every size (Zipf, the ARC traces)
  std::function<std::vector<std::uint64_t>(std::uint64_t size)> trace;
};

constexpr std::uint64_t kZipfKeys = 1'000'000;
constexpr std::uint64_t kZipfLength = 3'000'000;
const std::vector<std::uint64_t> kSyntheticSizes{1'000, 10'000, 50'000};

std::vector<SweepCase> sweep_cases(const std::filesystem::path& traces) {
  std::vector<SweepCase> cases;
  for (const double skew : {0.6, 0.8, 1.0, 1.2}) {
    char name[32];
    std::snprintf(name, sizeof(name), "zipf-%.1f", skew);
    cases.push_back({name, kSyntheticSizes, false, [skew](std::uint64_t) {
                       return ws::zipf_trace(kZipfKeys, skew, kZipfLength,
                                             1000 + static_cast<std::uint64_t>(skew * 10));
                     }});
  }
  cases.push_back(
      {"recency", kSyntheticSizes, true, [](std::uint64_t size) { return ws::recency_trace(size, 100 * size, 7); }});
  cases.push_back(
      {"phases", kSyntheticSizes, true, [](std::uint64_t size) { return ws::phase_trace(size, 50 * size, 4, 11); }});
  cases.push_back(
      {"scan", kSyntheticSizes, true, [](std::uint64_t size) { return ws::scan_trace(size, 100 * size, 13); }});
  struct Arc {
    const char* name;
    std::vector<std::uint64_t> sizes;
  };
  for (const Arc& arc : {Arc{"OLTP", {1'000, 10'000, 50'000}}, Arc{"P3", {10'000, 50'000, 100'000}}}) {
    const std::filesystem::path path = traces / (std::string(arc.name) + ".lis.zst");
    if (!std::filesystem::exists(path)) {
      std::fprintf(stderr, "cache_window_sweep: %s not found, skipping %s\n", path.c_str(), arc.name);
      continue;
    }
    cases.push_back({arc.name, arc.sizes, false, [path](std::uint64_t) {
                       auto accesses = ws::read_arc_trace(path.string());
                       if (!accesses) usage(("cannot read " + path.string() + " (is zstd installed?)").c_str());
                       return *accesses;
                     }});
  }
  return cases;
}

std::string percent(double ratio) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f%%", 100 * ratio);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path traces = "../shared/traces";
  std::string only;
  bool all_shares = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage((arg + " needs a value").c_str());
      return argv[++i];
    };
    if (arg == "--traces") {
      traces = value();
    } else if (arg == "--only") {
      only = value();
    } else if (arg == "--all-shares") {
      all_shares = true;
    } else if (arg == "--help" || arg == "-h") {
      usage("help");
    } else {
      usage(("unknown argument " + arg).c_str());
    }
  }

  std::printf(
      "| trace | size | shards | adaptive | final window | best fixed share | best fixed | adaptive / best | LRU |");
  if (all_shares) {
    for (const double share : ws::kFixedWindowShares) std::printf(" %g%% |", 100 * share);
  }
  std::printf("\n|---|---|---|---|---|---|---|---|---|");
  if (all_shares) {
    for (std::size_t i = 0; i < ws::kFixedWindowShares.size(); ++i) std::printf("---|");
  }
  std::printf("\n");
  std::fflush(stdout);

  double worst = 2;
  std::string worst_row;
  std::size_t rows = 0;
  std::size_t below = 0;
  for (const SweepCase& sweep_case : sweep_cases(traces)) {
    if (!only.empty() && sweep_case.name.find(only) == std::string::npos) continue;
    std::vector<std::uint64_t> accesses;
    for (const std::uint64_t size : sweep_case.sizes) {
      if (accesses.empty() || sweep_case.generated_per_size) accesses = sweep_case.trace(size);
      const ws::WindowComparison comparison = ws::compare_windows(accesses, size);
      const double lru = ws::replay_lru(accesses, size);
      const double relative = comparison.adaptive_to_best();
      std::printf("| %s | %llu | %u | %s | %.1f%% | %g%% | %s | %.3f | %s |", sweep_case.name.c_str(),
                  static_cast<unsigned long long>(size), comparison.adaptive.shards,
                  percent(comparison.adaptive.hit_ratio).c_str(), 100 * comparison.adaptive.final_window_share,
                  100 * comparison.best_fixed.window_share, percent(comparison.best_fixed.hit_ratio).c_str(), relative,
                  percent(lru).c_str());
      if (all_shares) {
        for (const ws::FixedWindowResult& fixed : comparison.fixed)
          std::printf(" %s |", percent(fixed.hit_ratio).c_str());
      }
      std::printf("\n");
      std::fflush(stdout);
      ++rows;
      if (relative < 0.95) ++below;
      if (relative < worst) {
        worst = relative;
        worst_row = sweep_case.name + " at " + std::to_string(size);
      }
    }
  }
  if (rows > 0) {
    std::printf("\n%zu rows; adaptive below 95%% of the best fixed share in %zu; worst: %.3f (%s)\n", rows, below,
                worst, worst_row.c_str());
  }
  return 0;
}
