// Replays a block-access trace (ARC paper format: "start count ignored request" per line, zstd-compressed)
// through TinyLfuCache and through an exact LRU of the same capacity, and prints one JSON object per
// policy: {"policy":…,"capacity":…,"accesses":…,"hit_ratio":…}.
//
//   cache_trace_replay --trace ../shared/traces/OLTP.lis.zst --capacity 1000 [--capacity 2000 ...]
//
// Each access is get(key), and put(key) after a miss: what a read-through cache in front of a store does.
// The cache runs with its defaults (adaptive window); nothing is tuned per trace.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "riptide/performance/cache/tiny_lfu_cache.hpp"

namespace rp = riptide::performance;

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

std::vector<std::uint64_t> read_trace(const std::string& path) {
  const bool compressed = path.size() > 4 && path.compare(path.size() - 4, 4, ".zst") == 0;
  std::string quoted = "'";
  for (char c : path) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  quoted += "'";
  FILE* input = compressed ? ::popen(("zstd -dc -- " + quoted).c_str(), "r") : std::fopen(path.c_str(), "r");
  if (input == nullptr) usage(("cannot open " + path).c_str());
  std::vector<std::uint64_t> accesses;
  char line[512];
  std::size_t line_number = 0;
  while (std::fgets(line, sizeof(line), input) != nullptr) {
    ++line_number;
    char* end = nullptr;
    const unsigned long long start = std::strtoull(line, &end, 10);
    if (end == line) continue;  // blank or comment line
    char* count_end = nullptr;
    const unsigned long long count = std::strtoull(end, &count_end, 10);
    if (count_end == end) {
      std::fprintf(stderr, "cache_trace_replay: %s:%zu: expected '<start> <count> ...'\n", path.c_str(), line_number);
      std::exit(1);
    }
    for (unsigned long long i = 0; i < count; ++i) accesses.push_back(start + i);
  }
  const int status = compressed ? ::pclose(input) : std::fclose(input);
  if (status != 0) usage(("reading " + path + " failed (is zstd installed?)").c_str());
  if (accesses.empty()) usage(("no accesses in " + path).c_str());
  return accesses;
}

double replay_lru(const std::vector<std::uint64_t>& accesses, std::uint64_t capacity) {
  std::list<std::uint64_t> order;  // front = most recent
  std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> index;
  index.reserve(capacity * 2);
  std::uint64_t hits = 0;
  for (const std::uint64_t key : accesses) {
    auto found = index.find(key);
    if (found != index.end()) {
      ++hits;
      order.splice(order.begin(), order, found->second);
      continue;
    }
    if (index.size() >= capacity) {
      index.erase(order.back());
      order.pop_back();
    }
    order.push_front(key);
    index.emplace(key, order.begin());
  }
  return static_cast<double>(hits) / static_cast<double>(accesses.size());
}

double replay_tinylfu(const std::vector<std::uint64_t>& accesses, std::uint64_t capacity, rp::L1CacheStats& stats) {
  rp::TinyLfuCache<std::uint64_t, std::uint64_t>::Options options;
  options.max_weight = capacity;
  rp::TinyLfuCache<std::uint64_t, std::uint64_t> cache(options);
  std::uint64_t hits = 0;
  for (const std::uint64_t key : accesses) {
    if (cache.get(key)) {
      ++hits;
    } else {
      cache.put(key, key);
    }
  }
  stats = cache.stats();
  return static_cast<double>(hits) / static_cast<double>(accesses.size());
}

void print(const char* policy, std::uint64_t capacity, std::size_t accesses, double hit_ratio,
           const rp::L1CacheStats* stats) {
  nlohmann::json line{{"policy", policy}, {"capacity", capacity}, {"accesses", accesses}, {"hit_ratio", hit_ratio}};
  if (stats != nullptr) {
    line["shards"] = stats->shards;
    line["final_window_share"] =
        static_cast<double>(stats->window_max_weight) / static_cast<double>(std::max<std::uint64_t>(1, capacity));
  }
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
  const auto accesses = read_trace(trace);
  for (const std::uint64_t capacity : capacities) {
    if (policy != "lru") {
      rp::L1CacheStats stats;
      const double ratio = replay_tinylfu(accesses, capacity, stats);
      print("w-tinylfu", capacity, accesses.size(), ratio, &stats);
    }
    if (policy != "tinylfu") print("lru", capacity, accesses.size(), replay_lru(accesses, capacity), nullptr);
  }
  return 0;
}
