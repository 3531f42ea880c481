// Memory over time over a live server on 127.0.0.1, with jemalloc's heap profiler on (this executable
// defines malloc_conf): the delta heap profile (GET /debug/pprof/heap?seconds=N) and the peak heap profile
// (GET /debug/pprof/peak, GET /metrics/memory/peak), read by Google's pprof where it was built. This
// process is the host: it climbs to a peak through one function and falls back.
#include "http/support/http_client.hpp"
#include "http/support/json_checks.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "support/child_process.hpp"
#include "support/jemalloc_skip.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true");

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using riptide::performance::test::expect_json_error;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr std::size_t kMiB = 1024 * 1024;

std::string pprof_path() {
  const char* value = std::getenv("RIPTIDE_PERF_TEST_PPROF");
  const std::string path = value == nullptr ? std::string{} : std::string{value};
  return !path.empty() && std::filesystem::exists(path) ? path : std::string{};
}

// `pprof -top` of `url` (quoted: the query has '&' and '?'), with a private PPROF_TMPDIR.
riptide::test::CommandResult pprof_top(const std::string& url, const std::string& flags = {}) {
  const auto tmp = std::filesystem::temp_directory_path() / ("riptide_pprof_peak_" + rp::make_uuid_v4());
  std::filesystem::create_directories(tmp);
  auto result = riptide::test::run_command("PPROF_TMPDIR=" + tmp.string() + " " + pprof_path() + " -top " + flags +
                                           " '" + url + "' 2>&1");
  std::filesystem::remove_all(tmp);
  return result;
}

// The first row under pprof -top's "flat  flat%" header: the function with the largest value.
std::string first_row(const std::string& top) {
  const auto header = top.find("flat%");
  if (header == std::string::npos) return {};
  const auto begin = top.find('\n', header) + 1;
  return top.substr(begin, top.find('\n', begin) - begin);
}

// The flat value (first column) of pprof -top's row for `function`; empty when no row names it.
std::string flat_of(const std::string& top, const std::string& function) {
  const auto at = top.find(function);
  if (at == std::string::npos) return {};
  const auto line_start = top.rfind('\n', at) + 1;
  const auto begin = top.find_first_not_of(' ', line_start);
  return top.substr(begin, top.find(' ', begin) - begin);
}

// Blocks held by the functions below until the test lets them go.
std::vector<void*> g_blocks_climb;
std::vector<void*> g_blocks_release;

[[gnu::noinline]] void climb_to_peak_for_http_test(std::size_t mebibytes) {
  for (std::size_t i = 0; i < mebibytes; ++i) {
    void* block = std::malloc(kMiB);
    std::memset(block, 1, kMiB);  // every page touched: resident, so RSS holds it too
    g_blocks_climb.push_back(block);
  }
}

[[gnu::noinline]] void hold_for_release_during_delta_test(std::size_t mebibytes) {
  for (std::size_t i = 0; i < mebibytes; ++i) {
    void* block = std::malloc(kMiB);
    static_cast<volatile char*>(block)[0] = 1;
    g_blocks_release.push_back(block);
  }
}

[[gnu::noinline]] void grow_during_delta_test() {
  void* block = std::malloc(kMiB);
  static_cast<volatile char*>(block)[0] = 1;
  g_blocks_climb.push_back(block);
}

void free_all(std::vector<void*>& blocks) {
  for (void* block : blocks) std::free(block);
  blocks.clear();
}

// A server over a bare MemoryProfiler (sampling every 50 ms) or over a PerformanceManager.
class MemoryOverTimeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    server.reset();
    router.reset();
    if (manager) (void)manager->stop_monitoring();
    free_all(g_blocks_climb);
    free_all(g_blocks_release);
  }

  static rp::Config config() {
    rp::Config config;
    config.monitoring.sample_interval_sec = 0.05;
    return config;
  }

  void serve_profiler(const rp::Config& with, bool start_profiling, http::MemoryMetricsOptions options = {}) {
    profiler = std::make_shared<rp::MemoryProfiler>(rp::make_uuid_v4(), with);
    if (start_profiling) profiler->start_profiling();
    router = std::make_unique<http::MemoryMetricsRouter>(profiler, "", std::move(options));
    server = http::Server::start(*router, {.port = 0});
  }

  void serve_manager(const rp::Config& with) {
    manager = rp::PerformanceManager::with_config(with);
    manager->start_monitoring();
    router = std::make_unique<http::MemoryMetricsRouter>(manager);
    server = http::Server::start(*router, {.port = 0});
  }

  test::HttpResponse get(const std::string& target) { return test::fetch(server->port(), "GET", target); }
  std::string url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(server->port()) + target;
  }

  std::shared_ptr<rp::MemoryProfiler> profiler;
  std::shared_ptr<rp::PerformanceManager> manager;
  std::unique_ptr<http::MemoryMetricsRouter> router;
  std::unique_ptr<http::Server> server;
};

}  // namespace

TEST_F(MemoryOverTimeTest, DeltaSecondsAreCheckedAndTheErrorSaysWhatIsAccepted) {
  serve_profiler(config(), false);
  for (const char* target :
       {"/debug/pprof/heap?seconds=0", "/debug/pprof/heap?seconds=301", "/debug/pprof/heap?seconds=abc",
        "/debug/pprof/heap?seconds=-1", "/debug/pprof/heap?seconds=", "/debug/pprof/heap?seconds=2&window=1"}) {
    const auto response = get(target);
    expect_json_error(response, 400, "invalid_parameter");
    EXPECT_NE(response.body.find("accepted"), std::string::npos) << target << ": " << response.body;
  }
  EXPECT_NE(get("/debug/pprof/heap?seconds=301").body.find("300"), std::string::npos) << "names the bound";
}

TEST_F(MemoryOverTimeTest, WithoutHeapProfilesEveryRouteGivesTheHeapRoutes503) {
  rp::Config off = config();
  off.profiling.enabled = false;
  serve_profiler(off, true);
  const auto heap = get("/debug/pprof/heap");
  expect_json_error(heap, 503, "unavailable");
  for (const char* target : {"/debug/pprof/heap?seconds=1", "/debug/pprof/peak", "/metrics/memory/peak"}) {
    const auto response = get(target);
    expect_json_error(response, 503, "unavailable");
    EXPECT_EQ(json::parse(response.body)["error"]["message"], json::parse(heap.body)["error"]["message"]) << target;
  }
}

TEST_F(MemoryOverTimeTest, PeakProfilesOffByZeroGrowthSayHowToTurnThemOn) {
  SKIP_UNLESS_JEMALLOC();
  rp::Config off = config();
  off.profiling.peak_profile_growth = 0;
  serve_profiler(off, true);
  for (const char* target : {"/debug/pprof/peak", "/metrics/memory/peak"}) {
    const auto response = get(target);
    expect_json_error(response, 503, "unavailable");
    EXPECT_NE(response.body.find("profiling.peak_profile_growth"), std::string::npos) << response.body;
  }
}

TEST_F(MemoryOverTimeTest, BeforeTheFirstPeakPprofIs404AndTheJsonSaysWhy) {
  SKIP_UNLESS_JEMALLOC();
  serve_profiler(config(), /*start_profiling=*/false);
  const auto pprof = get("/debug/pprof/peak");
  expect_json_error(pprof, 404, "no_peak_profile");
  EXPECT_NE(pprof.body.find("start_monitoring()"), std::string::npos) << pprof.body;
  const auto peak = get("/metrics/memory/peak");
  ASSERT_EQ(peak.status, 200) << peak.body;
  const json body = json::parse(peak.body);
  EXPECT_TRUE(body["peak"].is_null());
  EXPECT_TRUE(body["reason"].is_string());
  EXPECT_EQ(body["basis"], "heap");
  EXPECT_EQ(body["recorder"]["captures"], 0);
  EXPECT_DOUBLE_EQ(body["recorder"]["growth_share"].get<double>(), 0.1);
  expect_json_error(get("/metrics/memory/peak?top=5"), 400, "invalid_parameter");
}

TEST_F(MemoryOverTimeTest, OverlappingDeltasAreOneAtATime) {
  SKIP_UNLESS_JEMALLOC();
  http::MemoryMetricsOptions options;
  options.heap_delta_cooldown_sec = 0;  // only the overlap refuses
  serve_profiler(config(), false, std::move(options));
  auto first = std::async(std::launch::async, [this] { return get("/debug/pprof/heap?seconds=4"); });
  std::this_thread::sleep_for(1s);  // the first is in its wait by then, on any machine that runs the test
  const auto second = get("/debug/pprof/heap?seconds=1");
  expect_json_error(second, 429, "too_many_requests");
  EXPECT_TRUE(second.header("Retry-After").has_value());
  EXPECT_NE(second.body.find("heap profile delta"), std::string::npos) << second.body;
  const auto done = first.get();
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(done.header("Content-Disposition").value_or(""), "attachment; filename=\"heap-delta.pb.gz\"");
  ASSERT_GE(done.body.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(done.body[0]), 0x1f) << "gzip";
  // Not overlapping (and no cool-down): served.
  EXPECT_EQ(get("/debug/pprof/heap?seconds=1").status, 200);
}

TEST_F(MemoryOverTimeTest, PprofReadsTheDeltaWhichShowsWhatGrewAndWhatWasFreed) {
  SKIP_UNLESS_JEMALLOC();
  if (pprof_path().empty()) GTEST_SKIP() << "pprof not built";
  serve_profiler(config(), false);
  hold_for_release_during_delta_test(128);
  // All along pprof's run (its start, the two dumps and the wait between them): 1 MiB allocated at one
  // site and 1 MiB freed at another every 100 ms, so the 2 s window sees about 20 MiB of each.
  std::atomic<bool> stop{false};
  std::thread churn([&stop] {
    while (!stop.load()) {
      grow_during_delta_test();
      if (!g_blocks_release.empty()) {
        std::free(g_blocks_release.back());
        g_blocks_release.pop_back();
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  const auto top = pprof_top(url("/debug/pprof/heap?seconds=2"), "-sample_index=inuse_space -nodecount=40");
  stop = true;
  churn.join();
  ASSERT_EQ(top.status, 0) << top.output;
  EXPECT_NE(top.output.find("Type: inuse_space"), std::string::npos) << top.output;
  // What grew is positive; what was freed is a negative in-use value, as in Go's delta profiles.
  const std::string grown = flat_of(top.output, "grow_during_delta_test");
  const std::string freed = flat_of(top.output, "hold_for_release_during_delta_test");
  ASSERT_FALSE(grown.empty()) << top.output;
  ASSERT_FALSE(freed.empty()) << top.output;
  EXPECT_NE(grown.front(), '-') << top.output;
  EXPECT_EQ(freed.front(), '-') << top.output;
}

TEST_F(MemoryOverTimeTest, ClimbingThroughOneSiteAndFallingBackLeavesThatSiteOnTopOfThePeak) {
  SKIP_UNLESS_JEMALLOC();
  // Over a manager: the check runs on its periodic thread, after the sampler.
  serve_manager(config());
  climb_to_peak_for_http_test(64);
  // Held until the periodic work has captured the finished climb, then let go. A loaded machine may capture
  // on the way up; the next capture needs the heap 10% above that one (peak_profile_growth), so the test
  // then tops the heap up once from another function, smaller than the climb.
  json peak;
  bool topped_up = false;
  // Both the heap reading and the profile must hold the climb: the reading is the sampler's, taken up to one
  // interval before the dump, so a capture can pair a reading from before the climb with a profile of it.
  const auto holds_the_climb = [](const json& body) {
    return body["peak"].is_object() && body["peak"]["heap_bytes"].get<std::uint64_t>() >= 64 * kMiB &&
           body["peak"]["top_sites"].is_array() && !body["peak"]["top_sites"].empty() &&
           body["peak"]["top_sites"][0]["inuse_bytes"].get<double>() >= 60.0 * kMiB;
  };
  for (int i = 0; i < 600; ++i) {
    const auto response = get("/metrics/memory/peak");
    ASSERT_EQ(response.status, 200) << response.body;
    peak = json::parse(response.body);
    if (holds_the_climb(peak)) break;
    if (!topped_up && peak["peak"].is_object()) {
      hold_for_release_during_delta_test(peak["peak"]["heap_bytes"].get<std::uint64_t>() * 12 / 100 / kMiB + 1);
      topped_up = true;
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(peak["peak"].is_object()) << peak.dump(2);
  free_all(g_blocks_climb);
  const auto settled = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - settled < 500ms)
    std::this_thread::sleep_for(50ms);  // samples after the fall

  const auto response = get("/metrics/memory/peak");
  ASSERT_EQ(response.status, 200) << response.body;
  const json body = json::parse(response.body);
  EXPECT_EQ(body["peak"]["capture_number"], peak["peak"]["capture_number"]) << "the fall captured nothing";
  EXPECT_GE(body["peak"]["heap_bytes"].get<std::uint64_t>(), 64 * kMiB);
  ASSERT_TRUE(body["peak"]["rss_bytes"].is_number()) << body.dump(2);
  EXPECT_GE(body["peak"]["rss_bytes"].get<std::uint64_t>(), 64 * kMiB);
  const json& top = body["peak"]["top_sites"];
  ASSERT_TRUE(top.is_array() && !top.empty()) << body.dump(2);
  EXPECT_NE(top[0]["function"].get<std::string>().find("climb_to_peak_for_http_test"), std::string::npos)
      << body.dump(2);
  EXPECT_NEAR(top[0]["inuse_bytes"].get<double>(), 64.0 * kMiB, 4.0 * kMiB) << "1 MiB blocks are sampled almost surely";
  EXPECT_GE(body["recorder"]["captures"].get<std::uint64_t>(), 1U);
  EXPECT_EQ(body["recorder"]["failures"], 0);

  const auto pprof = get("/debug/pprof/peak");
  ASSERT_EQ(pprof.status, 200) << pprof.body;
  EXPECT_EQ(pprof.header("Content-Disposition").value_or(""), "attachment; filename=\"peak.pb.gz\"");
  EXPECT_EQ(pprof.header("X-Peak-Heap-Bytes").value_or(""),
            std::to_string(body["peak"]["heap_bytes"].get<std::uint64_t>()));
  if (pprof_path().empty()) GTEST_SKIP() << "pprof not built";
  const auto top_peak = pprof_top(url("/debug/pprof/peak"), "-sample_index=inuse_space");
  ASSERT_EQ(top_peak.status, 0) << top_peak.output;
  EXPECT_NE(first_row(top_peak.output).find("climb_to_peak_for_http_test"), std::string::npos) << top_peak.output;
  // The current heap no longer holds it (a fresh shared profile: the leak detector's may predate the fall).
  ASSERT_TRUE(manager->memory_profiler().heap_profiles()->refresh().ok());
  const auto top_heap = pprof_top(url("/debug/pprof/heap"), "-sample_index=inuse_space");
  ASSERT_EQ(top_heap.status, 0) << top_heap.output;
  EXPECT_EQ(first_row(top_heap.output).find("climb_to_peak_for_http_test"), std::string::npos) << top_heap.output;
}
