// The configuration loader: every key through the file and the environment, precedence, file lookup,
// to_toml(), and bad inputs with the exact parts of each error.
#include "riptide/performance/core/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "config_schema.hpp"  // internal key table (src/core), to check that every key has a case
#include "riptide/performance/core/error.hpp"

namespace {

namespace rp = riptide::performance;
namespace d = riptide::performance::detail;
namespace fs = std::filesystem;

// Number of members of an aggregate: the longest brace list it accepts. Catches a field added to a
// section struct without a row in the key table (and so without a test case below).
struct AnyField {
  template <class T>
  operator T() const;
};
template <class T, class... A>
consteval std::size_t field_count() {
  if constexpr (requires { T{A{}..., AnyField{}}; }) {
    return field_count<T, A..., AnyField>();
  } else {
    return sizeof...(A);
  }
}

std::size_t table_fields_in(std::string_view section) {
  std::size_t n = 0;
  for (const d::Field& f : d::fields()) {
    n += (f.section == section && !f.is_alias()) ? 1 : 0;
  }
  return n;
}

TEST(ConfigKeys, KeyTableCoversEveryStructMember) {
  EXPECT_EQ(field_count<rp::Config>(), d::sections().size());
  EXPECT_EQ(field_count<rp::PerformanceTargets>(), table_fields_in("targets"));
  EXPECT_EQ(field_count<rp::MonitoringConfig>(), table_fields_in("monitoring"));
  EXPECT_EQ(field_count<rp::ProfilingConfig>(), table_fields_in("profiling"));
  EXPECT_EQ(field_count<rp::CacheConfig>(), table_fields_in("cache"));
  EXPECT_EQ(field_count<rp::LimitsConfig>(), table_fields_in("limits"));
  EXPECT_EQ(field_count<rp::HttpConfig>(), table_fields_in("http"));
  EXPECT_EQ(field_count<rp::RedisConfig>(), table_fields_in("redis"));
}

TEST(ConfigKeys, DefaultsAreTheSpecsTargets) {
  const rp::Config c;
  EXPECT_EQ(c.targets.p50_latency_ms, 1500u);
  EXPECT_EQ(c.targets.p95_latency_ms, 5000u);
  EXPECT_EQ(c.targets.max_memory_mb, 600u);
  EXPECT_EQ(c.targets.memory_alert_mb, 650u);
  EXPECT_EQ(c.targets.min_throughput_pps, 70.0);
  EXPECT_EQ(c.targets.max_ai_overhead_percent, 30.0);
  EXPECT_NO_THROW(c.validate());
}

// One row per key: a non-default value as a TOML literal and as variable text, and the value read back.
struct KeyCase {
  std::string key;
  std::string toml;
  std::string env;
  std::string expected;  // TOML literal of the stored value
};

const std::vector<KeyCase>& key_cases() {
  static const std::vector<KeyCase> cases{
      {"targets.p50_latency_ms", "1200", "1200", "1200"},
      {"targets.p95_latency_ms", "6000", "6000", "6000"},
      {"targets.max_memory_mb", "500", "500", "500"},
      {"targets.memory_alert_mb", "700", "700", "700"},
      {"targets.min_throughput_pps", "80.5", "80.5", "80.5"},
      {"targets.max_ai_overhead_percent", "25", "25", "25.0"},
      {"monitoring.enabled", "false", "0", "false"},
      {"monitoring.sample_interval_sec", "\"500ms\"", "0.5", "0.5"},
      {"monitoring.alert_on_violations", "false", "FALSE", "false"},
      {"monitoring.history_sec", "7200", "2h", "7200.0"},
      {"monitoring.long_history_sec", "86400", "24h", "86400.0"},
      {"monitoring.long_history_interval_sec", "120", "2m", "120.0"},
      {"monitoring.throughput_window_sec", "30.0", "30", "30.0"},
      {"monitoring.metrics_port", "3100", "3100", "3100"},
      {"profiling.enabled", "false", "false", "false"},
      {"profiling.leak_detection_interval_sec", "300", "5m", "300.0"},
      {"profiling.allocation_tracking", "false", "0", "false"},
      {"profiling.jemalloc_stats", "false", "0", "false"},
      {"profiling.lg_prof_sample", "20", "20", "20"},
      {"profiling.leak_min_observations", "6", "6", "6"},
      {"profiling.leak_min_bytes", "2_097_152", "2097152", "2097152"},
      {"profiling.leak_min_growth_bytes_per_sec", "2048.5", "2048.5", "2048.5"},
      {"profiling.leak_min_r_squared", "0.9", "0.9", "0.9"},
      {"profiling.max_tracked_sites", "8192", "8192", "8192"},
      {"profiling.max_history_per_site", "128", "128", "128"},
      {"profiling.peak_profile_growth", "0.25", "0.25", "0.25"},
      {"profiling.temporary_allocation_ms", "250.5", "250.5", "250.5"},
      {"profiling.symbolizer_cache_max_bytes", "8_388_608", "8388608", "8388608"},
      {"profiling.symbolizer_dwarf_max_bytes", "67108864", "67108864", "67108864"},
      {"profiling.debuginfod", "true", "1", "true"},
      {"profiling.dump_directory", "\"/var/tmp/riptide\"", "/var/tmp/riptide", "\"/var/tmp/riptide\""},
      {"profiling.capture_dir", "\"/var/lib/scraper/captures\"", "/var/lib/scraper/captures",
       "\"/var/lib/scraper/captures\""},
      {"profiling.capture_max_files", "10", "10", "10"},
      {"profiling.capture_min_interval_sec", "\"15m\"", "15m", "900.0"},
      {"profiling.capture_cgroup_share", "0.75", "0.75", "0.75"},
      {"profiling.capture_min_free_mb", "1024", "1024", "1024"},
      {"profiling.capture_max_mb", "64", "64", "64"},
      {"cache.enabled", "false", "false", "false"},
      {"cache.max_size_mb", "256", "256", "256"},
      {"cache.ttl_sec", "\"1h30m\"", "5400", "5400.0"},
      {"limits.max_concurrent_requests", "200", "200", "200"},
      {"limits.rate_limit_per_second", "75.5", "75.5", "75.5"},
      {"limits.rate_limit_burst", "80", "80", "80"},
      {"limits.per_client_rate_per_second", "5", "5", "5.0"},
      {"limits.per_client_burst", "20", "20", "20"},
      {"limits.max_tracked_clients", "5000", "5000", "5000"},
      {"limits.circuit_breaker_threshold", "0.25", "0.25", "0.25"},
      {"limits.circuit_breaker_window", "50", "50", "50"},
      {"limits.circuit_breaker_min_calls", "20", "20", "20"},
      {"limits.circuit_breaker_open_sec", "45", "45s", "45.0"},
      {"limits.circuit_breaker_half_open_calls", "3", "3", "3"},
      {"limits.slow_call_ms", "2500", "2.5s", "2500.0"},
      {"limits.slow_call_rate_threshold", "0.5", "0.5", "0.5"},
      {"limits.distributed", "true", "1", "true"},
      {"limits.fail_open", "false", "false", "false"},
      {"http.enabled", "false", "false", "false"},
      {"http.bind", "\"0.0.0.0\"", "0.0.0.0", "\"0.0.0.0\""},
      {"http.port", "8080", "8080", "8080"},
      {"http.token", "\"s3cr3t-T0ken\"", "s3cr3t-T0ken", "\"s3cr3t-T0ken\""},
      {"http.threads", "2", "2", "2"},
      {"http.max_connections", "512", "512", "512"},
      {"http.header_limit_bytes", "16384", "16384", "16384"},
      {"http.body_limit_bytes", "1024", "1024", "1024"},
      {"http.read_timeout_sec", "5", "5s", "5.0"},
      {"http.idle_timeout_sec", "60", "1m", "60.0"},
      {"http.gc_cooldown_sec", "0", "0", "0.0"},
      {"http.cpu_profile_max_sec", "30", "30", "30"},
      {"http.max_trend_points", "500", "500", "500"},
      {"redis.url", "\"redis://127.0.0.1:6379/2\"", "redis://127.0.0.1:6379/2", "\"redis://127.0.0.1:6379/2\""},
      {"redis.connect_timeout_ms", "500", "500ms", "500.0"},
      {"redis.command_timeout_ms", "50.5", "50.5", "50.5"},
      {"redis.key_prefix", "\"rp:\"", "rp:", "\"rp:\""},
      {"redis.pool_size", "8", "8", "8"},
  };
  return cases;
}

const KeyCase* case_for(const std::string& key) {
  for (const KeyCase& c : key_cases()) {
    if (c.key == key) {
      return &c;
    }
  }
  return nullptr;
}

// Keys whose value differs from the defaults (an alias counts with its real key).
std::set<std::string> changed_keys(const rp::Config& config) {
  const rp::Config defaults;
  std::set<std::string> changed;
  for (const d::Field& f : d::fields()) {
    if (d::read(config, f) != d::read(defaults, f)) {
      changed.insert(d::target_of(f).dotted());
    }
  }
  return changed;
}

TEST(ConfigKeys, EveryKeyHasACaseAndEveryCaseAKey) {
  for (const d::Field& f : d::fields()) {
    EXPECT_NE(case_for(f.dotted()), nullptr) << "key " << f.dotted() << " has no row in key_cases()";
  }
  for (const KeyCase& c : key_cases()) {
    EXPECT_NE(d::find_field(c.key), nullptr) << "row " << c.key << " names no key";
  }
  EXPECT_EQ(key_cases().size(), d::fields().size());
}

TEST(ConfigKeys, EveryKeyFromTheFile) {
  for (const d::Field& f : d::fields()) {
    const KeyCase* c = case_for(f.dotted());
    ASSERT_NE(c, nullptr) << f.dotted();
    rp::Config config;
    const std::string text = "[" + std::string(f.section) + "]\n" + std::string(f.name) + " = " + c->toml + "\n";
    ASSERT_NO_THROW(config.apply_toml(text, "keys.toml")) << text;
    EXPECT_EQ(d::to_toml_literal(d::read(config, f)), c->expected) << f.dotted();
    EXPECT_EQ(changed_keys(config), std::set<std::string>{d::target_of(f).dotted()}) << f.dotted();
  }
}

TEST(ConfigKeys, EveryKeyFromItsVariable) {
  for (const d::Field& f : d::fields()) {
    const KeyCase* c = case_for(f.dotted());
    ASSERT_NE(c, nullptr) << f.dotted();
    rp::Config config;
    ASSERT_NO_THROW(config.apply_environment({{f.env_name(), c->env}})) << f.env_name();
    EXPECT_EQ(d::to_toml_literal(d::read(config, f)), c->expected) << f.env_name();
    EXPECT_EQ(changed_keys(config), std::set<std::string>{d::target_of(f).dotted()}) << f.env_name();
  }
}

TEST(ConfigKeys, VariableNamesFollowSectionAndKey) {
  EXPECT_EQ(d::find_field("cache.max_size_mb")->env_name(), "RIPTIDE_PERF_CACHE_MAX_SIZE_MB");
  EXPECT_EQ(d::find_field("redis.url")->env_name(), "RIPTIDE_PERF_REDIS_URL");
  EXPECT_EQ(d::find_field("http.token")->env_name(), "RIPTIDE_PERF_HTTP_TOKEN");
}

TEST(ConfigKeys, EverySpecVariable) {
  const std::vector<std::pair<std::string, std::string>> spec{
      {"RIPTIDE_PERF_MAX_MEMORY_MB", "targets.max_memory_mb"},
      {"RIPTIDE_PERF_MEMORY_ALERT_MB", "targets.memory_alert_mb"},
      {"RIPTIDE_PERF_P50_LATENCY_MS", "targets.p50_latency_ms"},
      {"RIPTIDE_PERF_P95_LATENCY_MS", "targets.p95_latency_ms"},
      {"RIPTIDE_PERF_MIN_THROUGHPUT_PPS", "targets.min_throughput_pps"},
      {"RIPTIDE_PERF_METRICS_PORT", "http.port"},
      {"RIPTIDE_PERF_METRICS_INTERVAL_SEC", "monitoring.sample_interval_sec"},
  };
  EXPECT_EQ(d::env_aliases().size(), spec.size());
  for (const auto& [variable, key] : spec) {
    const KeyCase* c = case_for(key);
    ASSERT_NE(c, nullptr);
    rp::Config config;
    ASSERT_NO_THROW(config.apply_environment({{variable, c->env}})) << variable;
    EXPECT_EQ(d::to_toml_literal(d::read(config, *d::find_field(key))), c->expected) << variable;
    EXPECT_EQ(changed_keys(config), std::set<std::string>{key}) << variable;
  }
}

TEST(ConfigKeys, SpecAliasAndPerKeyVariableMayAgree) {
  rp::Config config;
  config.apply_environment({{"RIPTIDE_PERF_METRICS_PORT", "4000"}, {"RIPTIDE_PERF_HTTP_PORT", "4000"}});
  EXPECT_EQ(config.http.port, 4000);
}

TEST(ConfigKeys, SpecsExampleFileLoads) {
  const char* source_dir = std::getenv("RIPTIDE_PERF_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr);
  const rp::Config c = rp::Config::load(fs::path(source_dir) / "examples" / "performance.toml");
  EXPECT_EQ(c.targets, rp::PerformanceTargets{});
  EXPECT_TRUE(c.monitoring.enabled);
  EXPECT_EQ(c.http.port, 3000);
  EXPECT_EQ(c.monitoring.sample_interval_sec, 60.0);
  EXPECT_EQ(c.profiling.leak_detection_interval_sec, 300.0);
  EXPECT_EQ(c.cache.max_size_mb, 100u);
  EXPECT_EQ(c.cache.ttl_sec, 3600.0);
  EXPECT_EQ(c.limits.max_concurrent_requests, 100u);
  EXPECT_EQ(c.limits.rate_limit_per_second, 50.0);
  EXPECT_EQ(c.limits.circuit_breaker_threshold, 0.5);
}

using Env = std::map<std::string, std::string>;

TEST(ConfigDocs, EveryKeyAndVariableIsDocumented) {
  const char* source_dir = std::getenv("RIPTIDE_PERF_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr);
  std::ifstream in(fs::path(source_dir) / "docs" / "configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md";
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const d::Field& f : d::fields()) {
    const std::size_t begin = doc.find("### [" + std::string(f.section) + "]");
    ASSERT_NE(begin, std::string::npos) << f.section;
    const std::size_t end = doc.find("### [", begin + 1);
    const std::string table = doc.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    EXPECT_NE(table.find("| `" + std::string(f.name) + "` | `" + d::to_toml_literal(d::read(rp::Config{}, f)) + "` |"),
              std::string::npos)
        << f.dotted() << " (row with its default)";
    EXPECT_NE(table.find("`" + f.env_name() + "`"), std::string::npos) << f.env_name();
  }
  for (const d::EnvAlias& alias : d::env_aliases()) {
    EXPECT_NE(doc.find("`" + std::string(alias.variable) + "`"), std::string::npos) << alias.variable;
  }
}

// Runs in a fresh empty directory with the given RIPTIDE_PERF_* variables set, then restores both.
class ScopedWorld {
 public:
  explicit ScopedWorld(const std::map<std::string, std::string>& env = {}) {
    char pattern[] = "/tmp/riptide-config-XXXXXX";
    dir_ = fs::path(mkdtemp(pattern));
    old_cwd_ = fs::current_path();
    fs::current_path(dir_);
    for (const auto& [name, value] : d::process_environment()) {
      if (!d::is_reserved_variable(name)) {
        saved_[name] = value;
        unsetenv(name.c_str());
      }
    }
    for (const auto& [name, value] : env) {
      setenv(name.c_str(), value.c_str(), 1);
      set_.push_back(name);
    }
  }
  ~ScopedWorld() {
    for (const auto& name : set_) {
      unsetenv(name.c_str());
    }
    for (const auto& [name, value] : saved_) {
      setenv(name.c_str(), value.c_str(), 1);
    }
    fs::current_path(old_cwd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  ScopedWorld(const ScopedWorld&) = delete;
  ScopedWorld& operator=(const ScopedWorld&) = delete;

  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  fs::path old_cwd_;
  std::map<std::string, std::string> saved_;
  std::vector<std::string> set_;
};

TEST(ConfigPrecedence, DefaultsWhenNothingIsGiven) {
  ScopedWorld world;
  EXPECT_EQ(rp::Config::load(), rp::Config{});
}

TEST(ConfigPrecedence, FileOverridesDefaultsAndKeepsTheRest) {
  ScopedWorld world;
  const auto path = world.write("a.toml", "[targets]\np50_latency_ms = 1200\n");
  const rp::Config c = rp::Config::load(path);
  EXPECT_EQ(c.targets.p50_latency_ms, 1200u);
  EXPECT_EQ(c.targets.p95_latency_ms, 5000u);
}

TEST(ConfigPrecedence, EnvironmentOverridesFile) {
  ScopedWorld world(Env{{"RIPTIDE_PERF_P50_LATENCY_MS", "1300"}, {"RIPTIDE_PERF_CACHE_TTL_SEC", "10m"}});
  const auto path = world.write("a.toml", "[targets]\np50_latency_ms = 1200\n[cache]\nttl_sec = 60\nmax_size_mb = 5\n");
  const rp::Config c = rp::Config::load(path);
  EXPECT_EQ(c.targets.p50_latency_ms, 1300u);
  EXPECT_EQ(c.cache.ttl_sec, 600.0);
  EXPECT_EQ(c.cache.max_size_mb, 5u);
}

TEST(ConfigPrecedence, CodeOverridesEverything) {
  ScopedWorld world(Env{{"RIPTIDE_PERF_P50_LATENCY_MS", "1300"}});
  rp::Config c = rp::Config::load(world.write("a.toml", "[targets]\np50_latency_ms = 1200\n"));
  c.targets.p50_latency_ms = 1400;
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.targets.p50_latency_ms, 1400u);
}

TEST(ConfigPrecedence, EnvironmentCanRepairARelationTheFileBreaks) {
  // Relations are judged on the merged result, not per layer.
  ScopedWorld world(Env{{"RIPTIDE_PERF_P95_LATENCY_MS", "9000"}});
  const rp::Config c = rp::Config::load(world.write("a.toml", "[targets]\np50_latency_ms = 6000\n"));
  EXPECT_EQ(c.targets.p50_latency_ms, 6000u);
  EXPECT_EQ(c.targets.p95_latency_ms, 9000u);
}

TEST(ConfigLookup, VariableNamesTheFile) {
  ScopedWorld world;
  const auto path = world.write("from-env.toml", "[cache]\nmax_size_mb = 7\n");
  setenv("RIPTIDE_PERF_CONFIG", path.c_str(), 1);
  const rp::Config c = rp::Config::load();
  unsetenv("RIPTIDE_PERF_CONFIG");
  EXPECT_EQ(c.cache.max_size_mb, 7u);
}

TEST(ConfigLookup, PerformanceTomlInTheWorkingDirectory) {
  ScopedWorld world;
  world.write("performance.toml", "[cache]\nmax_size_mb = 8\n");
  EXPECT_EQ(rp::Config::load().cache.max_size_mb, 8u);
}

TEST(ConfigLookup, ExplicitPathBeatsVariableBeatsWorkingDirectory) {
  ScopedWorld world;
  world.write("performance.toml", "[cache]\nmax_size_mb = 8\n");
  const auto from_env = world.write("env.toml", "[cache]\nmax_size_mb = 9\n");
  const auto explicit_path = world.write("explicit.toml", "[cache]\nmax_size_mb = 10\n");
  setenv("RIPTIDE_PERF_CONFIG", from_env.c_str(), 1);
  EXPECT_EQ(rp::Config::load().cache.max_size_mb, 9u);
  EXPECT_EQ(rp::Config::load(explicit_path).cache.max_size_mb, 10u);
  unsetenv("RIPTIDE_PERF_CONFIG");
}

TEST(ConfigLookup, ErrorsInAFileNameItsPath) {
  ScopedWorld world;
  const auto path = world.write("bad.toml", "[cache]\nmax_size_mb = 0\n");
  try {
    (void)rp::Config::load(path);
    FAIL() << "no error";
  } catch (const rp::ConfigError& e) {
    EXPECT_EQ(e.source(), path.string() + ":2:15");
    EXPECT_EQ(e.key(), "cache.max_size_mb");
  }
}

TEST(ConfigLookup, ReservedTestVariablesAreIgnored) {
  ScopedWorld world(Env{{"RIPTIDE_PERF_TEST_ANYTHING", "x"}, {"RIPTIDE_PERF_SOURCE_DIR", "/nowhere"}});
  EXPECT_EQ(rp::Config::load(), rp::Config{});
}

TEST(ConfigLookup, ApplyProcessEnvironmentReadsThisProcess) {
  ScopedWorld world(Env{{"RIPTIDE_PERF_REDIS_URL", "redis://localhost"}, {"RIPTIDE_PERF_LIMITS_DISTRIBUTED", "true"}});
  rp::Config c;
  c.apply_process_environment();
  EXPECT_EQ(c.redis.url, "redis://localhost");
  EXPECT_TRUE(c.limits.distributed);
  EXPECT_NO_THROW(c.validate());
}

TEST(ConfigLookup, ApplyEnvironmentIgnoresOtherNamesAndTheFileVariable) {
  rp::Config c;
  c.apply_environment({{"PATH", "/bin"}, {"RIPTIDE_PERF_CONFIG", "/x.toml"}, {"RIPTIDE_PERF_TEST_REDIS_SERVER", "x"}});
  EXPECT_EQ(c, rp::Config{});
}

TEST(ConfigLookup, EmptyVariableClearsAString) {
  rp::Config c = rp::Config::from_toml("[http]\ntoken = \"abc\"\n");
  c.apply_environment({{"RIPTIDE_PERF_HTTP_TOKEN", ""}});
  EXPECT_EQ(c.http.token, "");
}

TEST(ConfigToml, RoundTripsEveryKey) {
  rp::Config c;
  for (const KeyCase& k : key_cases()) {
    if (k.key != "http.token" && k.key != "monitoring.metrics_port" && k.key != "limits.distributed") {
      c.apply_toml("[" + k.key.substr(0, k.key.find('.')) + "]\n" + k.key.substr(k.key.find('.') + 1) + " = " + k.toml,
                   "keys.toml");
    }
  }
  EXPECT_NO_THROW(c.validate());
  const rp::Config back = rp::Config::from_toml(c.to_toml(), "to_toml");
  EXPECT_EQ(back, c) << c.to_toml();
  EXPECT_EQ(rp::Config::from_toml(rp::Config{}.to_toml()), rp::Config{});
}

TEST(ConfigToml, RedactsSecrets) {
  rp::Config c;
  c.http.token = "s3cr3t";
  c.redis.url = "redis://user:hunter2@cache.internal:6380/1";
  const std::string text = c.to_toml();
  EXPECT_NE(text.find("token = \"<redacted>\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("url = \"redis://user:<redacted>@cache.internal:6380/1\"\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(text.find("hunter2"), std::string::npos);
  EXPECT_NE(rp::Config{}.to_toml().find("token = \"\"\n"), std::string::npos);
}

TEST(ConfigToml, SameValueUnderBothPortKeysIsAccepted) {
  const rp::Config c = rp::Config::from_toml("[monitoring]\nmetrics_port = 3005\n[http]\nport = 3005\n");
  EXPECT_EQ(c.http.port, 3005);
}

TEST(ConfigChangedKeys, NamesEveryDifferingKeyInTableOrder) {
  const rp::Config base;
  EXPECT_TRUE(base.changed_keys(base).empty());
  const rp::Config other = rp::Config::from_toml(
      "[targets]\np95_latency_ms = 4000\n[monitoring]\nmetrics_port = 3005\n[http]\ntoken = \"abc\"\n"
      "[cache]\nenabled = false\n");
  EXPECT_EQ(base.changed_keys(other),
            (std::vector<std::string>{"targets.p95_latency_ms", "cache.enabled", "http.port", "http.token"}));
  EXPECT_EQ(other.changed_keys(base), base.changed_keys(other));
}

TEST(ConfigChangedKeys, EveryKeyOfTheTableIsCompared) {
  // A key the comparison skipped would make a reload silently ignore it.
  for (const d::Field& field : d::fields()) {
    if (field.is_alias()) continue;
    rp::Config changed;
    std::visit(
        [](auto* member) {
          using T = std::remove_pointer_t<decltype(member)>;
          if constexpr (std::is_same_v<T, bool>) {
            *member = !*member;
          } else if constexpr (std::is_same_v<T, std::string>) {
            *member += "x";
          } else {
            *member = static_cast<T>(*member + 1);
          }
        },
        field.ref(changed));
    EXPECT_EQ(rp::Config{}.changed_keys(changed), std::vector<std::string>{field.dotted()});
  }
}

TEST(ConfigError, MessageJoinsTheParts) {
  try {
    (void)rp::Config::from_toml("[targets]\np50_latency_ms = 0\n", "perf.toml");
    FAIL() << "no error";
  } catch (const rp::ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "perf.toml:2:18: targets.p50_latency_ms = 0: must be at least 1 (accepted: an integer from 1 to "
                 "3600000)");
  }
}

// ---- Bad inputs: each asserts source, key, value, problem and accepted form exactly. ----

struct Expected {
  std::string source;
  std::string key;
  std::string value;
  std::string problem;
  std::string accepted;
};

struct BadCase {
  std::string name;
  std::function<void()> run;
  Expected expected;
};

std::function<void()> file(std::string text) {
  return [text] { (void)rp::Config::from_toml(text, "bad.toml"); };
}

std::function<void()> env(std::map<std::string, std::string> variables) {
  return [variables] {
    ScopedWorld world(variables);
    (void)rp::Config::load();
  };
}

std::function<void()> code(std::function<void(rp::Config&)> change) {
  return [change] {
    rp::Config c;
    change(c);
    c.validate();
  };
}

const std::string kSyntax = "TOML v1.0.0 syntax (https://toml.io/en/v1.0.0)";
const std::string kEnvForm =
    "RIPTIDE_PERF_<SECTION>_<KEY> for a key of performance.toml (e.g. RIPTIDE_PERF_CACHE_MAX_SIZE_MB), one of the "
    "spec's names (RIPTIDE_PERF_P50_LATENCY_MS, RIPTIDE_PERF_METRICS_PORT, ...) or RIPTIDE_PERF_CONFIG; "
    "docs/configuration.md lists them";
const std::string kSecondsForm = ", or a duration such as 250ms, 30s, 5m or 1h30m";

std::vector<BadCase> bad_cases() {
  return {
      // Malformed TOML: the parser's message at its position, the key read from that line.
      {"space inside a number",
       file("[targets]\np50_latency_ms = 15 00\n"),
       {"bad.toml:2:21", "targets.p50_latency_ms", "15 00",
        "Error while parsing key-value pair: expected a comment or whitespace, saw '0'", kSyntax}},
      {"unterminated string",
       file("[http]\nbind = \"127.0.0.1\n"),
       {"bad.toml:2:18", "http.bind", "\"127.0.0.1",
        "Error while parsing string: unescaped control characters other than TAB (U+0009) are explicitly prohibited",
        kSyntax}},
      {"unclosed table header",
       file("[targets\np50_latency_ms = 1\n"),
       {"bad.toml:1:9", "(table header)", "[targets", "Error while parsing table header: expected ']', saw '\\n'",
        kSyntax}},
      {"key given twice",
       file("[targets]\np50_latency_ms = 1\np50_latency_ms = 2\n"),
       {"bad.toml:3:18", "targets.p50_latency_ms", "2",
        "Error while parsing key-value pair: cannot redefine existing integer 'p50_latency_ms'", kSyntax}},
      {"integer beyond 64 bits",
       file("[targets]\nmax_memory_mb = 99999999999999999999\n"),
       {"bad.toml:2:37", "targets.max_memory_mb", "99999999999999999999",
        "Error while parsing decimal integer: '99999999999999999999' is not representable in 64 bits", kSyntax}},
      // Wrong types.
      {"string for an integer",
       file("[targets]\np50_latency_ms = \"1500\"\n"),
       {"bad.toml:2:18", "targets.p50_latency_ms", "\"1500\"", "is a string, not an integer",
        "an integer from 1 to 3600000"}},
      {"float for an integer",
       file("[targets]\nmax_memory_mb = 600.5\n"),
       {"bad.toml:2:17", "targets.max_memory_mb", "600.5", "is a floating-point number, not an integer",
        "an integer from 1 to 16777216"}},
      {"integer for a boolean",
       file("[monitoring]\nenabled = 1\n"),
       {"bad.toml:2:11", "monitoring.enabled", "1", "is an integer, not a boolean", "true or false"}},
      {"boolean for a number",
       file("[targets]\nmin_throughput_pps = true\n"),
       {"bad.toml:2:22", "targets.min_throughput_pps", "true", "is a boolean, not a number",
        "a number from 0 to 1000000"}},
      {"array for a string",
       file("[http]\nbind = [\"127.0.0.1\"]\n"),
       {"bad.toml:2:8", "http.bind", "[\"127.0.0.1\"]", "is an array, not a string",
        "an IPv4 or IPv6 literal such as 127.0.0.1, ::1 or 0.0.0.0, or localhost"}},
      {"string for a plain number",
       file("[limits]\nrate_limit_per_second = \"50\"\n"),
       {"bad.toml:2:25", "limits.rate_limit_per_second", "\"50\"", "is a string, not a number",
        "a number greater than 0 and at most 1000000000"}},
      {"date for a duration",
       file("[cache]\nttl_sec = 2024-01-01\n"),
       {"bad.toml:2:11", "cache.ttl_sec", "2024-01-01", "is a date, not a number or a duration string",
        "a number of seconds greater than 0 and at most 31622400" + kSecondsForm}},
      {"not a duration",
       file("[monitoring]\nsample_interval_sec = \"fast\"\n"),
       {"bad.toml:2:23", "monitoring.sample_interval_sec", "\"fast\"",
        "is not a duration: invalid duration 'fast': a unit or sign appears where a number should be",
        "a number of seconds from 0.01 to 3600" + kSecondsForm}},
      {"section that is a value",
       file("targets = 5\n"),
       {"bad.toml:1:11", "targets", "5", "is an integer, not a table", "a [targets] table"}},
      // Out of range.
      {"zero latency",
       file("[targets]\np50_latency_ms = 0\n"),
       {"bad.toml:2:18", "targets.p50_latency_ms", "0", "must be at least 1", "an integer from 1 to 3600000"}},
      {"negative size",
       file("[cache]\nmax_size_mb = -5\n"),
       {"bad.toml:2:15", "cache.max_size_mb", "-5", "must be at least 1", "an integer from 1 to 1048576"}},
      {"site history below three observations",
       file("[profiling]\nmax_history_per_site = 2\n"),
       {"bad.toml:2:24", "profiling.max_history_per_site", "2", "must be at least 3", "an integer from 3 to 10000"}},
      {"negative peak profile growth",
       file("[profiling]\npeak_profile_growth = -0.1\n"),
       {"bad.toml:2:23", "profiling.peak_profile_growth", "-0.1", "must be at least 0", "a number from 0 to 10"}},
      {"temporary allocations of no time at all",
       file("[profiling]\ntemporary_allocation_ms = 0\n"),
       {"bad.toml:2:27", "profiling.temporary_allocation_ms", "0", "must be at least 0.001",
        "a number from 0.001 to 3600000"}},
      {"peak profile growth given in percent",
       file("[profiling]\npeak_profile_growth = 25\n"),
       {"bad.toml:2:23", "profiling.peak_profile_growth", "25", "must be at most 10", "a number from 0 to 10"}},
      {"symbolizer cache below 64 KiB",
       file("[profiling]\nsymbolizer_cache_max_bytes = 1000\n"),
       {"bad.toml:2:30", "profiling.symbolizer_cache_max_bytes", "1000", "must be at least 65536",
        "an integer from 65536 to 1073741824"}},
      {"DWARF bound above 16 GiB",
       file("[profiling]\nsymbolizer_dwarf_max_bytes = 17179869185\n"),
       {"bad.toml:2:30", "profiling.symbolizer_dwarf_max_bytes", "17179869185", "must be at most 17179869184",
        "an integer from 1048576 to 17179869184"}},
      {"port above 65535",
       file("[http]\nport = 70000\n"),
       {"bad.toml:2:8", "http.port", "70000", "must be at most 65535", "an integer from 0 to 65535"}},
      {"spec port key out of range",
       file("[monitoring]\nmetrics_port = 65536\n"),
       {"bad.toml:2:16", "monitoring.metrics_port", "65536", "must be at most 65535", "an integer from 0 to 65535"}},
      {"threshold zero",
       file("[limits]\ncircuit_breaker_threshold = 0.0\n"),
       {"bad.toml:2:29", "limits.circuit_breaker_threshold", "0.0", "must be greater than 0",
        "a number greater than 0 and at most 1"}},
      {"threshold above one",
       file("[limits]\ncircuit_breaker_threshold = 1.5\n"),
       {"bad.toml:2:29", "limits.circuit_breaker_threshold", "1.5", "must be at most 1",
        "a number greater than 0 and at most 1"}},
      {"nan percent",
       file("[targets]\nmax_ai_overhead_percent = nan\n"),
       {"bad.toml:2:27", "targets.max_ai_overhead_percent", "nan", "is not a finite number", "a number from 0 to 100"}},
      {"percent above 100",
       file("[targets]\nmax_ai_overhead_percent = 120\n"),
       {"bad.toml:2:27", "targets.max_ai_overhead_percent", "120", "must be at most 100", "a number from 0 to 100"}},
      {"sampling too fast",
       file("[monitoring]\nsample_interval_sec = \"1ms\"\n"),
       {"bad.toml:2:23", "monitoring.sample_interval_sec", "\"1ms\"", "must be at least 0.01",
        "a number of seconds from 0.01 to 3600" + kSecondsForm}},
      {"header limit too small",
       file("[http]\nheader_limit_bytes = 100\n"),
       {"bad.toml:2:22", "http.header_limit_bytes", "100", "must be at least 1024", "an integer from 1024 to 1048576"}},
      {"bind not a host",
       file("[http]\nbind = \"not a host!\"\n"),
       {"bad.toml:2:8", "http.bind", "\"not a host!\"", "is not an IPv4 or IPv6 address or localhost",
        "an IPv4 or IPv6 literal such as 127.0.0.1, ::1 or 0.0.0.0, or localhost"}},
      {"bind a host name the server would not resolve",
       file("[http]\nbind = \"example.internal\"\n"),
       {"bad.toml:2:8", "http.bind", "\"example.internal\"", "is not an IPv4 or IPv6 address or localhost",
        "an IPv4 or IPv6 literal such as 127.0.0.1, ::1 or 0.0.0.0, or localhost"}},
      {"more io threads than the server runs",
       file("[http]\nthreads = 65\n"),
       {"bad.toml:2:11", "http.threads", "65", "must be at most 64", "an integer from 1 to 64"}},
      {"token with a space",
       file("[http]\ntoken = \"two words\"\n"),
       {"bad.toml:2:9", "http.token", "<redacted: 11 characters as written>",
        "contains a character a bearer token cannot carry",
        "empty, or a bearer token of letters, digits and - . _ ~ + / (trailing = allowed), at most 4096 characters"}},
      {"redis url of another scheme",
       file("[redis]\nurl = \"http://localhost:6379\"\n"),
       {"bad.toml:2:7", "redis.url", "\"http://localhost:6379\"", "does not start with redis://",
        "empty (no Redis), or redis://[[user]:password@]host[:port][/db]"}},
      {"redis url password masked in the message",
       file("[redis]\nurl = \"redis://app:hunter2@cache.internal:0\"\n"),
       {"bad.toml:2:7", "redis.url", "\"redis://app:***@cache.internal:0\"",
        "has a port that is not an integer from 1 to 65535",
        "empty (no Redis), or redis://[[user]:password@]host[:port][/db]"}},
      {"redis url port zero",
       file("[redis]\nurl = \"redis://localhost:0\"\n"),
       {"bad.toml:2:7", "redis.url", "\"redis://localhost:0\"", "has a port that is not an integer from 1 to 65535",
        "empty (no Redis), or redis://[[user]:password@]host[:port][/db]"}},
      {"key prefix with a space",
       file("[redis]\nkey_prefix = \"my app:\"\n"),
       {"bad.toml:2:14", "redis.key_prefix", "\"my app:\"", "contains a space or a control character",
        "at most 128 bytes without spaces or control characters"}},
      // Contradictory settings: the later layer is blamed (tie: the second key), the other key is named.
      {"p95 below p50",
       file("[targets]\np50_latency_ms = 6000\np95_latency_ms = 5500\n"),
       {"bad.toml:3:18", "targets.p95_latency_ms", "5500",
        "must be at least targets.p50_latency_ms (6000, from bad.toml:2:18)",
        "targets.p95_latency_ms >= targets.p50_latency_ms"}},
      {"p50 above the default p95",
       file("[targets]\np50_latency_ms = 6000\n"),
       {"bad.toml:2:18", "targets.p50_latency_ms", "6000",
        "must be at most targets.p95_latency_ms (5000, from defaults)",
        "targets.p95_latency_ms >= targets.p50_latency_ms"}},
      {"alert below the ceiling",
       file("[targets]\nmemory_alert_mb = 500\n"),
       {"bad.toml:2:19", "targets.memory_alert_mb", "500",
        "must be at least targets.max_memory_mb (600, from defaults)",
        "targets.memory_alert_mb >= targets.max_memory_mb"}},
      {"history shorter than one sample",
       file("[monitoring]\nsample_interval_sec = 60\nhistory_sec = \"30s\"\n"),
       {"bad.toml:3:15", "monitoring.history_sec", "\"30s\"",
        "must be at least monitoring.sample_interval_sec (60, from bad.toml:2:23)",
        "monitoring.history_sec >= monitoring.sample_interval_sec"}},
      {"long-history resolution finer than sampling",
       file("[monitoring]\nsample_interval_sec = 120\n"),
       {"bad.toml:2:23", "monitoring.sample_interval_sec", "120",
        "must be at most monitoring.long_history_interval_sec (60.0, from defaults)",
        "monitoring.long_history_interval_sec >= monitoring.sample_interval_sec"}},
      {"too many snapshots",
       file("[monitoring]\nsample_interval_sec = 0.01\nhistory_sec = 86400\n"),
       {"bad.toml:3:15", "monitoring.history_sec", "86400",
        "keeps 8640000 points with monitoring.sample_interval_sec (0.01, from bad.toml:2:23) and "
        "monitoring.history_sec, more than 1000000",
        "monitoring.history_sec / monitoring.sample_interval_sec at most 1000000"}},
      {"site history shorter than a leak verdict needs",
       file("[profiling]\nleak_min_observations = 10\nmax_history_per_site = 8\n"),
       {"bad.toml:3:24", "profiling.max_history_per_site", "8",
        "must be at least profiling.leak_min_observations (10, from bad.toml:2:25)",
        "profiling.max_history_per_site >= profiling.leak_min_observations"}},
      {"too many leak-history points",
       file("[profiling]\nmax_tracked_sites = 1000000\nmax_history_per_site = 10000\n"),
       {"bad.toml:3:24", "profiling.max_history_per_site", "10000",
        "keeps 10000000000 points with profiling.max_tracked_sites (1000000, from bad.toml:2:21) and "
        "profiling.max_history_per_site, more than 100000000",
        "profiling.max_history_per_site x profiling.max_tracked_sites at most 100000000"}},
      {"breaker minimum above its window",
       file("[limits]\ncircuit_breaker_min_calls = 200\n"),
       {"bad.toml:2:29", "limits.circuit_breaker_min_calls", "200",
        "must be at most limits.circuit_breaker_window (100, from defaults)",
        "limits.circuit_breaker_window >= limits.circuit_breaker_min_calls"}},
      {"distributed without redis",
       file("[limits]\ndistributed = true\n"),
       {"bad.toml:2:15", "limits.distributed", "true", "needs a Redis server in redis.url (\"\", from defaults)",
        "limits.distributed = false, or a redis.url"}},
      {"two different ports",
       file("[monitoring]\nmetrics_port = 3001\n[http]\nport = 3002\n"),
       {"bad.toml:4:8", "http.port", "3002",
        "conflicts with monitoring.metrics_port = 3001 at bad.toml:2:16; both set the HTTP port",
        "only one of monitoring.metrics_port and http.port, or both with the same value"}},
      // Unknown keys and sections, with the nearest valid name.
      {"misspelt key",
       file("[targets]\np50_latency = 1500\n"),
       {"bad.toml:2:1", "targets.p50_latency", "1500", "unknown key; did you mean 'targets.p50_latency_ms'?",
        "a key of [targets]: p50_latency_ms, p95_latency_ms, max_memory_mb, memory_alert_mb, min_throughput_pps, "
        "max_ai_overhead_percent"}},
      {"key in the wrong section",
       file("[monitoring]\nport = 3000\n"),
       {"bad.toml:2:1", "monitoring.port", "3000", "unknown key; did you mean 'http.port'?",
        "a key of [monitoring]: enabled, sample_interval_sec, alert_on_violations, history_sec, long_history_sec, "
        "long_history_interval_sec, throughput_window_sec, metrics_port"}},
      {"misspelt section",
       file("[target]\np50_latency_ms = 1500\n"),
       {"bad.toml:1:2", "target", "", "unknown section; did you mean 'targets'?",
        "one of the sections targets, monitoring, profiling, cache, limits, http, redis"}},
      {"key outside any section",
       file("p50_latency_ms = 1500\n"),
       {"bad.toml:1:1", "p50_latency_ms", "1500",
        "unknown key outside any section; did you mean 'targets.p50_latency_ms'?",
        "keys inside the sections [targets] [monitoring] [profiling] [cache] [limits] [http] [redis]"}},
      {"first error in file order",
       file("[redis]\npool_size = 0\n[cache]\nmax_size_mb = 0\n"),
       {"bad.toml:2:13", "redis.pool_size", "0", "must be at least 1", "an integer from 1 to 1024"}},
      // Bad environment values.
      {"variable not an integer",
       env({{"RIPTIDE_PERF_P50_LATENCY_MS", "abc"}}),
       {"RIPTIDE_PERF_P50_LATENCY_MS", "targets.p50_latency_ms", "abc", "is not an integer",
        "an integer from 1 to 3600000"}},
      {"variable negative",
       env({{"RIPTIDE_PERF_MAX_MEMORY_MB", "-1"}}),
       {"RIPTIDE_PERF_MAX_MEMORY_MB", "targets.max_memory_mb", "-1", "must be at least 1",
        "an integer from 1 to 16777216"}},
      {"variable with spaces",
       env({{"RIPTIDE_PERF_MEMORY_ALERT_MB", " 700"}}),
       {"RIPTIDE_PERF_MEMORY_ALERT_MB", "targets.memory_alert_mb", " 700", "is not an integer",
        "an integer from 1 to 16777216"}},
      {"variable beyond 64 bits",
       env({{"RIPTIDE_PERF_TARGETS_P95_LATENCY_MS", "99999999999999999999999"}}),
       {"RIPTIDE_PERF_TARGETS_P95_LATENCY_MS", "targets.p95_latency_ms", "99999999999999999999999",
        "must be at most 3600000", "an integer from 1 to 3600000"}},
      {"variable not a boolean",
       env({{"RIPTIDE_PERF_MONITORING_ENABLED", "yes"}}),
       {"RIPTIDE_PERF_MONITORING_ENABLED", "monitoring.enabled", "yes", "is not a boolean", "true, false, 1 or 0"}},
      {"spec port variable out of range",
       env({{"RIPTIDE_PERF_METRICS_PORT", "99999"}}),
       {"RIPTIDE_PERF_METRICS_PORT", "http.port", "99999", "must be at most 65535", "an integer from 0 to 65535"}},
      {"spec interval variable not a duration",
       env({{"RIPTIDE_PERF_METRICS_INTERVAL_SEC", "soon"}}),
       {"RIPTIDE_PERF_METRICS_INTERVAL_SEC", "monitoring.sample_interval_sec", "soon",
        "is neither a number nor a duration", "a number of seconds from 0.01 to 3600" + kSecondsForm}},
      {"variable empty",
       env({{"RIPTIDE_PERF_MIN_THROUGHPUT_PPS", ""}}),
       {"RIPTIDE_PERF_MIN_THROUGHPUT_PPS", "targets.min_throughput_pps", "", "is empty", "a number from 0 to 1000000"}},
      {"variable infinite",
       env({{"RIPTIDE_PERF_MIN_THROUGHPUT_PPS", "inf"}}),
       {"RIPTIDE_PERF_MIN_THROUGHPUT_PPS", "targets.min_throughput_pps", "inf", "is not a finite number",
        "a number from 0 to 1000000"}},
      {"unknown variable",
       env({{"RIPTIDE_PERF_P50_LATENCY", "1500"}}),
       {"RIPTIDE_PERF_P50_LATENCY", "RIPTIDE_PERF_P50_LATENCY", "1500",
        "unknown variable; did you mean 'RIPTIDE_PERF_P50_LATENCY_MS'?", kEnvForm}},
      {"unknown per-key variable",
       env({{"RIPTIDE_PERF_CACHE_MAX_SIZE", "10"}}),
       {"RIPTIDE_PERF_CACHE_MAX_SIZE", "RIPTIDE_PERF_CACHE_MAX_SIZE", "10",
        "unknown variable; did you mean 'RIPTIDE_PERF_CACHE_MAX_SIZE_MB'?", kEnvForm}},
      {"two port variables disagree",
       env({{"RIPTIDE_PERF_METRICS_PORT", "3001"}, {"RIPTIDE_PERF_HTTP_PORT", "3002"}}),
       {"RIPTIDE_PERF_METRICS_PORT", "http.port", "3001",
        "conflicts with RIPTIDE_PERF_HTTP_PORT=3002; both set http.port",
        "only one of the two variables, or both with the same value"}},
      {"variable breaks a relation",
       env({{"RIPTIDE_PERF_P95_LATENCY_MS", "1000"}}),
       {"RIPTIDE_PERF_P95_LATENCY_MS", "targets.p95_latency_ms", "1000",
        "must be at least targets.p50_latency_ms (1500, from defaults)",
        "targets.p95_latency_ms >= targets.p50_latency_ms"}},
      {"config variable names no file",
       env({{"RIPTIDE_PERF_CONFIG", "/nonexistent/riptide.toml"}}),
       {"RIPTIDE_PERF_CONFIG", "(file)", "/nonexistent/riptide.toml", "cannot be read: No such file or directory",
        "the path of a readable TOML file"}},
      {"config variable empty",
       env({{"RIPTIDE_PERF_CONFIG", ""}}),
       {"RIPTIDE_PERF_CONFIG", "(file)", "", "is empty",
        "the path of a readable TOML file, or leave RIPTIDE_PERF_CONFIG unset to use ./performance.toml when "
        "present"}},
      {"explicit file missing",
       [] { (void)rp::Config::load(fs::path("/nonexistent/explicit.toml")); },
       {"Config::load", "(file)", "/nonexistent/explicit.toml", "cannot be read: No such file or directory",
        "the path of a readable TOML file"}},
      {"explicit path is a directory",
       [] { (void)rp::Config::load(fs::path("/tmp")); },
       {"Config::load", "(file)", "/tmp", "is a directory", "the path of a readable TOML file"}},
      // Values set in code.
      {"code breaks a relation",
       code([](rp::Config& c) { c.targets.p95_latency_ms = 10; }),
       {"code", "targets.p95_latency_ms", "10", "must be at least targets.p50_latency_ms (1500, from code)",
        "targets.p95_latency_ms >= targets.p50_latency_ms"}},
      {"code sets zero threads",
       code([](rp::Config& c) { c.http.threads = 0; }),
       {"code", "http.threads", "0", "must be at least 1", "an integer from 1 to 64"}},
  };
}

TEST(ConfigBadInput, EachErrorNamesSourceKeyValueAndAcceptedForm) {
  const auto cases = bad_cases();
  EXPECT_GE(cases.size(), 30u);
  std::set<std::string> names;
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case name";
    try {
      c.run();
      ADD_FAILURE() << "no error for: " << c.name;
    } catch (const rp::ConfigError& e) {
      EXPECT_EQ(e.source(), c.expected.source);
      EXPECT_EQ(e.key(), c.expected.key);
      EXPECT_EQ(e.value(), c.expected.value);
      EXPECT_EQ(e.problem(), c.expected.problem);
      EXPECT_EQ(e.accepted(), c.expected.accepted);
    }
  }
}

TEST(ConfigBadInput, FileAndVariableTogetherNameBothSources) {
  ScopedWorld world(Env{{"RIPTIDE_PERF_P95_LATENCY_MS", "2000"}});
  const auto path = world.write("t.toml", "[targets]\np50_latency_ms = 3000\n");
  try {
    (void)rp::Config::load(path);
    FAIL() << "no error";
  } catch (const rp::ConfigError& e) {
    EXPECT_EQ(e.source(), "RIPTIDE_PERF_P95_LATENCY_MS");
    EXPECT_EQ(e.key(), "targets.p95_latency_ms");
    EXPECT_EQ(e.value(), "2000");
    EXPECT_EQ(e.problem(), "must be at least targets.p50_latency_ms (3000, from " + path.string() + ":2:18)");
  }
}

TEST(ConfigBadInput, ColumnsCountCharactersNotBytes) {
  try {
    (void)rp::Config::from_toml("[profiling]\n# ünïcode\ndump_directory = \"/tmp/é\" ; x = 1\n", "u.toml");
    FAIL() << "no error";
  } catch (const rp::ConfigError& e) {
    EXPECT_EQ(e.source(), "u.toml:3:27");
    EXPECT_EQ(e.key(), "profiling.dump_directory");
  }
  try {
    (void)rp::Config::from_toml("[http]\nbind = \"é\"\n", "u.toml");
    FAIL() << "no error";
  } catch (const rp::ConfigError& e) {
    EXPECT_EQ(e.source(), "u.toml:2:8");
    EXPECT_EQ(e.value(), "\"é\"");
  }
}

}  // namespace
