// The fragmentation view: its arithmetic and advice on figures given by hand, and on a real jemalloc heap
// with a size class left mostly empty, before and after a purge.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/core/prometheus_writer.hpp"
#include "riptide/performance/memory/fragmentation.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/memory/memory_snapshot.hpp"

namespace rp = riptide::performance;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

rp::MemorySnapshot snapshot_by_hand() {
  rp::MemorySnapshot snapshot;
  snapshot.allocator = "jemalloc";
  snapshot.rss_bytes = 900 * kMiB;
  snapshot.resident_bytes = 800 * kMiB;
  snapshot.active_bytes = 500 * kMiB;
  snapshot.heap_bytes = 300 * kMiB;
  snapshot.metadata_bytes = 20 * kMiB;
  snapshot.dirty_bytes = 250 * kMiB;
  snapshot.muzzy_bytes = 0;
  snapshot.retained_bytes = 2000 * kMiB;
  auto classes = std::make_shared<std::vector<rp::SizeClassStats>>();
  // 48 B: 10,000 slabs of 256 objects (12 KiB each), 10% used.
  classes->push_back({48, false, 0, 0, 0, 256'000, 10'000, 256, 12'288});
  // 1 KiB: full slabs.
  classes->push_back({1024, false, 0, 0, 0, 1'600, 100, 16, 16'384});
  classes->push_back({32768, true, 0, 0, 0, 10, 0, 0, 0});  // large: no slabs
  snapshot.size_classes = classes;
  return snapshot;
}

bool advises(const rp::FragmentationReport& report, const std::string& setting) {
  return std::any_of(report.recommendations.begin(), report.recommendations.end(),
                     [&](const rp::FragmentationAdvice& advice) { return advice.setting == setting; });
}

}  // namespace

TEST(Fragmentation, ReconcilesTheFiguresAndRanksTheClassesThatWasteMost) {
  rp::AllocatorTuning tuning;
  tuning.dirty_decay_ms = 10'000;
  tuning.background_thread = false;
  tuning.arenas = 8;
  tuning.cpus = 2;
  const auto report = rp::assess_fragmentation(snapshot_by_hand(), tuning);
  ASSERT_TRUE(report.available);
  EXPECT_EQ(report.page_free_bytes, 200 * kMiB);  // active - allocated
  ASSERT_TRUE(report.outside_allocator_bytes.has_value());
  EXPECT_EQ(*report.outside_allocator_bytes, static_cast<std::int64_t>(100 * kMiB));  // RSS - resident
  EXPECT_DOUBLE_EQ(report.fragmentation_ratio, 1.0 - 300.0 / 800.0);
  ASSERT_EQ(report.worst_classes.size(), 2U);  // the two small classes; the large one has no slabs
  const auto& worst = report.worst_classes.front();
  EXPECT_EQ(worst.size, 48U);
  EXPECT_DOUBLE_EQ(worst.utilization, 0.1);
  EXPECT_EQ(worst.slab_bytes, 10'000U * 12'288U);
  EXPECT_EQ(worst.wasted_bytes, 10'000U * 12'288U - 256'000U * 48U);
  EXPECT_EQ(report.worst_classes[1].wasted_bytes, 0U);  // full slabs waste nothing
  // 250 MiB dirty of 900 MiB RSS: a purge, background threads, a shorter decay; 105 MiB of free slots in
  // a 10%-used class: the allocation pattern, and fewer arenas (8 on 2 CPUs).
  EXPECT_TRUE(advises(report, "POST /metrics/memory/gc"));
  EXPECT_TRUE(advises(report, "background_thread:true"));
  EXPECT_TRUE(advises(report, "dirty_decay_ms:1000"));
  EXPECT_TRUE(advises(report, "objects of 48 B"));
  EXPECT_TRUE(advises(report, "narenas:2"));
  for (const auto& advice : report.recommendations) EXPECT_GT(advice.up_to_bytes, 0U) << advice.setting;
}

TEST(Fragmentation, SmallCausesAndGoodSettingsGetNoAdvice) {
  auto snapshot = snapshot_by_hand();
  snapshot.dirty_bytes = 4 * kMiB;  // under 32 MiB: not worth a setting
  auto classes = std::make_shared<std::vector<rp::SizeClassStats>>();
  classes->push_back({48, false, 0, 0, 0, 2'000, 10, 256, 12'288});
  snapshot.size_classes = classes;
  rp::AllocatorTuning tuning;
  tuning.background_thread = true;
  tuning.dirty_decay_ms = 1000;
  const auto report = rp::assess_fragmentation(snapshot, tuning);
  EXPECT_TRUE(report.recommendations.empty()) << nlohmann::json(report).dump(2);
}

TEST(Fragmentation, WithoutJemallocItSaysWhy) {
  rp::MemorySnapshot snapshot;
  snapshot.allocator = "glibc";
  const auto report = rp::assess_fragmentation(snapshot, {});
  EXPECT_FALSE(report.available);
  EXPECT_NE(report.reason.find("jemalloc"), std::string::npos);
  const nlohmann::json json = report;
  EXPECT_EQ(json["available"], false);
  EXPECT_TRUE(json["reason"].is_string());
  rp::PrometheusWriter out;
  rp::write_prometheus(out, report);
  EXPECT_EQ(out.text(), "");
}

TEST(Fragmentation, AMostlyFreedSizeClassShowsItsLowUseAndAPurgeMovesTheFiguresAsJemallocsOwn) {
  if (!rp::JemallocCtl::usable()) GTEST_SKIP() << rp::JemallocCtl::availability().reason;
  // A million 48-byte objects, then 90% of them freed in random order: their slabs stay, about a tenth used.
  constexpr std::size_t kObjects = 1'000'000;
  std::vector<void*> objects(kObjects);
  for (auto& object : objects) object = std::malloc(48);
  std::vector<std::size_t> order(kObjects);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64{7});
  for (std::size_t i = 0; i < kObjects * 9 / 10; ++i) {
    std::free(objects[order[i]]);
    objects[order[i]] = nullptr;
  }
  static_cast<void>(rp::JemallocCtl::run("thread.tcache.flush"));

  rp::MemorySnapshotter snapshotter;
  const auto before = rp::assess_fragmentation(snapshotter.take(rp::system_clock(), true), rp::AllocatorTuning::read());
  ASSERT_TRUE(before.available) << before.reason;
  const auto it = std::find_if(before.worst_classes.begin(), before.worst_classes.end(),
                               [](const rp::SizeClassUtilization& c) { return c.size == 48; });
  ASSERT_NE(it, before.worst_classes.end()) << nlohmann::json(before).dump(2);
  // 100,000 live of the ~1,000,000 slots the slabs hold (other 48 B objects of the process add a little).
  EXPECT_LT(it->utilization, 0.2) << nlohmann::json(before).dump(2);
  EXPECT_GT(it->utilization, 0.05);
  EXPECT_GT(it->wasted_bytes, 30 * kMiB);  // ~43 MB of free slots
  EXPECT_GE(it->live_objects, kObjects / 10);

  // A purge returns the dirty pages: the report's figure moves to jemalloc's own reading after it.
  ASSERT_EQ(rp::JemallocCtl::run("arena.4096.purge"), 0);
  const auto after = rp::assess_fragmentation(snapshotter.take(rp::system_clock(), true), rp::AllocatorTuning::read());
  const auto page = rp::JemallocCtl::read_size("arenas.page");
  const auto dirty_pages = rp::JemallocCtl::read_size("stats.arenas.4096.pdirty");
  ASSERT_TRUE(page && dirty_pages);
  EXPECT_EQ(after.dirty_bytes, *dirty_pages * *page);
  EXPECT_LE(after.dirty_bytes, before.dirty_bytes);
  // Partly used slabs are not dirty pages: the purge leaves the class as it was.
  const auto kept = std::find_if(after.worst_classes.begin(), after.worst_classes.end(),
                                 [](const rp::SizeClassUtilization& c) { return c.size == 48; });
  ASSERT_NE(kept, after.worst_classes.end());
  EXPECT_NEAR(static_cast<double>(kept->slabs), static_cast<double>(it->slabs), 0.02 * static_cast<double>(it->slabs));
  for (void* object : objects) std::free(object);
}
