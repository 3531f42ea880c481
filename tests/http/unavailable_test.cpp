// A process WITHOUT jemalloc's heap profiler: the profiling endpoints answer 503 with the reason and the
// fix, and everything else still works.
#include "http/support/http_client.hpp"
#include "riptide/performance/core/features.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;

TEST(Unavailable, ProfilingEndpointsAre503WithTheFix) {
  if (std::getenv("MALLOC_CONF") != nullptr) GTEST_SKIP() << "MALLOC_CONF may turn the profiler on";
  auto profiler = std::make_shared<rp::MemoryProfiler>();
  http::MemoryMetricsRouter router(profiler, "");
  auto server = http::Server::start(router, {.port = 0});
  for (const char* target : {"/debug/pprof/heap", "/metrics/memory/leaks"}) {
    const auto response = test::fetch(server->port(), "GET", target);
    EXPECT_EQ(response.status, 503) << target << " " << response.body;
    const auto body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body["error"]["code"], "unavailable");
    // The fix it names: turn the profiler on, or (built without jemalloc, e.g. the asan/tsan presets) rebuild
    // with jemalloc.
    const char* fix = RIPTIDE_PERF_HAS_JEMALLOC ? "prof:true" : "RIPTIDE_PERF_JEMALLOC=ON";
    EXPECT_NE(body["error"]["message"].get<std::string>().find(fix), std::string::npos) << response.body;
  }
  EXPECT_EQ(test::fetch(server->port(), "GET", "/metrics/memory/health").status, 200);
  EXPECT_EQ(test::fetch(server->port(), "GET", "/metrics/memory/snapshot").status, 200);
  const auto health = nlohmann::json::parse(test::fetch(server->port(), "GET", "/metrics/memory/health").body);
  EXPECT_EQ(health["leak_severity"], "unknown");
}
