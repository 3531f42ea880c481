// Parser, unbiasing, leak analysis on synthetic profiles, pprof encoding and the symbolizer. None of these
// needs jemalloc, so this suite also runs in the sanitizer builds.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/profiling/allocation_analyzer.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"
#include "riptide/performance/profiling/profiling_json.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING();

namespace rp = riptide::performance;

namespace {

constexpr const char* kSmallDump =
    "heap_v2/524288\n"
    "  t*: 3: 3145728 [10: 4194304]\n"
    "  t0: 3: 3145728 [10: 4194304]\n"
    "@ 0x1000 0x2000 0x3000\n"
    "  t*: 2: 2097152 [4: 2097152]\n"
    "  t0: 2: 2097152 [4: 2097152]\n"
    "@ 0x1000 0x2100\n"
    "  t*: 1: 1048576 [6: 2097152]\n"
    "  t1: 1: 1048576 [6: 2097152]\n"
    "\n"
    "MAPPED_LIBRARIES:\n"
    "55b631352000-55b631353000 r--p 00000000 fe:00 10953681                   /tmp/prof_exp/t\n"
    "55b631353000-55b631354000 r-xp 00001000 fe:00 10953681                   /tmp/prof_exp/t\n"
    "7f6659080000-7f6659e00000 rw-p 00000000 00:00 0 \n"
    "7ffd1c5e4000-7ffd1c5e6000 r-xp 00000000 00:00 0                          [vdso]\n";

std::string parse_error_of(const std::string& text) {
  const auto result = rp::parse_heap_profile(text);
  EXPECT_FALSE(result.ok()) << "accepted: " << text;
  return result.ok() ? std::string() : result.error().message;
}

std::size_t parse_error_line(const std::string& text) {
  const auto result = rp::parse_heap_profile(text);
  return result.ok() ? 0 : result.error().line;
}

}  // namespace

// A function whose call site's line is known, for the symbolizer test.
extern "C++" __attribute__((noinline)) void* symbolizer_probe_return_address() {
  void* address = __builtin_return_address(0);
  asm volatile("" : : "r"(address) : "memory");
  return address;
}
int g_known_call_line = 0;
__attribute__((noinline)) void* symbolizer_known_caller() {
  g_known_call_line = __LINE__ + 1;
  void* address = symbolizer_probe_return_address();
  asm volatile("" : : "r"(address) : "memory");
  return address;
}

TEST(HeapDumpParser, ParsesHeaderTotalsStacksAndMappings) {
  const auto result = rp::parse_heap_profile(kSmallDump);
  ASSERT_TRUE(result.ok()) << result.error().message;
  const auto& profile = result.value();
  EXPECT_EQ(profile.sample_period, 524288u);
  EXPECT_EQ(profile.totals.live_objects, 3u);
  EXPECT_EQ(profile.totals.live_bytes, 3145728u);
  EXPECT_EQ(profile.totals.alloc_objects, 10u);
  EXPECT_EQ(profile.totals.alloc_bytes, 4194304u);
  ASSERT_EQ(profile.stacks.size(), 2u);
  EXPECT_EQ(profile.stacks[0].frames, (std::vector<std::uint64_t>{0x1000, 0x2000, 0x3000}));
  EXPECT_EQ(profile.stacks[0].sampled.live_bytes, 2097152u);
  EXPECT_EQ(profile.stacks[1].frames, (std::vector<std::uint64_t>{0x1000, 0x2100}));
  EXPECT_EQ(profile.stacks[1].sampled.alloc_objects, 6u);
  ASSERT_EQ(profile.mappings.size(), 4u);
  EXPECT_EQ(profile.mappings[1].start, 0x55b631353000u);
  EXPECT_EQ(profile.mappings[1].limit, 0x55b631354000u);
  EXPECT_EQ(profile.mappings[1].offset, 0x1000u);
  EXPECT_EQ(profile.mappings[1].path, "/tmp/prof_exp/t");
  EXPECT_TRUE(profile.mappings[1].executable());
  EXPECT_FALSE(profile.mappings[0].executable());
  EXPECT_EQ(profile.mappings[2].path, "");
  EXPECT_EQ(profile.mappings[3].path, "[vdso]");
}

TEST(HeapDumpParser, AcceptsCountsWithoutAccumulatedBracketAndNoMappings) {
  const auto result = rp::parse_heap_profile("heap_v2/1024\n  t*: 1: 100\n@ 0xabc\n  t*: 1: 100\n");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result.value().stacks.at(0).sampled.live_bytes, 100u);
  EXPECT_EQ(result.value().stacks.at(0).sampled.alloc_bytes, 0u);
  EXPECT_TRUE(result.value().mappings.empty());
}

TEST(HeapDumpParser, ErrorsNameTheLineAndWhatWasExpected) {
  EXPECT_NE(parse_error_of("").find("expected the header"), std::string::npos);
  EXPECT_NE(parse_error_of("heap_v3/10\n").find("line 1: expected the header \"heap_v2/<sample period>\""),
            std::string::npos);
  EXPECT_NE(parse_error_of("heap_v2/abc\n").find("decimal sample period"), std::string::npos);
  EXPECT_NE(parse_error_of("heap_v2/10\n").find("line 2: expected the totals line"), std::string::npos);
  EXPECT_NE(parse_error_of("heap_v2/10\n  t*: x: 1 [0: 0]\n").find("line 2"), std::string::npos);
  EXPECT_NE(parse_error_of("heap_v2/10\n  t*: 1: 1 [0: 0\n").find("[<allocated objects>: <allocated bytes>]"),
            std::string::npos);
  EXPECT_NE(parse_error_of("heap_v2/10\n  t*: 1: 1 [0: 0]\n@ 0x10 zz\n").find("line 3: expected a hexadecimal address"),
            std::string::npos);
  EXPECT_NE(parse_error_of("heap_v2/10\n  t*: 1: 1 [0: 0]\n@ 0x10\n@ 0x20\n  t*: 1: 1\n")
                .find("line 4: expected the previous stack's \"t*:\" line"),
            std::string::npos);
  EXPECT_NE(parse_error_of("heap_v2/10\n  t*: 1: 1 [0: 0]\n@ 0x10\n").find("last stack's \"t*:\" line"),
            std::string::npos);
  EXPECT_NE(parse_error_of("heap_v2/10\n  t*: 1: 1 [0: 0]\nbogus\n").find("line 3"), std::string::npos);
  EXPECT_EQ(parse_error_line("heap_v2/10\n  t*: 1: 1 [0: 0]\n@ 0x10\n  t*: 1: 1\nMAPPED_LIBRARIES:\nnot-a-map\n"), 6u);
  EXPECT_NE(parse_error_of("heap_v2/10\n  t*: 1: 1\n@ 0x1\n  t*: 99999999999999999999999: 1\n").find("line 4"),
            std::string::npos);
  EXPECT_NE(parse_error_of("heap_v2/10\n  t*: 1: 1\n  tx: 1: 1\n").find("per-thread line"), std::string::npos);
}

TEST(HeapDumpParser, ParseErrorKindAndLine) {
  const auto result = rp::parse_heap_profile("heap_v2/10\n  t*: 1: 1\n@\n  t*: 1: 1\n");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, rp::ProfilingErrorKind::parse);
  EXPECT_EQ(result.error().line, 3u);
  EXPECT_NE(result.error().message.find("at least one address"), std::string::npos);
}

TEST(Unbias, MatchesJeprofFormula) {
  constexpr std::uint64_t kPeriod = 524288;
  // 10 objects of 48 bytes: probability 1-exp(-48/R), so each sample stands for ~10923 objects.
  const double factor = rp::unbias_factor(10, 480, kPeriod);
  EXPECT_NEAR(factor, 1.0 / (1.0 - std::exp(-48.0 / kPeriod)), 1e-6);
  const auto counts = rp::unbias(rp::HeapCounts{10, 480, 20, 960}, kPeriod);
  EXPECT_NEAR(counts.live_bytes, 480 * factor, 1e-3);
  EXPECT_NEAR(counts.alloc_objects, 20 * factor, 1e-3);
  EXPECT_EQ(counts.sampled_live_objects, 10u);
  // Huge objects are always sampled: factor ~1.
  EXPECT_NEAR(rp::unbias_factor(1, 64u << 20, kPeriod), 1.0, 1e-9);
  EXPECT_EQ(rp::unbias_factor(0, 0, kPeriod), 1.0);
  EXPECT_EQ(rp::unbias_factor(3, 30, 0), 1.0);
}

TEST(Symbolizer, GivesFunctionFileAndLineOfAKnownCall) {
  rp::Symbolizer symbolizer;
  const auto address = reinterpret_cast<std::uintptr_t>(symbolizer_known_caller());
  const auto frame_ptr = symbolizer.resolve(address);
  const auto& frame = *frame_ptr;
  EXPECT_TRUE(frame.has_symbol);
  EXPECT_EQ(frame.function, "symbolizer_known_caller()");
  EXPECT_TRUE(frame.file.ends_with("profiling_unit_test.cpp")) << frame.file;
  EXPECT_EQ(frame.line, static_cast<std::uint32_t>(g_known_call_line));
  EXPECT_NE(frame.location().find("symbolizer_known_caller() ("), std::string::npos) << frame.location();
  // Cached: the same object comes back.
  EXPECT_EQ(symbolizer.resolve(address).get(), &frame);
  EXPECT_EQ(symbolizer.cache_size(), 1u);
}

TEST(Symbolizer, DemanglesAndRecognisesAllocatorFrames) {
  rp::Symbolizer symbolizer;
  const auto held = symbolizer.resolve(reinterpret_cast<std::uintptr_t>(&rp::parse_heap_profile) + 1);
  const auto& frame = *held;
  EXPECT_TRUE(frame.function.starts_with("riptide::performance::parse_heap_profile(")) << frame.function;
  EXPECT_TRUE(rp::is_allocator_frame(frame));  // this library's own frames are skipped
  const auto unknown_held = symbolizer.resolve(0x10);
  const auto& unknown = *unknown_held;
  EXPECT_FALSE(unknown.has_symbol);
  EXPECT_EQ(unknown.function, "0x10");
  rp::SymbolizedFrame fake;
  fake.has_symbol = true;
  fake.function = "operator new(unsigned long)";
  EXPECT_TRUE(rp::is_allocator_frame(fake));
  fake.function = "malloc";
  EXPECT_TRUE(rp::is_allocator_frame(fake));
  fake.function = "std::vector<int, std::allocator<int> >::_M_realloc_insert(int&&)";
  EXPECT_TRUE(rp::is_allocator_frame(fake));
  fake.function = "scraper::parse_page(std::string const&)";
  EXPECT_FALSE(rp::is_allocator_frame(fake));
  fake.function = "je_malloc_default";
  fake.module = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  EXPECT_TRUE(rp::is_allocator_frame(fake));
}

// --- The symbolizer's bounds (docs/profiling.md, "The library's own memory").

namespace {

// Code addresses of this executable (riptide's own functions, with symbols and line info), 64 bytes apart.
std::vector<std::uint64_t> code_addresses(std::size_t count) {
  std::vector<std::uint64_t> addresses;
  const auto base = reinterpret_cast<std::uintptr_t>(&rp::parse_heap_profile);
  for (std::size_t i = 0; i < count; ++i) addresses.push_back(base + 1 + 64 * i);
  return addresses;
}

}  // namespace

TEST(SymbolizerBounds, FrameCacheStaysWithinItsBytesAndKeepsWhatIsUsed) {
  rp::Symbolizer symbolizer({.max_cache_bytes = 128 * 1024});
  const auto hot = reinterpret_cast<std::uintptr_t>(symbolizer_known_caller());
  const auto hot_frame = symbolizer.resolve(hot);
  const auto addresses = code_addresses(1500);
  for (const auto address : addresses) {
    (void)symbolizer.resolve(address);
    EXPECT_EQ(symbolizer.resolve(hot), hot_frame) << "the frame used all along is never evicted";
    ASSERT_LE(symbolizer.stats().cache_bytes, 96U * 1024) << "3/4 of the budget holds frames";
  }
  const auto stats = symbolizer.stats();
  EXPECT_EQ(stats.lookups, 1 + addresses.size()) << "the hot frame was looked up once";
  EXPECT_LT(stats.cached_frames, addresses.size());
  EXPECT_GT(stats.evicted_frames, 0U);
  EXPECT_EQ(stats.cached_frames + stats.evicted_frames, 1 + addresses.size()) << "every drop is counted";
  // An evicted frame is looked up again and comes back the same.
  const auto again = symbolizer.resolve(addresses.front());
  EXPECT_EQ(symbolizer.stats().lookups, stats.lookups + 1);
  EXPECT_EQ(again->address, addresses.front());
  EXPECT_TRUE(again->has_symbol);
  // Lowering the bound evicts at once.
  symbolizer.set_limits({.max_cache_bytes = 64 * 1024});
  EXPECT_LE(symbolizer.stats().cache_bytes, 48U * 1024);
  EXPECT_GT(symbolizer.stats().evicted_frames, stats.evicted_frames);
}

TEST(SymbolizerBounds, ClassTableStaysWithinItsShareAndKeepsWhatIsUsed) {
  rp::Symbolizer symbolizer({.max_cache_bytes = 64 * 1024});  // a quarter, 16 KiB, for classes
  const auto hot = reinterpret_cast<std::uintptr_t>(&rp::parse_heap_profile) + 1;
  ASSERT_NE(symbolizer.classify(hot) & rp::kFrameLibrary, 0);
  constexpr std::uint64_t kAddresses = 5000;
  for (std::uint64_t i = 0; i < kAddresses; ++i) {
    (void)symbolizer.classify(0x1000 + 16 * i);  // outside every module
    ASSERT_NE(symbolizer.classify(hot) & rp::kFrameLibrary, 0);
  }
  const auto stats = symbolizer.stats();
  EXPECT_LE(stats.class_table_bytes, 16U * 1024);
  EXPECT_LT(stats.classified_addresses, kAddresses);
  EXPECT_EQ(stats.classified_addresses + stats.dropped_classes, 1 + kAddresses) << "every drop is counted";
  EXPECT_EQ(stats.lookups, 1 + kAddresses) << "the hot address was classified once";
  EXPECT_EQ(stats.cached_frames, 0U);
}

TEST(SymbolizerBounds, DwarfStateOverItsBoundEndsTheSessionAtTrim) {
  rp::Symbolizer symbolizer({.max_dwarf_bytes = 256 * 1024});
  for (const auto address : code_addresses(400)) (void)symbolizer.resolve(address);
  const auto grown = symbolizer.stats();
  if (!grown.dwarf_bytes) GTEST_SKIP() << "libdw's heap is measured with jemalloc's per-thread counters only";
  if (*grown.dwarf_bytes <= 256 * 1024 && grown.dwarf_rebuilds == 0) {
    GTEST_SKIP() << "this executable's DWARF stayed below 256 KiB (" << *grown.dwarf_bytes << " bytes)";
  }
  symbolizer.trim();
  const auto trimmed = symbolizer.stats();
  if (*grown.dwarf_bytes > 256 * 1024) {
    EXPECT_EQ(trimmed.dwarf_rebuilds, grown.dwarf_rebuilds + 1);
    EXPECT_EQ(trimmed.dwarf_bytes.value_or(1), 0U) << "the session and all libdw held for it are gone";
  }
  // Over the bound for more than 1 s (a slow machine) the session also ends at a lookup.
  EXPECT_GE(trimmed.dwarf_rebuilds, 1U);
  EXPECT_LE(trimmed.dwarf_bytes.value_or(0), 256U * 1024);
  // The next miss opens a new session and symbolizes as before.
  const auto frame = symbolizer.resolve(reinterpret_cast<std::uintptr_t>(symbolizer_known_caller()));
  EXPECT_EQ(frame->function, "symbolizer_known_caller()");
  EXPECT_EQ(frame->line, static_cast<std::uint32_t>(g_known_call_line));
  EXPECT_GT(symbolizer.stats().dwfl_sessions, trimmed.dwfl_sessions);
}

// --- Leak analysis over synthetic profiles with a manual clock.

namespace {

rp::HeapProfile profile_with(std::uint64_t period, std::vector<std::pair<std::uint64_t, rp::HeapCounts>> sites) {
  rp::HeapProfile profile;
  profile.sample_period = period;
  for (auto& [address, counts] : sites) {
    profile.stacks.push_back(rp::HeapStack{{address, 0x500000}, counts});
  }
  return profile;
}

}  // namespace

TEST(LeakDetector, FlagsSteadyGrowthAndIgnoresFlatAndNoisySites) {
  rp::ManualClock clock;
  rp::ProfilingConfig config;
  config.leak_min_observations = 4;
  config.leak_min_bytes = 1 << 20;
  rp::Symbolizer symbolizer;
  rp::LeakDetector detector(config, clock, &symbolizer);
  constexpr std::uint64_t kPeriod = 1;  // every allocation sampled: unbiasing is the identity here
  for (int i = 1; i <= 10; ++i) {
    clock.advance(std::chrono::seconds(30));
    const std::uint64_t leak = static_cast<std::uint64_t>(i) * (1 << 20);  // +1 MiB per 30 s
    const std::uint64_t noisy = (i % 2 == 0 ? 3u : 1u) << 20;              // churn
    detector.observe(profile_with(kPeriod, {{0xA00, {static_cast<std::uint64_t>(i) * 1024, leak, 0, 0}},
                                            {0xB00, {2048, 4u << 20, 0, 0}},
                                            {0xC00, {64, noisy, 0, 0}},
                                            {0xD00, {10, 10000u * static_cast<std::uint64_t>(i), 0, 0}}}));
  }
  const auto report = detector.analyze();
  EXPECT_TRUE(report.available);
  EXPECT_EQ(report.observations, 10u);
  ASSERT_EQ(report.leak_count, 1u) << nlohmann::json(report).dump(2);
  const auto& leak = report.leaks.front();
  EXPECT_EQ(leak.function, "0xa00");  // synthetic address: no symbol
  EXPECT_EQ(leak.size, 10u << 20);
  EXPECT_NEAR(leak.growth_rate, (1 << 20) / 30.0, 1.0);
  EXPECT_NEAR(leak.r_squared, 1.0, 1e-9);
  EXPECT_GT(leak.confidence, 0.5);
  EXPECT_EQ(leak.observations, 10u);
  EXPECT_EQ(leak.age, std::chrono::seconds(270));  // first seen at the first observation, 9 x 30 s ago
  EXPECT_EQ(report.total_leaked_bytes, 10u << 20);
  EXPECT_EQ(report.severity, rp::LeakSeverity::low);

  const nlohmann::json json = report;
  EXPECT_EQ(json["leak_count"], 1);
  EXPECT_EQ(json["leaks"][0]["age_seconds"], 270);
  EXPECT_EQ(json["leaks"][0]["size"], 10u << 20);
  EXPECT_TRUE(json["leaks"][0]["allocation_time"].get<std::string>().ends_with("Z"));
  EXPECT_EQ(json["severity"], "low");
}

TEST(LeakDetector, NeedsMinimumObservationsAndBoundsHistory) {
  rp::ManualClock clock;
  rp::ProfilingConfig config;
  config.leak_min_observations = 5;
  config.max_tracked_sites = 3;
  rp::Symbolizer symbolizer;
  rp::LeakDetector detector(config, clock, &symbolizer);
  for (int i = 1; i <= 4; ++i) {
    clock.advance(std::chrono::seconds(1));
    detector.observe(profile_with(1, {{0xA00, {1, static_cast<std::uint64_t>(i) * (8u << 20), 0, 0}}}));
  }
  EXPECT_EQ(detector.analyze().leak_count, 0u);  // 4 < 5 observations
  clock.advance(std::chrono::seconds(1));
  detector.observe(profile_with(1, {{0xA00, {1, 5u * (8u << 20), 0, 0}}}));
  EXPECT_EQ(detector.analyze().leak_count, 1u);
  EXPECT_EQ(detector.analyze().severity, rp::LeakSeverity::high);  // 40 MiB at 8 MiB/s

  // Many one-off sites: the number tracked stays at max_tracked_sites.
  for (std::uint64_t i = 0; i < 50; ++i) {
    clock.advance(std::chrono::seconds(1));
    detector.observe(profile_with(1, {{0x10000 + i, {1, 4096, 0, 0}}}));
  }
  EXPECT_LE(detector.analyze().tracked_sites, 3u);
  detector.clear();
  EXPECT_EQ(detector.analyze().observations, 0u);
}

TEST(LeakDetector, ALiveLeakSurvivesAChurnOfNewSitesBeyondTheBound) {
  rp::ManualClock clock;
  rp::ProfilingConfig config;
  config.leak_min_observations = 4;
  config.leak_min_bytes = 1 << 20;
  config.max_tracked_sites = 4;
  rp::Symbolizer symbolizer;
  rp::LeakDetector detector(config, clock, &symbolizer);
  for (std::uint64_t i = 1; i <= 8; ++i) {
    clock.advance(std::chrono::seconds(10));
    // The leak, plus five sites never seen before (more than the bound holds) in every dump.
    std::vector<std::pair<std::uint64_t, rp::HeapCounts>> sites{{0xA00, {i, i * (4u << 20), 0, 0}}};
    for (std::uint64_t k = 0; k < 5; ++k) sites.push_back({0x100000 + i * 16 + k, {1, 4096, 0, 0}});
    detector.observe(profile_with(1, sites));
    EXPECT_LE(detector.analyze().tracked_sites, 4u);
  }
  const auto report = detector.analyze();
  ASSERT_EQ(report.leak_count, 1u) << nlohmann::json(report).dump(2);
  EXPECT_EQ(report.leaks.front().function, "0xa00");
  EXPECT_EQ(report.leaks.front().observations, 8u);
}

TEST(LeakDetector, TheSiteBoundKeepsTheLargestSitesAndCountsTheRest) {
  rp::ManualClock clock;
  rp::ProfilingConfig config;
  config.leak_min_observations = 4;
  config.leak_min_bytes = 0;
  config.max_tracked_sites = 100;
  rp::Symbolizer symbolizer;
  rp::LeakDetector detector(config, clock, &symbolizer);
  constexpr std::uint64_t kSites = 300;
  constexpr std::uint64_t kObservations = 8;
  for (std::uint64_t k = 1; k <= kObservations; ++k) {
    clock.advance(std::chrono::seconds(30));
    std::vector<std::pair<std::uint64_t, rp::HeapCounts>> sites;
    for (std::uint64_t i = 0; i < kSites; ++i) sites.push_back({0x10000 + 16 * i, {k, k * (i + 1) * 4096, 0, 0}});
    detector.observe(profile_with(1, sites));
  }
  const auto report = detector.analyze();
  EXPECT_EQ(report.tracked_sites, 100U);
  EXPECT_EQ(report.max_tracked_sites, 100U);
  // Every observation offers 200 sites more than the bound holds: the 200 smallest go (never the tracked).
  EXPECT_EQ(report.dropped_sites, (kSites - 100) * kObservations);
  ASSERT_EQ(report.leak_count, 100U) << "all kept sites grow steadily";
  EXPECT_EQ(report.leaks.back().function, "0x10c80") << "the smallest kept is site 200";
  EXPECT_EQ(report.leaks.back().observations, kObservations);
  const nlohmann::json json = report;
  EXPECT_EQ(json["dropped_sites"], report.dropped_sites);
  EXPECT_EQ(json["max_tracked_sites"], 100);

  // Sites 0-99 now hold the most: they displace the tracked ones, which are not re-admitted.
  clock.advance(std::chrono::seconds(30));
  std::vector<std::pair<std::uint64_t, rp::HeapCounts>> sites;
  for (std::uint64_t i = 0; i < kSites; ++i) {
    sites.push_back({0x10000 + 16 * i, {1, i < 100 ? (64u << 20) + i : (i + 1) * 4096, 0, 0}});
  }
  detector.observe(profile_with(1, sites));
  const auto after = detector.analyze();
  EXPECT_EQ(after.tracked_sites, 100U);
  EXPECT_EQ(after.dropped_sites, report.dropped_sites + (kSites - 100));
  EXPECT_EQ(after.leak_count, 0U) << "the newcomers have one observation each";
}

TEST(LeakDetector, PerSiteHistoryKeepsTheLatestObservations) {
  rp::ManualClock clock;
  rp::ProfilingConfig config;
  config.leak_min_observations = 4;
  config.leak_min_bytes = 0;
  config.max_history_per_site = 5;
  rp::Symbolizer symbolizer;
  rp::LeakDetector detector(config, clock, &symbolizer);
  // Flat for 15 observations, then +1 MiB per 10 s for 5: only the growth is left in the history.
  std::uint64_t bytes = 8 << 20;
  for (int k = 1; k <= 20; ++k) {
    clock.advance(std::chrono::seconds(10));
    if (k > 15) bytes += 1 << 20;
    detector.observe(profile_with(1, {{0xA00, {bytes / 4096, bytes, 0, 0}}}));
  }
  const auto report = detector.analyze();
  EXPECT_EQ(report.max_history_per_site, 5U);
  EXPECT_EQ(report.dropped_history_points, 15U);
  ASSERT_EQ(report.leak_count, 1U) << nlohmann::json(report).dump(2);
  EXPECT_EQ(report.leaks.front().observations, 5U);
  EXPECT_NEAR(report.leaks.front().growth_rate, (1 << 20) / 10.0, 1.0);
  EXPECT_NEAR(report.leaks.front().r_squared, 1.0, 1e-9);
  EXPECT_EQ(report.leaks.front().age, std::chrono::seconds(190)) << "age counts from the first sighting";
}

TEST(LeakDetector, BackgroundThreadPublishesAndStops) {
  rp::ProfilingConfig config;
  config.leak_detection_interval_sec = 0.01;
  rp::LeakDetector detector(config);
  EXPECT_EQ(detector.latest(), nullptr);
  detector.start();
  detector.start();  // idempotent
  // Waited for; the bound only guards against a hang (a heap dump on a loaded machine may take seconds).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (detector.latest() == nullptr && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto first = detector.latest();
  ASSERT_NE(first, nullptr);
  // Either real observations (jemalloc with prof) or the unavailable reason, never silence.
  EXPECT_TRUE(first->available ? first->reason.empty() || first->observations > 0 : !first->reason.empty());
  const auto concurrent = detector.analyze();  // readers run while the thread observes
  EXPECT_EQ(concurrent.available, first->available);
  detector.stop();
  detector.stop();  // idempotent
}

TEST(LeakSeverity, DocumentedThresholds) {
  EXPECT_EQ(rp::classify_leak_severity(0, 0), rp::LeakSeverity::none);
  EXPECT_EQ(rp::classify_leak_severity(1 << 20, 1024), rp::LeakSeverity::low);
  EXPECT_EQ(rp::classify_leak_severity(16u << 20, 0), rp::LeakSeverity::medium);
  EXPECT_EQ(rp::classify_leak_severity(1 << 20, 64 * 1024), rp::LeakSeverity::medium);
  EXPECT_EQ(rp::classify_leak_severity(256u << 20, 0), rp::LeakSeverity::high);
  EXPECT_EQ(rp::classify_leak_severity(0, 1 << 20), rp::LeakSeverity::high);
  EXPECT_STREQ(rp::to_string(rp::LeakSeverity::medium), "medium");
}

TEST(AllocationAnalyzer, RanksSitesAndComputesDistributionFromCounters) {
  rp::ManualClock clock;
  rp::Symbolizer symbolizer;
  rp::AllocationAnalyzer analyzer(rp::ProfilingConfig{}, clock, &symbolizer, 10);
  rp::AllocationCounters counters;
  counters.read_at = clock.steady_now();
  counters.size_classes = {rp::SizeClassStats{16, false, 0, 0, 700, 100}, rp::SizeClassStats{64, false, 0, 0, 200, 0},
                           rp::SizeClassStats{16384, true, 0, 0, 100, 50}};
  const auto profile = profile_with(1, {{0xA00, {1, 16, 900, 14400}}, {0xB00, {5, 81920, 10, 163840}}});
  const auto stats = analyzer.analyze(counters, &profile, /*profile_accumulates=*/true);
  EXPECT_TRUE(stats.available);
  EXPECT_EQ(stats.total_allocations, 1000u);
  EXPECT_EQ(stats.total_deallocations, 850u);
  EXPECT_EQ(stats.live_allocations, 150);
  EXPECT_EQ(stats.total_allocated_bytes, 700u * 16 + 200u * 64 + 100u * 16384);
  EXPECT_NEAR(stats.average_allocation_size, (700.0 * 16 + 200.0 * 64 + 100.0 * 16384) / 1000.0, 1e-9);
  EXPECT_EQ(stats.median_allocation_size, 16u);
  EXPECT_EQ(stats.sites_basis, "cumulative");
  ASSERT_EQ(stats.top_allocators.size(), 2u);
  EXPECT_EQ(stats.top_allocators[0].function, "0xa00");  // 900 allocations
  EXPECT_EQ(stats.top_allocators[0].count, 900u);
  EXPECT_EQ(stats.top_allocators[0].average_size, 16u);
  EXPECT_EQ(stats.top_allocators_by_bytes[0].function, "0xb00");
  EXPECT_NEAR(stats.top_allocators_by_bytes[0].percentage_of_total, 100.0 * 163840 / (163840 + 14400), 0.01);
  EXPECT_FALSE(stats.recommendations.empty());

  // Rates come from the window the caller measured (the sampler's last minute); reading again changes
  // nothing: the same inputs give the same rates.
  const rp::AllocationRate recent{
      .allocations_per_second = 50.0, .deallocations_per_second = 40.0, .span = std::chrono::seconds(10)};
  clock.advance(std::chrono::seconds(10));
  counters.read_at = clock.steady_now();
  counters.size_classes[0].nrequests += 500;
  const auto later = analyzer.analyze(counters, nullptr, false, recent);
  EXPECT_NEAR(later.allocation_rate_per_second, 50.0, 1e-9);
  EXPECT_NEAR(later.deallocation_rate_per_second, 40.0, 1e-9);
  EXPECT_NEAR(later.rate_window_seconds, 10.0, 1e-9);
  EXPECT_NEAR(later.allocation_deallocation_ratio, 1.25, 1e-9);
  const auto again = analyzer.analyze(counters, nullptr, false, recent);
  EXPECT_EQ(again.allocation_rate_per_second, later.allocation_rate_per_second);
  // Without a measured window: the lifetime averages, and again the same for a second reader.
  const auto lifetime = analyzer.analyze(counters, nullptr, false);
  const auto lifetime_again = analyzer.analyze(counters, nullptr, false);
  EXPECT_GT(lifetime.rate_window_seconds, 0.0);
  EXPECT_NEAR(lifetime.allocation_rate_per_second,
              static_cast<double>(lifetime.total_allocations) / lifetime.rate_window_seconds, 1e-6);
  EXPECT_NEAR(lifetime_again.allocation_rate_per_second, lifetime.allocation_rate_per_second,
              lifetime.allocation_rate_per_second * 0.01);
  const nlohmann::json json = stats;
  EXPECT_EQ(json["top_allocators"][0]["allocation_count"], 900);
  EXPECT_EQ(json["total_allocations"], 1000);
  EXPECT_EQ(json["median_allocation_size"], 16);
}

// --- JSON

TEST(ProfilingJson, AssignmentGivesWhatTheValueReturningSpellingGives) {
  rp::MemoryLeak leak;
  leak.location = "grow (a.cpp:7)";
  leak.function = "grow";
  leak.size = 4096;
  leak.age = std::chrono::seconds(30);
  leak.stack = {"grow", "main"};
  rp::LeakReport report;
  report.available = true;
  report.leak_count = 1;
  report.leaks = {leak};
  report.severity = rp::LeakSeverity::low;
  rp::AllocationSite site;
  site.location = "make (b.cpp:3)";
  site.count = 12;
  site.total_bytes = 768;
  rp::AllocationStats stats;
  stats.top_allocators = {site};
  stats.top_allocators_by_bytes = {site, site};
  stats.size_classes = {rp::SizeClassStats{16, false, 0, 0, 700, 100}};
  stats.allocation_deallocation_ratio = std::numeric_limits<double>::infinity();
  stats.reason = "sites need prof:true";
  rp::HeapProfilingStatus status;
  status.reason = "not jemalloc";
  status.fix = "link jemalloc";

  const nlohmann::json report_json = report;
  const nlohmann::json leak_json = leak;
  const nlohmann::json stats_json = stats;
  const nlohmann::json site_json = site;
  const nlohmann::json status_json = status;
  EXPECT_EQ(report_json["leaks"][0], leak_json);
  EXPECT_EQ(stats_json["top_allocators_by_bytes"][1], site_json);
  EXPECT_TRUE(stats_json["allocation_deallocation_ratio"].is_null());
  EXPECT_EQ(status_json["fix"], "link jemalloc");
  // The value-returning spellings are forwards kept for one release (deprecated, or about to be): called
  // here on purpose, so that they cannot drift from the ADL form while they exist.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  EXPECT_EQ(report_json, rp::to_json(report));
  EXPECT_EQ(leak_json, rp::to_json(leak));
  EXPECT_EQ(stats_json, rp::to_json(stats));
  EXPECT_EQ(site_json, rp::to_json(site));
  EXPECT_EQ(status_json, rp::to_json(status));
#pragma GCC diagnostic pop
}

// --- pprof encoding

TEST(PprofWriter, EncodesSampleTypesFunctionsAndMappings) {
  auto parsed = rp::parse_heap_profile(kSmallDump);
  ASSERT_TRUE(parsed.ok());
  rp::Symbolizer symbolizer;
  const auto raw = rp::write_pprof_heap_profile(parsed.value(), symbolizer, {.gzip = false});
  ASSERT_FALSE(raw.empty());
  for (const char* name :
       {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space", "space", "bytes", "count", "/tmp/prof_exp/t"}) {
    EXPECT_NE(raw.find(name), std::string::npos) << name;
  }
  const auto gz = rp::write_pprof_heap_profile(parsed.value(), symbolizer);
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);

  // protoc with pprof's profile.proto must decode it (the same check as the live test, without jemalloc).
  const char* protoc = std::getenv("RIPTIDE_PERF_TEST_PROTOC");
  const char* proto = std::getenv("RIPTIDE_PERF_TEST_PPROF_PROTO");
  if (protoc == nullptr || *protoc == '\0' || proto == nullptr || !std::filesystem::exists(proto)) {
    GTEST_SKIP() << "protoc or pprof's profile.proto not available (RIPTIDE_PERF_TEST_PROTOC/_PPROF_PROTO)";
  }
  const auto dir = std::filesystem::temp_directory_path() / ("riptide_pprof_unit_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "p.pb", std::ios::binary) << raw; }
  const auto proto_path = std::filesystem::path(proto);
  const std::string command = std::string(protoc) +
                              " --decode=perftools.profiles.Profile --proto_path=" + proto_path.parent_path().string() +
                              " " + proto_path.filename().string() + " < " + (dir / "p.pb").string() + " > " +
                              (dir / "decoded.txt").string() + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream decoded(dir / "decoded.txt");
  const std::string text((std::istreambuf_iterator<char>(decoded)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("period: 524288"), std::string::npos) << text;
  EXPECT_NE(text.find("memory_start: 94240997978112"), std::string::npos) << text;  // 0x55b631353000
  EXPECT_NE(text.find("string_table: \"inuse_space\""), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(HeapProfilingControl, ReportsUnavailableWithReasonAndFixWithoutJemalloc) {
  if (RIPTIDE_PERF_HAS_JEMALLOC) {
    const auto status = rp::HeapProfilingControl::status();
    EXPECT_TRUE(status.available) << status.reason;  // malloc_conf above turns it on
    EXPECT_TRUE(status.enabled_at_start);
    EXPECT_EQ(status.lg_sample, 19u);
    EXPECT_TRUE(status.accumulating);
    return;
  }
  const auto status = rp::HeapProfilingControl::status();
  EXPECT_FALSE(status.available);
  EXPECT_FALSE(status.reason.empty());
  EXPECT_FALSE(status.fix.empty());
  const auto capture = rp::capture_heap_profile();
  ASSERT_FALSE(capture.ok());
  EXPECT_EQ(capture.error().kind, rp::ProfilingErrorKind::unavailable);
  rp::LeakDetector detector(rp::ProfilingConfig{});
  const auto report = detector.detect();
  EXPECT_FALSE(report.available);
  EXPECT_FALSE(report.reason.empty());
  EXPECT_TRUE(rp::HeapProfilingControl::set_active(true).has_value());
}

#if RIPTIDE_PERF_HAS_FLAMEGRAPH
TEST(FoldedStacks, OneLinePerStackOutermostFirst) {
  auto parsed = rp::parse_heap_profile(kSmallDump);
  ASSERT_TRUE(parsed.ok());
  rp::Symbolizer symbolizer;
  const auto folded = rp::write_folded_stacks(parsed.value(), symbolizer);
  EXPECT_NE(folded.find("0x3000;0x2000;0x1000 "), std::string::npos) << folded;
}
#endif
