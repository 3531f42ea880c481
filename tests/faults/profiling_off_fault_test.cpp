// Fault: jemalloc's heap profiler off, as the operator started the process. ctest runs this binary
// three times (tests/faults/CMakeLists.txt):
//   MALLOC_CONF=prof:false                      RIPTIDE_PERF_TEST_PROFILING=off
//   MALLOC_CONF=prof:true,prof_active:false     RIPTIDE_PERF_TEST_PROFILING=inactive
//   (nothing)                                   RIPTIDE_PERF_TEST_PROFILING unset: jemalloc's default (off)
// Every profiling endpoint must answer with a status and a JSON body that says why and how to fix it,
// or (prof:true with sampling paused: the library may switch sampling on) work; nothing may crash, and
// the non-profiling endpoints keep answering 200.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "http/support/http_client.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/profiling/heap_profiling_control.hpp"

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using nlohmann::json;

namespace {

std::string mode() {
  const char* value = std::getenv("RIPTIDE_PERF_TEST_PROFILING");
  return value == nullptr ? std::string{} : std::string{value};
}

class ProfilingOff : public ::testing::Test {
 protected:
  void SetUp() override {
    profiler_ = std::make_shared<rp::MemoryProfiler>(rp::make_uuid_v4());
    profiler_->start_profiling();
    // Where the profiler runs, the leak route serves the detector's published report: wait for its first
    // observation (start_profiling() takes it at once), so the answer does not depend on timing.
    const auto detector = profiler_->leak_detector();
    for (int i = 0; i < 1200 && detector && detector->running() && !detector->latest(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    router_ = std::make_unique<http::MemoryMetricsRouter>(profiler_, "");
    server_ = http::Server::start(*router_, {.port = 0});
  }
  void TearDown() override {
    server_.reset();
    router_.reset();
    if (profiler_) profiler_->stop_profiling();
  }

  test::HttpResponse get(const std::string& target) { return test::fetch(server_->port(), "GET", target); }

  std::shared_ptr<rp::MemoryProfiler> profiler_;
  std::unique_ptr<http::MemoryMetricsRouter> router_;
  std::unique_ptr<http::Server> server_;
};

void expect_says_why(const test::HttpResponse& response, const std::string& target) {
  SCOPED_TRACE(target + " -> " + std::to_string(response.status) + " " + response.body);
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.header("Content-Type").value_or(""), "application/json");
  const json body = json::parse(response.body);
  ASSERT_TRUE(body.contains("error"));
  EXPECT_EQ(body["error"]["code"], "unavailable");
  const std::string message = body["error"]["message"].get<std::string>();
  EXPECT_GT(message.size(), 20u) << "a reason, not just a status";
  // The fix: start with MALLOC_CONF=prof:true... (or rebuild with the feature, when compiled out).
  EXPECT_TRUE(message.find("prof:true") != std::string::npos ||
              message.find("RIPTIDE_PERF_MEMORY_PROFILING") != std::string::npos ||
              message.find("jemalloc") != std::string::npos)
      << "the message says how to turn profiling on";
}

TEST_F(ProfilingOff, EveryProfilingEndpointSaysWhy) {
  const auto status = rp::HeapProfilingControl::status();
  const std::string expected = mode();
  if (expected == "off") {
    ASSERT_FALSE(status.available) << "MALLOC_CONF=prof:false must leave the profiler unavailable";
  }
  if (expected.empty() && status.available) GTEST_SKIP() << "heap profiling is on in this environment";

  for (const char* target : {"/metrics/memory/leaks", "/debug/pprof/heap"}) {
    const auto response = get(target);
    // Recorded in the XML report (--gtest_output=xml): what an operator sees, for docs/RELIABILITY.md.
    RecordProperty(target, std::to_string(response.status) + " " + response.body.substr(0, 400));
    if (status.available) {
      // prof:true with prof_active:false: the profiler exists and start_profiling() may resume sampling;
      // then the endpoints work. Either way the answer is a status with JSON, never a crash.
      EXPECT_TRUE(response.status == 200 || response.status == 503) << target << " " << response.body;
      if (response.status == 503) expect_says_why(response, target);
    } else {
      expect_says_why(response, target);
    }
  }

  // Allocation statistics: the counters need only jemalloc, the sites need the profiler; without it the
  // body says why the sites are missing.
  const auto allocations = get("/metrics/memory/allocations");
  RecordProperty("/metrics/memory/allocations",
                 std::to_string(allocations.status) + " " + allocations.body.substr(0, 400));
  SCOPED_TRACE(allocations.body);
  if (allocations.status == 200) {
    const json body = json::parse(allocations.body);
    if (!status.available) {
      EXPECT_NE(body.dump().find("prof"), std::string::npos) << "the body says the allocation sites need prof:true";
    }
  } else {
    expect_says_why(allocations, "/metrics/memory/allocations");
  }

  // The CPU profile does not depend on jemalloc: it either runs (1 s) or says why it cannot.
  const auto cpu = get("/debug/pprof/profile?seconds=1");
  EXPECT_TRUE(cpu.status == 200 || cpu.status == 503) << cpu.body;
  if (cpu.status == 503) {
    const json body = json::parse(cpu.body);
    EXPECT_EQ(body["error"]["code"], "unavailable");
  }

  for (const char* target :
       {"/metrics/memory/health", "/metrics/memory/snapshot", "/metrics/memory/trend", "/metrics"}) {
    EXPECT_EQ(get(target).status, 200) << target;
  }
  const json health = json::parse(get("/metrics/memory/health").body);
  if (!status.available) {
    EXPECT_EQ(health["leak_severity"], "unknown");
  }

  // The library's own heap rests on the heap profile: without it the figure is absent, never a made-up 0.
  if (!status.available) {
    EXPECT_FALSE(profiler_->self_heap_bytes());
    const json snapshot = json::parse(get("/metrics/memory/snapshot").body);
    ASSERT_TRUE(snapshot.contains("self_heap_bytes"));
    EXPECT_TRUE(snapshot["self_heap_bytes"].is_null()) << snapshot["self_heap_bytes"];
    EXPECT_TRUE(snapshot["self_heap_error_bytes"].is_null());
    EXPECT_EQ(get("/metrics").body.find("riptide_self_heap_bytes"), std::string::npos);
  }
}

}  // namespace
