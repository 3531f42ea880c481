// Replays a block-access trace (ARC paper format: "start count ignored request" per line, zstd-compressed)
// through TinyLfuCache and through an exact LRU of the same capacity, and prints one JSON object per
// policy and capacity: {"policy":…,"capacity":…,"accesses":…,"hit_ratio":…}.
//
//   cache_trace_replay --trace ../shared/traces/OLTP.lis.zst --capacity 1000 [--capacity 2000 ...]
//
// Each access is get(key), and put(key) after a miss: what a read-through cache in front of a store does.
// "w-tinylfu" is the cache with its defaults (adaptive window); nothing is tuned per trace. Beside it,
// "w-tinylfu-best-fixed" is the best of the same cache with the window fixed at each share of
// window_sweep::kFixedWindowShares (all of them listed under "fixed"), so any trace shows how close the
// adaptive window comes. The hash seed is pinned: runs repeat exactly.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "window_sweep.hpp"

namespace ws = riptide::performance::window_sweep;

namespace {

[[noreturn]] void usage(const char* problem) {
  std::fprintf(
      stderr,
      "cache_trace_replay: %s\n"
      "usage: cache_trace_replay --trace FILE[.zst] --capacity N [--capacity N ...] [--policy all|tinylfu|lru]\n"
      "  FILE: lines of '<start block> <block count> <ignored> <request>'; .zst files are read via "
      "'zstd -dc'\n",
      problem);
  std::exit(2);
}

void print(const nlohmann::json& line) {
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string trace;
  std::vector<std::uint64_t> capacities;
  std::string policy = "all";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage((arg + " needs a value").c_str());
      return argv[++i];
    };
    if (arg == "--trace") {
      trace = value();
    } else if (arg == "--capacity") {
      const std::string text = value();
      char* end = nullptr;
      const unsigned long long capacity = std::strtoull(text.c_str(), &end, 10);
      if (end == text.c_str() || *end != '\0' || capacity == 0) usage(("bad --capacity " + text).c_str());
      capacities.push_back(capacity);
    } else if (arg == "--policy") {
      policy = value();
      if (policy != "all" && policy != "tinylfu" && policy != "lru") usage(("bad --policy " + policy).c_str());
    } else if (arg == "--help" || arg == "-h") {
      usage("help");
    } else {
      usage(("unknown argument " + arg).c_str());
    }
  }
  if (trace.empty() || capacities.empty()) usage("--trace and --capacity are required");
  const auto read = ws::read_arc_trace(trace);
  if (!read) usage(("cannot read " + trace + " (missing, empty, or a .zst file without zstd installed)").c_str());
  const std::vector<std::uint64_t>& accesses = *read;
  for (const std::uint64_t capacity : capacities) {
    const nlohmann::json common{{"capacity", capacity}, {"accesses", accesses.size()}};
    if (policy != "lru") {
      const ws::WindowComparison windows = ws::compare_windows(accesses, capacity);
      nlohmann::json adaptive = common;
      adaptive["policy"] = "w-tinylfu";
      adaptive["hit_ratio"] = windows.adaptive.hit_ratio;
      adaptive["shards"] = windows.adaptive.shards;
      adaptive["final_window_share"] = windows.adaptive.final_window_share;
      print(adaptive);
      nlohmann::json best = common;
      best["policy"] = "w-tinylfu-best-fixed";
      best["hit_ratio"] = windows.best_fixed.hit_ratio;
      best["window_share"] = windows.best_fixed.window_share;
      best["adaptive_to_best"] = windows.adaptive_to_best();
      nlohmann::json fixed = nlohmann::json::object();
      for (const ws::FixedWindowResult& result : windows.fixed) {
        char share[16];
        std::snprintf(share, sizeof(share), "%g", result.window_share);
        fixed[share] = result.hit_ratio;
      }
      best["fixed"] = fixed;
      print(best);
    }
    if (policy != "tinylfu") {
      nlohmann::json lru = common;
      lru["policy"] = "lru";
      lru["hit_ratio"] = ws::replay_lru(accesses, capacity);
      print(lru);
    }
  }
  return 0;
}
