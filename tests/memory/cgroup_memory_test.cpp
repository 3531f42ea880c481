// The cgroup memory reader over fake root directories (cgroup v1, v2, hybrid, malformed files), and the
// capture trigger's policy (thresholds, memory.high, hysteresis, interval) over made-up readings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/memory/capture_trigger.hpp"
#include "riptide/performance/memory/cgroup_memory.hpp"

namespace rp = riptide::performance;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr const char* kV1NoLimit = "9223372036854771712\n";

class FakeRoot {
 public:
  FakeRoot() {
    char pattern[] = "/tmp/riptide-cgroup-XXXXXX";
    root_ = fs::path(::mkdtemp(pattern));
  }
  ~FakeRoot() {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }
  FakeRoot(const FakeRoot&) = delete;
  FakeRoot& operator=(const FakeRoot&) = delete;

  void write(const std::string& relative, const std::string& text) const {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }
  [[nodiscard]] const fs::path& path() const { return root_; }

 private:
  fs::path root_;
};

// This machine's layout: cgroup v1 controllers plus cgroup2 mounted (without controllers) beside them.
constexpr const char* kHybridMountinfo =
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

void write_v1(const FakeRoot& root, const std::string& limit, const std::string& usage, const std::string& stat) {
  root.write("proc/self/cgroup", "4:memory:/jobs/scraper\n1:cpu:/\n0::/\n");
  root.write("proc/self/mountinfo", kHybridMountinfo);
  root.write("sys/fs/cgroup/memory/jobs/scraper/memory.limit_in_bytes", limit);
  root.write("sys/fs/cgroup/memory/jobs/scraper/memory.usage_in_bytes", usage);
  root.write("sys/fs/cgroup/memory/jobs/scraper/memory.stat", stat);
}

constexpr const char* kV2Mountinfo = "25 1 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

void write_v2(const FakeRoot& root, const std::string& max, const std::string& high, const std::string& current,
              const std::string& stat) {
  root.write("proc/self/cgroup", "0::/system.slice/scraper.service\n");
  root.write("proc/self/mountinfo", kV2Mountinfo);
  const std::string dir = "sys/fs/cgroup/system.slice/scraper.service/";
  root.write(dir + "memory.max", max);
  root.write(dir + "memory.high", high);
  root.write(dir + "memory.current", current);
  root.write(dir + "memory.stat", stat);
  root.write("sys/fs/cgroup/system.slice/memory.max", "max\n");
  root.write("sys/fs/cgroup/system.slice/memory.high", "max\n");
}

}  // namespace

TEST(CgroupParsing, LimitsUsagesAndStatLines) {
  EXPECT_EQ(rp::parse_cgroup_limit("268435456\n", "memory.max"), 268435456U);
  EXPECT_EQ(rp::parse_cgroup_limit("max\n", "memory.max"), std::nullopt);
  EXPECT_EQ(rp::parse_cgroup_limit(kV1NoLimit, "memory.limit_in_bytes"), std::nullopt);
  EXPECT_EQ(rp::parse_cgroup_usage("1234\n", "memory.current"), 1234U);
  const std::string stat = "cache 10\ninactive_file 4096\ntotal_inactive_file 8192\n";
  EXPECT_EQ(rp::parse_memory_stat_value(stat, "inactive_file", "memory.stat"), 4096U);
  EXPECT_EQ(rp::parse_memory_stat_value(stat, "total_inactive_file", "memory.stat"), 8192U);
  EXPECT_EQ(rp::parse_memory_stat_value(stat, "active_file", "memory.stat"), std::nullopt);
}

TEST(CgroupParsing, MalformedContentsAreClearErrors) {
  for (const char* text : {"", "\n", "12abc", "-5", "1.5e9", "max max", "0x100", "184467440737095516160"}) {
    SCOPED_TRACE(text);
    try {
      (void)rp::parse_cgroup_limit(text, "/x/memory.max");
      ADD_FAILURE() << "accepted";
    } catch (const rp::Error& error) {
      EXPECT_THAT(error.what(), HasSubstr("/x/memory.max holds"));
      EXPECT_THAT(error.what(), HasSubstr("accepted: a decimal number of bytes, or 'max'"));
    }
  }
  EXPECT_THROW((void)rp::parse_cgroup_usage("max\n", "memory.current"), rp::Error);
  try {
    (void)rp::parse_memory_stat_value("inactive_file lots\n", "inactive_file", "memory.stat");
    ADD_FAILURE() << "accepted";
  } catch (const rp::Error& error) {
    EXPECT_THAT(error.what(), HasSubstr("'inactive_file lots'"));
    EXPECT_THAT(error.what(), HasSubstr("inactive_file <decimal number>"));
  }
}

TEST(CgroupMemoryReader, V1LimitUsageAndInactivePageCache) {
  FakeRoot root;
  write_v1(root, "268435456\n", "209715200\n",
           "cache 52428800\ntotal_inactive_file 41943040\nhierarchical_memory_limit 9223372036854771712\n");
  const rp::CgroupMemoryReader reader(root.path());
  ASSERT_TRUE(reader.available()) << reader.unavailable_reason();
  EXPECT_EQ(reader.version(), 1) << "the hybrid cgroup2 mount has no memory.max: v1 limits";
  EXPECT_EQ(reader.directory(), root.path() / "sys/fs/cgroup/memory/jobs/scraper");
  const rp::CgroupMemoryReading reading = reader.read();
  EXPECT_EQ(reading.max_bytes, 256 * kMiB);
  EXPECT_EQ(reading.high_bytes, std::nullopt);
  EXPECT_EQ(reading.usage_bytes, 200 * kMiB);
  EXPECT_EQ(reading.working_set_bytes(), 160 * kMiB) << "usage without the inactive page cache";
  EXPECT_EQ(reading.effective_limit_bytes(), 256 * kMiB);
}

TEST(CgroupMemoryReader, V1UnlimitedHereButLimitedByAnAncestor) {
  FakeRoot root;
  write_v1(root, kV1NoLimit, "1000\n", "total_inactive_file 0\nhierarchical_memory_limit 536870912\n");
  const rp::CgroupMemoryReading reading = rp::CgroupMemoryReader(root.path()).read();
  EXPECT_EQ(reading.max_bytes, 512 * kMiB) << "memory.stat's hierarchical_memory_limit is the one that applies";

  FakeRoot unlimited;
  write_v1(unlimited, kV1NoLimit, "1000\n", "total_inactive_file 0\nhierarchical_memory_limit 9223372036854771712\n");
  EXPECT_EQ(rp::CgroupMemoryReader(unlimited.path()).read().effective_limit_bytes(), std::nullopt);
}

TEST(CgroupMemoryReader, V2MaxHighAndAncestors) {
  FakeRoot root;
  write_v2(root, "max\n", "104857600\n", "83886080\n", "anon 60000000\ninactive_file 10485760\n");
  rp::CgroupMemoryReader reader(root.path());
  ASSERT_TRUE(reader.available()) << reader.unavailable_reason();
  EXPECT_EQ(reader.version(), 2);
  rp::CgroupMemoryReading reading = reader.read();
  EXPECT_EQ(reading.max_bytes, std::nullopt);
  EXPECT_EQ(reading.high_bytes, 100 * kMiB);
  EXPECT_EQ(reading.effective_limit_bytes(), 100 * kMiB) << "memory.high alone is the limit";
  EXPECT_EQ(reading.working_set_bytes(), 70 * kMiB);

  // A lower limit on the parent applies; the files are read anew at every reading (limits change live).
  root.write("sys/fs/cgroup/system.slice/memory.max", "62914560\n");
  reading = reader.read();
  EXPECT_EQ(reading.max_bytes, 60 * kMiB);
  EXPECT_EQ(reading.effective_limit_bytes(), 60 * kMiB) << "the lower of memory.max and memory.high";
}

TEST(CgroupMemoryReader, V2ContainerSeesItsCgroupAtTheMount) {
  // A container without a cgroup namespace: /proc/self/cgroup names a path the mount does not show.
  FakeRoot root;
  root.write("proc/self/cgroup", "0::/kubepods/pod1/abc\n");
  root.write("proc/self/mountinfo", kV2Mountinfo);
  root.write("sys/fs/cgroup/memory.max", "1073741824\n");
  root.write("sys/fs/cgroup/memory.current", "1\n");
  const rp::CgroupMemoryReader reader(root.path());
  ASSERT_TRUE(reader.available()) << reader.unavailable_reason();
  EXPECT_EQ(reader.directory(), root.path() / "sys/fs/cgroup");
  EXPECT_EQ(reader.read().max_bytes, 1024 * kMiB);
  EXPECT_EQ(reader.read().inactive_file_bytes, 0U) << "no memory.stat: the whole usage counts";
}

TEST(CgroupMemoryReader, MalformedFilesThrowNamingTheFile) {
  FakeRoot root;
  write_v2(root, "lots\n", "max\n", "1\n", "inactive_file 0\n");
  const rp::CgroupMemoryReader reader(root.path());
  ASSERT_TRUE(reader.available());
  try {
    (void)reader.read();
    ADD_FAILURE() << "accepted";
  } catch (const rp::Error& error) {
    EXPECT_THAT(error.what(), HasSubstr("scraper.service/memory.max holds 'lots'"));
  }
  FakeRoot huge;
  write_v1(huge, "1\n", "1\n", std::string(70 * 1024, 'x'));
  EXPECT_THROW((void)rp::CgroupMemoryReader(huge.path()).read(), rp::Error) << "a 70 KiB memory.stat is not one";
}

TEST(CgroupMemoryReader, UnavailableWithTheReason) {
  FakeRoot missing;
  rp::CgroupMemoryReader no_proc(missing.path());
  EXPECT_FALSE(no_proc.available());
  EXPECT_THAT(no_proc.unavailable_reason(), HasSubstr("cannot read " + (missing.path() / "proc/self/cgroup").string()));
  EXPECT_THROW((void)no_proc.read(), rp::Error);

  FakeRoot no_memory;
  no_memory.write("proc/self/cgroup", "1:cpu:/\n");
  no_memory.write("proc/self/mountinfo", kHybridMountinfo);
  EXPECT_THAT(rp::CgroupMemoryReader(no_memory.path()).unavailable_reason(),
              HasSubstr("neither a cgroup v2 line ('0::<path>') nor a cgroup v1 line naming the memory controller"));

  FakeRoot hybrid_root;  // v2 root cgroup only: no memory.max anywhere
  hybrid_root.write("proc/self/cgroup", "0::/\n");
  hybrid_root.write("proc/self/mountinfo", kHybridMountinfo);
  EXPECT_THAT(rp::CgroupMemoryReader(hybrid_root.path()).unavailable_reason(),
              HasSubstr("no memory controller in the process's cgroup (v2 / has no memory.max"));

  FakeRoot garbage;
  garbage.write("proc/self/cgroup", std::string("\0\xff::::\n", 7));
  garbage.write("proc/self/mountinfo", "not a mountinfo line\n");
  EXPECT_FALSE(rp::CgroupMemoryReader(garbage.path()).available());
}

TEST(CgroupMemoryReader, ThisProcessReadsItsOwnCgroupOrSaysWhy) {
  const rp::CgroupMemoryReader reader;
  if (!reader.available()) {
    EXPECT_FALSE(reader.unavailable_reason().empty());
    GTEST_SKIP() << "no memory cgroup here: " << reader.unavailable_reason();
  }
  const rp::CgroupMemoryReading reading = reader.read();
  EXPECT_GT(reading.usage_bytes, 0U);
}

namespace {

rp::CgroupMemoryReading cgroup_at(std::uint64_t usage_mib, std::optional<std::uint64_t> max_mib,
                                  std::optional<std::uint64_t> high_mib = std::nullopt) {
  rp::CgroupMemoryReading reading;
  reading.version = 2;
  reading.usage_bytes = usage_mib * kMiB;
  if (max_mib) reading.max_bytes = *max_mib * kMiB;
  if (high_mib) reading.high_bytes = *high_mib * kMiB;
  return reading;
}

rp::CaptureReading at(std::chrono::steady_clock::time_point time, std::optional<std::uint64_t> rss_mib,
                      std::optional<rp::CgroupMemoryReading> cgroup = std::nullopt) {
  rp::CaptureReading reading;
  reading.time = time;
  if (rss_mib) reading.rss_bytes = *rss_mib * kMiB;
  reading.cgroup = cgroup;
  return reading;
}

}  // namespace

TEST(CaptureTrigger, RssAboveTheAlertCapturesOnceUntilItFallsBackBelow) {
  rp::CaptureTrigger trigger({.rss_alert_bytes = 650 * kMiB, .cgroup_share = 0.9, .min_interval = 0s});
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  EXPECT_FALSE(trigger.observe(at(t0, 600)));
  const auto cause = trigger.observe(at(t0 + 1s, 700));
  ASSERT_TRUE(cause);
  EXPECT_EQ(cause->trigger, "memory_alert");
  EXPECT_EQ(cause->reason, "RSS 700.0 MiB >= targets.memory_alert_mb (650.0 MiB)");
  trigger.note_capture(t0 + 1s);
  EXPECT_FALSE(trigger.armed());
  EXPECT_FALSE(trigger.observe(at(t0 + 2s, 800))) << "still above: no second capture";
  EXPECT_FALSE(trigger.observe(at(t0 + 3s, 630))) << "below the threshold but above the re-arm level (95%)";
  EXPECT_FALSE(trigger.armed()) << "hysteresis: hovering at the line does not re-arm";
  EXPECT_FALSE(trigger.observe(at(t0 + 4s, 600)));
  EXPECT_TRUE(trigger.armed()) << "600 MiB < 95% of 650 MiB";
  EXPECT_TRUE(trigger.observe(at(t0 + 5s, 660))) << "the next crossing captures";
}

TEST(CaptureTrigger, TheIntervalBoundsCapturesOfAProcessThatClimbsAndFalls) {
  rp::CaptureTrigger trigger({.rss_alert_bytes = 100 * kMiB, .cgroup_share = 0.9, .min_interval = 10min});
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  ASSERT_TRUE(trigger.observe(at(t0, 200)));
  trigger.note_capture(t0);
  EXPECT_FALSE(trigger.observe(at(t0 + 1min, 50)));
  EXPECT_TRUE(trigger.armed());
  EXPECT_FALSE(trigger.observe(at(t0 + 2min, 200))) << "armed, above, but within the interval";
  EXPECT_TRUE(trigger.armed()) << "stays armed: captures when the interval has passed";
  EXPECT_FALSE(trigger.observe(at(t0 + 10min - 1ms, 200)));
  EXPECT_TRUE(trigger.observe(at(t0 + 10min, 200)));
}

TEST(CaptureTrigger, CgroupShareOfTheLowerOfMaxAndHigh) {
  rp::CaptureTrigger trigger({.rss_alert_bytes = std::nullopt, .cgroup_share = 0.6, .min_interval = 0s});
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  EXPECT_EQ(trigger.cgroup_threshold_bytes(cgroup_at(0, 256)), static_cast<std::uint64_t>(0.6 * 256 * kMiB));
  EXPECT_FALSE(trigger.observe(at(t0, 10, cgroup_at(150, 256))));
  const auto by_max = trigger.observe(at(t0 + 1s, 10, cgroup_at(160, 256)));
  ASSERT_TRUE(by_max);
  EXPECT_EQ(by_max->trigger, "cgroup_share");
  EXPECT_EQ(by_max->reason, "cgroup working set 160.0 MiB >= 0.6 x memory limit (256.0 MiB)");

  rp::CaptureTrigger high({.rss_alert_bytes = std::nullopt, .cgroup_share = 0.6, .min_interval = 0s});
  const auto by_high = high.observe(at(t0, 10, cgroup_at(70, 1024, 100)));
  ASSERT_TRUE(by_high) << "memory.high (100 MiB) below memory.max (1 GiB) is the limit";
  EXPECT_EQ(by_high->reason, "cgroup working set 70.0 MiB >= 0.6 x memory.high (100.0 MiB)");

  rp::CaptureTrigger unlimited({.rss_alert_bytes = std::nullopt, .cgroup_share = 0.6, .min_interval = 0s});
  EXPECT_FALSE(unlimited.observe(at(t0, 10, cgroup_at(100000, std::nullopt)))) << "no limit: never";
  EXPECT_FALSE(unlimited.observe(at(t0, std::nullopt))) << "nothing measured: never";
}
