// The library's own heap (self_heap.hpp) against real jemalloc with its heap profiler on: the library's work
// is counted and matches the bytes it really holds within the sampling error; the host's own allocations
// and the host's values held in the library's cache containers are not counted.
//
// Samples every 4 KiB on average (lg_prof_sample:12) so the estimates of a few MiB rest on hundreds of
// samples; the assertions use the estimate's own error (error_bytes), not fixed margins, where sampling
// decides.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "riptide/performance/cache/tiered_cache.hpp"
#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"
#include "riptide/performance/profiling/self_heap.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:12,prof_accum:false");

namespace rp = riptide::performance;

// --- Host code: global functions, never inlined, outside namespace riptide::performance.

[[gnu::noinline]] void host_allocates_for_self_heap_test(std::vector<std::unique_ptr<char[]>>& keep,
                                                         std::size_t bytes) {
  constexpr std::size_t kBlock = 4096;
  for (std::size_t done = 0; done < bytes; done += kBlock) {
    keep.emplace_back(new char[kBlock]);
    keep.back()[0] = 1;
  }
}

[[gnu::noinline]] std::optional<std::string> host_loads_a_cache_value(const std::string& key) {
  return std::string(4096, key.back());
}

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

#define SKIP_UNLESS_PROFILING()               \
  if (!rp::HeapProfilingControl::available()) \
  GTEST_SKIP() << "needs jemalloc's heap profiler: " << rp::HeapProfilingControl::status().reason

// Bytes this thread holds from its own allocations (jemalloc's exact per-thread counters).
std::int64_t thread_net_bytes() {
  const auto allocated = rp::JemallocCtl::read_u64("thread.allocated");
  const auto deallocated = rp::JemallocCtl::read_u64("thread.deallocated");
  EXPECT_TRUE(allocated && deallocated);
  return static_cast<std::int64_t>(allocated.value_or(0)) - static_cast<std::int64_t>(deallocated.value_or(0));
}

rp::HeapProfile capture() {
  auto profile = rp::capture_heap_profile();
  EXPECT_TRUE(profile.ok()) << (profile ? "" : profile.error().to_string());
  return profile ? std::move(profile).value() : rp::HeapProfile{};
}

rp::SelfHeapEstimate estimate_now() {
  return rp::estimate_self_heap(capture(), rp::Symbolizer::shared());
}

double combined_error(const rp::SelfHeapEstimate& a, const rp::SelfHeapEstimate& b) {
  return std::hypot(static_cast<double>(a.error_bytes), static_cast<double>(b.error_bytes));
}

std::int64_t delta(const rp::SelfHeapEstimate& before, const rp::SelfHeapEstimate& after) {
  return static_cast<std::int64_t>(after.bytes) - static_cast<std::int64_t>(before.bytes);
}

// A synthetic profile of `sites` distinct allocation sites (addresses outside any module).
rp::HeapProfile synthetic_profile(std::uint64_t sites, std::uint64_t round) {
  rp::HeapProfile profile;
  profile.sample_period = 1;
  profile.stacks.reserve(sites);
  for (std::uint64_t i = 0; i < sites; ++i) {
    const std::uint64_t bytes = 4096 * (1 + (i + round) % 7);
    profile.stacks.push_back(rp::HeapStack{{0x1000 + i * 16, 0x900000}, {1 + i % 3, bytes, 0, 0}});
  }
  return profile;
}

}  // namespace

TEST(FrameClasses, FollowTheMangledNameAndTheModule) {
  const std::string none;
  const auto is = [](std::uint8_t cls, std::uint8_t bits) { return (cls & bits) == bits; };
  // Library: functions, const members, lambdas, nested namespaces, internal linkage.
  EXPECT_TRUE(is(rp::classify_symbol("_ZN7riptide11performance12LeakDetector7observeEv", none), rp::kFrameLibrary));
  EXPECT_TRUE(is(rp::classify_symbol("_ZNK7riptide11performance12LeakDetector7analyzeEv", none), rp::kFrameLibrary));
  EXPECT_TRUE(
      is(rp::classify_symbol("_ZZN7riptide11performance12LeakDetector5startEvENKUlvE_clEv", none), rp::kFrameLibrary));
  EXPECT_TRUE(is(rp::classify_symbol("_ZN7riptide11performance4http6Server5startEv", none), rp::kFrameLibrary));
  EXPECT_TRUE(is(rp::classify_symbol("_ZN7riptide11performanceL6helperEv", none), rp::kFrameLibrary));
  // A function template with a return type in its demangled name is still the library's.
  EXPECT_TRUE(is(rp::classify_symbol("_ZN7riptide11performance3fooIiEEvT_", none), rp::kFrameLibrary));
  // The cache containers: the host's values, not the library's memory.
  const auto tiny_lfu = rp::classify_symbol(
      "_ZN7riptide11performance12TinyLfuCacheINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEiSt4hashIS7_"
      "ESt8equal_toIS7_EE3putERKS7_iSt8optionalINSt6chrono8durationIlSt5ratioILl1ELl1000000000EEEEE",
      none);
  EXPECT_TRUE(is(tiny_lfu, rp::kFrameCacheContainer));
  EXPECT_FALSE(is(tiny_lfu, rp::kFrameLibrary));
  // TinyLfuCache's components (here its shard's table rebuild, which allocates) are the container's too.
  const auto tiny_lfu_shard =
      rp::classify_symbol("_ZN7riptide11performance12cache_detail10CacheShardImmSt8equal_toImEE7rebuildEm", none);
  EXPECT_TRUE(is(tiny_lfu_shard, rp::kFrameCacheContainer));
  EXPECT_FALSE(is(tiny_lfu_shard, rp::kFrameLibrary));
  EXPECT_TRUE(is(rp::classify_symbol("_ZN7riptide11performance11TieredCache3getERKNSt7__cxx1112basic_stringIcSt11"
                                     "char_traitsIcESaIcEEE",
                                     none),
                 rp::kFrameCacheContainer));
  EXPECT_TRUE(is(rp::classify_symbol("_ZNK7riptide11performance10RedisCache3getEv", none), rp::kFrameCacheContainer));
  // Not the library: the host (other namespaces, global functions), std:: and the allocator.
  EXPECT_EQ(rp::classify_symbol("_ZN7riptide7example10parse_htmlEv", none), rp::kFrameOther);
  EXPECT_EQ(rp::classify_symbol("_Z33host_allocates_for_self_heap_testv", none), rp::kFrameOther);
  EXPECT_EQ(rp::classify_symbol("main", none), rp::kFrameOther);
  EXPECT_EQ(rp::classify_symbol(
                "_ZNSt6vectorIiSaIiEE17_M_realloc_insertIJiEEEvN9__gnu_cxx17__normal_iteratorIPiS1_EEDpOT_", none),
            rp::kFrameAllocator);
  EXPECT_EQ(rp::classify_symbol("_Znwm", none), rp::kFrameAllocator);
  EXPECT_EQ(rp::classify_symbol("malloc", none), rp::kFrameAllocator);
  EXPECT_EQ(rp::classify_symbol("je_malloc_default", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
            rp::kFrameAllocator);
  // libdw/libelf: the symbolizer's DWARF reader.
  const auto dwarf = rp::classify_symbol(nullptr, "/usr/lib/x86_64-linux-gnu/libdw-0.188.so");
  EXPECT_TRUE(is(dwarf, rp::kFrameLibrary | rp::kFrameDwarfReader));
}

TEST(FrameClasses, RealAddressesAreClassifiedAndCached) {
  rp::Symbolizer symbolizer;
  const auto library = reinterpret_cast<std::uintptr_t>(&rp::parse_heap_profile) + 1;
  const auto host = reinterpret_cast<std::uintptr_t>(&host_allocates_for_self_heap_test) + 1;
  EXPECT_NE(symbolizer.classify(library) & rp::kFrameLibrary, 0);
  EXPECT_EQ(symbolizer.classify(host) & (rp::kFrameLibrary | rp::kFrameCacheContainer), 0);
  const auto lookups = symbolizer.stats().lookups;
  (void)symbolizer.classify(library);
  (void)symbolizer.classify(host);
  EXPECT_EQ(symbolizer.stats().lookups, lookups) << "a second classification is a table hit";
  EXPECT_EQ(symbolizer.stats().classified_addresses, 2U);
  EXPECT_EQ(symbolizer.cache_size(), 0U) << "classifying fills no frame cache";
  // The outermost riptide frame decides: the library called from the host is the library's.
  EXPECT_EQ(rp::owner_of_stack({library, host}, symbolizer), rp::StackOwner::library);
  EXPECT_EQ(rp::owner_of_stack({host}, symbolizer), rp::StackOwner::host);
}

// Many leak-detector observations of 2,000 distinct sites: the detector's histories are the library's, and
// the estimate's growth matches the bytes this thread really holds for them (jemalloc's exact counters).
TEST(SelfHeap, LibraryWorkIsCountedAndMatchesTheBytesItHolds) {
  SKIP_UNLESS_PROFILING();
  (void)estimate_now();  // classifies this process's frames once, so the tables do not grow in between
  const auto before = estimate_now();
  rp::ProfilingConfig config;
  rp::ManualClock clock;
  const std::int64_t net_before = thread_net_bytes();
  auto detector = std::make_unique<rp::LeakDetector>(config, clock, &rp::Symbolizer::shared());
  constexpr std::uint64_t kSites = 2000;
  for (std::uint64_t round = 0; round < 64; ++round) {
    clock.advance(std::chrono::seconds(30));
    detector->observe(synthetic_profile(kSites, round));
  }
  const std::int64_t held = thread_net_bytes() - net_before;
  const auto after = estimate_now();
  EXPECT_EQ(detector->analyze().tracked_sites, kSites);
  ASSERT_GT(held, 0);
  EXPECT_GT(after.bytes, 0U);
  const double error = combined_error(before, after);
  std::cout << "[ figures  ] library: estimate grew " << delta(before, after) << " B (+-" << std::llround(error) << ", "
            << after.sampled_objects << " samples, R = " << after.sample_interval_bytes << "), exact " << held
            << " B\n";
  EXPECT_NEAR(static_cast<double>(delta(before, after)), static_cast<double>(held), 4 * error)
      << "estimate " << before.bytes << " -> " << after.bytes << " (+-" << error << "), exact " << held << " bytes, "
      << after.sampled_objects << " samples";
  EXPECT_GT(after.sampled_objects, 0U);
  EXPECT_EQ(after.sample_interval_bytes, std::uint64_t{1} << rp::HeapProfilingControl::lg_sample().value_or(0));
  ASSERT_FALSE(after.top_holders.empty());
  EXPECT_TRUE(rp::Symbolizer::shared()
                  .resolve(after.top_holders.front().address)
                  ->function.starts_with("riptide::performance::"))
      << rp::Symbolizer::shared().resolve(after.top_holders.front().address)->location();
}

// A host that holds 50 MiB from its own function: the profile sees it, self_heap_bytes does not count it.
TEST(SelfHeap, HostAllocationsAreNotCounted) {
  SKIP_UNLESS_PROFILING();
  rp::Config config;
  rp::MemoryProfiler profiler("self-heap-test", config);
  EXPECT_FALSE(profiler.self_heap_bytes()) << "no observation yet: empty, not 0";
  (void)profiler.detect_leaks();
  ASSERT_TRUE(profiler.self_heap());
  const auto before = *profiler.self_heap();

  constexpr std::uint64_t kHostBytes = 50 * kMiB;
  std::vector<std::unique_ptr<char[]>> keep;
  host_allocates_for_self_heap_test(keep, kHostBytes);
  (void)profiler.detect_leaks();
  ASSERT_TRUE(profiler.self_heap_bytes());
  const auto after = *profiler.self_heap();
  EXPECT_EQ(*profiler.self_heap_bytes(), after.bytes);

  // The sampler saw the host's 50 MiB (so the rule, not the sampling, kept it out).
  const auto profile = profiler.heap_profiles()->latest();
  ASSERT_NE(profile, nullptr);
  double host_seen = 0;
  for (const auto& site : rp::aggregate_by_site(*profile, rp::Symbolizer::shared())) {
    if (site.counts.live_bytes < kMiB) continue;
    if (rp::Symbolizer::shared().resolve(site.address)->function.starts_with("host_allocates_for_self_heap_test")) {
      host_seen += site.counts.live_bytes;
    }
  }
  std::cout << "[ figures  ] host: profile saw " << std::llround(host_seen) << " B of the host's " << kHostBytes
            << "; self heap " << before.bytes << " -> " << after.bytes << " B\n";
  EXPECT_GT(host_seen, 0.8 * kHostBytes);
  EXPECT_LT(static_cast<double>(delta(before, after)), kHostBytes / 10.0)
      << "self heap " << before.bytes << " -> " << after.bytes << " while the host added " << kHostBytes;
}

// The host's values held in the library's cache (keys copied and values loaded inside TieredCache) are the
// host's, even though the library's code allocated them.
TEST(SelfHeap, HostValuesInTheCacheContainersAreNotCounted) {
  SKIP_UNLESS_PROFILING();
  (void)estimate_now();
  const auto before = estimate_now();
  rp::TieredCache cache({.max_bytes = 256 * kMiB, .ttl = std::nullopt});
  constexpr std::size_t kEntries = 4000;  // 4 KiB key + 4 KiB value each: ~32 MiB of host data
  for (std::size_t i = 0; i < kEntries; ++i) {
    std::string key(4096, static_cast<char>('a' + i % 26));
    key += std::to_string(i);
    ASSERT_NE(cache.get_or_load(key, host_loads_a_cache_value), nullptr);
  }
  const double cached = static_cast<double>(kEntries) * 2 * 4096;
  const auto after = estimate_now();
  std::cout << "[ figures  ] cache: container bytes " << before.cache_container_bytes << " -> "
            << after.cache_container_bytes << " of " << cached << " cached; self heap " << before.bytes << " -> "
            << after.bytes << " B\n";
  EXPECT_GT(static_cast<double>(after.cache_container_bytes) - static_cast<double>(before.cache_container_bytes),
            0.6 * cached)
      << "the rule saw the values as the cache's contents";
  EXPECT_LT(static_cast<double>(delta(before, after)), cached / 10.0 + 4 * combined_error(before, after))
      << "self heap " << before.bytes << " -> " << after.bytes << " while the cache holds " << cached;
}
