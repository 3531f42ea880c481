// The security claims of docs/SECURITY.md that had no test of their own, checked over a live server on
// 127.0.0.1 with the real MemoryMetricsRouter:
//  - loopback bind and bounded limits by default;
//  - Cache-Control: no-store and X-Content-Type-Options: nosniff on every route and every error,
//    including the transport's own 413/431 answers;
//  - no route takes a file path (or any parameter it does not document);
//  - oversized query names/values are refused with a short 400 that names the parameter;
//  - the bearer token never reaches the logs, whatever the client sends.
// Claims already tested elsewhere are listed in docs/SECURITY.md with their test names.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <sstream>
#include <string>

#include "http/support/http_client.hpp"
#include "riptide/performance/core/config.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using nlohmann::json;

namespace {

constexpr const char* kToken = "s3cret-Token_value.42";

void expect_security_headers(const test::HttpResponse& response, const std::string& what) {
  EXPECT_EQ(response.header("Cache-Control").value_or("<missing>"), "no-store") << what;
  EXPECT_EQ(response.header("X-Content-Type-Options").value_or("<missing>"), "nosniff") << what;
}

class SecurityDefaults : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = std::make_shared<std::ostringstream>();
    auto logger = std::make_shared<spdlog::logger>("security-test",
                                                   std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_, true));
    logger->set_level(spdlog::level::trace);
    rp::set_logger(logger);
    rp::Config config;
    config.monitoring.sample_interval_sec = 0.05;
    config.http.cpu_profile_max_sec = 1;
    profiler_ = std::make_shared<rp::MemoryProfiler>(rp::make_uuid_v4(), config);
    profiler_->start_profiling();
    router_ = std::make_unique<http::MemoryMetricsRouter>(profiler_, "");
    server_ = http::Server::start(*router_, {.port = 0, .token = kToken});
  }
  void TearDown() override {
    server_.reset();
    router_.reset();
    if (profiler_) profiler_->stop_profiling();
    rp::set_logger(nullptr);
  }

  test::HttpResponse fetch(const std::string& method, const std::string& target, bool with_token = true,
                           const std::string& body = {}) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (with_token) headers.emplace_back("Authorization", std::string("Bearer ") + kToken);
    return test::fetch(server_->port(), method, target, headers, body);
  }

  std::shared_ptr<std::ostringstream> log_;
  std::shared_ptr<rp::MemoryProfiler> profiler_;
  std::unique_ptr<http::MemoryMetricsRouter> router_;
  std::unique_ptr<http::Server> server_;
};

TEST(SecurityDefaultValues, LoopbackBindAndBoundedLimits) {
  const rp::Config config;
  EXPECT_EQ(config.http.bind, "127.0.0.1");
  const http::ServerOptions options;
  EXPECT_EQ(options.bind, "127.0.0.1");
  EXPECT_TRUE(options.token.empty());
  EXPECT_GT(options.header_limit_bytes, 0u);
  EXPECT_LE(options.header_limit_bytes, 64u * 1024);
  EXPECT_GT(options.body_limit_bytes, 0u);
  EXPECT_LE(options.body_limit_bytes, 64u * 1024);
  EXPECT_GT(options.max_connections, 0u);
  EXPECT_LE(options.max_connections, 4096u);
  EXPECT_GT(options.read_timeout.count(), 0);
  EXPECT_GT(options.idle_timeout.count(), 0);
  EXPECT_GT(options.write_timeout.count(), 0);
  // Request-driven work: points per trend query and CPU profile length are capped by default.
  EXPECT_GT(config.http.max_trend_points, 0u);
  EXPECT_LE(config.http.max_trend_points, 100'000u);
  EXPECT_GT(config.http.cpu_profile_max_sec, 0u);
  EXPECT_LE(config.http.cpu_profile_max_sec, 300u);
}

// A token that could not travel in an Authorization header (space, quote, newline from a secrets file) is
// refused when the configuration loads, naming the key, instead of never matching at run time.
TEST(SecurityDefaultValues, MalformedTokenIsAConfigError) {
  for (const char* toml :
       {"[http]\ntoken = \"has space\"\n", "[http]\ntoken = \"line\\n\"\n", "[http]\ntoken = \"=leading\"\n"}) {
    try {
      (void)rp::Config::from_toml(toml);
      ADD_FAILURE() << "accepted: " << toml;
    } catch (const rp::ConfigError& error) {
      EXPECT_EQ(error.key(), "http.token") << error.what();
      // The message lands in host logs: it describes the token, never repeats it.
      const std::string what = error.what();
      EXPECT_EQ(what.find("has space"), std::string::npos) << what;
      EXPECT_EQ(what.find("=leading"), std::string::npos) << what;
      EXPECT_EQ(what.find("\"line"), std::string::npos) << what;
    }
  }
}

namespace {

// A path a route serves: its own, or one below it for a prefix route (the prefix alone is no endpoint).
std::string served_path(const http::RouteInfo& route) {
  return route.prefix ? route.path + "some-name/some-file" : route.path;
}

}  // namespace

// Every registered route, with and without the token, and the router's and transport's errors.
TEST_F(SecurityDefaults, EveryResponseCarriesNoStoreAndNosniff) {
  const auto routes = router_->routes();
  ASSERT_GE(routes.size(), 8u);
  for (const auto& route : routes) {
    const std::string target = route.path == "/debug/pprof/profile" ? route.path + "?seconds=1" : served_path(route);
    const auto with = fetch(route.method, target, true);
    expect_security_headers(with, route.method + " " + target + " -> " + std::to_string(with.status));
    const auto without = fetch(route.method, target, false);
    expect_security_headers(without, route.method + " " + target + " (no token) -> " + std::to_string(without.status));
    if (route.options.sensitive) {
      EXPECT_EQ(without.status, 401) << route.path;
    }
  }
  expect_security_headers(fetch("GET", "/no/such/endpoint"), "404");
  expect_security_headers(fetch("DELETE", "/metrics/memory/health"), "405");
  expect_security_headers(fetch("GET", "/metrics/memory/trend?duration=forever"), "400");
  expect_security_headers(fetch("POST", "/metrics/memory/gc", true, std::string(64 * 1024, 'x')), "413");
  expect_security_headers(
      test::fetch(server_->port(), "GET", "/metrics/memory/health", {{"X-Padding", std::string(16 * 1024, 'p')}}),
      "431");
}

// No endpoint reads a file named by the request: none accepts a path-like parameter, and paths outside
// the registered set (traversal included) are 404 without touching the file system.
TEST_F(SecurityDefaults, NoRouteTakesAFilePath) {
  for (const auto& route : router_->routes()) {
    for (const char* parameter : {"path", "file", "output", "dir"}) {
      const auto response = fetch(route.method, served_path(route) + "?" + parameter + "=/etc/passwd");
      SCOPED_TRACE(route.method + " " + route.path + "?" + parameter + " -> " + response.body);
      EXPECT_EQ(response.status, 400);
      EXPECT_EQ(json::parse(response.body)["error"]["code"], "invalid_parameter");
    }
  }
  for (const char* target : {"/../../etc/passwd", "/metrics/memory/../../../etc/passwd", "/debug/pprof/heap/../../x",
                             "/%2e%2e/%2e%2e/etc/passwd"}) {
    const auto response = fetch("GET", target);
    EXPECT_TRUE(response.status == 404 || response.status == 400) << target << " -> " << response.status;
    EXPECT_EQ(response.body.find("root:"), std::string::npos);
  }
}

TEST_F(SecurityDefaults, OversizedQueryNamesAndValuesAreShort400s) {
  const std::string huge_value(6000, '9');
  for (const std::string& target :
       {"/metrics/memory/trend?duration=" + huge_value + "s", "/metrics/memory/trend?interval=" + huge_value,
        "/debug/pprof/profile?seconds=" + huge_value, "/metrics/memory/trend?" + std::string(6000, 'n') + "=1"}) {
    const auto response = fetch("GET", target);
    SCOPED_TRACE(target.substr(0, 60) + " -> " + response.body.substr(0, 300));
    EXPECT_EQ(response.status, 400);
    const json body = json::parse(response.body);
    EXPECT_EQ(body["error"]["code"], "invalid_parameter");
    const std::string message = body["error"]["message"].get<std::string>();
    EXPECT_EQ(message.rfind("query parameter '", 0), 0u) << "names the parameter first";
    EXPECT_NE(message.find("accepted"), std::string::npos) << "says what is accepted";
    EXPECT_LT(response.body.size(), 1024u) << "the echo is truncated, not the whole value";
  }
  std::string many = "/metrics/memory/trend?";
  for (int i = 0; i < 40; ++i) many += "p" + std::to_string(i) + "=1&";
  const auto too_many = fetch("GET", many);
  EXPECT_EQ(too_many.status, 400) << too_many.body;
  // A request line beyond the header limit never reaches the router.
  const auto too_long = fetch("GET", "/metrics/memory/trend?duration=" + std::string(16 * 1024, '1') + "s");
  EXPECT_EQ(too_long.status, 431) << too_long.body;
}

TEST_F(SecurityDefaults, TheTokenNeverReachesTheLogs) {
  fetch("GET", "/debug/pprof/heap", true);
  fetch("GET", "/debug/pprof/heap", false);
  test::fetch(server_->port(), "GET", "/debug/pprof/heap", {{"Authorization", std::string("Bearer ") + kToken + "x"}});
  test::fetch(server_->port(), "GET", "/debug/pprof/heap", {{"Authorization", std::string("Basic ") + kToken}});
  fetch("GET", std::string("/debug/pprof/heap?token=") + kToken, false);
  fetch("POST", "/metrics/memory/gc", true, kToken);
  server_->stop();
  const std::string logged = log_->str();
  EXPECT_FALSE(logged.empty()) << "the server logs its start and stop";
  EXPECT_EQ(logged.find(kToken), std::string::npos) << logged;
  // The effective configuration, the text meant for logs, redacts it too.
  rp::Config config;
  config.http.token = kToken;
  EXPECT_EQ(config.to_toml().find(kToken), std::string::npos);
}

// A presented token much longer than the real one (within the header limit) is simply wrong: 401, no
// crash, no echo of either token.
TEST_F(SecurityDefaults, LongAndAlmostRightTokensAre401) {
  const std::string token = kToken;
  for (const std::string& presented :
       {std::string(7000, 'a'), token + token, token.substr(0, token.size() - 1), " " + token}) {
    const auto response =
        test::fetch(server_->port(), "GET", "/debug/pprof/heap", {{"Authorization", "Bearer " + presented}});
    EXPECT_EQ(response.status, 401) << presented.substr(0, 40);
    EXPECT_EQ(response.body.find(kToken), std::string::npos);
  }
}

}  // namespace
