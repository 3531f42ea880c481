// Real jemalloc with its heap profiler: three leaking functions (different rates and object sizes) and two
// churners that do not leak (a bounded cache and short-lived temporary buffers). The leak report must name
// exactly the three leakers with sizes within ±25% of the truth; the allocation report must rank the
// temporary buffers first by count; Google's pprof and protoc must read the exported profile.
//
// To keep the run short this executable samples every 16 KiB on average (lg_prof_sample:14) instead of the
// default 512 KiB: each leaker then leaks far more than 64 sampling intervals (>= 1 MiB) within seconds, and the
// relative sampling error 1/sqrt(bytes/R) is a few percent.
#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <thread>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/profiling/allocation_analyzer.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"
#include "riptide/performance/profiling/profiling_json.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true");

namespace rp = riptide::performance;

// --- The workload. Global functions (not in riptide::performance, whose frames are skipped as the library's
// own), never inlined so each is its own frame. Leaked blocks are chained through their first bytes so the
// leakers allocate nothing but the leaked blocks themselves.

struct Chain {
  void* head = nullptr;
  std::uint64_t bytes = 0;
  void push(void* block, std::size_t size) {
    *static_cast<void**>(block) = head;
    head = block;
    bytes += size;
  }
  void release() {
    while (head != nullptr) {
      void* next = *static_cast<void**>(head);
      ::operator delete[](head);
      head = next;
    }
    bytes = 0;
  }
};

Chain g_small;   // 96-byte objects, many per tick
Chain g_medium;  // 4 KiB buffers
Chain g_large;   // 64 KiB blocks, one every other tick

__attribute__((noinline)) void leak_small_objects(int count) {
  for (int i = 0; i < count; ++i) {
    g_small.push(::operator new[](96), 96);
  }
}
__attribute__((noinline)) void leak_medium_buffers(int count) {
  for (int i = 0; i < count; ++i) {
    g_medium.push(::operator new[](4096), 4096);
  }
}
__attribute__((noinline)) void leak_large_blocks(int count) {
  for (int i = 0; i < count; ++i) {
    g_large.push(::operator new[](65536), 65536);
  }
}

// A cache of fixed capacity: entries are replaced, never added, so its in-use bytes stay flat.
struct BoundedCache {
  static constexpr std::size_t kSlots = 4096;
  static constexpr std::size_t kEntryBytes = 512;
  std::array<char*, kSlots> slots{};
  std::mt19937 random{42};
  ~BoundedCache() {
    for (auto* slot : slots) {
      delete[] slot;
    }
  }
};
BoundedCache* g_cache = nullptr;

__attribute__((noinline)) void cache_churn(int replacements) {
  for (int i = 0; i < replacements; ++i) {
    auto& slot = g_cache->slots[g_cache->random() % BoundedCache::kSlots];
    delete[] slot;
    slot = new char[BoundedCache::kEntryBytes];
    slot[0] = 1;
  }
}

// Short-lived buffers: allocated, touched, freed. The most allocations by count.
__attribute__((noinline)) void temporary_buffers(int count) {
  for (int i = 0; i < count; ++i) {
    char* buffer = new char[32 + static_cast<std::size_t>(i % 8) * 16];
    buffer[0] = static_cast<char>(i);
    asm volatile("" : : "r"(buffer) : "memory");  // keeps the allocation from being elided
    delete[] buffer;
  }
}

namespace {

std::string base_name(const std::string& function) {
  return function.substr(0, function.find('('));
}

std::string run_command(const std::string& command, int* status) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return output;
  }
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) {
    output += buffer.data();
  }
  *status = ::pclose(pipe);
  return output;
}

// "12.50MB" / "512kB" / "1024B" -> bytes, as pprof prints them.
double parse_pprof_size(const std::string& text) {
  std::size_t used = 0;
  const double value = std::stod(text, &used);
  const std::string unit = text.substr(used);
  if (unit == "kB" || unit == "KB") return value * 1024;
  if (unit == "MB") return value * 1024 * 1024;
  if (unit == "GB") return value * 1024 * 1024 * 1024;
  return value;
}

class LiveHeapProfiling : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RIPTIDE_PERF_HAS_JEMALLOC) {
      GTEST_SKIP() << "built without jemalloc (RIPTIDE_PERF_JEMALLOC=OFF): "
                   << rp::HeapProfilingControl::status().reason;
    }
    const auto status = rp::HeapProfilingControl::status();
    ASSERT_TRUE(status.available) << status.reason << " / " << status.fix;
  }
};

}  // namespace

TEST_F(LiveHeapProfiling, ControlReportsAndTogglesSampling) {
  const auto status = rp::HeapProfilingControl::status();
  EXPECT_TRUE(status.compiled_with_prof);
  EXPECT_TRUE(status.enabled_at_start);  // malloc_conf from the macro was honoured (opt.prof true)
  EXPECT_TRUE(status.active);
  EXPECT_TRUE(status.accumulating);
  EXPECT_EQ(status.lg_sample, 14u);
  EXPECT_EQ(status.sample_interval_bytes, 16384u);
  EXPECT_FALSE(rp::HeapProfilingControl::set_active(false).has_value());
  EXPECT_FALSE(rp::HeapProfilingControl::status().active);
  EXPECT_FALSE(rp::HeapProfilingControl::set_active(true).has_value());
  EXPECT_TRUE(rp::HeapProfilingControl::status().active);
  EXPECT_TRUE(rp::HeapProfilingControl::reset(63).has_value());  // out of range: typed error, no change
  EXPECT_EQ(rp::HeapProfilingControl::lg_sample(), 14u);

  const auto dump = rp::capture_heap_dump_text();
  ASSERT_TRUE(dump.ok()) << dump.error().to_string();
  EXPECT_TRUE(dump.value().starts_with("heap_v2/16384\n"));
  EXPECT_NE(dump.value().find("MAPPED_LIBRARIES:"), std::string::npos);
}

TEST_F(LiveHeapProfiling, FindsExactlyTheThreeLeakersAndExportsForPprof) {
  rp::ProfilingConfig config;  // defaults: >= 4 observations, >= 1 MiB, >= 1 KiB/s, R² >= 0.8
  config.leak_detection_interval_sec = 1.0;
  // The detector fits growth against its clock. On the wall clock the fit would measure this machine's
  // scheduling too (a tick stalled by a busy neighbour bends the line and lowers R²); a manual clock that
  // advances 25 ms per tick makes the series exactly what the workload leaks per unit of time.
  rp::ManualClock clock;
  rp::LeakDetector detector(config, clock);
  rp::AllocationAnalyzer analyzer(config);

  BoundedCache cache;
  g_cache = &cache;
  for (auto& slot : cache.slots) {
    slot = new char[BoundedCache::kEntryBytes];  // filled before observing: it is at its bound from the start
  }

  // 24 observations, one per 20 ticks of 25 ms (of the manual clock): 12 s of detector time.
  constexpr int kObservations = 24;
  constexpr int kTicksPerObservation = 20;
  for (int observation = 0; observation < kObservations; ++observation) {
    for (int tick = 0; tick < kTicksPerObservation; ++tick) {
      leak_small_objects(200);                  // 18.75 KiB per tick
      leak_medium_buffers(4);                   // 16 KiB per tick
      if (tick % 2 == 0) leak_large_blocks(1);  // 32 KiB per tick on average
      cache_churn(200);
      temporary_buffers(5000);
      clock.advance(std::chrono::milliseconds(25));
    }
    ASSERT_FALSE(detector.observe().has_value());
  }
  const rp::LeakReport report = detector.detect();
  SCOPED_TRACE(nlohmann::json(report).dump(2));
  ASSERT_TRUE(report.available) << report.reason;

  std::map<std::string, const rp::MemoryLeak*> by_function;
  for (const auto& leak : report.leaks) {
    by_function[base_name(leak.function)] = &leak;
  }
  EXPECT_EQ(by_function.size(), 3u);
  EXPECT_EQ(report.leak_count, report.leaks.size());
  const std::map<std::string, std::uint64_t> truth = {{"leak_small_objects", g_small.bytes},
                                                      {"leak_medium_buffers", g_medium.bytes},
                                                      {"leak_large_blocks", g_large.bytes}};
  for (const auto& [function, bytes] : truth) {
    ASSERT_TRUE(by_function.contains(function)) << function << " not reported";
    const auto& leak = *by_function[function];
    std::printf("leak %-20s estimated %10llu B, truth %10llu B (%+.1f%%), %.0f B/s, R2 %.3f, confidence %.2f, %s\n",
                function.c_str(), static_cast<unsigned long long>(leak.size), static_cast<unsigned long long>(bytes),
                100.0 * (static_cast<double>(leak.size) / static_cast<double>(bytes) - 1.0), leak.growth_rate,
                leak.r_squared, leak.confidence, leak.location.c_str());
    EXPECT_NEAR(static_cast<double>(leak.size), static_cast<double>(bytes), 0.25 * static_cast<double>(bytes))
        << function;
    EXPECT_GT(leak.growth_rate, 0);
    EXPECT_GT(leak.confidence, 0);
    EXPECT_TRUE(leak.file.ends_with("profiling_live_test.cpp")) << leak.location;
    EXPECT_GT(leak.line, 0u);
    EXPECT_GE(leak.age.count(), 1);
    EXPECT_FALSE(leak.stack.empty());
  }
  EXPECT_FALSE(by_function.contains("cache_churn"));
  EXPECT_FALSE(by_function.contains("temporary_buffers"));
  EXPECT_NE(report.severity, rp::LeakSeverity::none);

  // Allocation hot spots: the temporary buffers make the most allocations.
  const rp::AllocationStats stats = analyzer.analyze();
  SCOPED_TRACE(nlohmann::json(stats).dump(2).substr(0, 4000));
  ASSERT_TRUE(stats.sites_available) << stats.reason;
  EXPECT_EQ(stats.sites_basis, "cumulative");
  ASSERT_FALSE(stats.top_allocators.empty());
  for (std::size_t i = 0; i < stats.top_allocators.size() && i < 5; ++i) {
    std::printf("top by count #%zu: %s count %llu\n", i + 1, stats.top_allocators[i].location.c_str(),
                static_cast<unsigned long long>(stats.top_allocators[i].count));
  }
  EXPECT_EQ(base_name(stats.top_allocators.front().function), "temporary_buffers");
  EXPECT_TRUE(stats.available);
  EXPECT_GT(stats.total_allocations, 24u * 20u * 5000u);
  EXPECT_GT(stats.median_allocation_size, 0u);
  EXPECT_FALSE(stats.recommendations.empty());

  // pprof: Google's tool must read our export and name the leakers with their in-use sizes.
  auto profile = rp::capture_heap_profile();
  ASSERT_TRUE(profile.ok()) << profile.error().to_string();
  const auto dir = std::filesystem::temp_directory_path() / ("riptide_pprof_live_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto gz_path = dir / "heap.pb.gz";
  const auto raw_path = dir / "heap.pb";
  {
    std::ofstream(gz_path, std::ios::binary) << rp::write_pprof_heap_profile(profile.value(), rp::Symbolizer::shared());
    std::ofstream(raw_path, std::ios::binary)
        << rp::write_pprof_heap_profile(profile.value(), rp::Symbolizer::shared(), {.gzip = false});
  }

  const char* pprof = std::getenv("RIPTIDE_PERF_TEST_PPROF");
  if (pprof != nullptr && std::filesystem::exists(pprof)) {
    int status = 0;
    const std::string output =
        run_command(std::string(pprof) + " -top -sample_index=inuse_space -nodecount=50 " + gz_path.string(), &status);
    ASSERT_EQ(status, 0) << output;
    for (const auto& [function, bytes] : truth) {
      // "    18.75MB 40.12% 40.12%    18.75MB 40.12%  leak_large_blocks"
      const std::regex line("\\s*([0-9.]+[kMG]?B)\\s+[0-9.]+%\\s+[0-9.]+%\\s+\\S+\\s+[0-9.]+%\\s+" + function + "\\b");
      std::smatch match;
      ASSERT_TRUE(std::regex_search(output, match, line)) << function << " missing from pprof -top:\n" << output;
      std::printf("pprof %-20s %s (truth %llu B)\n", function.c_str(), match[1].str().c_str(),
                  static_cast<unsigned long long>(bytes));
      EXPECT_NEAR(parse_pprof_size(match[1].str()), static_cast<double>(bytes), 0.25 * static_cast<double>(bytes))
          << function << "\n"
          << output;
    }
  } else {
    ADD_FAILURE() << "RIPTIDE_PERF_TEST_PPROF does not point at Google's pprof (build target pprof_tool)";
  }

  const char* protoc = std::getenv("RIPTIDE_PERF_TEST_PROTOC");
  const char* proto = std::getenv("RIPTIDE_PERF_TEST_PPROF_PROTO");
  if (protoc != nullptr && *protoc != '\0' && proto != nullptr && std::filesystem::exists(proto)) {
    const auto proto_path = std::filesystem::path(proto);
    int status = 0;
    const std::string output = run_command(
        std::string(protoc) + " --decode=perftools.profiles.Profile --proto_path=" + proto_path.parent_path().string() +
            " " + proto_path.filename().string() + " < " + raw_path.string(),
        &status);
    ASSERT_EQ(status, 0) << output.substr(0, 2000);
    EXPECT_NE(output.find("string_table: \"leak_large_blocks(int)\""), std::string::npos);
    EXPECT_NE(output.find("period: 16384"), std::string::npos);
  } else {
    ADD_FAILURE() << "protoc or pprof's profile.proto not found (RIPTIDE_PERF_TEST_PROTOC / _PPROF_PROTO)";
  }
  std::filesystem::remove_all(dir);

  g_small.release();
  g_medium.release();
  g_large.release();
  g_cache = nullptr;
}

TEST_F(LiveHeapProfiling, BackgroundDetectorPublishesReports) {
  rp::ProfilingConfig config;
  config.leak_detection_interval_sec = 0.05;
  rp::LeakDetector detector(config);
  detector.start();
  // Waited for, with a bound that only guards against a hang: each observation takes a heap dump, which a
  // loaded machine may take far longer than 50 ms to write.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((detector.latest() == nullptr || detector.latest()->observations < 3) &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  detector.stop();
  ASSERT_NE(detector.latest(), nullptr);
  EXPECT_GE(detector.latest()->observations, 3u);
  EXPECT_TRUE(detector.latest()->available);
}
