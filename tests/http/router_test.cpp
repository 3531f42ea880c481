// The transport-free parts: routing, errors, access policy, query parsing, cool-downs, Prometheus text.
#include "riptide/performance/http/router.hpp"
#include "riptide/performance/http/cooldown.hpp"
#include "riptide/performance/http/http_error.hpp"
#include "riptide/performance/http/prometheus.hpp"
#include "riptide/performance/http/query.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

http::Request get(std::string target, std::string method = "GET") {
  http::Request request;
  request.method = std::move(method);
  request.target = std::move(target);
  return request;
}

void expect_error(const http::Response& response, int status, std::string_view code) {
  EXPECT_EQ(response.status, status) << response.body;
  EXPECT_EQ(response.content_type, "application/json");
  const auto body = nlohmann::json::parse(response.body);
  ASSERT_TRUE(body.contains("error")) << response.body;
  EXPECT_EQ(body["error"]["code"], code) << response.body;
  EXPECT_TRUE(body["error"]["message"].is_string());
  EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router.add_route("GET", "/hello", [](const http::Request&) { return http::json_response({{"hello", "world"}}); });
    router.add_route("POST", "/hello", [](const http::Request& r) { return http::json_response({{"echo", r.body}}); });
    router.add_route("POST", "/secret",
                     [](const http::Request&) {
                       return http::json_response({{"ok", true}});
                     },
                     {.sensitive = true, .blocking = true});
    router.add_route("GET", "/throws",
                     [](const http::Request&) -> http::Response { throw std::runtime_error("boom"); });
    router.add_route("GET", "/busy", [](const http::Request&) -> http::Response {
      throw http::HttpError::too_many_requests("busy", 7);
    });
  }
  http::Router router;
};

}  // namespace

TEST_F(RouterTest, RoutesByMethodAndExactPath) {
  const auto response = router.handle(get("/hello?x=1"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(nlohmann::json::parse(response.body)["hello"], "world");
  auto post = get("/hello", "POST");
  post.body = "abc";
  EXPECT_EQ(nlohmann::json::parse(router.handle(post).body)["echo"], "abc");
}

TEST_F(RouterTest, EveryResponseCarriesNoStoreAndNosniff) {
  for (const auto& response : {router.handle(get("/hello")), router.handle(get("/nope")), router.handle(get("/throws")),
                               router.handle(get("/hello", "DELETE"))}) {
    EXPECT_EQ(response.header("Cache-Control").value_or(""), "no-store");
    EXPECT_EQ(response.header("X-Content-Type-Options").value_or(""), "nosniff");
  }
}

TEST_F(RouterTest, UnknownPathIs404AndPathsAreExact) {
  expect_error(router.handle(get("/nope")), 404, "not_found");
  expect_error(router.handle(get("/hello/")), 404, "not_found");
  expect_error(router.handle(get("/HELLO")), 404, "not_found");
}

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  const auto response = router.handle(get("/hello", "DELETE"));
  expect_error(response, 405, "method_not_allowed");
  EXPECT_EQ(response.header("Allow").value_or(""), "GET, POST");
  const auto secret = router.handle(get("/secret"));
  expect_error(secret, 405, "method_not_allowed");
  EXPECT_EQ(secret.header("Allow").value_or(""), "POST");
}

TEST_F(RouterTest, MalformedRequestsAre400) {
  expect_error(router.handle(get("hello")), 400, "bad_request");
  expect_error(router.handle(get("")), 400, "bad_request");
  expect_error(router.handle(get("/hel lo")), 400, "bad_request");
  expect_error(router.handle(get("/hello", "G(T")), 400, "bad_request");
  expect_error(router.handle(get("/hello", "")), 400, "bad_request");
}

TEST_F(RouterTest, HandlerFailuresBecomeJsonErrors) {
  expect_error(router.handle(get("/throws")), 500, "internal");
  const auto busy = router.handle(get("/busy"));
  expect_error(busy, 429, "too_many_requests");
  EXPECT_EQ(busy.header("Retry-After").value_or(""), "7");
}

TEST_F(RouterTest, SensitiveRoutesOpenOnLoopbackWithoutToken) {
  router.set_access_policy({.token = "", .loopback_bind = true});
  EXPECT_EQ(router.handle(get("/secret", "POST")).status, 200);
}

TEST_F(RouterTest, SensitiveRoutesClosedOffLoopbackWithoutToken) {
  router.set_access_policy({.token = "", .loopback_bind = false});
  const auto response = router.handle(get("/secret", "POST"));
  expect_error(response, 401, "unauthorized");
  EXPECT_NE(response.body.find("http.token"), std::string::npos);
  EXPECT_TRUE(response.header("WWW-Authenticate").has_value());
  EXPECT_EQ(router.handle(get("/hello")).status, 200) << "only sensitive routes need the token";
}

TEST_F(RouterTest, TokenIsCheckedWheneverConfigured) {
  for (const bool loopback : {true, false}) {
    router.set_access_policy({.token = "s3cret-token", .loopback_bind = loopback});
    auto request = get("/secret", "POST");
    expect_error(router.handle(request), 401, "unauthorized");
    for (const char* wrong : {"Bearer s3cret-toke", "Bearer s3cret-token2", "Basic s3cret-token", "s3cret-token",
                              "Bearer ", "Bearer S3cret-token"}) {
      request.headers = {{"Authorization", wrong}};
      expect_error(router.handle(request), 401, "unauthorized");
    }
    request.headers = {{"authorization", "Bearer s3cret-token"}};
    EXPECT_EQ(router.handle(request).status, 200);
    request.headers = {{"Authorization", "bearer s3cret-token"}};
    EXPECT_EQ(router.handle(request).status, 200) << "the scheme is case-insensitive (RFC 9110)";
  }
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(http::constant_time_equals("abc", "abc"));
  EXPECT_FALSE(http::constant_time_equals("abd", "abc"));
  EXPECT_FALSE(http::constant_time_equals("ab", "abc"));
  EXPECT_FALSE(http::constant_time_equals("abcd", "abc"));
  EXPECT_FALSE(http::constant_time_equals("", "abc"));
  EXPECT_TRUE(http::constant_time_equals("", ""));
  EXPECT_FALSE(http::constant_time_equals(std::string_view{"abc\0", 4}, "abc"));
}

TEST(RouterRegistration, RefusesDuplicatesAndBadPaths) {
  http::Router router;
  const auto handler = [](const http::Request&) { return http::Response{}; };
  router.add_route("GET", "/a", handler);
  EXPECT_THROW(router.add_route("GET", "/a", handler), std::invalid_argument);
  EXPECT_THROW(router.add_route("GET", "a", handler), std::invalid_argument);
  EXPECT_THROW(router.add_route("GET", "/a?x", handler), std::invalid_argument);
  EXPECT_THROW(router.add_route("G T", "/b", handler), std::invalid_argument);
  router.add_route("POST", "/a", handler, {.blocking = true});
  EXPECT_EQ(router.routes().size(), 2U);
  EXPECT_TRUE(router.is_blocking(get("/a?x=1", "POST")));
  EXPECT_FALSE(router.is_blocking(get("/a")));
  EXPECT_FALSE(router.is_blocking(get("/zzz", "POST")));
}

TEST(Query, ParsesAndDecodes) {
  const auto query = http::Query::parse("duration=1h&interval=30s&name=a%20b+c&flag");
  EXPECT_EQ(query.get("duration").value_or(""), "1h");
  EXPECT_EQ(query.get("name").value_or(""), "a b c");
  EXPECT_EQ(query.get("flag").value_or("x"), "");
  EXPECT_FALSE(query.get("missing"));
  EXPECT_EQ(query.duration("duration", 1min, 1s, 24h), 1h);
  EXPECT_EQ(query.duration("missing", 1min, 1s, 24h), 1min);
  EXPECT_EQ(http::Query::parse("").parameters().size(), 0U);
}

namespace {

std::string bad_query_message(const std::function<void()>& call) {
  try {
    call();
  } catch (const http::HttpError& error) {
    EXPECT_EQ(error.status(), 400);
    return error.what();
  }
  ADD_FAILURE() << "no HttpError";
  return {};
}

}  // namespace

TEST(Query, RefusesMalformedInputNamingTheParameter) {
  EXPECT_NE(bad_query_message([] { (void)http::Query::parse("a=%zz"); }).find("percent"), std::string::npos);
  EXPECT_NE(bad_query_message([] { (void)http::Query::parse("a=%4"); }).find("percent"), std::string::npos);
  EXPECT_NE(bad_query_message([] { (void)http::Query::parse("a=1&a=2"); }).find("'a'"), std::string::npos);
  bad_query_message([] { (void)http::Query::parse("=1"); });

  const auto query = http::Query::parse("duration=1x&interval=0s&seconds=-3&n=99&big=99999999999999999999");
  const std::string duration = bad_query_message([&] { (void)query.duration("duration", 1h, 1s, 2h); });
  EXPECT_NE(duration.find("'duration'"), std::string::npos) << duration;
  EXPECT_NE(duration.find("accepted"), std::string::npos) << duration;
  EXPECT_NE(duration.find("1h30m"), std::string::npos) << duration;
  const std::string range = bad_query_message([&] { (void)query.duration("interval", 1min, 1s, 2h); });
  EXPECT_NE(range.find("out of range"), std::string::npos) << range;
  EXPECT_NE(range.find("from 1s to 2h"), std::string::npos) << range;
  const std::string negative = bad_query_message([&] { (void)query.integer("seconds", 30, 1, 60); });
  EXPECT_NE(negative.find("'seconds'"), std::string::npos) << negative;
  EXPECT_NE(negative.find("an integer from 1 to 60"), std::string::npos) << negative;
  bad_query_message([&] { (void)query.integer("n", 1, 1, 60); });
  bad_query_message([&] { (void)query.integer("big", 1, 1, 60); });
  EXPECT_EQ(http::Query::parse("n=60").integer("n", 1, 1, 60), 60);

  const std::string unknown = bad_query_message([&] { query.allow_only({"duration", "interval"}); });
  EXPECT_NE(unknown.find("unknown parameter"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("duration, interval"), std::string::npos) << unknown;
  bad_query_message([] { http::Query::parse("x=1").allow_only({}); });
}

TEST(Cooldown, OneAtATimeThenWait) {
  rp::ManualClock clock;
  http::Cooldown cooldown(10s, clock);
  std::chrono::seconds retry{0};
  {
    auto first = cooldown.try_acquire(retry);
    ASSERT_TRUE(first.has_value());
    EXPECT_FALSE(cooldown.try_acquire(retry).has_value()) << "one at a time";
    EXPECT_GE(retry.count(), 1);
    first->expect_end(clock.steady_now() + 5s);
    EXPECT_FALSE(cooldown.try_acquire(retry).has_value());
    EXPECT_EQ(retry, 15s) << "known end plus the cool-down";
  }
  EXPECT_FALSE(cooldown.try_acquire(retry).has_value());
  EXPECT_EQ(retry, 10s);
  clock.advance(9500ms);
  EXPECT_FALSE(cooldown.try_acquire(retry).has_value());
  EXPECT_EQ(retry, 1s) << "rounded up, never 0";
  clock.advance(500ms);
  EXPECT_TRUE(cooldown.try_acquire(retry).has_value());
  try {
    auto held = cooldown.acquire_or_throw("gc");
    (void)cooldown.acquire_or_throw("gc");
    FAIL() << "second acquisition must throw";
  } catch (const http::HttpError& error) {
    EXPECT_EQ(error.status(), 429);
    const auto response = error.to_response();
    EXPECT_TRUE(response.header("Retry-After").has_value());
  }
}

TEST(Prometheus, WritesFamiliesWithHelpTypeAndEscapedLabels) {
  http::PrometheusWriter writer;
  writer.family("requests_total", http::MetricType::counter, "Requests served.\nSecond line \\ backslash");
  writer.sample(std::uint64_t{42}, {{"endpoint", "/a\"b\\c\nd"}});
  writer.family("memory_resident_bytes", http::MetricType::gauge, "Resident memory.");
  writer.sample(1.5);
  writer.sample(std::numeric_limits<double>::quiet_NaN(), {{"kind", "nan"}});
  writer.sample(std::numeric_limits<double>::infinity(), {{"kind", "inf"}});
  EXPECT_EQ(writer.text(),
            "# HELP riptide_requests_total Requests served.\\nSecond line \\\\ backslash\n"
            "# TYPE riptide_requests_total counter\n"
            "riptide_requests_total{endpoint=\"/a\\\"b\\\\c\\nd\"} 42\n"
            "# HELP riptide_memory_resident_bytes Resident memory.\n"
            "# TYPE riptide_memory_resident_bytes gauge\n"
            "riptide_memory_resident_bytes 1.5\n"
            // prometheus-cpp's serializer spells NaN "Nan"; Prometheus reads the value case-insensitively.
            "riptide_memory_resident_bytes{kind=\"nan\"} Nan\n"
            "riptide_memory_resident_bytes{kind=\"inf\"} +Inf\n");
}

TEST(Prometheus, EnforcesNamingRules) {
  http::PrometheusWriter writer;
  EXPECT_THROW(writer.sample(1.0), std::logic_error);
  EXPECT_THROW(writer.family("requests", http::MetricType::counter, "x"), std::invalid_argument);
  EXPECT_THROW(writer.family("things_total", http::MetricType::gauge, "x"), std::invalid_argument);
  EXPECT_THROW(writer.family("bad-name", http::MetricType::gauge, "x"), std::invalid_argument);
  writer.family("ok_bytes", http::MetricType::gauge, "x");
  EXPECT_THROW(writer.family("ok_bytes", http::MetricType::gauge, "x"), std::invalid_argument);
  EXPECT_THROW(writer.sample(1.0, {{"__reserved", "x"}}), std::invalid_argument);
  EXPECT_THROW(writer.sample(1.0, {{"1abc", "x"}}), std::invalid_argument);
}
