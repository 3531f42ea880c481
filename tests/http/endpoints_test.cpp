// The spec's endpoints, Prometheus and pprof over a live server on 127.0.0.1, with jemalloc's heap
// profiler on (this executable defines malloc_conf). Checks every spec field's presence and type, the
// error statuses, `promtool check metrics` on /metrics and Google's pprof on /debug/pprof/*.
#include "http/support/http_client.hpp"
#include "http/support/json_checks.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/prometheus.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/leak_detector.hpp"
#include "support/child_process.hpp"
#include "support/jemalloc_skip.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>
#include <vector>

// A small sampling interval (16 KiB) so a few MiB of test allocations are well sampled.
RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true");

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using riptide::performance::test::expect_json_error;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Kept alive until the process ends: the "leak" the detector must find.
std::vector<void*> g_leaked;

[[gnu::noinline]] void leak_for_http_test(std::size_t bytes) {
  for (std::size_t done = 0; done < bytes; done += 4096) {
    void* block = std::malloc(4096);
    static_cast<volatile char*>(block)[0] = 1;
    g_leaked.push_back(block);
  }
}

[[gnu::noinline]] double busy_loop_for_pprof_test(std::atomic<bool>& stop) {
  volatile double x = 1.0;
  while (!stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 10000; ++i) x = x * 1.0000001 + 0.0000001;
  }
  return x;
}

using Command = riptide::test::CommandResult;

Command run(const std::string& command) {
  return riptide::test::run_command(command);
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string{} : std::string{value};
}

// The jemalloc-only parts of the contract (exact allocation counters, heap profiles: leaks, allocation
// sites, pprof heap; arena purges) need jemalloc serving malloc. The asan/tsan presets build without it
// (the sanitizer replaces malloc): there these checks skip, or assert the documented "not available"
// answer instead, and everything else in this file still runs under the sanitizer.

json body_of(const test::HttpResponse& response) {
  return json::parse(response.body);
}

class EndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(http::MemoryMetricsOptions options, http::ServerOptions server_options = {}) {
    server.reset();
    router.reset();
    rp::Config config;
    config.monitoring.sample_interval_sec = 0.05;
    config.http.gc_cooldown_sec = 3600;  // a second purge within the test is refused
    profiler = std::make_shared<rp::MemoryProfiler>(session_id, config);
    profiler->start_profiling();
    router = std::make_unique<http::MemoryMetricsRouter>(profiler, session_id, std::move(options));
    server_options.port = 0;
    server = http::Server::start(*router, server_options);
  }

  test::HttpResponse get(const std::string& target,
                         const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return test::fetch(server->port(), "GET", target, headers);
  }

  const std::string session_id = rp::make_uuid_v4();
  std::shared_ptr<rp::MemoryProfiler> profiler;
  std::unique_ptr<http::MemoryMetricsRouter> router;
  std::unique_ptr<http::Server> server;
};

}  // namespace

// The leak detector's first observation (start_profiling() takes one at once) gives self_heap_bytes.
// The leak detector's first observation (start_profiling() takes it at once): the library's own heap and
// the published leak report exist after it.
bool wait_for_self_heap(const rp::MemoryProfiler& profiler) {
  const auto observed = [&profiler] {
    return profiler.self_heap_bytes() && profiler.leak_detector() && profiler.leak_detector()->latest();
  };
  for (int i = 0; i < 1200 && !observed(); ++i) std::this_thread::sleep_for(50ms);
  return observed();
}

TEST_F(EndpointsTest, SnapshotHasEverySpecField) {
  const bool self_heap = rp::JemallocCtl::availability().serves_malloc && wait_for_self_heap(*profiler);
  EXPECT_EQ(self_heap, rp::JemallocCtl::availability().serves_malloc) << "heap profiling is on in this executable";
  const auto response = get("/metrics/memory/snapshot");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.header("Content-Type").value_or(""), "application/json");
  const json body = body_of(response);
  test::expect_timestamp(body, "timestamp");
  EXPECT_EQ(body["session_id"], session_id);
  for (const char* field : {"current_usage", "peak_usage"}) test::expect_uint(body, field);
  for (const char* field : {"total_allocated", "total_deallocated", "allocation_count", "deallocation_count"}) {
    if (rp::JemallocCtl::availability().serves_malloc) {
      test::expect_uint(body, field);
    } else {  // glibc and the sanitizers keep no such counters: null, never a made-up zero
      EXPECT_TRUE(body[field].is_null()) << field << " = " << body[field];
    }
  }
  EXPECT_GT(body["current_usage"].get<std::uint64_t>(), 0U);
  EXPECT_GE(body["peak_usage"].get<std::uint64_t>(), body["current_usage"].get<std::uint64_t>());
  if (rp::JemallocCtl::availability().serves_malloc) {
    EXPECT_EQ(body["allocator"], "jemalloc");
  } else {
    EXPECT_NE(body["allocator"], "jemalloc");
  }
  // The library's own heap: a sampled estimate when heap profiling runs, else null (never a made-up 0).
  ASSERT_TRUE(body.contains("self_heap_bytes"));
  ASSERT_TRUE(body.contains("self_heap_error_bytes"));
  if (self_heap) {
    test::expect_uint(body, "self_heap_bytes");
    test::expect_uint(body, "self_heap_error_bytes");
    EXPECT_GT(body["self_heap_bytes"].get<std::uint64_t>(), 0U);
    EXPECT_LT(body["self_heap_bytes"].get<std::uint64_t>(), body["current_usage"].get<std::uint64_t>());
  } else {
    EXPECT_TRUE(body["self_heap_bytes"].is_null()) << body["self_heap_bytes"];
    EXPECT_TRUE(body["self_heap_error_bytes"].is_null());
  }
  expect_json_error(get("/metrics/memory/snapshot?x=1"), 400, "invalid_parameter");
}

TEST_F(EndpointsTest, LeaksFindsTheLeakingFunction) {
  SKIP_UNLESS_JEMALLOC();
  // Drive a detector of our own through a growing leak, then ask the endpoint.
  rp::ProfilingConfig profiling;
  profiling.leak_min_observations = 3;
  profiling.leak_min_bytes = 256 * 1024;
  rp::ManualClock clock;
  auto detector = std::make_shared<rp::LeakDetector>(profiling, clock);
  http::MemoryMetricsOptions options;
  options.leak_detector = detector;
  start(std::move(options));
  for (int step = 0; step < 6; ++step) {
    leak_for_http_test(2 * 1024 * 1024);
    ASSERT_FALSE(detector->observe().has_value());
    clock.advance(30s);
  }
  // The route shows the detector's latest published report; it never observes on its own.
  (void)detector->detect();
  const auto response = get("/metrics/memory/leaks");
  ASSERT_EQ(response.status, 200) << response.body;
  const json body = body_of(response);
  test::expect_timestamp(body, "timestamp");
  EXPECT_EQ(body["session_id"], session_id);
  test::expect_uint(body, "leak_count");
  test::expect_uint(body, "total_leaked_bytes");
  test::expect_array(body, "leaks");
  ASSERT_GE(body["leak_count"].get<int>(), 1) << body.dump(2);
  bool found = false;
  for (const auto& leak : body["leaks"]) {
    test::expect_string(leak, "location");
    test::expect_uint(leak, "size");
    test::expect_number(leak, "age_seconds");
    test::expect_timestamp(leak, "allocation_time");
    found = found || leak["location"].get<std::string>().find("leak_for_http_test") != std::string::npos;
  }
  EXPECT_TRUE(found) << body.dump(2);
}

TEST_F(EndpointsTest, AllocationsHasEverySpecField) {
  SKIP_UNLESS_JEMALLOC();
  leak_for_http_test(1024 * 1024);
  const auto response = get("/metrics/memory/allocations");
  ASSERT_EQ(response.status, 200) << response.body;
  const json body = body_of(response);
  test::expect_timestamp(body, "timestamp");
  EXPECT_EQ(body["session_id"], session_id);
  test::expect_array(body, "top_allocators");
  ASSERT_FALSE(body["top_allocators"].empty()) << body.dump(2);
  for (const auto& site : body["top_allocators"]) {
    test::expect_string(site, "location");
    test::expect_uint(site, "allocation_count");
    test::expect_uint(site, "total_bytes");
    test::expect_uint(site, "average_size");
    test::expect_number(site, "percentage_of_total");
  }
  test::expect_uint(body, "total_allocations");
  test::expect_number(body, "average_allocation_size");
  test::expect_uint(body, "median_allocation_size");
  test::expect_number(body, "allocation_rate_per_second");
}

TEST_F(EndpointsTest, TrendHasEverySpecFieldAndParsesItsQueryStrictly) {
  // Let the sampler record a few snapshots (it takes the first at once, then one every 50 ms). Waited for,
  // not slept: a loaded machine may run the sampler late; the bound only guards against a hang.
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (profiler->tracker().history_size() < 3 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_GE(profiler->tracker().history_size(), 3U) << "the sampler recorded nothing in 60 s";
  for (const std::string target : {"/metrics/memory/trend", "/metrics/memory/trend?duration=1h&interval=1m",
                                   "/metrics/memory/trend?duration=30s&interval=100ms"}) {
    const auto response = get(target);
    ASSERT_EQ(response.status, 200) << target << response.body;
    const json body = body_of(response);
    test::expect_timestamp(body, "timestamp");
    EXPECT_EQ(body["session_id"], session_id);
    test::expect_string(body, "duration");
    test::expect_string(body, "interval");
    test::expect_array(body, "data_points");
    ASSERT_FALSE(body["data_points"].empty()) << target << body.dump();
    for (const auto& point : body["data_points"]) {
      test::expect_timestamp(point, "timestamp");
      test::expect_uint(point, "memory_usage");
      if (rp::JemallocCtl::availability().serves_malloc) {
        test::expect_uint(point, "allocation_count");
        test::expect_uint(point, "deallocation_count");
      } else {  // no such counters without jemalloc: null
        EXPECT_TRUE(point["allocation_count"].is_null()) << point;
        EXPECT_TRUE(point["deallocation_count"].is_null()) << point;
      }
    }
    const json& analysis = body["trend_analysis"];
    for (const char* field : {"average_usage", "peak_usage", "min_usage", "growth_rate", "volatility"}) {
      test::expect_number(analysis, field);
    }
  }
  const json defaults = body_of(get("/metrics/memory/trend"));
  EXPECT_EQ(defaults["duration"], "1h");
  EXPECT_EQ(defaults["interval"], "1m");

  const json capped = body_of(get("/metrics/memory/trend?duration=1h&interval=1ms"));
  EXPECT_LE(capped["data_points"].size(), 1000U);

  for (const auto& [target, parameter] : std::vector<std::pair<std::string, std::string>>{
           {"/metrics/memory/trend?duration=abc", "duration"},
           {"/metrics/memory/trend?duration=-1h", "duration"},
           {"/metrics/memory/trend?duration=10000h", "duration"},
           {"/metrics/memory/trend?interval=0s", "interval"},
           {"/metrics/memory/trend?duration=1m&interval=2m", "interval"},
           {"/metrics/memory/trend?duraton=1h", "duraton"},
           {"/metrics/memory/trend?duration=1h&duration=2h", "duration"}}) {
    const auto response = get(target);
    expect_json_error(response, 400, "invalid_parameter");
    EXPECT_NE(response.body.find("'" + parameter + "'"), std::string::npos) << target << " " << response.body;
    EXPECT_NE(response.body.find("accepted"), std::string::npos) << response.body;
  }
}

TEST_F(EndpointsTest, FragmentationReconcilesRssWithTheHeapOverHttp) {
  const auto response = get("/metrics/memory/fragmentation");
  ASSERT_EQ(response.status, 200) << response.body;
  const json body = body_of(response);
  test::expect_timestamp(body, "timestamp");
  EXPECT_EQ(body["session_id"], session_id);
  ASSERT_TRUE(body["available"].is_boolean()) << body.dump(2);
  if (!body["available"].get<bool>()) {
    test::expect_string(body, "reason");  // a sanitizer build: no jemalloc
    return;
  }
  const json& steps = body["reconciliation"];
  EXPECT_GE(steps["active_bytes"].get<std::uint64_t>(), steps["allocated_bytes"].get<std::uint64_t>());
  EXPECT_EQ(steps["page_free_bytes"].get<std::uint64_t>(),
            steps["active_bytes"].get<std::uint64_t>() - steps["allocated_bytes"].get<std::uint64_t>());
  test::expect_number(body, "fragmentation_ratio");
  test::expect_array(body, "worst_size_classes");
  test::expect_array(body, "recommendations");
  expect_json_error(get("/metrics/memory/fragmentation?top=3"), 400, "invalid_parameter");
}

TEST_F(EndpointsTest, HealthHasEverySpecField) {
  const auto response = get("/metrics/memory/health");
  ASSERT_EQ(response.status, 200) << response.body;
  const json body = body_of(response);
  test::expect_timestamp(body, "timestamp");
  EXPECT_EQ(body["session_id"], session_id);
  test::expect_string(body, "status");
  EXPECT_TRUE(body["status"] == "healthy" || body["status"] == "degraded" || body["status"] == "critical");
  test::expect_number(body, "memory_usage_percent");
  test::expect_string(body, "leak_severity");
  test::expect_string(body, "allocation_rate_status");
  const json& details = body["details"];
  test::expect_uint(details, "current_memory");
  test::expect_uint(details, "memory_limit");
  test::expect_uint(details, "leak_count");
  test::expect_uint(details, "leaked_bytes");
  test::expect_number(details, "allocation_rate");
  test::expect_array(details, "warnings");
  test::expect_array(details, "recommendations");
  EXPECT_EQ(details["memory_limit"].get<std::uint64_t>(), 600ULL * 1024 * 1024);
}

TEST(HealthStatus, FollowsTheMemoryTargets) {
  const auto status_with = [](std::uint64_t max_mb, std::uint64_t alert_mb) {
    rp::Config config;
    config.targets.max_memory_mb = max_mb;
    config.targets.memory_alert_mb = alert_mb;
    auto profiler = std::make_shared<rp::MemoryProfiler>(rp::make_uuid_v4(), config);
    http::MemoryMetricsRouter router(profiler, "");
    http::Request request;
    request.method = "GET";
    request.target = "/metrics/memory/health";
    return json::parse(router.handle(request).body);
  };
  // 64 MiB held and touched while the three statuses are taken: the process's RSS then sits well above
  // the MiB granularity of the targets, whatever this process weighed before on this machine.
  constexpr std::size_t kBallast = 64 * 1024 * 1024;
  std::vector<char> ballast(kBallast, 1);
  asm volatile("" : : "r"(ballast.data()) : "memory");  // kept and touched, not optimised away
  const json tight = status_with(1, 1);                 // any process is above 1 MiB
  EXPECT_EQ(tight["status"], "critical") << tight.dump(2);
  EXPECT_GT(tight["memory_usage_percent"].get<double>(), 100.0);
  EXPECT_FALSE(tight["details"]["warnings"].empty());
  EXPECT_FALSE(tight["details"]["recommendations"].empty());
  const auto rss = tight["details"]["current_memory"].get<std::uint64_t>();
  ASSERT_GE(rss, kBallast) << tight.dump(2);
  // "degraded" from 90% of the limit up to the alert. A limit of RSS / 0.95 puts the next reading in the
  // middle of that band: it may fall by 5% of RSS (more than 3 MiB) or rise up to the alert (100 times the
  // limit) and still be degraded.
  const std::uint64_t limit_mb = rss * 100 / 95 / (1024 * 1024) + 1;
  const json near = status_with(limit_mb, limit_mb * 100);
  if (near["details"]["memory_alert"].get<std::uint64_t>() < limit_mb * 100 * 1024 * 1024) {
    GTEST_SKIP() << "this process's memory cgroup limit is below " << limit_mb * 100
                 << " MiB and lowers the alert to 95% of it: the band between degraded and critical is not the "
                    "one this test sets up. "
                 << near.dump(2);
  }
  EXPECT_EQ(near["status"], "degraded") << near.dump(2);
  const json roomy = status_with(1'000'000, 1'000'000);
  // The percentage is of the smaller of the target and the cgroup limit (when this machine has one).
  const auto roomy_limit = roomy["details"]["memory_limit"].get<double>();
  EXPECT_LE(roomy_limit, 1'000'000.0 * 1024 * 1024);
  EXPECT_NEAR(roomy["memory_usage_percent"].get<double>(),
              100.0 * roomy["details"]["current_memory"].get<double>() / roomy_limit, 0.05);  // rounded to 0.1
  if (roomy_limit == 1'000'000.0 * 1024 * 1024) {
    EXPECT_LT(roomy["memory_usage_percent"].get<double>(), 1.0);
  }
  EXPECT_NE(roomy["status"], "critical") << roomy.dump(2);
}

TEST_F(EndpointsTest, GcPurgesOnceThenCoolsDown) {
  if (!rp::JemallocCtl::availability().serves_malloc) {
    // glibc trims its heap; a sanitizer's allocator has nothing to purge and the route says so (503).
    const auto response = test::fetch(server->port(), "POST", "/metrics/memory/gc");
    EXPECT_TRUE(response.status == 200 || response.status == 503) << response.body;
  }
  SKIP_UNLESS_JEMALLOC();
  const auto response = test::fetch(server->port(), "POST", "/metrics/memory/gc");
  ASSERT_EQ(response.status, 200) << response.body;
  const json body = body_of(response);
  test::expect_timestamp(body, "timestamp");
  EXPECT_EQ(body["session_id"], session_id);
  EXPECT_EQ(body["triggered"], true);
  test::expect_uint(body, "memory_before");
  test::expect_uint(body, "memory_after");
  test::expect_uint(body, "freed_bytes");
  test::expect_uint(body, "duration_ms");
  EXPECT_EQ(body["steps"], json::array({"thread.tcache.flush", "arena.4096.purge"}));

  const auto again = test::fetch(server->port(), "POST", "/metrics/memory/gc");
  expect_json_error(again, 429, "too_many_requests");
  ASSERT_TRUE(again.header("Retry-After").has_value());
  EXPECT_GE(std::stoi(*again.header("Retry-After")), 1);

  const auto wrong_method = get("/metrics/memory/gc");
  expect_json_error(wrong_method, 405, "method_not_allowed");
  EXPECT_EQ(wrong_method.header("Allow").value_or(""), "POST");
}

TEST_F(EndpointsTest, SensitiveEndpointsNeedTheTokenOffLoopback) {
  http::ServerOptions exposed;
  exposed.bind = "0.0.0.0";
  start({}, exposed);
  expect_json_error(test::fetch(server->port(), "POST", "/metrics/memory/gc"), 401, "unauthorized");
  expect_json_error(get("/debug/pprof/heap"), 401, "unauthorized");
  expect_json_error(get("/debug/pprof/profile?seconds=1"), 401, "unauthorized");
  EXPECT_EQ(get("/metrics/memory/health").status, 200) << "read-only endpoints stay open";

  exposed.token = "correct-horse-battery-staple";
  start({}, exposed);
  expect_json_error(get("/debug/pprof/heap", {{"Authorization", "Bearer wrong"}}), 401, "unauthorized");
  const auto heap = get("/debug/pprof/heap", {{"Authorization", "Bearer correct-horse-battery-staple"}});
  EXPECT_EQ(heap.status, rp::JemallocCtl::availability().serves_malloc ? 200 : 503)
      << "past the token check; 503: no heap profiler";
}

TEST_F(EndpointsTest, UnknownPathsAndMethods) {
  expect_json_error(get("/metrics/memory/unknown"), 404, "not_found");
  expect_json_error(test::fetch(server->port(), "DELETE", "/metrics/memory/health"), 405, "method_not_allowed");
  EXPECT_EQ(test::fetch(server->port(), "POST", "/metrics").header("Allow").value_or(""), "GET");
}

TEST_F(EndpointsTest, PerformanceIs503WithoutAManagerAndServedWithOne) {
  const auto missing = get("/metrics/performance");
  expect_json_error(missing, 503, "unavailable");
  EXPECT_NE(missing.body.find("performance_json"), std::string::npos) << missing.body;
  http::MemoryMetricsOptions options;
  options.performance_json = [] { return json{{"all_targets_met", true}}; };
  start(std::move(options));
  const auto served = get("/metrics/performance");
  ASSERT_EQ(served.status, 200);
  EXPECT_EQ(body_of(served)["all_targets_met"], true);
  EXPECT_EQ(body_of(served)["session_id"], session_id);
}

TEST_F(EndpointsTest, PrometheusMetricsPassPromtool) {
  http::MemoryMetricsOptions options;
  options.prometheus_collectors.push_back([](http::PrometheusWriter& out) {
    out.family("test_extra_total", http::MetricType::counter, "A family added by a collector.");
    out.sample(std::uint64_t{7}, {{"kind", "quote\" backslash\\ newline\n"}});
  });
  start(std::move(options));
  std::this_thread::sleep_for(200ms);
  if (rp::JemallocCtl::availability().serves_malloc) {
    ASSERT_TRUE(wait_for_self_heap(*profiler));  // the detector's first observation: the leak families have a report
  }
  const auto response = get("/metrics");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.header("Content-Type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
  for (const char* family : {"riptide_info", "riptide_process_resident_memory_bytes", "riptide_heap_bytes",
                             "riptide_heap_profiling_available", "riptide_test_extra_total"}) {
    EXPECT_NE(response.body.find(std::string{"# TYPE "} + family + " "), std::string::npos) << family;
  }
  // Families only jemalloc can fill (left out, not zero, without it).
  for (const char* family :
       {"riptide_jemalloc_resident_bytes", "riptide_jemalloc_retained_bytes", "riptide_allocations_total",
        "riptide_deallocations_total", "riptide_leak_suspects", "riptide_leaked_bytes", "riptide_self_heap_bytes",
        "riptide_self_heap_error_bytes", "riptide_leak_tracked_sites", "riptide_leak_dropped_sites_total"}) {
    EXPECT_EQ(response.body.find(std::string{"# TYPE "} + family + " ") != std::string::npos,
              rp::JemallocCtl::availability().serves_malloc)
        << family;
  }
  // The library's own heap says what it is: an estimate from samples.
  if (rp::JemallocCtl::availability().serves_malloc) {
    const auto help = response.body.find("# HELP riptide_self_heap_bytes ");
    ASSERT_NE(help, std::string::npos);
    const std::string help_line = response.body.substr(help, response.body.find('\n', help) - help);
    EXPECT_NE(help_line.find("sampled estimate"), std::string::npos) << help_line;
    const auto value_at = response.body.find("\nriptide_self_heap_bytes ");
    ASSERT_NE(value_at, std::string::npos);
    EXPECT_GT(std::stoull(response.body.substr(value_at + 25)), 0U);
  }
  for (const char* family :
       {"riptide_symbolizer_cache_bytes", "riptide_symbolizer_cache_evictions_total",
        "riptide_symbolizer_dwarf_rebuilds_total", "riptide_symbolizer_lookup_cpu_seconds_total"}) {
    EXPECT_NE(response.body.find(std::string{"# TYPE "} + family + " "), std::string::npos) << family;
  }
  const std::string promtool = env("RIPTIDE_PERF_TEST_PROMTOOL");
  if (promtool.empty() || !std::filesystem::exists(promtool)) GTEST_SKIP() << "promtool not found";
  const auto file = std::filesystem::temp_directory_path() / ("riptide_metrics_" + session_id + ".txt");
  std::ofstream(file) << response.body;
  const Command check = run(promtool + " check metrics < " + file.string());
  std::filesystem::remove(file);
  EXPECT_EQ(check.status, 0) << check.output << "\n" << response.body;
  EXPECT_EQ(check.output.find("WARN"), std::string::npos) << check.output;
}

TEST_F(EndpointsTest, PprofReadsTheLiveHeapProfile) {
  SKIP_UNLESS_JEMALLOC();
  leak_for_http_test(4 * 1024 * 1024);
  // The route serves the profile the leak detector took at most one leak interval ago; take the
  // detector's next observation now so it holds the leak.
  const auto profiles = profiler->heap_profiles();
  ASSERT_NE(profiles, nullptr);
  ASSERT_TRUE(profiles->refresh().ok());
  const auto dumps = profiles->captures();
  const auto response = get("/debug/pprof/heap");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_TRUE(response.header("X-Heap-Profile-Age-Seconds").has_value());
  const auto again = get("/debug/pprof/heap");  // a poll within the interval: same dump, same bytes
  EXPECT_EQ(again.body, response.body);
  EXPECT_EQ(profiles->captures(), dumps) << "polling must not take a heap dump per request";
  EXPECT_EQ(response.header("Content-Disposition").value_or(""), "attachment; filename=\"heap.pb.gz\"");
  ASSERT_GE(response.body.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(response.body[0]), 0x1f) << "gzip";
  EXPECT_EQ(static_cast<unsigned char>(response.body[1]), 0x8b) << "gzip";

  const std::string pprof = env("RIPTIDE_PERF_TEST_PPROF");
  if (pprof.empty() || !std::filesystem::exists(pprof)) GTEST_SKIP() << "pprof not built";
  const auto tmp = std::filesystem::temp_directory_path() / ("riptide_pprof_" + session_id);
  std::filesystem::create_directories(tmp);
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/debug/pprof/heap";
  const Command top = run("PPROF_TMPDIR=" + tmp.string() + " " + pprof + " -top -sample_index=inuse_space " + url);
  EXPECT_EQ(top.status, 0) << top.output;
  EXPECT_NE(top.output.find("leak_for_http_test"), std::string::npos) << top.output;
  std::filesystem::remove_all(tmp);
}

// Allocated and freed at once: in the allocs profile, never in use.
[[gnu::noinline]] void churn_for_allocs_test(std::size_t bytes) {
  for (std::size_t done = 0; done < bytes; done += 4096) {
    void* block = std::malloc(4096);
    static_cast<volatile char*>(block)[0] = 1;
    std::free(block);
  }
}

TEST_F(EndpointsTest, PprofReadsTheAllocsProfileWhichShowsWhatWasAllocated) {
  SKIP_UNLESS_JEMALLOC();
  churn_for_allocs_test(16 * 1024 * 1024);
  const auto profiles = profiler->heap_profiles();
  ASSERT_NE(profiles, nullptr);
  ASSERT_TRUE(profiles->refresh().ok());
  const auto response = get("/debug/pprof/allocs");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.header("Content-Disposition").value_or(""), "attachment; filename=\"allocs.pb.gz\"");
  expect_json_error(get("/debug/pprof/allocs?seconds=1"), 400, "invalid_parameter");

  const std::string pprof = env("RIPTIDE_PERF_TEST_PPROF");
  if (pprof.empty() || !std::filesystem::exists(pprof)) GTEST_SKIP() << "pprof not built";
  const auto tmp = std::filesystem::temp_directory_path() / ("riptide_pprof_allocs_" + session_id);
  std::filesystem::create_directories(tmp);
  const std::string base = "http://127.0.0.1:" + std::to_string(server->port());
  // No -sample_index: the profile's default (alloc_space) is what pprof shows, as for Go's allocs profile.
  const Command allocs = run("PPROF_TMPDIR=" + tmp.string() + " " + pprof + " -top " + base + "/debug/pprof/allocs");
  EXPECT_EQ(allocs.status, 0) << allocs.output;
  EXPECT_NE(allocs.output.find("Type: alloc_space"), std::string::npos) << allocs.output;
  EXPECT_NE(allocs.output.find("churn_for_allocs_test"), std::string::npos) << allocs.output;
  // The heap profile's default is what is in use: the churn is gone from it.
  const Command heap = run("PPROF_TMPDIR=" + tmp.string() + " " + pprof + " -top " + base + "/debug/pprof/heap");
  EXPECT_EQ(heap.status, 0) << heap.output;
  EXPECT_NE(heap.output.find("Type: inuse_space"), std::string::npos) << heap.output;
  EXPECT_EQ(heap.output.find("churn_for_allocs_test"), std::string::npos) << heap.output;
  std::filesystem::remove_all(tmp);
}

TEST_F(EndpointsTest, PprofReadsALiveCpuProfileWhoseTopFunctionIsTheBusyLoop) {
  const std::string pprof = env("RIPTIDE_PERF_TEST_PPROF");
  if (pprof.empty() || !std::filesystem::exists(pprof)) GTEST_SKIP() << "pprof not built";
  std::atomic<bool> stop{false};
  std::thread busy([&stop] { (void)busy_loop_for_pprof_test(stop); });
  const auto tmp = std::filesystem::temp_directory_path() / ("riptide_pprof_cpu_" + session_id);
  std::filesystem::create_directories(tmp);
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/debug/pprof/profile?seconds=2";
  const std::string binary = std::filesystem::read_symlink("/proc/self/exe").string();
  const Command top = run("PPROF_TMPDIR=" + tmp.string() + " " + pprof + " -symbolize=local -top -nodecount=10 " +
                          binary + " '" + url + "'");
  stop = true;
  busy.join();
  std::filesystem::remove_all(tmp);
  ASSERT_EQ(top.status, 0) << top.output;
  // The first row after the "flat  flat%" header is the function with the most samples.
  const auto header = top.output.find("flat%");
  ASSERT_NE(header, std::string::npos) << top.output;
  const auto first_row = top.output.find('\n', header) + 1;
  const std::string row = top.output.substr(first_row, top.output.find('\n', first_row) - first_row);
  EXPECT_NE(row.find("busy_loop_for_pprof_test"), std::string::npos) << top.output;
}

TEST_F(EndpointsTest, CpuProfileParametersAreBoundedAndOneAtATime) {
  for (const char* target :
       {"/debug/pprof/profile?seconds=0", "/debug/pprof/profile?seconds=abc", "/debug/pprof/profile?seconds=61",
        "/debug/pprof/profile?seconds=-1", "/debug/pprof/profile?secs=1"}) {
    const auto response = get(target);
    expect_json_error(response, 400, "invalid_parameter");
    EXPECT_NE(response.body.find("accepted"), std::string::npos) << response.body;
  }
  http::MemoryMetricsOptions options;
  options.cpu_profile_cooldown_sec = 3600;
  start(std::move(options));
  const auto first = get("/debug/pprof/profile?seconds=1");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_FALSE(first.body.empty());
  EXPECT_NE(first.header("Content-Disposition").value_or("").find("attachment"), std::string::npos);
  const auto second = get("/debug/pprof/profile?seconds=1");
  expect_json_error(second, 429, "too_many_requests");
  EXPECT_TRUE(second.header("Retry-After").has_value());
}

TEST(ManagerRoutes, PerformanceManagerServesPerformanceAndItsPrometheusFamilies) {
  rp::Config config;
  auto manager = rp::PerformanceManager::with_config(config);
  for (int i = 0; i < 100; ++i) manager->record_request(std::chrono::milliseconds{10 + i});
  manager->tick();
  http::MemoryMetricsRouter router(manager);
  EXPECT_EQ(router.session_id(), manager->session_id());
  auto server = http::Server::start(router, {.port = 0});
  const auto performance = test::fetch(server->port(), "GET", "/metrics/performance");
  ASSERT_EQ(performance.status, 200) << performance.body;
  EXPECT_EQ(json::parse(performance.body)["session_id"], manager->session_id());
  const auto metrics = test::fetch(server->port(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("riptide_requests_total 100"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("# TYPE riptide_request_latency_p99_seconds gauge"), std::string::npos);
#if RIPTIDE_PERF_HAS_CACHE
  EXPECT_NE(metrics.body.find("# TYPE riptide_cache_hits_total counter"), std::string::npos) << metrics.body;
#endif
#if RIPTIDE_PERF_HAS_RESOURCE_LIMITS
  EXPECT_NE(metrics.body.find("riptide_limits_"), std::string::npos) << metrics.body;
#endif
  const std::string promtool = env("RIPTIDE_PERF_TEST_PROMTOOL");
  if (promtool.empty() || !std::filesystem::exists(promtool)) return;
  const auto file = std::filesystem::temp_directory_path() / ("riptide_metrics_manager_" + manager->session_id());
  std::ofstream(file) << metrics.body;
  const Command check = run(promtool + " check metrics < " + file.string());
  std::filesystem::remove(file);
  EXPECT_EQ(check.status, 0) << check.output;
}
