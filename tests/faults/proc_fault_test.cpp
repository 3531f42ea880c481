// Fault: /proc/self/statm and /proc/self/status missing, empty, truncated, binary, replaced by a
// directory, or emptied while open. A snapshot then reports those fields as unavailable (null in JSON)
// and keeps every other figure; nothing throws or crashes. The parsers' own unit tests are in
// tests/memory/process_stats_test.cpp; this drives the whole MemorySnapshotter and its JSON.
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "riptide/performance/core/clock.hpp"
#include "riptide/performance/memory/memory_json.hpp"
#include "riptide/performance/memory/memory_snapshot.hpp"

namespace rp = riptide::performance;

namespace {

class ProcFault : public ::testing::Test {
 protected:
  void SetUp() override {
    proc_ = std::filesystem::temp_directory_path() / ("riptide-proc-fault-" + std::to_string(::getpid()) + "-" +
                                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(proc_);
  }
  void TearDown() override { std::filesystem::remove_all(proc_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(proc_ / name, std::ios::binary | std::ios::trunc) << text;
  }

  // Takes a snapshot through the real snapshotter and checks the kernel fields are all absent while the
  // snapshot itself (timestamp, allocator) is complete.
  void expect_kernel_fields_unavailable() {
    rp::MemorySnapshotter snapshotter({.proc_self = proc_});
    rp::MemorySnapshot snapshot;
    ASSERT_NO_THROW(snapshot = snapshotter.take(rp::system_clock(), false));
    EXPECT_FALSE(snapshot.rss_bytes);
    EXPECT_FALSE(snapshot.virtual_bytes);
    EXPECT_FALSE(snapshot.peak_rss_bytes);
    EXPECT_FALSE(snapshot.cgroup_limit_bytes);
    EXPECT_FALSE(snapshot.cgroup_usage_bytes);
    EXPECT_FALSE(snapshot.allocator.empty());
    nlohmann::json json;
    ASSERT_NO_THROW(json = snapshot);
    const std::string text = json.dump();
    EXPECT_EQ(text.find("\"rss_bytes\":0"), std::string::npos) << "unavailable is not zero: " << text;
    for (const auto& [key, value] : json.items()) {
      if (key.find("rss") != std::string::npos) {
        EXPECT_TRUE(value.is_null()) << key << " = " << value;
      }
    }
  }

  std::filesystem::path proc_;
};

TEST_F(ProcFault, FilesMissing) {
  expect_kernel_fields_unavailable();
}

TEST_F(ProcFault, FilesEmpty) {
  write("statm", "");
  write("status", "");
  expect_kernel_fields_unavailable();
}

TEST_F(ProcFault, FilesTruncated) {
  write("statm", "1000");                     // size only, no resident field
  write("status", "Name:\tx\nVmHWM:\t  20");  // cut before the unit
  expect_kernel_fields_unavailable();
}

TEST_F(ProcFault, FilesBinaryGarbageAndHuge) {
  std::string garbage(1 << 20, '\0');
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 131) & 0xff);
  write("statm", garbage);
  write("status", "VmHWM:\t" + std::string(10000, '9') + " kB\n" + garbage);
  expect_kernel_fields_unavailable();
}

TEST_F(ProcFault, NegativeAndOverflowingNumbers) {
  write("statm", "-1 -5 0 0 0 0 0\n");
  write("status", "VmHWM:\t99999999999999999999999 kB\n");
  expect_kernel_fields_unavailable();
}

TEST_F(ProcFault, DirectoriesInsteadOfFiles) {
  std::filesystem::create_directory(proc_ / "statm");
  std::filesystem::create_directory(proc_ / "status");
  expect_kernel_fields_unavailable();
}

// The files are opened once and re-read with pread; one that shrinks to nothing later (as a /proc file
// of a dying task reads) must turn into "unavailable", not a stale figure or a crash.
TEST_F(ProcFault, FileEmptiedAfterTheSnapshotterOpenedIt) {
  write("statm", "1000 250 10 1 0 100 0\n");
  write("status", "VmHWM:\t2048 kB\n");
  rp::MemorySnapshotter snapshotter({.proc_self = proc_});
  const auto before = snapshotter.take(rp::system_clock(), false);
  EXPECT_TRUE(before.rss_bytes);
  EXPECT_EQ(before.peak_rss_bytes, 2048u * 1024);
  std::filesystem::resize_file(proc_ / "statm", 0);
  std::filesystem::resize_file(proc_ / "status", 0);
  const auto after = snapshotter.take(rp::system_clock(), false);
  EXPECT_FALSE(after.rss_bytes);
  EXPECT_FALSE(after.virtual_bytes);
  EXPECT_FALSE(after.peak_rss_bytes);
}

TEST_F(ProcFault, WellFormedFilesStillRead) {
  write("statm", "1000 250 10 1 0 100 0\n");
  write("status", "VmHWM:\t2048 kB\n");
  rp::MemorySnapshotter snapshotter({.proc_self = proc_});
  const auto snapshot = snapshotter.take(rp::system_clock(), false);
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  EXPECT_EQ(snapshot.rss_bytes, 250 * page);
  EXPECT_EQ(snapshot.virtual_bytes, 1000 * page);
  EXPECT_EQ(snapshot.peak_rss_bytes, 2048u * 1024);
}

}  // namespace
