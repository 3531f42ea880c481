// The capture directory: atomic writes (no partial capture is ever visible or left behind), the ring
// bound, the disk bounds and the names a download may ask for.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/memory/capture_store.hpp"
#include "support/temp_dir.hpp"

namespace rp = riptide::performance;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

rp::CaptureContents contents(std::chrono::system_clock::time_point time, std::string reason = "test") {
  rp::CaptureContents c;
  c.trigger = "manual";
  c.reason = std::move(reason);
  c.time = time;
  c.files = {{"heap.pb.gz", std::string(1000, 'h')}, {"snapshot.json", "{}\n"}, {"leaks.json", "{\"leaks\":[]}\n"}};
  c.manifest_extra = {{"pid", 1}};
  return c;
}

rp::CaptureStoreLimits small_limits(std::uint32_t max_captures) {
  return {.max_captures = max_captures, .min_free_bytes = 0, .max_capture_bytes = 1 << 20};
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST(CaptureStore, WritesOneDirectoryWithTheFilesAndTheManifest) {
  riptide::test::TempDir dir{"riptide-captures"};
  rp::CaptureStore store(dir.path() / "nested" / "captures", small_limits(5));
  EXPECT_TRUE(fs::is_directory(dir.path() / "nested" / "captures")) << "created when missing";
  const auto time = std::chrono::system_clock::time_point{} + std::chrono::milliseconds{1736847012345};
  const rp::CaptureOutcome outcome = store.write(contents(time, "RSS high"));
  ASSERT_TRUE(outcome.performed) << outcome.reason;
  const rp::MemoryCapture& capture = *outcome.capture;
  EXPECT_EQ(capture.name, "capture-20250114T093012.345Z-" + std::to_string(::getpid()) + "-000001");
  EXPECT_THAT(entries(store.directory() / capture.name),
              ElementsAre("capture.json", "heap.pb.gz", "leaks.json", "snapshot.json"));

  const auto listed = store.scan();
  ASSERT_EQ(listed.size(), 1U);
  EXPECT_EQ(listed[0].name, capture.name);
  EXPECT_EQ(listed[0].time, time);
  EXPECT_EQ(listed[0].reason, "RSS high");
  EXPECT_EQ(listed[0].trigger, "manual");
  EXPECT_EQ(listed[0].bytes, capture.bytes);
  ASSERT_EQ(listed[0].files.size(), 4U);
  EXPECT_EQ(listed[0].files[0].name, "heap.pb.gz");
  EXPECT_EQ(listed[0].files[0].bytes, 1000U);
  EXPECT_EQ(listed[0].files[3].name, "capture.json");
  EXPECT_EQ(listed[0].files[3].bytes, fs::file_size(store.directory() / capture.name / "capture.json"));
  std::uint64_t on_disk = 0;
  for (const auto& entry : fs::directory_iterator(store.directory() / capture.name)) on_disk += entry.file_size();
  EXPECT_EQ(capture.bytes, on_disk) << "bytes is what the capture takes on disk";

  const auto manifest = nlohmann::json::parse(store.read(capture.name, "capture.json"));
  EXPECT_EQ(manifest["pid"], 1) << "extra manifest fields are kept";
  EXPECT_EQ(manifest["time"], "2025-01-14T09:30:12.345Z");
  EXPECT_EQ(store.read(capture.name, "snapshot.json"), "{}\n");

  const nlohmann::json json = listed[0];
  EXPECT_EQ(json["time"], "2025-01-14T09:30:12.345Z");
  EXPECT_EQ(json["files"][0]["name"], "heap.pb.gz");
}

TEST(CaptureStore, TheRingNeverExceedsItsBoundAndDropsTheOldestFirst) {
  riptide::test::TempDir dir{"riptide-captures"};
  rp::CaptureStore store(dir.path(), small_limits(3));
  const auto t0 = std::chrono::system_clock::now();
  std::vector<std::string> written;
  for (int i = 0; i < 8; ++i) {
    const auto outcome = store.write(contents(t0 + std::chrono::seconds{i}));
    ASSERT_TRUE(outcome.performed) << outcome.reason;
    written.push_back(outcome.capture->name);
    EXPECT_LE(store.scan().size(), 3U);
    EXPECT_LE(entries(dir.path()).size(), 3U) << "nothing else is left in the directory";
    if (i >= 3) {
      EXPECT_THAT(outcome.removed, ElementsAre(written[static_cast<std::size_t>(i) - 3]));
    }
  }
  const auto kept = store.scan();
  ASSERT_EQ(kept.size(), 3U);
  EXPECT_EQ(kept[0].name, written[5]);
  EXPECT_EQ(kept[2].name, written[7]);

  // A new store over the same directory (the next process) sees them and keeps the same bound.
  rp::CaptureStore next(dir.path(), small_limits(2));
  EXPECT_EQ(next.scan().size(), 3U);
  ASSERT_TRUE(next.write(contents(t0 + 1h)).performed);
  EXPECT_EQ(next.scan().size(), 2U);
}

TEST(CaptureStore, APartialCaptureIsNeverListedAndIsRemovedByTheNextWrite) {
  riptide::test::TempDir dir{"riptide-captures"};
  rp::CaptureStore store(dir.path(), small_limits(5));
  // What a process killed while writing leaves: a .partial- directory with some of the files.
  const fs::path partial = dir.path() / ".partial-capture-20250101T000000.000Z-1-000001";
  fs::create_directories(partial);
  std::ofstream(partial / "heap.pb.gz") << "trunc";
  // And a directory with a capture's name but no manifest (copied in part by someone): not listed either.
  fs::create_directories(dir.path() / "capture-20250101T000000.000Z-2-000001");
  EXPECT_TRUE(store.scan().empty());

  ASSERT_TRUE(store.write(contents(std::chrono::system_clock::now())).performed);
  EXPECT_FALSE(fs::exists(partial)) << "the next write removes what a killed writer left";
  EXPECT_EQ(store.scan().size(), 1U);

  // A write that fails half-way (the third file cannot be created) leaves nothing behind.
  rp::CaptureContents bad = contents(std::chrono::system_clock::now());
  bad.files.emplace_back("../escape", "x");
  const auto before = entries(dir.path());
  try {
    (void)store.write(bad);
    ADD_FAILURE() << "a file name with '/' was written";
  } catch (const rp::Error& error) {
    EXPECT_THAT(error.what(), HasSubstr("'../escape' is not a plain name"));
  }
  EXPECT_EQ(entries(dir.path()), before) << "no partial directory, no new capture";
  EXPECT_FALSE(fs::exists(dir.path().parent_path() / "escape"));
}

TEST(CaptureStore, DiskBoundsSkipWithTheReasonAndWriteNothing) {
  riptide::test::TempDir dir{"riptide-captures"};
  rp::CaptureStore too_big(dir.path(), {.max_captures = 5, .min_free_bytes = 0, .max_capture_bytes = 500});
  auto outcome = too_big.write(contents(std::chrono::system_clock::now()));
  EXPECT_FALSE(outcome.performed);
  EXPECT_THAT(outcome.reason, HasSubstr("more than profiling.capture_max_mb"));
  EXPECT_TRUE(entries(dir.path()).empty());

  const auto free = too_big.free_bytes();
  ASSERT_TRUE(free.has_value());
  rp::CaptureStore full(dir.path(),
                        {.max_captures = 5, .min_free_bytes = *free + (1ull << 30), .max_capture_bytes = 1 << 20});
  outcome = full.write(contents(std::chrono::system_clock::now()));
  EXPECT_FALSE(outcome.performed);
  EXPECT_THAT(outcome.reason, HasSubstr("free on the file system of " + dir.path().string()));
  EXPECT_THAT(outcome.reason, HasSubstr("profiling.capture_min_free_mb"));
  EXPECT_TRUE(entries(dir.path()).empty());
}

TEST(CaptureStore, AnUnusableDirectoryIsAnErrorNamingIt) {
  riptide::test::TempDir dir{"riptide-captures"};
  std::ofstream(dir.path() / "file") << "x";
  try {
    rp::CaptureStore store(dir.path() / "file" / "captures", small_limits(1));
    ADD_FAILURE() << "a directory below a regular file";
  } catch (const rp::Error& error) {
    EXPECT_THAT(error.what(),
                HasSubstr("cannot create the capture directory " + (dir.path() / "file/captures").string()));
  }
  EXPECT_THROW(rp::CaptureStore(dir.path() / "file", small_limits(1)), rp::Error) << "a file, not a directory";
  if (::geteuid() != 0) {  // root writes anywhere
    fs::create_directories(dir.path() / "read-only");
    ::chmod((dir.path() / "read-only").c_str(), 0500);
    try {
      rp::CaptureStore store(dir.path() / "read-only", small_limits(1));
      ADD_FAILURE() << "a read-only directory";
    } catch (const rp::Error& error) {
      EXPECT_THAT(error.what(), HasSubstr("is not writable"));
    }
  }
}

TEST(CaptureStore, PlainNamesOnly) {
  for (const char* good : {"capture-20250114T093012.345Z-4711-000001", "heap.pb.gz", "capture.json", "a"}) {
    EXPECT_TRUE(rp::is_plain_capture_name(good)) << good;
  }
  for (const char* bad : {"", ".", "..", ".partial-x", "a/b", "../etc", "a b", "%2e%2e", "a\\b", "name\n"}) {
    EXPECT_FALSE(rp::is_plain_capture_name(bad)) << bad;
  }
  EXPECT_FALSE(rp::is_plain_capture_name(std::string(129, 'a')));
  riptide::test::TempDir dir{"riptide-captures"};
  rp::CaptureStore store(dir.path(), small_limits(1));
  EXPECT_THROW((void)store.read("..", "etc"), rp::Error);
  EXPECT_THROW((void)store.read("capture-x", "../../etc/passwd"), rp::Error);
}
