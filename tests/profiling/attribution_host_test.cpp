// What a person reads in a leak report is right: attribution_host (support/attribution_host.cpp) is a
// service of our own with three leaks (one in a module it loads with dlopen 5 s in) and three shapes that
// hold memory without leaking; it serves the real endpoints and prints the truth (the line of each
// allocating site, the leaks' live bytes every second). The test polls GET /metrics/memory/leaks every 2 s
// over loopback, as a dashboard or an operator would, and checks each report against that truth:
//   - each leak is reported within 60 s of its start (the module's from its load) and still at the end;
//   - at the program's own file:line (the LINE markers), never a standard library header's;
//   - one entry per site: no two leaks name the same function;
//   - its final size within ±25% of the live bytes then (±50% for the slow leak), with an error bar;
//   - its stack starting at the leaking function;
//   - at the end, none of the non-leaks is reported;
//   - the allocation report's top sites leave out the library's own work (its JSON, its symbolizer).
// Registered three times with ctest (attribution_host_test, _run_2, _run_3): the runs must all pass.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http/support/http_client.hpp"
#include "support/child_process.hpp"

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr double kHostDurationSec = 75;
constexpr double kLastPollSec = 71;  // the final poll: late, with the host still running
constexpr double kDetectWithinSec = 60;

struct Leak {
  const char* function;  // the host's function, as the report's `function` ends
  const char* file;      // the source file the report's `file` must end with
  double tolerance;      // of the final size against the truth
};
const std::vector<Leak> kLeaks = {
    {"retain_parsed_documents", "attribution_host.cpp", 0.25},
    {"slow_leak_sessions", "attribution_host.cpp", 0.50},
    {"module_leak_step", "attribution_module.cpp", 0.25},
};
const std::vector<std::string> kNotLeaks = {"warm_cache", "grow_and_release", "handoff_buffers"};

// The host's record of the truth, read from its output.
struct Truth {
  double t = 0;
  std::map<std::string, double> bytes;  // by leak function
};

struct HostOutput {
  std::optional<std::uint16_t> port;
  std::optional<long long> start_ms;
  std::optional<double> module_loaded;
  std::map<std::string, int> lines;
  std::vector<Truth> truths;
};

HostOutput parse_output(const std::string& text) {
  HostOutput out;
  std::istringstream in{text};
  std::string line;
  const std::regex truth_line{R"(TRUTH ([0-9.]+) retain=(\d+) sessions=(\d+) module=(\d+))"};
  while (std::getline(in, line)) {
    std::istringstream words{line};
    std::string tag;
    words >> tag;
    if (tag == "PORT") {
      unsigned port = 0;
      if (words >> port) out.port = static_cast<std::uint16_t>(port);
    } else if (tag == "START") {
      long long ms = 0;
      if (words >> ms) out.start_ms = ms;
    } else if (tag == "MODULE_LOADED") {
      double t = 0;
      if (words >> t) out.module_loaded = t;
    } else if (tag == "LINE") {
      std::string function;
      int number = 0;
      if (words >> function >> number) out.lines[function] = number;
    } else if (std::smatch m; tag == "TRUTH" && std::regex_search(line, m, truth_line)) {
      out.truths.push_back({std::stod(m[1]),
                            {{"retain_parsed_documents", std::stod(m[2])},
                             {"slow_leak_sessions", std::stod(m[3])},
                             {"module_leak_step", std::stod(m[4])}}});
    }
  }
  return out;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The leak of `function` in a report (its `function` is the readable name, e.g. with
// "(anonymous namespace)::" in front); null when not reported.
const json* find_leak(const json& report, const std::string& function) {
  const auto leaks = report.find("leaks");
  if (leaks == report.end() || !leaks->is_array()) return nullptr;
  for (const auto& leak : *leaks) {
    const std::string name = leak.value("function", "");
    if (name == function || ends_with(name, "::" + function)) return &leak;
  }
  return nullptr;
}

// Seconds since the epoch of an RFC 3339 UTC timestamp with whole seconds ("2024-05-01T12:00:03Z").
std::optional<double> epoch_seconds(const std::string& rfc3339) {
  std::tm tm{};
  std::istringstream in{rfc3339};
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) return std::nullopt;
  return static_cast<double>(::timegm(&tm));
}

struct Poll {
  double host_t = 0;  // the report's time in the host's seconds
  json report;
};

class AttributionHostTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- last leak report\n"
                << (polls_.empty() ? std::string{"(none)"} : polls_.back().report.dump(2)) << "\n---- allocations\n"
                << allocations_.dump(2) << "\n---- host output\n"
                << host_.output() << "\n";
    }
    host_.kill();
  }

  riptide::test::ChildProcess host_;
  std::vector<Poll> polls_;
  json allocations_;
};

TEST_F(AttributionHostTest, LeakReportNamesTheProgramsLinesSizesAndOnlyTheLeaks) {
  host_.start({RIPTIDE_PERF_TEST_ATTRIBUTION_HOST, std::to_string(static_cast<int>(kHostDurationSec)),
               RIPTIDE_PERF_TEST_ATTRIBUTION_MODULE});
  ASSERT_TRUE(host_.wait_for_output("START ", 0, 30s)) << "the host did not start";
  HostOutput out = parse_output(host_.output());
  ASSERT_TRUE(out.port && out.start_ms);
  const double start_sec = static_cast<double>(*out.start_ms) / 1000.0;

  // Poll as a dashboard does, until late in the run.
  const auto get = [&](const char* target) -> std::optional<json> {
    try {
      const auto response = riptide::performance::test::fetch(*out.port, "GET", target);
      if (response.status != 200) return std::nullopt;  // 503 before the first heap profile
      auto body = json::parse(response.body, nullptr, false);
      if (body.is_discarded()) return std::nullopt;
      return body;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  };
  std::map<std::string, double> first_seen;  // host seconds of the first report naming each leak
  while (host_.running()) {
    const auto polled_at = std::chrono::steady_clock::now();
    if (auto report = get("/metrics/memory/leaks")) {
      const auto at = epoch_seconds(report->value("timestamp", ""));
      ASSERT_TRUE(at.has_value()) << report->dump(2);
      // The timestamp is truncated to the second: its middle is the best guess.
      const double host_t = *at + 0.5 - start_sec;
      for (const auto& leak : kLeaks) {
        if (find_leak(*report, leak.function) != nullptr) first_seen.try_emplace(leak.function, host_t);
      }
      polls_.push_back({host_t, std::move(*report)});
    }
    out = parse_output(host_.output());
    if (!out.truths.empty() && out.truths.back().t >= kLastPollSec) break;
    std::this_thread::sleep_until(polled_at + 2s);
  }
  ASSERT_TRUE(host_.running()) << "the host ended early";
  if (auto stats = get("/metrics/memory/allocations")) allocations_ = std::move(*stats);

  // SIGTERM: the host stops its workers and the endpoints and exits with 0.
  host_.terminate();
  const int status = host_.wait();
  out = parse_output(host_.output());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  ASSERT_FALSE(polls_.empty()) << "no leak report was ever served";
  ASSERT_TRUE(out.module_loaded.has_value()) << "the module was not loaded";
  ASSERT_FALSE(out.truths.empty());
  const Poll& final_poll = polls_.back();
  const json& final_report = final_poll.report;

  // Every report a person could have read: one entry per site, the program's own lines only.
  for (const auto& poll : polls_) {
    std::set<std::string> functions;
    for (const auto& leak : poll.report.value("leaks", json::array())) {
      const std::string function = leak.value("function", "");
      EXPECT_TRUE(functions.insert(function).second)
          << "two entries for " << function << " at " << poll.host_t << " s:\n"
          << poll.report["leaks"].dump(2);
      for (const char* field : {"location", "file"}) {
        EXPECT_EQ(leak.value(field, "").find("/usr/include/c++"), std::string::npos)
            << "a standard library header named as the leak's " << field << " at " << poll.host_t
            << " s: " << leak.dump(2);
      }
      for (const auto& expected : kLeaks) {
        if (function != expected.function && !ends_with(function, std::string{"::"} + expected.function)) continue;
        EXPECT_TRUE(ends_with(leak.value("file", ""), std::string{"/"} + expected.file))
            << expected.function << " at " << poll.host_t << " s: " << leak.dump(2);
        EXPECT_EQ(leak.value("line", 0), out.lines[expected.function])
            << expected.function << " at " << poll.host_t << " s: " << leak.dump(2);
      }
    }
  }

  for (const auto& expected : kLeaks) {
    SCOPED_TRACE(expected.function);
    ASSERT_TRUE(out.lines.contains(expected.function)) << "the host printed no LINE for it";
    const double started = std::string{expected.function} == "module_leak_step" ? *out.module_loaded : 0.0;
    ASSERT_TRUE(first_seen.contains(expected.function)) << "never reported";
    EXPECT_LE(first_seen[expected.function] - started, kDetectWithinSec);

    const json* leak = find_leak(final_report, expected.function);
    ASSERT_NE(leak, nullptr) << "not in the final report (" << final_poll.host_t << " s)";
    const Truth* truth = &out.truths.front();
    for (const auto& candidate : out.truths) {
      if (std::abs(candidate.t - final_poll.host_t) < std::abs(truth->t - final_poll.host_t)) truth = &candidate;
    }
    const double real = truth->bytes.at(expected.function);
    const double size = leak->value("size", 0.0);
    EXPECT_NEAR(size, real, expected.tolerance * real) << "reported " << size << " bytes at " << final_poll.host_t
                                                       << " s; the host held " << real << " at " << truth->t << " s";
    EXPECT_GT(leak->value("size_error_bytes", 0.0), 0.0) << leak->dump(2);
    // The stack a person reads starts at the leaking function, not inside the allocator.
    const json stack = leak->value("stack", json::array());
    ASSERT_FALSE(stack.empty()) << leak->dump(2);
    EXPECT_NE(stack[0].get<std::string>().find(expected.function), std::string::npos) << leak->dump(2);
    std::cout << "[ host     ] " << expected.function << ": first reported " << first_seen[expected.function] - started
              << " s after its start; final size " << size << " vs " << real << " bytes ("
              << (size - real) / real * 100.0 << "%, error bar " << leak->value("size_error_bytes", 0.0) << ")\n";
  }

  for (const auto& function : kNotLeaks) {
    const json* leak = find_leak(final_report, function);
    EXPECT_EQ(leak, nullptr) << function << " does not leak, yet the final report (" << final_poll.host_t
                             << " s) names it: " << (leak != nullptr ? leak->dump(2) : "");
  }

  ASSERT_TRUE(allocations_.contains("top_allocators")) << allocations_.dump(2);
  for (const char* list : {"top_allocators", "top_allocators_by_bytes"}) {
    for (const auto& site : allocations_.value(list, json::array())) {
      for (const char* field : {"location", "function"}) {
        const std::string value = site.value(field, "");
        for (const char* library : {"riptide::performance", "nlohmann"}) {
          EXPECT_EQ(value.find(library), std::string::npos)
              << "the library's own work among the host's " << list << ": " << site.dump(2);
        }
      }
    }
  }
}

}  // namespace
