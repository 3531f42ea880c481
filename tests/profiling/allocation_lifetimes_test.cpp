// Allocation lifetimes: the record's parser, the per-site figures on records given by hand, and a real heap
// where one site's allocations live 1 ms, another's 10 s and a third's mix both, read through jemalloc's
// record of recent sampled allocations.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/features.hpp"
#include "riptide/performance/profiling/allocation_lifetimes.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"
#include "riptide/performance/profiling/recent_allocations.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

#if RIPTIDE_PERF_HAS_JEMALLOC
// A sample per 64 KiB (so most of the 64 KiB test allocations are recorded), a record of 8,192 of them.
RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH(
    "prof:true,prof_active:true,lg_prof_sample:16,prof_accum:false,prof_recent_alloc_max:8192");
#endif

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

rp::RecentAllocation record(std::uint64_t frame, std::chrono::milliseconds allocated,
                            std::optional<std::chrono::milliseconds> freed) {
  rp::RecentAllocation allocation;
  allocation.frames = {frame};
  allocation.size = 4096;
  allocation.allocated_at = allocated;
  if (freed) allocation.freed_at = *freed;
  return allocation;
}

}  // namespace

TEST(RecentAllocations, ParsesJemallocsRecordAndSaysWhatIsWrongWithOtherText) {
  const auto parsed = rp::parse_recent_allocations(R"({"sample_interval":524288,"recent_alloc_max":4096,
      "recent_alloc":[
        {"size":4000,"usize":4096,"released":false,"alloc_thread_uid":0,"alloc_time":1000000,
         "alloc_trace":["0x10","0x20"]},
        {"size":8192,"usize":8192,"released":true,"alloc_thread_uid":0,"alloc_time":2000000,
         "alloc_trace":["0x30"],"dalloc_thread_uid":1,"dalloc_time":5000000,"dalloc_trace":["0x40"]},
        {"size":1,"usize":8,"released":false,"alloc_time":3000000,"alloc_trace":[]},
        "not a record"]})");
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  const auto& recent = parsed.value();
  EXPECT_EQ(recent.sample_interval, 524288U);
  EXPECT_EQ(recent.capacity, 4096U);
  ASSERT_EQ(recent.records.size(), 2U);  // the stackless record and the string are skipped
  EXPECT_EQ(recent.records[0].frames, (std::vector<std::uint64_t>{0x10, 0x20}));
  EXPECT_EQ(recent.records[0].size, 4096U);
  EXPECT_FALSE(recent.records[0].freed_at.has_value());
  ASSERT_TRUE(recent.records[1].freed_at.has_value());
  EXPECT_EQ(*recent.records[1].freed_at - recent.records[1].allocated_at, 3ms);

  for (const char* bad : {"", "[1,2]", R"({"recent_alloc":7})", "{\"recent_alloc\":["}) {
    const auto refused = rp::parse_recent_allocations(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().kind, rp::ProfilingErrorKind::parse);
    EXPECT_NE(refused.error().message.find("experimental.prof_recent.alloc_dump"), std::string::npos);
  }
}

TEST(AllocationLifetimes, CountsTemporaryFreedAndAliveAllocationsPerSite) {
  rp::RecentAllocations recent;
  recent.capacity = 16;
  // Site 0x1000: four freed after 1, 2, 3 and 500 ms; one alive for 10 s; one alive for 20 ms (undecided).
  recent.records = {record(0x1000, 0ms, 1ms),           record(0x1000, 10ms, 12ms),
                    record(0x1000, 20ms, 23ms),         record(0x1000, 30ms, 530ms),
                    record(0x1000, 0ms, std::nullopt),  record(0x1000, 9980ms, std::nullopt),
                    record(0x2000, 100ms, std::nullopt)};
  const auto view = rp::assess_lifetimes(recent, rp::Symbolizer::shared(), 10'000ms, 100.0, 10);
  ASSERT_TRUE(view.available);
  EXPECT_EQ(view.records, 7U);
  EXPECT_NEAR(view.span_seconds, 10.0, 1e-9);
  ASSERT_EQ(view.sites.size(), 2U);
  const auto& first = view.sites[0];  // the most sampled site first
  EXPECT_EQ(first.sampled, 6U);
  EXPECT_EQ(first.freed, 4U);
  EXPECT_EQ(first.temporary, 3U);
  EXPECT_EQ(first.alive, 2U);
  EXPECT_EQ(first.undecided, 1U);
  EXPECT_DOUBLE_EQ(first.temporary_share, 3.0 / 5.0);  // the undecided one is left out
  EXPECT_DOUBLE_EQ(first.temporary_share_error, std::sqrt(0.6 * 0.4 / 5.0));
  ASSERT_TRUE(first.lifetime_p50_ms && first.lifetime_p99_ms && first.oldest_alive_ms);
  EXPECT_DOUBLE_EQ(*first.lifetime_p50_ms, 2.0);  // nearest rank of {1, 2, 3, 500}
  EXPECT_DOUBLE_EQ(*first.lifetime_p99_ms, 500.0);
  EXPECT_DOUBLE_EQ(*first.oldest_alive_ms, 10'000.0);
  const nlohmann::json json = view;
  EXPECT_EQ(json["sites"][0]["temporary"], 3);
  EXPECT_TRUE(json["sites"][1]["lifetime_p50_ms"].is_null());  // nothing of it was freed
  ASSERT_TRUE(json["taken_at"].is_string());                   // when the record was read, RFC 3339 UTC
  EXPECT_EQ(json["taken_at"].get<std::string>().back(), 'Z');
}

#if RIPTIDE_PERF_HAS_JEMALLOC
namespace {

const rp::SiteLifetimes* site_named(const rp::AllocationLifetimes& view, const std::string& function) {
  for (const auto& site : view.sites) {
    if (site.location.display_name.find(function) != std::string::npos) return &site;
  }
  return nullptr;
}

constexpr std::size_t kObjectBytes = 64 * 1024;

// Three allocating sites, each its own function so attribution names them. Returning through escape()
// keeps malloc a call, not a tail call that would leave no frame of the function on the stack; the sizes
// differ so the compiler does not fold the three into one function.
inline void* escape(void* pointer) {
  asm volatile("" : : "r"(pointer) : "memory");
  return pointer;
}
__attribute__((noinline)) void* allocate_short_lived() {
  return escape(std::malloc(kObjectBytes));
}
__attribute__((noinline)) void* allocate_long_lived() {
  return escape(std::malloc(kObjectBytes + 64));
}
__attribute__((noinline)) void* allocate_mixed() {
  return escape(std::malloc(kObjectBytes + 128));
}

}  // namespace

TEST(AllocationLifetimes, AHeapWithOneMillisecondAndTenSecondAllocationsGetsThemApart) {
  if (!rp::HeapProfilingControl::available()) GTEST_SKIP() << rp::HeapProfilingControl::unavailable_error().to_string();
  struct Pending {
    std::chrono::steady_clock::time_point due;
    void* pointer;
  };
  std::deque<Pending> short_lived, long_lived;  // each in due order
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + 13s;
  std::size_t tick = 0;
  std::size_t mixed = 0;
  for (auto now = start; now < end; now = std::chrono::steady_clock::now(), ++tick) {
    // Every 5 ms an allocation freed 1 ms later; every 100 ms one freed 10 s later; every 20 ms a mixed one:
    // 3 of every 10 freed after 1 ms, the others after 10 s.
    if (tick % 5 == 0) short_lived.push_back({now + 1ms, allocate_short_lived()});
    if (tick % 100 == 0) long_lived.push_back({now + 10s, allocate_long_lived()});
    if (tick % 20 == 0) {
      const bool temporary = mixed++ % 10 < 3;
      (temporary ? short_lived : long_lived).push_back({now + (temporary ? 1ms : 10s), allocate_mixed()});
    }
    for (auto* queue : {&short_lived, &long_lived}) {
      while (!queue->empty() && queue->front().due <= now) {
        std::free(queue->front().pointer);
        queue->pop_front();
      }
    }
    std::this_thread::sleep_for(1ms);
  }

  rp::LifetimeRecorder recorder(100.0, 1h);
  recorder.record();
  const auto view = recorder.latest();
  ASSERT_TRUE(view && view->available) << (view ? view->reason : "no view");
  const nlohmann::json json = *view;
  const auto* fast = site_named(*view, "allocate_short_lived");
  const auto* slow = site_named(*view, "allocate_long_lived");
  const auto* both = site_named(*view, "allocate_mixed");
  ASSERT_TRUE(fast && slow && both) << json.dump(2);
  // 1 ms lifetimes (jemalloc's clock ticks in 1-4 ms): temporary, a median well under the threshold.
  EXPECT_GT(fast->sampled, 500U) << json.dump(2);
  EXPECT_GE(fast->temporary_share, 0.9) << json.dump(2);
  ASSERT_TRUE(fast->lifetime_p50_ms.has_value());
  EXPECT_LT(*fast->lifetime_p50_ms, 50.0) << json.dump(2);
  // 10 s lifetimes: none temporary; those freed lived about 10 s; the rest still alive.
  EXPECT_LE(slow->temporary_share, 0.05) << json.dump(2);
  ASSERT_TRUE(slow->lifetime_p50_ms.has_value()) << json.dump(2);
  EXPECT_GT(*slow->lifetime_p50_ms, 9'000.0) << json.dump(2);
  EXPECT_LT(*slow->lifetime_p50_ms, 12'000.0) << json.dump(2);
  EXPECT_GT(slow->alive, 0U);
  // The mix: 30% temporary, within the sampling error the docs state (4 standard errors).
  EXPECT_GT(both->sampled, 100U) << json.dump(2);
  EXPECT_NEAR(both->temporary_share, 0.3, 4 * both->temporary_share_error + 0.01) << json.dump(2);
  std::printf("lifetimes: %s\n", json.dump().c_str());

  // The periodic job does not read again within the refresh period once it has a view with records; an
  // explicit record() always does.
  recorder.record_when_due();
  EXPECT_EQ(recorder.latest(), view);
  recorder.record();
  EXPECT_NE(recorder.latest(), view);

  for (auto* queue : {&short_lived, &long_lived}) {
    for (const auto& pending : *queue) std::free(pending.pointer);
  }
}
#endif
