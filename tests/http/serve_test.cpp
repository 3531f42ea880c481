// rp::http::serve(manager): one call mounts every route and the dashboard and starts the server from the
// manager's [http] section; http.enabled = false binds nothing. The route groups mount on a plain Router, and
// the manager's families reach a host's prometheus-cpp setup through FunctionCollectable.
#include "riptide/performance/http/serve.hpp"
#include "http/support/http_client.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/prometheus_collectable.hpp"
#include "riptide/performance/http/routes.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/manager/performance_state.hpp"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using namespace std::chrono_literals;

namespace {

rp::Config quiet_config() {
  rp::Config config;
  config.monitoring.enabled = false;  // no sampler thread: these tests are about wiring
  config.cache.enabled = false;
  config.http.port = 0;  // a free port: tests run in parallel
  return config;
}

TEST(Serve, OneCallServesEveryRouteAndTheDashboard) {
  auto manager = rp::PerformanceManager::with_config(quiet_config());
  manager->record_request(20ms);
  manager->record_stage("parse", 5ms);
  auto endpoints = http::serve(manager);
  ASSERT_TRUE(endpoints->serving());
  ASSERT_NE(endpoints->port(), 0);
  for (const char* route : {"/metrics", "/metrics/performance", "/metrics/memory/health", "/metrics/memory/snapshot",
                            "/metrics/memory/trend", "/dashboard"}) {
    EXPECT_EQ(test::fetch(endpoints->port(), "GET", route).status, 200) << route;
  }
  const std::string metrics = test::fetch(endpoints->port(), "GET", "/metrics").body;
  for (const char* family :
       {"riptide_info{", "riptide_requests_total 1", "riptide_stage_calls_total{stage=\"parse\"} 1",
        "riptide_limits_active_requests", "riptide_target_state{", "riptide_http_connections_active"}) {
    EXPECT_NE(metrics.find(family), std::string::npos) << family << "\n" << metrics;
  }
  const auto performance = nlohmann::json::parse(test::fetch(endpoints->port(), "GET", "/metrics/performance").body);
  EXPECT_EQ(performance["session_id"], manager->session_id());
  EXPECT_EQ(performance["published"], false) << "not monitoring: a reading made for the request";
  endpoints->stop();
  EXPECT_ANY_THROW((void)test::fetch(endpoints->port(), "GET", "/metrics")) << "stopped: nothing listens";
}

TEST(Serve, HttpDisabledBindsNothingButTheRoutesStillAnswer) {
  rp::Config config = quiet_config();
  config.http.enabled = false;
  auto manager = rp::PerformanceManager::with_config(config);
  auto endpoints = http::serve(manager);
  EXPECT_FALSE(endpoints->serving());
  EXPECT_EQ(endpoints->port(), 0);
  EXPECT_EQ(endpoints->server(), nullptr);
  http::Request request;
  request.method = "GET";
  request.target = "/metrics/memory/health";
  EXPECT_EQ(endpoints->router().handle(request).status, 200);
}

TEST(Serve, RefusesANullManagerWithAClearError) {
  try {
    (void)http::serve(nullptr);
    FAIL() << "no error";
  } catch (const rp::ConfigError& error) {
    EXPECT_NE(std::string{error.what()}.find("manager"), std::string::npos) << error.what();
  }
}

TEST(RouteGroups, MountOnAPlainRouterOnce) {
  auto manager = rp::PerformanceManager::with_config(quiet_config());
  http::Router router;
  http::add_memory_routes(router, manager);
  http::add_metrics_routes(router, manager);
  http::add_pprof_routes(router, manager);
  http::add_dashboard_routes(router);
  http::Request request;
  request.method = "GET";
  for (const char* route : {"/metrics/memory/health", "/metrics", "/metrics/performance", "/dashboard"}) {
    request.target = route;
    EXPECT_EQ(router.handle(request).status, 200) << route;
  }
  EXPECT_THROW(http::add_metrics_routes(router, manager), std::invalid_argument);
}

TEST(ManagerCollectable, EveryFamilyReachesAPrometheusCppHost) {
  auto manager = rp::PerformanceManager::with_config(quiet_config());
  manager->record_request(20ms);
  rp::FunctionCollectable collectable([manager](rp::PrometheusWriter& out) { manager->write_prometheus(out); });
  const std::string text = prometheus::TextSerializer().Serialize(collectable.Collect());
  EXPECT_NE(text.find("riptide_requests_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE riptide_limits_rate_limited_total counter"), std::string::npos) << text;
}

}  // namespace
