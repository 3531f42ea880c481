// L1 cache throughput (budget, docs/PERFORMANCE.md: hit >= 20 M ops/s on 1 thread, >= 30 M ops/s on 2 threads).
// Hits: a pre-filled cache read at random keys that are all resident. Misses: reads of absent keys.
// Multi-thread runs share one cache and report total operations per wall-clock second (UseRealTime).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "riptide/performance/cache/tiered_cache.hpp"
#include "riptide/performance/cache/tiny_lfu_cache.hpp"

namespace rp = riptide::performance;

namespace {

constexpr std::uint64_t kCapacity = 1 << 17;
constexpr std::uint64_t kResident = 1 << 16;
constexpr std::size_t kSequence = 1 << 16;

using Cache = rp::TinyLfuCache<std::uint64_t, std::uint64_t>;

Cache& shared_cache() {
  static Cache* cache = [] {
    Cache::Options options;
    options.max_weight = kCapacity;
    options.ttl = std::chrono::hours{1};  // the common configuration: every hit checks expiry
    auto* created = new Cache(options);
    for (std::uint64_t k = 0; k < kResident; ++k) created->put(k, k);
    return created;
  }();
  return *cache;
}

std::vector<std::uint64_t> random_keys(std::uint64_t seed, std::uint64_t offset) {
  std::mt19937_64 random(seed);
  std::vector<std::uint64_t> keys(kSequence);
  for (auto& key : keys) key = offset + random() % kResident;
  return keys;
}

// Zipf(0.99) ranks over the resident keys (YCSB's default skew; Caffeine's benchmarks use the same), drawn
// by inverting the cumulative distribution, then scrambled so hot keys are not neighbours.
std::vector<std::uint64_t> zipf_keys(std::uint64_t seed) {
  static const std::vector<double> cumulative = [] {
    std::vector<double> c(kResident);
    double sum = 0;
    for (std::uint64_t r = 0; r < kResident; ++r) c[r] = (sum += 1.0 / std::pow(static_cast<double>(r + 1), 0.99));
    for (auto& v : c) v /= sum;
    return c;
  }();
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<std::uint64_t> keys(kSequence);
  for (auto& key : keys) {
    const auto rank = static_cast<std::uint64_t>(
        std::lower_bound(cumulative.begin(), cumulative.end(), uniform(random)) - cumulative.begin());
    key = (std::min(rank, kResident - 1) * 0x9e3779b97f4a7c15ULL) % kResident;
  }
  return keys;
}

// Hits on Zipf-distributed keys over all 65,536 resident entries: the usual shape of cache traffic.
void BM_L1Hit(benchmark::State& state) {
  Cache& cache = shared_cache();
  const auto keys = zipf_keys(42 + state.thread_index());
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    auto value = cache.get(keys[i++ & (kSequence - 1)]);
    sum += value ? *value : 0;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_L1Hit)->Name("BM_L1HitZipf")->Threads(1)->Threads(2)->UseRealTime();

// Floors for the Zipf hit row, not the library: the same keys looked up in a read-only table with no
// policy, no expiry check and no recording, shared by the threads. "Flat" keeps key and value in the slot
// (the least memory traffic a hash table can have); "node" keeps a pointer per slot to a heap node holding
// key, value and expiry, as the cache's lock-free table does (one more dependent load per lookup). What
// the cache costs above these is its own work; what the floors cost is this machine's memory system.
struct FloorNode {
  std::uint64_t key;
  std::uint64_t value;
  std::int64_t expires_at;
};

struct FloorTables {
  static constexpr std::uint64_t kSlots = kCapacity;  // load 1/2, as the cache's table
  std::vector<std::pair<std::uint64_t, std::uint64_t>> flat;
  std::vector<FloorNode*> nodes;

  static std::uint64_t home(std::uint64_t key) { return (key * 0x9e3779b97f4a7c15ULL) >> 47; }  // 17 bits

  // Every looked-up key is present, so the probes end at it.
  std::uint64_t flat_value(std::uint64_t key) const {
    std::uint64_t slot = home(key);
    while (flat[slot].first != key) slot = (slot + 1) & (kSlots - 1);
    return flat[slot].second;
  }
  std::uint64_t node_value(std::uint64_t key) const {
    std::uint64_t slot = home(key);
    while (nodes[slot]->key != key) slot = (slot + 1) & (kSlots - 1);
    return nodes[slot]->expires_at >= 0 ? nodes[slot]->value : 0;
  }

  FloorTables() : flat(kSlots, {~0ULL, 0}), nodes(kSlots, nullptr) {
    for (std::uint64_t k = 0; k < kResident; ++k) {
      std::uint64_t i = home(k);
      while (flat[i].first != ~0ULL) i = (i + 1) & (kSlots - 1);
      flat[i] = {k, k};
      i = home(k);
      while (nodes[i] != nullptr) i = (i + 1) & (kSlots - 1);
      nodes[i] = new FloorNode{k, k, 0};
    }
  }
};

const FloorTables& floor_tables() {
  static const FloorTables* tables = new FloorTables();
  return *tables;
}

template <std::uint64_t (FloorTables::*Lookup)(std::uint64_t) const>
void BM_ZipfFloor(benchmark::State& state) {
  const FloorTables& tables = floor_tables();
  const auto keys = zipf_keys(42 + state.thread_index());
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) sum += (tables.*Lookup)(keys[i++ & (kSequence - 1)]);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_TEMPLATE(BM_ZipfFloor, &FloorTables::flat_value)
    ->Name("BM_ZipfFloorFlat")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_ZipfFloor, &FloorTables::node_value)
    ->Name("BM_ZipfFloorNode")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// Hits spread uniformly over the first `range(0)` resident entries. 64 entries sit in L1d: the bare code
// path. 4,096 entries (~0.5 MiB of nodes, table and sketch) fit in L2/L3 on an idle machine. 65,536 entries
// do not: the memory-bound worst case, where every hit pays several cache misses.
void BM_L1HitUniform(benchmark::State& state) {
  Cache& cache = shared_cache();
  std::mt19937_64 random(42 + state.thread_index());
  std::vector<std::uint64_t> keys(kSequence);
  for (auto& key : keys) key = random() % static_cast<std::uint64_t>(state.range(0));
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    auto value = cache.get(keys[i++ & (kSequence - 1)]);
    sum += value ? *value : 0;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_L1HitUniform)->ArgName("keys")->Arg(64)->Arg(4096)->Arg(kResident)->Threads(1)->Threads(2)->UseRealTime();

void BM_L1Miss(benchmark::State& state) {
  Cache& cache = shared_cache();
  const auto keys = random_keys(7 + state.thread_index(), 1ULL << 40);  // never inserted
  std::size_t i = 0;
  std::uint64_t found = 0;
  for (auto _ : state) found += cache.get(keys[i++ & (kSequence - 1)]) ? 1 : 0;
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_L1Miss)->Threads(1)->Threads(2)->UseRealTime();

// Read-through under churn: get, and put after a miss, over a key space twice the capacity.
void BM_L1GetOrPut(benchmark::State& state) {
  static Cache* cache = [] {
    Cache::Options options;
    options.max_weight = 1 << 14;
    return new Cache(options);
  }();
  std::mt19937_64 random(99 + state.thread_index());
  std::vector<std::uint64_t> keys(kSequence);
  for (auto& key : keys) key = random() % (1 << 15);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::uint64_t key = keys[i++ & (kSequence - 1)];
    if (!cache->get(key)) cache->put(key, key);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_L1GetOrPut)->Threads(1)->Threads(2)->UseRealTime();

// TieredCache L1 hit with string keys (what a scraper caching pages does; no Redis configured).
void BM_TieredL1Hit(benchmark::State& state) {
  static rp::TieredCache* cache = [] {
    auto* created = new rp::TieredCache(rp::TieredCache::Options{});
    for (int k = 0; k < 4096; ++k) created->put("https://example.com/page/" + std::to_string(k), std::string(512, 'x'));
    return created;
  }();
  std::vector<std::string> keys;
  std::mt19937_64 random(5 + state.thread_index());
  for (int k = 0; k < 4096; ++k) keys.push_back("https://example.com/page/" + std::to_string(random() % 4096));
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(cache->get(keys[i++ & 4095]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TieredL1Hit)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
