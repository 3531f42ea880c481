// Fault: the configuration file is edited to bad values and reloaded while the monitoring serves requests.
// Each bad reload must fail with an error naming the file, key and accepted form, and the endpoints must
// keep judging against the old targets; a good reload then changes what they report, over real HTTP.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "http/support/http_client.hpp"
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/performance_manager.hpp"

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

namespace {

constexpr const char* kGoodFile =
    "[targets]\n"
    "p50_latency_ms = 1000\n"
    "p95_latency_ms = 2000\n"
    "max_memory_mb = 100000\n"
    "memory_alert_mb = 100000\n"
    "min_throughput_pps = 0.0\n";

class ConfigReloadFault : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("riptide-reload-fault-" + std::to_string(::getpid()) + ".toml");
    write(kGoodFile);
    rp::Config config = rp::Config::load(path_);
    config.cache.enabled = false;
    manager_ = rp::PerformanceManager::with_config(config);
    for (int i = 0; i < 50; ++i) manager_->record_request(300ms);
    router_ = std::make_unique<http::MemoryMetricsRouter>(manager_);
    server_ = http::Server::start(*router_, {.port = 0});
  }
  void TearDown() override {
    server_.reset();
    router_.reset();
    manager_.reset();
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }

  void write(const std::string& text) const { std::ofstream(path_, std::ios::trunc) << text; }

  std::string get_text(const std::string& target) const {
    const auto response = test::fetch(server_->port(), "GET", target);
    EXPECT_EQ(response.status, 200) << target << ": " << response.body;
    return response.body;
  }
  json get_json(const std::string& target) const { return json::parse(get_text(target)); }

  // What the endpoints say about the targets: the configured values, the p50 verdict, the memory limit.
  struct Served {
    json targets;
    std::string p50_state;
    json memory_limit;
    json memory_alert;
    std::string health;
  };
  Served served() const {
    Served out;
    const json performance = get_json("/metrics/performance");
    out.targets = performance["targets"];
    for (const auto& check : performance["status"]["checks"]) {
      if (check["target"] == "p50_latency_ms") out.p50_state = check["state"].get<std::string>();
    }
    const json health = get_json("/metrics/memory/health");
    out.memory_limit = health["details"]["memory_limit"];
    out.memory_alert = health["details"]["memory_alert"];
    out.health = health["status"].get<std::string>();
    return out;
  }

  std::filesystem::path path_;
  std::shared_ptr<rp::PerformanceManager> manager_;
  std::unique_ptr<http::MemoryMetricsRouter> router_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(ConfigReloadFault, BadValuesAreRejectedAndTheOldTargetsKeepJudging) {
  const Served before = served();
  ASSERT_EQ(before.targets["p50_latency_ms"], 1000);
  ASSERT_EQ(before.p50_state, "met");

  struct BadEdit {
    std::string text;
    std::vector<std::string> message_parts;  // what the error must name
  };
  const std::vector<BadEdit> edits{
      {"[targets]\np50_latency_ms = 100\np95_latency_ms = 50\n", {"p95_latency_ms", "50", "p50_latency_ms"}},
      {"[targets]\np50_latency_ms = -5\n", {"p50_latency_ms", "-5", ":2:"}},
      {"[targets]\nmax_memory_mb = \"lots\"\n", {"max_memory_mb", "lots"}},
      {"[targets]\np50_latency_ms = 100\n[cache]\nmax_size_mb = 0\n", {"cache.max_size_mb", "0"}},
      {"[targets]\np50_latency_ms = 100\n[http]\ntoken = \"two words\"\n", {"http.token"}},
      {"[targets\np50_latency_ms = 100\n", {path_.string()}},
      {"[targets]\np50_latency = 100\n", {"p50_latency", "p50_latency_ms"}},
  };
  for (std::size_t i = 0; i < edits.size(); ++i) {
    const BadEdit& edit = edits[i];
    SCOPED_TRACE(edit.text);
    write(edit.text);
    try {
      (void)manager_->reload_config_file(path_);
      ADD_FAILURE() << "the bad file was accepted";
    } catch (const rp::ConfigError& error) {
      RecordProperty("reload_error_" + std::to_string(i),
                     error.what());  // what an operator sees, for docs/RELIABILITY.md
      for (const auto& part : edit.message_parts) EXPECT_THAT(error.what(), HasSubstr(part));
      EXPECT_THAT(error.what(), ::testing::Not(HasSubstr("two words"))) << "the token is not echoed";
    }
    const Served now = served();
    EXPECT_EQ(now.targets, before.targets);
    EXPECT_EQ(now.p50_state, "met");
    EXPECT_EQ(now.memory_limit, before.memory_limit);
    EXPECT_EQ(now.memory_alert, before.memory_alert);
    EXPECT_EQ(now.health, before.health);
  }

  // The file disappears (deploy tool mid-rename): the same.
  std::filesystem::remove(path_);
  EXPECT_THROW((void)manager_->reload_config_file(path_), rp::ConfigError);
  EXPECT_EQ(served().targets, before.targets);

  // What an alert rule sees.
  const std::string refused = get_text("/metrics");
  EXPECT_THAT(refused,
              HasSubstr("riptide_config_reloads_total{result=\"refused\"} " + std::to_string(edits.size() + 1)));
  EXPECT_THAT(refused, HasSubstr("riptide_config_reloads_total{result=\"applied\"} 0"));
  EXPECT_THAT(refused, HasSubstr("riptide_config_last_reload_successful 0"));

  // A good edit takes effect on the next request: p50 300 ms is now above its target, RSS above 1 MiB.
  write(
      "[targets]\np50_latency_ms = 200\np95_latency_ms = 2000\nmax_memory_mb = 1\nmemory_alert_mb = 2\n"
      "min_throughput_pps = 0.0\n");
  const rp::ConfigReload reload = manager_->reload_config_file(path_);
  EXPECT_THAT(reload.applied,
              ::testing::ElementsAre("targets.p50_latency_ms", "targets.max_memory_mb", "targets.memory_alert_mb"));
  const Served after = served();
  EXPECT_EQ(after.targets["p50_latency_ms"], 200);
  EXPECT_EQ(after.p50_state, "violated");
  EXPECT_EQ(after.memory_limit, 1024 * 1024);
  EXPECT_EQ(after.memory_alert, 2 * 1024 * 1024);
  EXPECT_EQ(after.health, "critical");
  const std::string applied = get_text("/metrics");
  EXPECT_THAT(applied, HasSubstr("riptide_config_reloads_total{result=\"applied\"} 1"));
  EXPECT_THAT(applied, HasSubstr("riptide_config_last_reload_successful 1"));
  EXPECT_EQ(get_json("/metrics/performance")["config_reloads"],
            json({{"applied", 1}, {"refused", edits.size() + 1}, {"last_refused", false}}));
}

}  // namespace
