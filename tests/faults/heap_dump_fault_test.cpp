// Fault: the directory for heap dumps is missing, not a directory, unwritable or full. Heap profiling is
// on in this process (malloc_conf below), so the only thing wrong is the file system: the leak,
// allocation and pprof endpoints must answer with a JSON error (or a report whose reason) names the
// directory and the fix, the process must not crash, and the other endpoints keep working.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "http/support/http_client.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true");

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using nlohmann::json;

namespace {

class HeapDumpFault : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!rp::HeapProfilingControl::available()) {
      GTEST_SKIP() << "heap profiling unavailable here: " << rp::HeapProfilingControl::status().reason;
    }
    scratch_ =
        std::filesystem::temp_directory_path() / ("riptide-fault-" + std::to_string(::getpid()) + "-" +
                                                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(scratch_);
  }
  void TearDown() override {
    server_.reset();
    router_.reset();
    profiler_.reset();
    if (mounted_) ::umount2(mounted_->c_str(), MNT_DETACH);
    std::error_code ignored;
    if (!scratch_.empty()) {
      std::filesystem::permissions(scratch_, std::filesystem::perms::all, ignored);
      std::filesystem::remove_all(scratch_, ignored);
    }
  }

  // A server whose profiler dumps into `directory`. Requests never dump themselves: the leak detector's
  // first observation (start_profiling() takes it at once) meets the fault and publishes it, and
  // /debug/pprof/heap asks for a fresh shared profile, which meets it too.
  void start(const std::filesystem::path& directory) {
    rp::Config config;
    config.profiling.dump_directory = directory.string();
    config.monitoring.sample_interval_sec = 0.05;
    profiler_ = std::make_shared<rp::MemoryProfiler>(rp::make_uuid_v4(), config);
    profiler_->start_profiling();
    const auto detector = profiler_->leak_detector();
    for (int i = 0; i < 1200 && detector && detector->running() && !detector->latest(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    router_ = std::make_unique<http::MemoryMetricsRouter>(profiler_, "");
    server_ = http::Server::start(*router_, {.port = 0});
  }

  test::HttpResponse get(const std::string& target) { return test::fetch(server_->port(), "GET", target); }

  // Every endpoint that needs a heap dump either fails with a JSON error naming `directory`, or (the
  // allocation statistics, whose counters need no dump) answers 200 with the reason in the body.
  void expect_clear_errors(const std::filesystem::path& directory) {
    for (const char* target : {"/metrics/memory/leaks", "/debug/pprof/heap"}) {
      const auto response = get(target);
      // Recorded in the XML report (--gtest_output=xml): what an operator sees, for docs/RELIABILITY.md.
      RecordProperty(target, std::to_string(response.status) + " " + response.body.substr(0, 400));
      SCOPED_TRACE(std::string(target) + " -> " + std::to_string(response.status) + " " + response.body);
      EXPECT_GE(response.status, 500);
      EXPECT_EQ(response.header("Content-Type").value_or(""), "application/json");
      const json body = json::parse(response.body);
      ASSERT_TRUE(body.contains("error"));
      const std::string message = body["error"]["message"].get<std::string>();
      EXPECT_NE(message.find(directory.string()), std::string::npos) << "the message names the directory";
      EXPECT_NE(message.find("dump_directory"), std::string::npos) << "the message names the setting to fix";
      EXPECT_EQ(message.find("needs jemalloc's heap profiler"), std::string::npos) << "the profiler is not the problem";
    }
    const auto allocations = get("/metrics/memory/allocations");
    SCOPED_TRACE("/metrics/memory/allocations -> " + allocations.body);
    if (allocations.status == 200) {
      const json body = json::parse(allocations.body);
      EXPECT_NE(body.dump().find(directory.string()), std::string::npos) << "the reason names the directory";
    } else {
      EXPECT_GE(allocations.status, 500);
      EXPECT_NE(allocations.body.find(directory.string()), std::string::npos);
    }
    // The rest of the monitoring is unaffected.
    EXPECT_EQ(get("/metrics/memory/health").status, 200);
    EXPECT_EQ(get("/metrics/memory/snapshot").status, 200);
  }

  std::filesystem::path scratch_;
  std::optional<std::filesystem::path> mounted_;
  std::shared_ptr<rp::MemoryProfiler> profiler_;
  std::unique_ptr<http::MemoryMetricsRouter> router_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(HeapDumpFault, MissingDirectory) {
  const auto missing = scratch_ / "does-not-exist";
  start(missing);
  expect_clear_errors(missing);
}

TEST_F(HeapDumpFault, PathIsARegularFile) {
  const auto file = scratch_ / "a-file";
  std::ofstream(file) << "not a directory";
  start(file);
  expect_clear_errors(file);
}

TEST_F(HeapDumpFault, UnwritableDirectory) {
  if (::geteuid() == 0)
    GTEST_SKIP() << "root writes through mode 0500; the missing/regular-file cases cover EACCES-like failures";
  const auto locked = scratch_ / "read-only";
  std::filesystem::create_directory(locked);
  std::filesystem::permissions(locked, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  start(locked);
  expect_clear_errors(locked);
}

// A 64 KiB tmpfs filled to the last block: the private directory can be created but the dump cannot be
// written. Needs CAP_SYS_ADMIN; skipped where mounting is not allowed (CI containers, non-root).
TEST_F(HeapDumpFault, FullFileSystem) {
  const auto full = scratch_ / "full";
  std::filesystem::create_directory(full);
  if (::mount("riptide-fault", full.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0777") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << ")";
  }
  mounted_ = full;
  {
    std::ofstream filler(full / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) && filler.flush()) {
    }
  }
  start(full);
  const auto response = get("/metrics/memory/leaks");
  RecordProperty("/metrics/memory/leaks", std::to_string(response.status) + " " + response.body.substr(0, 400));
  SCOPED_TRACE(response.body);
  EXPECT_GE(response.status, 500);
  const json body = json::parse(response.body);
  ASSERT_TRUE(body.contains("error"));
  const std::string message = body["error"]["message"].get<std::string>();
  EXPECT_NE(message.find(full.string()), std::string::npos);
  EXPECT_NE(message.find("free space"), std::string::npos) << "names the likely cause";
  EXPECT_NE(message.find("dump_directory"), std::string::npos) << "names the setting to fix";
  EXPECT_EQ(message.find("needs jemalloc's heap profiler"), std::string::npos) << "the profiler is not the problem";
  EXPECT_EQ(get("/metrics/memory/health").status, 200);
  // No half-written dump or private directory is left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(full)) ++entries;
  EXPECT_EQ(entries, 1u) << "only the filler remains";
}

// After the directory is fixed, the same kind of process serves leak reports again.
TEST_F(HeapDumpFault, WritableDirectoryWorks) {
  start(scratch_);
  const auto response = get("/metrics/memory/leaks");
  EXPECT_EQ(response.status, 200) << response.body;
}

}  // namespace
