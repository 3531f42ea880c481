// Real allocator, real kernel figures. The same assertions run with jemalloc (default build) and through
// the fallbacks (glibc without jemalloc; ASan's allocator in the asan preset).
#include "riptide/performance/memory/memory_snapshot.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/memory/memory_json.hpp"

namespace rp = riptide::performance;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kBigBytes = 200 * kMiB;

const char* expected_allocator() {
  if (rp::JemallocCtl::usable()) {
    return "jemalloc";
  }
#if defined(__SANITIZE_ADDRESS__)
  return "asan";
#elif defined(__SANITIZE_THREAD__)
  return "tsan";
#else
  return "glibc";
#endif
}

bool sanitizer_allocator() {
  const std::string_view name = expected_allocator();
  return name == "asan" || name == "tsan";
}

// How far two reads of the kernel's RSS figure (statm, then VmHWM in status) may disagree without any
// page being freed: the kernel keeps RSS in per-CPU counters (per-thread before Linux 6.2) and folds them
// into the total a batch at a time, so a read can be off by up to one batch per CPU. The batch is
// max(32, 2 x CPUs) pages since 6.2 and 64 events per thread before; 2 x CPUs x that many pages covers both.
std::uint64_t rss_counter_slack_bytes() {
  const auto cpus = static_cast<std::uint64_t>(std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF)));
  const auto page = static_cast<std::uint64_t>(std::max(4096L, ::sysconf(_SC_PAGESIZE)));
  return 2 * cpus * std::max<std::uint64_t>(64, 2 * cpus) * page;
}

double relative_error(double measured, double expected) {
  return std::abs(measured - expected) / expected;
}

std::int64_t delta(const std::optional<std::uint64_t>& after, const std::optional<std::uint64_t>& before) {
  return static_cast<std::int64_t>(after.value()) - static_cast<std::int64_t>(before.value());
}

TEST(MemorySnapshot, NamesTheAllocatorThatServesMalloc) {
  rp::MemorySnapshotter snapshotter;
  const auto snapshot = snapshotter.take(rp::system_clock(), true);
  EXPECT_EQ(snapshot.allocator, expected_allocator());
  EXPECT_EQ(rp::allocator_name(snapshotter.allocator()), expected_allocator());
  ASSERT_TRUE(snapshot.rss_bytes);
  ASSERT_TRUE(snapshot.heap_bytes);
  EXPECT_GT(*snapshot.heap_bytes, 0u);
  EXPECT_EQ(snapshot.peak_heap_bytes, snapshot.heap_bytes);
}

TEST(MemorySnapshot, JemallocFiguresOnlyWhenJemallocServes) {
  rp::MemorySnapshotter snapshotter;
  const auto snapshot = snapshotter.take(rp::system_clock(), true);
  if (rp::JemallocCtl::usable()) {
    ASSERT_TRUE(snapshot.active_bytes && snapshot.metadata_bytes && snapshot.resident_bytes && snapshot.mapped_bytes &&
                snapshot.retained_bytes);
    EXPECT_GE(*snapshot.active_bytes, *snapshot.heap_bytes);
    EXPECT_GE(*snapshot.resident_bytes, *snapshot.active_bytes);
    EXPECT_GE(*snapshot.mapped_bytes, *snapshot.active_bytes);
    EXPECT_GT(*snapshot.metadata_bytes, 0u);
    ASSERT_TRUE(snapshot.allocation_count && snapshot.deallocation_count && snapshot.total_allocated_bytes &&
                snapshot.total_deallocated_bytes);
    EXPECT_GE(*snapshot.allocation_count, *snapshot.deallocation_count);
    ASSERT_TRUE(snapshot.size_classes);
    EXPECT_FALSE(snapshot.size_classes->empty());
    EXPECT_FALSE(snapshot.free_bytes);
  } else {
    // Never zeros passed off as jemalloc's: those fields are absent.
    EXPECT_FALSE(snapshot.active_bytes);
    EXPECT_FALSE(snapshot.metadata_bytes);
    EXPECT_FALSE(snapshot.resident_bytes);
    EXPECT_FALSE(snapshot.retained_bytes);
    EXPECT_FALSE(snapshot.allocation_count);
    EXPECT_FALSE(snapshot.deallocation_count);
    EXPECT_FALSE(snapshot.total_allocated_bytes);
    EXPECT_FALSE(snapshot.size_classes);
    EXPECT_TRUE(snapshot.mapped_bytes);
    EXPECT_GE(*snapshot.mapped_bytes, *snapshot.heap_bytes);
  }
}

TEST(MemorySnapshot, AllocatingAndTouching200MiBShowsInHeapResidentAndRss) {
  rp::MemorySnapshotter snapshotter;
  const auto before = snapshotter.take(rp::system_clock(), true);

  // 200 blocks of 1 MiB: 1 MiB is one of jemalloc's size classes, so the heap grows by exactly 200 MiB
  // (a single 200 MiB block would be rounded up to the 224 MiB class).
  std::vector<char*> blocks(kBigBytes / kMiB);
  for (auto*& block : blocks) {
    block = static_cast<char*>(std::malloc(kMiB));
    ASSERT_NE(block, nullptr);
    std::memset(block, 0x5a, kMiB);
  }
  const auto during = snapshotter.take(rp::system_clock(), true);

  EXPECT_LT(relative_error(static_cast<double>(delta(during.heap_bytes, before.heap_bytes)), kBigBytes), 0.05)
      << "heap " << *before.heap_bytes << " -> " << *during.heap_bytes;

  // RSS: what the kernel guarantees, not what one machine showed. Every touched page is resident, so RSS
  // grows by at least the touched bytes, less what may leave RSS meanwhile: pages the allocator purges from
  // earlier tests (jemalloc's decay, glibc's trim) and the counters' batching, within 5% of the block.
  // At most it grows by the touched bytes
  //  - plus the sanitizer's shadow of them, which may or may not stay resident: ASan has 1 shadow byte per
  //    8, poisons a large chunk's shadow when it maps the chunk and, when it unpoisons the chunk for the
  //    caller, hands whole shadow pages back to the kernel instead of zeroing them; how much of it stays
  //    resident depends on the runtime and the kernel (an Intel Xeon: +202.6 MiB for 200, none of it);
  //    TSan keeps 4 shadow bytes per application byte (kShadowMultiplier), written by the instrumented memset;
  //  - plus a fixed slack of 16 MiB for the rest: allocator headers and redzones (ASan maps each 1 MiB
  //    chunk with a header page and a redzone page: 200 x 8 KiB = 1.6 MiB), transparent huge pages that
  //    round the ends of each mapping up to 2 MiB when THP is "always" (a few mappings: 2 x 2 MiB each),
  //    the snapshotter's own buffers, and the counters' batching (rss_counter_slack_bytes()).
  const std::string_view allocator = expected_allocator();
  const double shadow_per_byte = allocator == "asan" ? 1.0 / 8.0 : allocator == "tsan" ? 4.0 : 0.0;
  const auto rss_growth = delta(during.rss_bytes, before.rss_bytes);
  const auto rss_lowest = static_cast<std::int64_t>(kBigBytes - kBigBytes / 20 - rss_counter_slack_bytes());
  const auto rss_highest = static_cast<std::int64_t>(static_cast<double>(kBigBytes) * (1.0 + shadow_per_byte)) +
                           static_cast<std::int64_t>(16 * kMiB + rss_counter_slack_bytes());
  EXPECT_GE(rss_growth, rss_lowest) << "rss " << *before.rss_bytes << " -> " << *during.rss_bytes;
  EXPECT_LE(rss_growth, rss_highest) << "rss " << *before.rss_bytes << " -> " << *during.rss_bytes;
  // VmHWM is read after statm: at least the RSS then, within the counters' batching.
  EXPECT_GE(*during.peak_rss_bytes + rss_counter_slack_bytes(), *during.rss_bytes);
  EXPECT_GE(*during.peak_heap_bytes, *during.heap_bytes);
  if (rp::JemallocCtl::usable()) {
    EXPECT_LT(relative_error(static_cast<double>(delta(during.resident_bytes, before.resident_bytes)), kBigBytes), 0.05)
        << "resident " << *before.resident_bytes << " -> " << *during.resident_bytes;
    EXPECT_GE(delta(during.total_allocated_bytes, before.total_allocated_bytes), static_cast<std::int64_t>(kBigBytes));
  }

  for (auto* block : blocks) {
    std::free(block);
  }
  if (rp::JemallocCtl::usable()) {
    ASSERT_EQ(rp::JemallocCtl::run("thread.tcache.flush"), 0);
    ASSERT_EQ(rp::JemallocCtl::run("arena.4096.purge"), 0);
  }
  const auto after = snapshotter.take(rp::system_clock(), true);
  EXPECT_LT(relative_error(static_cast<double>(delta(during.heap_bytes, after.heap_bytes)), kBigBytes), 0.05)
      << "heap " << *during.heap_bytes << " -> " << *after.heap_bytes;
  // The peak remembers the block.
  EXPECT_GE(*after.peak_heap_bytes, *during.heap_bytes);
  if (rp::JemallocCtl::usable()) {
    // Purged: resident and RSS come back down (within 5% of the block of where they started).
    EXPECT_LT(delta(after.resident_bytes, before.resident_bytes), static_cast<std::int64_t>(kBigBytes / 20))
        << "resident " << *before.resident_bytes << " -> " << *during.resident_bytes << " -> " << *after.resident_bytes;
    EXPECT_GE(delta(after.total_deallocated_bytes, during.total_deallocated_bytes),
              static_cast<std::int64_t>(kBigBytes));
  }
  // ASan keeps freed blocks in its quarantine (256 MiB by default) and TSan its shadow, so RSS stays up.
  // Elsewhere the pages go back (jemalloc: purged above; glibc: the 1 MiB chunks are unmapped or trimmed).
  if (!sanitizer_allocator()) {
    EXPECT_LT(delta(after.rss_bytes, before.rss_bytes),
              static_cast<std::int64_t>(kBigBytes / 20 + rss_counter_slack_bytes()))
        << "rss " << *before.rss_bytes << " -> " << *during.rss_bytes << " -> " << *after.rss_bytes;
  }
}

TEST(MemorySnapshot, CountsSmallAllocationsPerSizeClass) {
  if (!rp::JemallocCtl::usable()) {
    GTEST_SKIP() << "allocation counts come from jemalloc's size classes; " << expected_allocator()
                 << " keeps none (the fields are asserted empty in JemallocFiguresOnlyWhenJemallocServes)";
  }
  constexpr std::size_t kObjects = 20000;
  constexpr std::size_t kSize = 48;
  rp::MemorySnapshotter snapshotter;
  const auto before = snapshotter.take(rp::system_clock(), true);
  std::vector<void*> objects(kObjects);
  for (auto& object : objects) {
    object = std::malloc(kSize);
    std::memset(object, 1, kSize);
  }
  const auto during = snapshotter.take(rp::system_clock(), true);
  for (auto* object : objects) {
    std::free(object);
  }
  ASSERT_EQ(rp::JemallocCtl::run("thread.tcache.flush"), 0);
  const auto after = snapshotter.take(rp::system_clock(), true);

  // Thread-cache fills count objects in batches, so the counters may run ahead by one cache's worth.
  const auto allocations = delta(during.allocation_count, before.allocation_count);
  EXPECT_GE(allocations, static_cast<std::int64_t>(kObjects * 95 / 100));
  EXPECT_GE(delta(during.total_allocated_bytes, before.total_allocated_bytes),
            static_cast<std::int64_t>(kObjects * kSize * 95 / 100));
  EXPECT_GE(delta(after.deallocation_count, during.deallocation_count), static_cast<std::int64_t>(kObjects * 95 / 100));

  const auto find_48 = [](const rp::MemorySnapshot& snapshot) -> const rp::SizeClassStats* {
    for (const auto& size_class : *snapshot.size_classes) {
      if (size_class.size == kSize && !size_class.large) {
        return &size_class;
      }
    }
    return nullptr;
  };
  const auto* held = find_48(during);
  ASSERT_NE(held, nullptr);
  EXPECT_GE(held->current, kObjects);
  EXPECT_EQ(held->current, held->nmalloc - held->ndalloc);
  const auto* released = find_48(after);
  ASSERT_NE(released, nullptr);
  EXPECT_LT(released->current, held->current - kObjects * 95 / 100);
}

TEST(MemorySnapshot, LargeClassesAreCountedUpToTheLargestUsed) {
  if (!rp::JemallocCtl::usable()) {
    GTEST_SKIP() << "size classes are jemalloc's; " << expected_allocator() << " has none";
  }
  // A class far above anything else this process allocates: read() must not stop before it.
  constexpr std::size_t kHuge = 96 * kMiB;  // exactly one of jemalloc's large classes
  rp::MemorySnapshotter snapshotter;
  const auto before = snapshotter.take(rp::system_clock(), true);
  void* volatile block = std::malloc(kHuge);
  ASSERT_NE(block, nullptr);
  const auto during = snapshotter.take(rp::system_clock(), true);
  std::free(block);
  EXPECT_EQ(delta(during.total_allocated_bytes, before.total_allocated_bytes) >= static_cast<std::int64_t>(kHuge),
            true);
  bool found = false;
  for (const auto& size_class : *during.size_classes) {
    if (size_class.large && size_class.size == kHuge) {
      found = true;
      EXPECT_GE(size_class.nmalloc, 1u);
      EXPECT_GE(size_class.current, 1u);
    }
  }
  EXPECT_TRUE(found);
  // Sums over the classes are consistent with jemalloc's own totals.
  std::uint64_t current_bytes = 0;
  for (const auto& size_class : *during.size_classes) {
    current_bytes += size_class.size * size_class.current;
  }
  EXPECT_EQ(current_bytes, *during.heap_bytes);
  EXPECT_EQ(*during.total_allocated_bytes - *during.total_deallocated_bytes, *during.heap_bytes);
}

TEST(MemorySnapshot, JsonHasTheSpecFieldsAndNullForWhatIsUnknown) {
  rp::MemorySnapshotter snapshotter;
  const auto snapshot = snapshotter.take(rp::system_clock(), true);
  const auto json = rp::snapshot_to_json(snapshot, {.include_size_classes = true});
  for (const char* key : {"timestamp", "total_allocated", "total_deallocated", "current_usage", "peak_usage",
                          "allocation_count", "deallocation_count", "allocator", "rss_bytes", "heap_bytes",
                          "virtual_bytes", "peak_rss_bytes", "cgroup", "size_classes"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_FALSE(json.contains("session_id"));  // the caller adds it
  EXPECT_EQ(json["allocator"], expected_allocator());
  EXPECT_EQ(json["current_usage"], *snapshot.heap_bytes);
  EXPECT_TRUE(json["rss_bytes"].is_number_unsigned());
  EXPECT_EQ(json["timestamp"].get<std::string>().back(), 'Z');
  if (rp::JemallocCtl::usable()) {
    EXPECT_TRUE(json["allocation_count"].is_number_unsigned());
    EXPECT_TRUE(json["total_allocated"].is_number_unsigned());
    EXPECT_EQ(json["jemalloc"]["resident"], *snapshot.resident_bytes);
    EXPECT_FALSE(json["size_classes"].empty());
  } else {
    EXPECT_TRUE(json["allocation_count"].is_null());
    EXPECT_TRUE(json["total_allocated"].is_null());
    EXPECT_FALSE(json.contains("jemalloc"));
    EXPECT_EQ(json["fallback"]["heap_bytes"], *snapshot.heap_bytes);
    EXPECT_TRUE(json["size_classes"].empty());
  }
  // ADL form for `json j = snapshot;` leaves size classes out.
  const nlohmann::json plain = snapshot;
  EXPECT_FALSE(plain.contains("size_classes"));
}

TEST(MemorySnapshot, ReadsWithoutAllocatorStatsWhenTurnedOff) {
  rp::MemorySnapshotter snapshotter({.allocator_stats = false, .size_classes = false});
  const auto snapshot = snapshotter.take(rp::system_clock(), true);
  EXPECT_TRUE(snapshot.rss_bytes);
  EXPECT_FALSE(snapshot.heap_bytes);
  EXPECT_FALSE(snapshot.allocation_count);
}

}  // namespace
