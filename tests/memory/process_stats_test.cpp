#include "riptide/performance/memory/process_stats.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace rp = riptide::performance;

namespace {

TEST(ParseStatm, ReadsSizeAndResidentPages) {
  const auto figures = rp::parse_statm("765 432 404 5 0 123 0\n", 4096);
  ASSERT_TRUE(figures);
  EXPECT_EQ(figures->virtual_bytes, 765u * 4096);
  EXPECT_EQ(figures->rss_bytes, 432u * 4096);
}

TEST(ParseStatm, RefusesOddText) {
  EXPECT_FALSE(rp::parse_statm("", 4096));
  EXPECT_FALSE(rp::parse_statm("\n", 4096));
  EXPECT_FALSE(rp::parse_statm("765", 4096));
  EXPECT_FALSE(rp::parse_statm("abc 432 1", 4096));
  EXPECT_FALSE(rp::parse_statm("765 -432 1", 4096));
  EXPECT_FALSE(rp::parse_statm("765 4x2 1", 4096));
  EXPECT_FALSE(rp::parse_statm("18446744073709551615 1 1", 4096));  // overflows in bytes
  EXPECT_FALSE(rp::parse_statm("765 432 1", 0));
}

TEST(ParseStatus, ReadsKilobyteFieldsInBytes) {
  const std::string status = "Name:\tx\nVmPeak:\t  10 kB\nVmHWMX:\t 1 kB\nVmHWM:\t    1964 kB\nVmRSS:\t 1000 kB\n";
  EXPECT_EQ(rp::parse_status_kb_field(status, "VmHWM"), 1964u * 1024);
  EXPECT_EQ(rp::parse_status_kb_field(status, "VmRSS"), 1000u * 1024);
  EXPECT_FALSE(rp::parse_status_kb_field(status, "VmSwap"));
}

TEST(ParseStatus, RefusesOddFields) {
  EXPECT_FALSE(rp::parse_status_kb_field("", "VmHWM"));
  EXPECT_FALSE(rp::parse_status_kb_field("VmHWM:\t1964", "VmHWM"));     // no unit
  EXPECT_FALSE(rp::parse_status_kb_field("VmHWM:\t1964 MB", "VmHWM"));  // other unit
  EXPECT_FALSE(rp::parse_status_kb_field("VmHWM:\tlots kB", "VmHWM"));  // not a number
  EXPECT_FALSE(rp::parse_status_kb_field("VmHWM:\t kB", "VmHWM"));      // empty number
  EXPECT_FALSE(rp::parse_status_kb_field("VmHWM:\t99999999999999999999 kB", "VmHWM"));
}

TEST(ParseProcCgroup, UnifiedOnly) {
  const auto membership = rp::parse_proc_cgroup("0::/system.slice/scraper.service\n");
  EXPECT_EQ(membership.unified_path, "/system.slice/scraper.service");
  EXPECT_FALSE(membership.memory_path);
}

TEST(ParseProcCgroup, HybridHierarchyAndColonsInPaths) {
  const auto membership =
      rp::parse_proc_cgroup("9:name=systemd:/\n4:cpu,memory:/process_api/7ee8:c819\n1:cpu:/\n0::/\n");
  EXPECT_EQ(membership.unified_path, "/");
  EXPECT_EQ(membership.memory_path, "/process_api/7ee8:c819");
}

TEST(ParseProcCgroup, IgnoresGarbage) {
  const auto membership = rp::parse_proc_cgroup("garbage\n0:\n::relative\n4:memory:\n");
  EXPECT_FALSE(membership.unified_path);
  EXPECT_FALSE(membership.memory_path);
  EXPECT_FALSE(rp::parse_proc_cgroup("").unified_path);
}

TEST(ParseMountinfo, FindsUnifiedAndMemoryMounts) {
  const auto mounts = rp::parse_mountinfo(
      "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "34 30 0:31 /docker/abc /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory\n"
      "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
      "short line\n"
      "41 30 0:38 / /x rw - \n");
  ASSERT_TRUE(mounts.unified);
  EXPECT_EQ(*mounts.unified, "/sys/fs/cgroup/unified");
  EXPECT_EQ(mounts.unified_root, "/");
  ASSERT_TRUE(mounts.memory_v1);
  EXPECT_EQ(*mounts.memory_v1, "/sys/fs/cgroup/memory");
  EXPECT_EQ(mounts.memory_v1_root, "/docker/abc");
  EXPECT_FALSE(rp::parse_mountinfo("garbage without separator\n").unified);
}

TEST(ParseCgroupMemoryValue, NumbersMaxAndNoise) {
  EXPECT_EQ(rp::parse_cgroup_memory_value("536870912\n"), 536870912u);
  EXPECT_EQ(rp::parse_cgroup_memory_value("0"), 0u);
  EXPECT_FALSE(rp::parse_cgroup_memory_value("max\n"));
  EXPECT_FALSE(rp::parse_cgroup_memory_value("9223372036854771712\n"));  // cgroup v1 "no limit"
  EXPECT_FALSE(rp::parse_cgroup_memory_value(""));
  EXPECT_FALSE(rp::parse_cgroup_memory_value("-1"));
  EXPECT_FALSE(rp::parse_cgroup_memory_value("12a"));
  EXPECT_FALSE(rp::parse_cgroup_memory_value("1 2"));
  EXPECT_FALSE(rp::parse_cgroup_memory_value("99999999999999999999999"));
}

class FakeProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("riptide-memory-test-" + std::to_string(::getpid()) + "-" +
                                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(root_ / "proc");
    std::filesystem::create_directories(root_ / "cgroup");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::filesystem::path& relative, const std::string& text) {
    std::ofstream(root_ / relative, std::ios::trunc) << text;
  }
  std::filesystem::path root_;
};

TEST_F(FakeProcTest, ReadsEveryFigureFromWellFormedFiles) {
  write("proc/statm", "1000 250 10 1 0 100 0\n");
  write("proc/status", "Name:\tx\nVmHWM:\t    2048 kB\n");
  write("cgroup/memory.max", "1073741824\n");
  write("cgroup/memory.current", "52428800\n");
  const rp::ProcessStats stats(root_ / "proc", root_ / "cgroup", 2);
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const auto memory = stats.read();
  EXPECT_EQ(memory.virtual_bytes, 1000 * page);
  EXPECT_EQ(memory.rss_bytes, 250 * page);
  EXPECT_EQ(memory.peak_rss_bytes, 2048u * 1024);
  EXPECT_EQ(memory.cgroup_limit_bytes, 1073741824u);
  EXPECT_EQ(memory.cgroup_usage_bytes, 52428800u);
  EXPECT_EQ(memory.cgroup_version, 2);
}

TEST_F(FakeProcTest, UnlimitedCgroupHasNoLimit) {
  write("proc/statm", "1000 250 10 1 0 100 0\n");
  write("cgroup/memory.max", "max\n");
  write("cgroup/memory.current", "4096\n");
  const rp::ProcessStats stats(root_ / "proc", root_ / "cgroup", 2);
  const auto memory = stats.read();
  EXPECT_FALSE(memory.cgroup_limit_bytes);
  EXPECT_EQ(memory.cgroup_usage_bytes, 4096u);
}

TEST_F(FakeProcTest, CgroupV1FileNames) {
  write("cgroup/memory.limit_in_bytes", "9223372036854771712\n");
  write("cgroup/memory.usage_in_bytes", "385597440\n");
  const rp::ProcessStats stats(root_ / "proc", root_ / "cgroup", 1);
  const auto memory = stats.read();
  EXPECT_FALSE(memory.cgroup_limit_bytes);
  EXPECT_EQ(memory.cgroup_usage_bytes, 385597440u);
  EXPECT_EQ(memory.cgroup_version, 1);
}

TEST_F(FakeProcTest, MalformedAndMissingFilesGiveEmptyFieldsNotCrashes) {
  write("proc/statm", "garbage\n");
  write("proc/status", "VmHWM:\tmany kB\n");
  write("cgroup/memory.max", "unlimited\n");
  write("cgroup/memory.current", std::string(100, '9'));  // larger than any sane value and the buffer
  const rp::ProcessStats stats(root_ / "proc", root_ / "cgroup", 2);
  const auto memory = stats.read();
  EXPECT_FALSE(memory.rss_bytes);
  EXPECT_FALSE(memory.virtual_bytes);
  EXPECT_FALSE(memory.peak_rss_bytes);
  EXPECT_FALSE(memory.cgroup_limit_bytes);
  EXPECT_FALSE(memory.cgroup_usage_bytes);

  const rp::ProcessStats nothing(root_ / "does-not-exist", std::nullopt, 0);
  const auto empty = nothing.read();
  EXPECT_FALSE(empty.rss_bytes);
  EXPECT_FALSE(empty.peak_rss_bytes);
  EXPECT_FALSE(empty.cgroup_version);
}

TEST_F(FakeProcTest, RereadsChangedContentThroughTheSameDescriptor) {
  write("proc/statm", "1000 250 10 1 0 100 0\n");
  const rp::ProcessStats stats(root_ / "proc", std::nullopt, 0);
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_EQ(stats.read_statm().rss_bytes, 250 * page);
  {
    // Rewrite in place (same inode), as the kernel regenerates /proc files.
    std::ofstream out(root_ / "proc/statm", std::ios::in | std::ios::out);
    out << "2000 500 10 1 0 100 0\n";
  }
  EXPECT_EQ(stats.read_statm().rss_bytes, 500 * page);
}

// How far statm's RSS and the later VmHWM read may disagree without a page being freed: the kernel keeps
// RSS in per-CPU counters (per-thread before Linux 6.2) folded into the total a batch at a time, so a read
// can be off by up to one batch per CPU; the batch is max(32, 2 x CPUs) pages since 6.2, 64 events before.
std::uint64_t rss_counter_slack_bytes() {
  const auto cpus = static_cast<std::uint64_t>(std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF)));
  const auto page = static_cast<std::uint64_t>(std::max(4096L, ::sysconf(_SC_PAGESIZE)));
  return 2 * cpus * std::max<std::uint64_t>(64, 2 * cpus) * page;
}

TEST(ProcessStatsLive, ReadsThisProcess) {
  const rp::ProcessStats stats;
  const auto memory = stats.read();
  ASSERT_TRUE(memory.rss_bytes);
  ASSERT_TRUE(memory.virtual_bytes);
  ASSERT_TRUE(memory.peak_rss_bytes);
  EXPECT_GT(*memory.rss_bytes, 0u);
  EXPECT_GE(*memory.virtual_bytes, *memory.rss_bytes);
  EXPECT_GE(*memory.peak_rss_bytes + rss_counter_slack_bytes(), *memory.rss_bytes);  // VmHWM is read after statm
}

// The cgroup figures exist only where the process sits in a memory cgroup the kernel exposes (v2, or v1
// with the memory controller mounted): elsewhere there is nothing to compare against, and the test says so.
TEST(ProcessStatsLive, ReadsThisProcessCgroup) {
  const rp::ProcessStats stats;
  if (!stats.cgroup_directory()) {
    GTEST_SKIP() << "no memory cgroup found for this process (/proc/self/cgroup and /proc/self/mountinfo name "
                    "neither a cgroup2 mount nor a v1 memory controller): nothing to read";
  }
  const auto memory = stats.read();
  EXPECT_TRUE(memory.cgroup_version);
  EXPECT_TRUE(memory.cgroup_usage_bytes);
}

}  // namespace
