// Memory captures end to end in one process: the manager's periodic check writes one when RSS crosses
// targets.memory_alert_mb (and only one while it stays there), capture_now() writes more, the ring keeps
// its bound, GET /metrics/memory/captures lists them over a live server, a download serves each file,
// Google's pprof reads the heap profile, and paths that are not in the listing are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "http/support/http_client.hpp"
#include "http/support/json_checks.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_capture_monitor.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:16,prof_accum:true");

namespace rp = riptide::performance;
namespace http = riptide::performance::http;
namespace test = riptide::performance::test;
using riptide::performance::test::expect_json_error;
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

namespace {

// Held for the whole test, so pprof has a site of ours to show.
std::vector<std::unique_ptr<char[]>> g_kept;
[[gnu::noinline]] void keep_for_capture_test(std::size_t bytes) {
  for (std::size_t done = 0; done < bytes; done += 64 * 1024) {
    g_kept.push_back(std::make_unique<char[]>(64 * 1024));
    g_kept.back()[0] = 1;
  }
}

class CaptureRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keep_for_capture_test(8 << 20);
    config.monitoring.sample_interval_sec = 0.05;
    config.targets.max_memory_mb = 1;
    config.targets.memory_alert_mb = 1;  // RSS is above it from the start
    config.profiling.capture_dir = (dir.path() / "captures").string();
    config.profiling.capture_max_files = 3;
    config.profiling.capture_min_interval_sec = 0;
    config.profiling.capture_min_free_mb = 0;
    config.profiling.leak_detection_interval_sec = 3600;
    config.http.enabled = false;
  }

  void serve() {
    router = std::make_unique<http::MemoryMetricsRouter>(manager);
    server = http::Server::start(*router, {.bind = "127.0.0.1", .port = 0});
  }

  test::HttpResponse get(const std::string& target) { return test::fetch(server->port(), "GET", target); }

  riptide::test::TempDir dir{"riptide-capture-routes"};
  rp::Config config;
  std::shared_ptr<rp::PerformanceManager> manager;
  std::unique_ptr<http::MemoryMetricsRouter> router;
  std::unique_ptr<http::Server> server;
};

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

}  // namespace

TEST_F(CaptureRoutesTest, ThePeriodicCheckCapturesOnceAboveTheAlertAndTheRingKeepsItsBound) {
  manager = rp::PerformanceManager::with_config(config);
  EXPECT_TRUE(manager->memory_captures().captures()->empty());
  manager->start_monitoring();
  ASSERT_TRUE(wait_until([&] { return manager->memory_captures().captures()->size() == 1; }, 20s))
      << "RSS is above targets.memory_alert_mb = 1: the first check captures";
  std::this_thread::sleep_for(500ms);  // ten more checks
  const auto list = manager->memory_captures().captures();
  ASSERT_EQ(list->size(), 1U) << "still above the alert: no second capture until RSS falls back below it";
  EXPECT_EQ(list->front().trigger, "memory_alert");
  EXPECT_THAT(list->front().reason, HasSubstr(">= targets.memory_alert_mb (1.0 MiB)"));
  rp::CaptureStatus status = manager->memory_captures().status();
  EXPECT_TRUE(status.enabled);
  EXPECT_FALSE(status.armed);
  EXPECT_EQ(status.written, 1U);

  for (int i = 0; i < 4; ++i) {
    const rp::CaptureOutcome outcome = manager->capture_now("operator " + std::to_string(i));
    ASSERT_TRUE(outcome.performed) << outcome.reason;
  }
  const auto after = manager->memory_captures().captures();
  ASSERT_EQ(after->size(), 3U) << "profiling.capture_max_files = 3";
  EXPECT_EQ(after->back().reason, "operator 3");
  EXPECT_EQ(after->back().trigger, "manual");
  std::size_t directories = 0;
  for (const auto& entry : fs::directory_iterator(config.profiling.capture_dir)) {
    EXPECT_TRUE(entry.path().filename().string().starts_with("capture-")) << entry.path();
    ++directories;
  }
  EXPECT_EQ(directories, 3U) << "the oldest removed, nothing partial left";
  (void)manager->stop_monitoring();

  // A new manager over the same directory (the process after the OOM kill) lists them at once.
  auto next = rp::PerformanceManager::with_config(config);
  EXPECT_EQ(next->memory_captures().captures()->size(), 3U);
}

TEST_F(CaptureRoutesTest, ListAndDownloadOverHttpAndPprofReadsTheHeapProfile) {
  manager = rp::PerformanceManager::with_config(config);
  const rp::CaptureOutcome outcome = manager->capture_now("before the test's downloads");
  ASSERT_TRUE(outcome.performed) << outcome.reason;
  serve();

  const auto listing = get("/metrics/memory/captures");
  ASSERT_EQ(listing.status, 200) << listing.body;
  const json body = json::parse(listing.body);
  EXPECT_EQ(body["session_id"], manager->session_id());
  EXPECT_EQ(body["status"]["enabled"], true);
  EXPECT_EQ(body["status"]["directory"], config.profiling.capture_dir);
  EXPECT_EQ(body["status"]["max_captures"], 3);
  ASSERT_EQ(body["captures"].size(), 1U);
  const json& capture = body["captures"][0];
  EXPECT_EQ(capture["name"], outcome.capture->name);
  EXPECT_EQ(capture["reason"], "before the test's downloads");
  EXPECT_EQ(capture["trigger"], "manual");
  EXPECT_TRUE(capture["time"].is_string());
  std::vector<std::string> files;
  std::uint64_t total = 0;
  for (const auto& file : capture["files"]) {
    files.push_back(file["name"]);
    total += file["bytes"].get<std::uint64_t>();
  }
  const bool heap_profiling = rp::JemallocCtl::availability().serves_malloc;
  if (heap_profiling) {
    EXPECT_THAT(files, ::testing::ElementsAre("heap.pb.gz", "snapshot.json", "leaks.json", "fragmentation.json",
                                              "capture.json"));
  } else {
    EXPECT_THAT(files, ::testing::ElementsAre("snapshot.json", "leaks.json", "fragmentation.json", "capture.json"));
  }
  EXPECT_EQ(capture["bytes"], total);

  const std::string base = "/metrics/memory/captures/" + outcome.capture->name + "/";
  for (const auto& file : capture["files"]) {
    const auto response = get(base + file["name"].get<std::string>());
    ASSERT_EQ(response.status, 200) << file << response.body;
    EXPECT_EQ(response.body.size(), file["bytes"].get<std::uint64_t>()) << file;
    EXPECT_EQ(response.header("Content-Disposition").value_or(""),
              "attachment; filename=\"" + outcome.capture->name + "-" + file["name"].get<std::string>() + "\"");
  }
  const json snapshot = json::parse(get(base + "snapshot.json").body);
  EXPECT_EQ(snapshot["session_id"], manager->session_id());
  EXPECT_TRUE(snapshot.contains("rss_bytes")) << "the body of GET /metrics/memory/snapshot";
  const json fragmentation = json::parse(get(base + "fragmentation.json").body);
  EXPECT_TRUE(fragmentation["available"].is_boolean()) << "the view of GET /metrics/memory/fragmentation";
  const json manifest = json::parse(get(base + "capture.json").body);
  EXPECT_EQ(manifest["pid"], ::getpid());
  EXPECT_TRUE(manifest["memory"]["rss_bytes"].is_number());
  if (!heap_profiling) {
    EXPECT_TRUE(manifest["heap_profile_unavailable_reason"].is_string()) << "says why there is no heap.pb.gz";
    GTEST_SKIP() << "the heap profile needs jemalloc's profiler (the asan/tsan presets build without jemalloc): "
                 << rp::JemallocCtl::availability().reason;
  }
  EXPECT_TRUE(manifest["heap_profile_unavailable_reason"].is_null());

  const auto heap = get(base + "heap.pb.gz");
  ASSERT_GE(heap.body.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(heap.body[0]), 0x1f) << "gzip";
  EXPECT_EQ(heap.header("Content-Type").value_or(""), "application/octet-stream");
  const char* pprof = std::getenv("RIPTIDE_PERF_TEST_PPROF");
  if (pprof == nullptr || !fs::exists(pprof)) GTEST_SKIP() << "pprof not built";
  const fs::path downloaded = dir.path() / "downloaded.pb.gz";
  std::ofstream(downloaded, std::ios::binary) << heap.body;
  for (const fs::path& file :
       {downloaded, fs::path(config.profiling.capture_dir) / outcome.capture->name / "heap.pb.gz"}) {
    const auto top = riptide::test::run_command("PPROF_TMPDIR=" + dir.path().string() + " " + pprof +
                                                " -top -sample_index=inuse_space " + file.string() + " 2>&1");
    EXPECT_EQ(top.status, 0) << top.output;
    EXPECT_THAT(top.output, HasSubstr("keep_for_capture_test")) << file;
  }
}

TEST_F(CaptureRoutesTest, PathsOutsideTheListingAreRefused) {
  manager = rp::PerformanceManager::with_config(config);
  const rp::CaptureOutcome outcome = manager->capture_now("traversal test");
  ASSERT_TRUE(outcome.performed) << outcome.reason;
  // A file outside the capture directory that a traversal would reach.
  std::ofstream(dir.path() / "secret.txt") << "secret";
  serve();
  const std::string name = outcome.capture->name;
  for (const std::string& target : std::vector<std::string>{
           "/metrics/memory/captures/" + name, "/metrics/memory/captures/" + name + "/",
           "/metrics/memory/captures/../secret.txt", "/metrics/memory/captures/" + name + "/../../secret.txt",
           "/metrics/memory/captures/" + name + "/..", "/metrics/memory/captures/%2e%2e/secret.txt",
           "/metrics/memory/captures/" + name + "/%2e%2e%2fsecret.txt",
           "/metrics/memory/captures/.partial-x/heap.pb.gz", "/metrics/memory/captures/" + name + "/snapshot.json/x",
           "/metrics/memory/captures//snapshot.json"}) {
    SCOPED_TRACE(target);
    const auto response = get(target);
    expect_json_error(response, 400, "invalid_path");
    EXPECT_THAT(response.body, HasSubstr("accepted: /metrics/memory/captures/<name>/<file>"));
    EXPECT_THAT(response.body, ::testing::Not(HasSubstr("secret\"")));
  }
  // Plain names that are not in the listing.
  expect_json_error(get("/metrics/memory/captures/capture-19700101T000000.000Z-1-000001/heap.pb.gz"), 404, "not_found");
  expect_json_error(get("/metrics/memory/captures/" + name + "/secret.txt"), 404, "not_found");
  expect_json_error(get("/metrics/memory/captures/secret.txt/heap.pb.gz"), 404, "not_found");
  expect_json_error(get("/metrics/memory/captures?x=1"), 400, "invalid_parameter");
  EXPECT_EQ(get("/metrics/memory/captures/" + name + "/capture.json").status, 200) << "the listing's own files work";
}

TEST_F(CaptureRoutesTest, CapturesOffAndABareProfiler) {
  config.profiling.capture_dir.clear();
  manager = rp::PerformanceManager::with_config(config);
  const rp::CaptureOutcome outcome = manager->capture_now("off");
  EXPECT_FALSE(outcome.performed);
  EXPECT_THAT(outcome.reason, HasSubstr("set profiling.capture_dir"));
  serve();
  const auto listing = get("/metrics/memory/captures");
  ASSERT_EQ(listing.status, 200) << listing.body;
  const json body = json::parse(listing.body);
  EXPECT_EQ(body["status"]["enabled"], false);
  EXPECT_TRUE(body["captures"].empty());

  auto profiler = std::make_shared<rp::MemoryProfiler>(rp::make_uuid_v4(), config);
  http::MemoryMetricsRouter bare(profiler, "");
  const http::Response response = bare.handle({.method = "GET", .target = "/metrics/memory/captures"});
  EXPECT_EQ(response.status, 503);
  EXPECT_THAT(response.body, HasSubstr("written by a PerformanceManager"));
}

TEST(CaptureConfig, AnUnusableDirectoryIsAConfigErrorNamingTheKey) {
  riptide::test::TempDir dir{"riptide-capture-routes"};
  std::ofstream(dir.path() / "file") << "x";
  rp::Config config;
  config.profiling.capture_dir = (dir.path() / "file" / "captures").string();
  try {
    (void)rp::PerformanceManager::with_config(config);
    ADD_FAILURE() << "a capture directory below a regular file";
  } catch (const rp::ConfigError& error) {
    EXPECT_EQ(error.key(), "profiling.capture_dir");
    EXPECT_EQ(error.value(), config.profiling.capture_dir);
    EXPECT_THAT(error.problem(), HasSubstr("cannot create the capture directory"));
    EXPECT_THAT(error.accepted(), HasSubstr("a directory this process can create and write"));
  }
  EXPECT_THROW((void)rp::Config::from_toml("[profiling]\ncapture_cgroup_share = 0\n"), rp::ConfigError);
  EXPECT_THROW((void)rp::Config::from_toml("[profiling]\ncapture_cgroup_share = 1.5\n"), rp::ConfigError);
  EXPECT_THROW((void)rp::Config::from_toml("[profiling]\ncapture_max_files = 0\n"), rp::ConfigError);
  EXPECT_THROW((void)rp::Config::from_toml("[profiling]\ncapture_min_interval_sec = \"soon\"\n"), rp::ConfigError);
  EXPECT_EQ(
      rp::Config::from_toml("[profiling]\ncapture_min_interval_sec = \"10m\"\n").profiling.capture_min_interval_sec,
      600.0);
}

TEST(RouterPrefix, ExactRoutesWinAndTheLongestPrefixAnswers) {
  http::Router router;
  router.add_route("GET", "/a/b", [](const http::Request&) { return http::Response{.body = "exact"}; });
  router.add_prefix_route("GET", "/a/",
                          [](const http::Request& r) { return http::Response{.body = "a:" + std::string(r.path())}; });
  router.add_prefix_route("GET", "/a/c/", [](const http::Request&) { return http::Response{.body = "ac"}; });
  EXPECT_EQ(router.handle({.method = "GET", .target = "/a/b"}).body, "exact");
  EXPECT_EQ(router.handle({.method = "GET", .target = "/a/x/y"}).body, "a:/a/x/y");
  EXPECT_EQ(router.handle({.method = "GET", .target = "/a/c/d"}).body, "ac");
  EXPECT_EQ(router.handle({.method = "GET", .target = "/a/"}).status, 404) << "a prefix alone is not below it";
  EXPECT_EQ(router.handle({.method = "POST", .target = "/a/x"}).status, 405);
  EXPECT_THROW(router.add_prefix_route("GET", "/no-slash", [](const http::Request&) { return http::Response{}; }),
               std::invalid_argument);
  EXPECT_THROW(router.add_prefix_route("GET", "/a/", [](const http::Request&) { return http::Response{}; }),
               std::invalid_argument);
}
