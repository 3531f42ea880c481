// PerformanceManager::reload_config: reloadable keys take effect at once, the others are reported and
// kept, and a candidate with any bad value changes nothing (the running targets keep judging).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include "config_schema.hpp"  // internal key table (src/core): every key is walked once
#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/logger.hpp"
#include "riptide/performance/manager/performance_manager.hpp"

namespace rp = riptide::performance;
namespace d = riptide::performance::detail;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

rp::Config quiet_config() {
  rp::Config config;
  config.http.enabled = false;
  config.monitoring.enabled = false;
  return config;
}

// `config` with `field` moved to another value its range and the relations between keys accept.
rp::Config with_changed(rp::Config config, const d::Field& field) {
  std::visit(
      [&](auto* member) {
        using T = std::remove_pointer_t<decltype(member)>;
        if constexpr (std::is_same_v<T, bool>) {
          *member = !*member;
        } else if constexpr (std::is_same_v<T, std::string>) {
          const std::string dotted = field.dotted();
          if (dotted == "http.bind") {
            *member = "::1";
          } else if (dotted == "redis.url") {
            *member = "redis://127.0.0.1:6398";
          } else {
            *member = *member + "x";  // token, key prefix, dump directory: any plain text is valid
          }
        } else {
          const double now = static_cast<double>(*member);
          *member = static_cast<T>(now + 1 <= field.max ? now + 1 : (now + field.min) / 2);
        }
      },
      field.ref(config));
  return config;
}

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("riptide-reload-" + std::to_string(::getpid()) + name);
  std::ofstream(path) << text;
  return path;
}

// A manager that has seen 60 s of 100 requests/s at 800 ms: every default target it can judge is met.
std::shared_ptr<rp::PerformanceManager> busy_manager(rp::ManualClock& clock, const rp::Config& config) {
  auto manager = rp::PerformanceManager::with_config(config, clock);
  for (int s = 0; s < 60; ++s) {
    for (int i = 0; i < 100; ++i) manager->record_request(800ms);
    clock.advance(1s);
    manager->tick();
  }
  return manager;
}

rp::TargetCheck check_of(const rp::TargetStatus& status, const std::string& target) {
  const auto it = std::find_if(status.checks.begin(), status.checks.end(),
                               [&](const rp::TargetCheck& c) { return c.target == target; });
  if (it == status.checks.end()) {
    ADD_FAILURE() << "no check of " << target;
    return {};
  }
  return *it;
}

void expect_reload_counts(const rp::PerformanceManager& manager, const rp::ConfigReloadCounts& expected) {
  const rp::ConfigReloadCounts counts = manager.config_reloads();
  EXPECT_EQ(counts.applied, expected.applied);
  EXPECT_EQ(counts.refused, expected.refused);
  EXPECT_EQ(counts.last_refused, expected.last_refused);
}

}  // namespace

TEST(ConfigReload, EveryKeyIsEitherAppliedOrReportedAndKept) {
  rp::ManualClock clock;
  rp::Config base = quiet_config();
  base.cache.enabled = false;                 // so the Redis address below is never dialled
  base.redis.url = "redis://127.0.0.1:6399";  // so limits.distributed = true is a valid candidate
  int reloadable = 0;
  for (const d::Field& field : d::fields()) {
    if (field.is_alias()) continue;
    SCOPED_TRACE(field.dotted());
    auto manager = rp::PerformanceManager::with_config(base, clock);
    const rp::Config candidate = with_changed(base, field);
    ASSERT_NO_THROW(candidate.validate("test")) << "with_changed() must produce a valid candidate";

    const rp::ConfigReload reload = manager->reload_config(candidate);
    if (rp::PerformanceManager::is_reloadable_key(field.dotted())) {
      ++reloadable;
      EXPECT_THAT(reload.applied, ElementsAre(field.dotted()));
      EXPECT_TRUE(reload.restart_required.empty());
      EXPECT_EQ(manager->config(), candidate) << "a reloadable key must take effect";
    } else {
      EXPECT_TRUE(reload.applied.empty());
      EXPECT_THAT(reload.restart_required, ElementsAre(field.dotted()));
      EXPECT_EQ(manager->config(), base) << "a key that needs a restart keeps its running value";
    }
  }
  EXPECT_EQ(reloadable, 7);  // the six targets and monitoring.alert_on_violations
}

TEST(ConfigReload, NewTargetsJudgeTheNextCheck) {
  rp::ManualClock clock;
  auto manager = busy_manager(clock, quiet_config());
  EXPECT_EQ(check_of(manager->check_targets(), "p50_latency_ms").state, rp::TargetState::met);

  rp::Config candidate = manager->config();
  candidate.targets.p50_latency_ms = 500;
  candidate.cache.max_size_mb = 7;
  const rp::ConfigReload reload = manager->reload_config(candidate);
  EXPECT_THAT(reload.applied, ElementsAre("targets.p50_latency_ms"));
  EXPECT_THAT(reload.restart_required, ElementsAre("cache.max_size_mb"));
  EXPECT_EQ(manager->targets().p50_latency_ms, 500U);
  EXPECT_EQ(manager->config().cache.max_size_mb, rp::CacheConfig{}.max_size_mb);

  const rp::TargetCheck p50 = check_of(manager->check_targets(), "p50_latency_ms");
  EXPECT_EQ(p50.state, rp::TargetState::violated);
  EXPECT_EQ(p50.limit, 500.0);
  EXPECT_EQ(manager->performance_json()["targets"]["p50_latency_ms"], 500);
  const rp::PerformanceReport report = manager->stop_monitoring();
  EXPECT_EQ(report.targets.p50_latency_ms, 500U);
  ASSERT_EQ(report.violations_over_time.size(), 1U);
  EXPECT_EQ(report.violations_over_time[0].limit, 500.0);
}

TEST(ConfigReload, BadCandidateChangesNothing) {
  rp::ManualClock clock;
  auto manager = busy_manager(clock, quiet_config());
  const rp::Config before = manager->config();

  rp::Config inverted = before;  // p95 below p50: each value in range, the pair inconsistent
  inverted.targets.p50_latency_ms = 900;
  inverted.targets.p95_latency_ms = 400;
  rp::Config bad_elsewhere = before;  // a valid target change next to a bad key that needs a restart
  bad_elsewhere.targets.p50_latency_ms = 500;
  bad_elsewhere.cache.max_size_mb = 0;
  rp::Config bad_token = before;
  bad_token.targets.max_memory_mb = 1;
  bad_token.http.token = "has spaces in it";

  for (const auto& [candidate, expected] :
       {std::pair{inverted, std::string("p95_latency_ms")}, std::pair{bad_elsewhere, std::string("cache.max_size_mb")},
        std::pair{bad_token, std::string("http.token")}}) {
    SCOPED_TRACE(expected);
    try {
      (void)manager->reload_config(candidate);
      ADD_FAILURE() << "a bad candidate was accepted";
    } catch (const rp::ConfigError& error) {
      EXPECT_THAT(error.what(), HasSubstr(expected));
      EXPECT_THAT(error.what(), HasSubstr("reload_config"));
      EXPECT_THAT(error.what(), ::testing::Not(HasSubstr("has spaces in it"))) << "the token is not echoed";
    }
    EXPECT_EQ(manager->config(), before);
    const rp::TargetStatus status = manager->check_targets();
    EXPECT_EQ(check_of(status, "p50_latency_ms").limit, 1500.0);
    EXPECT_EQ(check_of(status, "p50_latency_ms").state, rp::TargetState::met);
    EXPECT_TRUE(status.all_targets_met) << ::testing::PrintToString(status.violations);
  }
  expect_reload_counts(*manager, {.applied = 0, .refused = 3, .last_refused = true});
}

TEST(ConfigReload, FromAFile) {
  rp::ManualClock clock;
  const auto path = write_file("file.toml", "[targets]\np50_latency_ms = 1200\n");
  auto manager = rp::PerformanceManager::with_config(rp::Config::load(path), clock);
  EXPECT_EQ(manager->targets().p50_latency_ms, 1200U);

  // Unchanged file: nothing to do.
  rp::ConfigReload reload = manager->reload_config_file(path);
  EXPECT_TRUE(reload.applied.empty() && reload.restart_required.empty());

  // A bad value, a syntax error, a missing file: each names what is wrong; the running targets stay.
  const std::vector<std::pair<std::string, std::string>> bad_files{
      {"[targets]\np50_latency_ms = \"fast\"\n", ":2:"},
      {"[targets]\np50_latency_ms = 800\np95_latency_ms = 300\n", "p95_latency_ms"},
      {"[targets\np50_latency_ms = 800\n", path.string()},
      {"[targets]\np50_latncy_ms = 800\n", "p50_latency_ms"},  // did you mean
  };
  for (const auto& [text, expected] : bad_files) {
    SCOPED_TRACE(text);
    std::ofstream(path) << text;
    try {
      (void)manager->reload_config_file(path);
      ADD_FAILURE() << "a bad file was accepted";
    } catch (const rp::ConfigError& error) {
      EXPECT_THAT(error.what(), HasSubstr(expected));
    }
    EXPECT_EQ(manager->targets().p50_latency_ms, 1200U);
  }
  std::filesystem::remove(path);
  EXPECT_THROW((void)manager->reload_config_file(path), rp::ConfigError);
  EXPECT_EQ(manager->targets().p50_latency_ms, 1200U);

  std::ofstream(path) << "[targets]\np50_latency_ms = 700\n[monitoring]\nalert_on_violations = false\n";
  reload = manager->reload_config_file(path);
  EXPECT_THAT(reload.applied, ElementsAre("targets.p50_latency_ms", "monitoring.alert_on_violations"));
  EXPECT_EQ(manager->targets().p50_latency_ms, 700U);
  EXPECT_FALSE(manager->config().monitoring.alert_on_violations);
  std::filesystem::remove(path);

  // Counted for /metrics: the unchanged and the good reload applied; four bad files and the missing one refused.
  expect_reload_counts(*manager, {.applied = 2, .refused = 5, .last_refused = false});
}

// create(path) remembers its file: a reload without a path reads the same one, not ./performance.toml.
TEST(ConfigReload, WithoutAPathReadsTheFileCreateRead) {
  const auto path = write_file("create.toml", "[targets]\np50_latency_ms = 1100\n[http]\nenabled = false\n");
  auto manager = rp::PerformanceManager::create(path);
  EXPECT_EQ(manager->targets().p50_latency_ms, 1100U);
  std::ofstream(path, std::ios::trunc) << "[targets]\np50_latency_ms = 900\n[http]\nenabled = false\n";
  const rp::ConfigReload reload = manager->reload_config_file();
  EXPECT_THAT(reload.applied, ElementsAre("targets.p50_latency_ms"));
  EXPECT_EQ(manager->targets().p50_latency_ms, 900U);
  std::filesystem::remove(path);
}

// Checks while another thread flips between two consistent target sets: every check sees one set whole.
TEST(ConfigReload, ChecksDuringReloadsSeeOneWholeSet) {
  rp::ManualClock clock;
  auto manager = busy_manager(clock, quiet_config());
  rp::Config strict = manager->config();
  strict.targets.p50_latency_ms = 100;
  strict.targets.p95_latency_ms = 200;
  rp::Config loose = manager->config();
  loose.targets.p50_latency_ms = 2000;
  loose.targets.p95_latency_ms = 6000;

  rp::set_logger(std::make_shared<spdlog::logger>("quiet", std::make_shared<spdlog::sinks::null_sink_mt>()));
  std::atomic<bool> done{false};
  std::thread reloader([&] {
    for (int i = 0; i < 400; ++i) (void)manager->reload_config(i % 2 == 0 ? strict : loose);
    done = true;
  });
  int checks = 0;
  while (!done || checks < 10) {
    const rp::TargetStatus status = manager->check_targets();
    const double p50 = check_of(status, "p50_latency_ms").limit;
    const double p95 = check_of(status, "p95_latency_ms").limit;
    EXPECT_TRUE((p50 == 100 && p95 == 200) || (p50 == 2000 && p95 == 6000) || (p50 == 1500 && p95 == 5000))
        << p50 << " / " << p95;
    ++checks;
  }
  reloader.join();
  rp::set_logger(nullptr);
  EXPECT_EQ(manager->targets(), loose.targets);
}
