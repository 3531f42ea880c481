// http::Server at its connection cap, over real sockets on 127.0.0.1: a full server makes room by closing
// the connection that has waited longest for a complete request header, then the longest-idle keep-alive
// one, and answers 503 only when every slot has a request in progress. Evictions are counted in
// ServerStats and in GET /metrics.
#include "http/support/http_client.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/prometheus.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Holds the handlers of GET /block until the test opens it, so a test can keep slots busy with a request
// in progress for as long as it needs.
class Gate {
 public:
  http::Response block() {
    std::unique_lock lock(mutex_);
    ++started_;
    changed_.notify_all();
    const bool opened = changed_.wait_for(lock, 60s, [this] { return open_; });
    return http::json_response({{"released", opened}});
  }

  /// True once `count` handlers have started (false after 30 s).
  bool wait_started(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 30s, [&] { return started_ >= count; });
  }

  void open() {
    const std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int started_ = 0;
  bool open_ = false;
};

// Opens the gate when the test leaves, before the server (declared earlier) joins its blocking pool.
struct OpenOnExit {
  Gate& gate;
  ~OpenOnExit() { gate.open(); }
};

void add_test_routes(http::Router& router, Gate& gate) {
  router.add_route("GET", "/hello", [](const http::Request&) { return http::json_response({{"hello", "world"}}); });
  router.add_route("GET", "/block", [&gate](const http::Request&) { return gate.block(); }, {.blocking = true});
}

http::ServerOptions ephemeral() {
  http::ServerOptions options;
  options.port = 0;
  return options;
}

// Client and server ends of every connection live in this process.
std::string raise_fd_limit(rlim_t needed) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return "getrlimit(RLIMIT_NOFILE) failed";
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= needed) return {};
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
    return "needs " + std::to_string(needed) + " file descriptors, the hard limit (ulimit -Hn) is " +
           std::to_string(limit.rlim_max);
  }
  limit.rlim_cur = needed;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return "setrlimit(RLIMIT_NOFILE) failed";
  return {};
}

// An evicted connection is closed without an answer: no response, then end of stream.
void expect_closed_without_answer(test::Connection& connection, const char* name) {
  const auto response = connection.read_response(10s);
  EXPECT_FALSE(response) << name << " got " << response->status << " " << response->body;
  EXPECT_TRUE(connection.wait_closed(1s)) << name << " still open";
}

void expect_refused(test::Connection& connection) {
  const auto response = connection.read_response(10s);
  ASSERT_TRUE(response) << "a refused connection gets its 503 before the close";
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(nlohmann::json::parse(response->body)["error"]["code"], "too_many_connections");
  EXPECT_TRUE(response->header("Retry-After").has_value());
  EXPECT_TRUE(connection.wait_closed(10s));
}

void expect_released(test::Connection& connection) {
  const auto response = connection.read_response(30s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(nlohmann::json::parse(response->body)["released"], true);
}

std::string run(const std::string& command, int& status) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  status = ::pclose(pipe);
  return output;
}

}  // namespace

// 300 clients hold half-sent requests against the default cap of 256. Without eviction, the 44 over
// the cap and every client after them got 503 until the read timeout (10 s) freed slots.
TEST(ConnectionCap, HalfSentRequestsAtTheDefaultCapDoNotLockOutOtherClients) {
  if (const auto why = raise_fd_limit(1024); !why.empty()) GTEST_SKIP() << why;
  http::Router router;
  Gate gate;
  add_test_routes(router, gate);
  const auto options = ephemeral();
  ASSERT_EQ(options.max_connections, 256U) << "the default cap";
  auto server = http::Server::start(router, options);

  std::vector<test::Connection> slow;
  slow.reserve(300);
  for (int i = 0; i < 300; ++i) {
    slow.emplace_back(server->port());
    // The header's final blank line never comes. (A send can only fail once the server evicted it.)
    (void)slow.back().send("GET /metrics/memory/health HTTP/1.1\r\nHost: x\r\n");
  }

  for (int i = 0; i < 20; ++i) {
    const auto begin = Clock::now();
    test::Connection client(server->port());
    ASSERT_TRUE(client.send(test::make_request("GET", "/hello")));
    const auto response = client.read_response(2s);
    const auto elapsed = Clock::now() - begin;
    ASSERT_TRUE(response) << "request " << i << ": no answer within 2 s";
    EXPECT_EQ(response->status, 200) << "request " << i << ": " << response->body;
    EXPECT_LT(elapsed, 2s) << "request " << i;
  }

  // Every slow client is closed: evicted (at once, silently) or answered 408 by the read timeout.
  const auto deadline = Clock::now() + options.read_timeout + 20s;
  int closed = 0;
  for (auto& connection : slow) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (connection.wait_closed(std::max(left, std::chrono::milliseconds{1}))) ++closed;
  }
  const auto stats = server->stats();
  EXPECT_GE(closed, 285) << "at least 95% of the 300 slow clients closed";
  EXPECT_GE(stats.connections_evicted, 44U) << "the 44 over the cap made room by eviction";
  EXPECT_EQ(stats.connections_refused, 0U) << "slow clients never hold a request in progress";
  EXPECT_GE(stats.connections_evicted + stats.timeouts, static_cast<std::uint64_t>(closed))
      << "each slow client closed was evicted or timed out";
  std::printf("slow clients closed: %d of 300 (%llu evicted, %llu read/idle timeouts)\n", closed,
              static_cast<unsigned long long>(stats.connections_evicted),
              static_cast<unsigned long long>(stats.timeouts));
}

TEST(ConnectionCap, EverySlotWithARequestInProgressStillGets503) {
  http::Router router;
  Gate gate;
  add_test_routes(router, gate);
  auto options = ephemeral();
  options.max_connections = 2;
  options.blocking_threads = 2;
  auto server = http::Server::start(router, options);
  const OpenOnExit opener{gate};

  test::Connection first(server->port());
  test::Connection second(server->port());
  ASSERT_TRUE(first.send(test::make_request("GET", "/block", {}, {}, true)));
  ASSERT_TRUE(second.send(test::make_request("GET", "/block", {}, {}, true)));
  ASSERT_TRUE(gate.wait_started(2));

  test::Connection third(server->port());
  (void)third.send(test::make_request("GET", "/hello"));
  expect_refused(third);
  EXPECT_EQ(server->stats().connections_refused, 1U);
  EXPECT_EQ(server->stats().connections_evicted, 0U) << "a request in progress is never evicted";

  gate.open();
  expect_released(first);
  expect_released(second);
  // Both are idle keep-alive connections now: a newcomer takes one's place instead of a 503.
  EXPECT_EQ(test::fetch(server->port(), "GET", "/hello").status, 200);
  EXPECT_EQ(server->stats().connections_refused, 1U);
}

TEST(ConnectionCap, EvictsWaitingForAHeaderFirstThenIdleKeepAliveThenRefuses) {
  http::Router router;
  Gate gate;
  add_test_routes(router, gate);
  auto options = ephemeral();
  options.max_connections = 3;
  options.blocking_threads = 3;
  auto server = http::Server::start(router, options);
  const OpenOnExit opener{gate};
  const auto port = server->port();

  // Slot 1: an idle keep-alive connection (one request served), the oldest of all.
  test::Connection idle(port);
  ASSERT_TRUE(idle.send(test::make_request("GET", "/hello", {}, {}, true)));
  ASSERT_EQ(idle.read_response()->status, 200);
  // Slot 2: a request whose header never completes.
  test::Connection partial(port);
  ASSERT_TRUE(partial.send("GET /hello HTTP/1.1\r\nHost: x\r\n"));
  // Slot 3: a request in progress.
  test::Connection busy1(port);
  ASSERT_TRUE(busy1.send(test::make_request("GET", "/block", {}, {}, true)));
  ASSERT_TRUE(gate.wait_started(1));

  // Full: the partial request goes first although the idle connection is older, and gets no 408.
  test::Connection busy2(port);
  ASSERT_TRUE(busy2.send(test::make_request("GET", "/block", {}, {}, true)));
  ASSERT_TRUE(gate.wait_started(2)) << "the newcomer is served";
  expect_closed_without_answer(partial, "the partial request");
  EXPECT_EQ(server->stats().connections_evicted, 1U) << "only the partial request";

  // Full again, nothing waits for a header: the idle keep-alive connection makes room.
  test::Connection busy3(port);
  ASSERT_TRUE(busy3.send(test::make_request("GET", "/block", {}, {}, true)));
  ASSERT_TRUE(gate.wait_started(3));
  expect_closed_without_answer(idle, "the idle keep-alive connection");
  EXPECT_EQ(server->stats().connections_evicted, 2U);

  // Every slot has a request in progress: refused.
  test::Connection refused(port);
  (void)refused.send(test::make_request("GET", "/hello"));
  expect_refused(refused);

  gate.open();
  expect_released(busy1);
  expect_released(busy2);
  expect_released(busy3);
  const auto stats = server->stats();
  EXPECT_EQ(stats.connections_evicted, 2U);
  EXPECT_EQ(stats.connections_refused, 1U);
  EXPECT_EQ(stats.connections_accepted, 5U) << "the refused one is not admitted";
}

TEST(ConnectionCap, SilentConnectionsAreEvictedOldestFirst) {
  http::Router router;
  Gate gate;
  add_test_routes(router, gate);
  auto options = ephemeral();
  options.max_connections = 2;
  auto server = http::Server::start(router, options);
  const auto port = server->port();

  test::Connection oldest(port);  // connects and sends nothing
  test::Connection younger(port);
  test::Connection client(port);  // full: the oldest silent connection makes room
  ASSERT_TRUE(client.send(test::make_request("GET", "/hello")));
  const auto response = client.read_response(10s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  expect_closed_without_answer(oldest, "the oldest silent connection");
  EXPECT_EQ(server->stats().connections_evicted, 1U);
  // The younger one was kept: it is still served.
  ASSERT_TRUE(younger.send(test::make_request("GET", "/hello")));
  const auto kept = younger.read_response(10s);
  ASSERT_TRUE(kept) << "the younger silent connection was evicted instead of the oldest";
  EXPECT_EQ(kept->status, 200);
}

TEST(ConnectionCap, EvictionsAndRefusalsAreInServerStatsAndMetrics) {
  auto profiler = std::make_shared<rp::MemoryProfiler>();
  http::MemoryMetricsRouter router(profiler, "");
  Gate gate;
  add_test_routes(router, gate);
  auto options = ephemeral();
  options.max_connections = 2;
  options.blocking_threads = 2;
  auto server = http::Server::start(router, options);
  const OpenOnExit opener{gate};
  const auto port = server->port();

  {
    test::Connection idle(port);
    ASSERT_TRUE(idle.send(test::make_request("GET", "/hello", {}, {}, true)));
    ASSERT_EQ(idle.read_response()->status, 200);
    test::Connection busy1(port);
    ASSERT_TRUE(busy1.send(test::make_request("GET", "/block", {}, {}, true)));
    ASSERT_TRUE(gate.wait_started(1));
    test::Connection busy2(port);  // evicts the idle one
    ASSERT_TRUE(busy2.send(test::make_request("GET", "/block", {}, {}, true)));
    ASSERT_TRUE(gate.wait_started(2));
    expect_closed_without_answer(idle, "the idle keep-alive connection");
    test::Connection refused(port);
    (void)refused.send(test::make_request("GET", "/hello"));
    expect_refused(refused);
    gate.open();
    expect_released(busy1);
    expect_released(busy2);
  }
  auto stats = server->stats();
  EXPECT_EQ(stats.connections_evicted, 1U);
  EXPECT_EQ(stats.connections_refused, 1U);
  EXPECT_EQ(stats.connections_accepted, 3U);
  // The clients closed; wait until the server has let go of them, so /metrics needs no eviction.
  const auto deadline = Clock::now() + 10s;
  while (server->stats().connections_active != 0 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(server->stats().connections_active, 0U);

  const auto metrics = test::fetch(port, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.body;
  const auto has_line = [&metrics](const std::string& line) {
    return metrics.body.find("\n" + line + "\n") != std::string::npos;
  };
  EXPECT_TRUE(has_line("riptide_http_connections_evicted_total 1")) << metrics.body;
  EXPECT_TRUE(has_line("riptide_http_connections_refused_total 1")) << metrics.body;
  EXPECT_TRUE(has_line("riptide_http_connections_accepted_total 4")) << "the scrape's own connection counts";
  EXPECT_TRUE(has_line("riptide_http_connections_active 1")) << "the scrape's own connection";
  EXPECT_TRUE(has_line("# TYPE riptide_http_connections_evicted_total counter")) << metrics.body;
  EXPECT_NE(metrics.body.find("# HELP riptide_http_connections_evicted_total "), std::string::npos);

  const char* promtool = std::getenv("RIPTIDE_PERF_TEST_PROMTOOL");
  if (promtool == nullptr || *promtool == '\0' || !std::filesystem::exists(promtool)) {
    GTEST_SKIP() << "promtool not found: the text was checked, its format was not";
  }
  const auto file =
      std::filesystem::temp_directory_path() / ("riptide_cap_metrics_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file) << metrics.body;
  int status = -1;
  const std::string output = run(std::string{promtool} + " check metrics < " + file.string(), status);
  std::filesystem::remove(file);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output.find("WARN"), std::string::npos) << output;
}

// Several io threads and client threads at a small cap: acceptor and sessions on different threads race
// to pick, close and finish connections (the tsan preset runs this). Every answer is one of the promised
// ones, and the server ends with no connection and serving.
TEST(ConnectionCap, ConcurrentClientsOnSeveralIoThreadsGetAnAnswerOrACleanClose) {
  if (const auto why = raise_fd_limit(1024); !why.empty()) GTEST_SKIP() << why;
  http::Router router;
  Gate gate;
  add_test_routes(router, gate);
  auto options = ephemeral();
  options.threads = 4;
  options.max_connections = 8;
  auto server = http::Server::start(router, options);
  const auto port = server->port();

  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  std::atomic<int> closed{0};
  std::atomic<int> unexpected{0};
  const auto client = [&](unsigned seed) {
    std::minstd_rand random(seed);
    std::vector<test::Connection> held;  // partial requests and idle keep-alive connections
    for (int i = 0; i < 60; ++i) {
      switch (random() % 3) {
        case 0:
          held.emplace_back(port);
          (void)held.back().send("GET /hello HTTP/1.1\r\nHost: x\r\n");
          break;
        case 1:
        case 2: {
          const bool keep = random() % 2 == 0;
          test::Connection connection(port);
          (void)connection.send(test::make_request("GET", "/hello", {}, {}, keep));
          const auto response = connection.read_response(20s);
          if (!response) {
            ++(connection.wait_closed(10s) ? closed : unexpected);
          } else if (response->status == 200) {
            ++ok;
            if (keep) held.push_back(std::move(connection));
          } else if (response->status == 503) {
            ++refused;
          } else {
            ++unexpected;
          }
          break;
        }
      }
      if (held.size() > 12) held.clear();
    }
  };
  std::vector<std::thread> clients;
  for (unsigned t = 0; t < 4; ++t) clients.emplace_back(client, 1000 + t);
  for (auto& thread : clients) thread.join();

  EXPECT_EQ(unexpected.load(), 0) << "an answer other than 200/503, or a connection left hanging";
  EXPECT_GT(ok.load(), 0);
  const auto stats = server->stats();
  EXPECT_GE(stats.connections_evicted, 1U) << "a client thread alone held more than the cap";
  EXPECT_EQ(stats.connections_refused, static_cast<std::uint64_t>(refused.load()));
  const auto deadline = Clock::now() + 20s;
  while (server->stats().connections_active != 0 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server->stats().connections_active, 0U);
  EXPECT_EQ(test::fetch(port, "GET", "/hello").status, 200);
  std::printf("%d answered, %d refused, %d closed unanswered; %llu evicted\n", ok.load(), refused.load(), closed.load(),
              static_cast<unsigned long long>(stats.connections_evicted));
}

TEST(ConnectionCap, WritePrometheusNamesEveryServerStatsField) {
  http::ServerStats stats;
  stats.connections_accepted = 7;
  stats.connections_refused = 1;
  stats.connections_evicted = 2;
  stats.connections_active = 3;
  stats.requests = 11;
  stats.timeouts = 4;
  stats.bad_requests = 5;
  rp::PrometheusWriter out;
  http::write_prometheus(out, stats);
  for (const char* line :
       {"riptide_http_connections_accepted_total 7", "riptide_http_connections_refused_total 1",
        "riptide_http_connections_evicted_total 2", "riptide_http_connections_active 3",
        "riptide_http_requests_total 11", "riptide_http_timeouts_total 4", "riptide_http_bad_requests_total 5"}) {
    EXPECT_NE(out.text().find(std::string{line} + "\n"), std::string::npos) << line << "\n" << out.text();
  }
}
