#pragma once
// The library's configuration: every section and key of performance.toml. Precedence, lowest first:
// built-in defaults < performance.toml < RIPTIDE_PERF_* environment variables < values set in code.
// docs/configuration.md lists every key with its default, range, variable and meaning.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace riptide::performance {

/// What the host promises its users; check_targets() compares measurements against these.
struct PerformanceTargets {
  std::uint64_t p50_latency_ms = 1500;    ///< median request latency ceiling
  std::uint64_t p95_latency_ms = 5000;    ///< tail request latency ceiling (>= p50)
  std::uint64_t max_memory_mb = 600;      ///< RSS ceiling in MiB
  std::uint64_t memory_alert_mb = 650;    ///< RSS above this is logged as an alert (>= max_memory_mb)
  double min_throughput_pps = 70.0;       ///< pages per second floor
  double max_ai_overhead_percent = 30.0;  ///< share of request time spent in the "ai" stage

  bool operator==(const PerformanceTargets&) const = default;
};

struct MonitoringConfig {
  bool enabled = true;               ///< start the memory sampler with start_monitoring()
  double sample_interval_sec = 1.0;  ///< memory snapshot period (examples/performance.toml: 60; the default is finer)
  bool alert_on_violations = true;   ///< log target violations and memory alerts
  double history_sec = 3600.0;       ///< full-resolution snapshot history kept
  double long_history_sec = 7 * 24 * 3600.0;  ///< downsampled history kept
  double long_history_interval_sec = 60.0;    ///< resolution of the downsampled history
  double throughput_window_sec = 60.0;        ///< sliding window for pages/s and windowed percentiles
  bool operator==(const MonitoringConfig&) const = default;
};

struct ProfilingConfig {
  bool enabled = true;                            ///< heap profiling (needs jemalloc started with prof:true)
  double leak_detection_interval_sec = 30.0;      ///< heap-profile observation period (examples/performance.toml: 300)
  bool allocation_tracking = true;                ///< top allocation sites from the sampled profile
  bool jemalloc_stats = true;                     ///< read jemalloc counters in every snapshot
  std::uint32_t lg_prof_sample = 19;              ///< mean sampling interval 2^n bytes (19 = 512 KiB)
  std::uint32_t leak_min_observations = 4;        ///< observations of a site before it can be a suspect
  std::uint64_t leak_min_bytes = 1 << 20;         ///< estimated in-use bytes below which a site is ignored
  double leak_min_growth_bytes_per_sec = 1024.0;  ///< slower growth is not reported
  double leak_min_r_squared = 0.8;                ///< fit quality that separates steady growth from churn
  std::uint32_t max_tracked_sites = 4096;         ///< bound on allocation sites with leak history
  std::uint32_t max_history_per_site = 64;        ///< observations kept per site (>= leak_min_observations)
  double peak_profile_growth = 0.10;       ///< heap growth over the last peak profile that captures a new one (0: off)
  double temporary_allocation_ms = 100.0;  ///< an allocation freed within this is temporary (lifetime view)
  std::uint64_t symbolizer_cache_max_bytes = 4 << 20;  ///< symbolized frames + frame classes cached
  std::uint64_t symbolizer_dwarf_max_bytes = 4 << 20;  ///< libdw's parsed DWARF before its session is rebuilt
  bool debuginfod = false;     ///< let the symbolizer download missing debug info from DEBUGINFOD_URLS (network)
  std::string dump_directory;  ///< where prof.dump writes (empty: $TMPDIR or /tmp)
  // Memory captures before the OOM killer (docs/captures.md).
  std::string capture_dir;                  ///< where captures are written (empty: no captures)
  std::uint32_t capture_max_files = 5;      ///< captures kept in capture_dir; the oldest is removed first
  double capture_min_interval_sec = 300.0;  ///< at least this long between two captures
  double capture_cgroup_share = 0.9;        ///< capture when the cgroup's working set reaches this share of its limit
  std::uint64_t capture_min_free_mb = 256;  ///< skip a capture that would leave less free space on the file system
  std::uint64_t capture_max_mb = 256;       ///< skip a capture larger than this
  bool operator==(const ProfilingConfig&) const = default;
};

struct CacheConfig {
  bool enabled = true;              ///< in-process (L1) cache
  std::uint64_t max_size_mb = 100;  ///< L1 weight bound in MiB
  double ttl_sec = 3600.0;          ///< default time to live, both layers
  bool operator==(const CacheConfig&) const = default;
};

struct LimitsConfig {
  std::uint32_t max_concurrent_requests = 100;        ///< permits handed out at once
  double rate_limit_per_second = 50.0;                ///< global request rate
  std::uint32_t rate_limit_burst = 50;                ///< requests admitted at once before pacing
  double per_client_rate_per_second = 10.0;           ///< default per-client rate
  std::uint32_t per_client_burst = 10;                ///< per-client burst
  std::uint64_t max_tracked_clients = 100'000;        ///< bound on per-client state
  double circuit_breaker_threshold = 0.5;             ///< failure rate that opens a breaker
  std::uint32_t circuit_breaker_window = 100;         ///< calls in the count-based sliding window
  std::uint32_t circuit_breaker_min_calls = 10;       ///< calls before the rate is judged
  double circuit_breaker_open_sec = 30.0;             ///< wait in OPEN before HALF_OPEN
  std::uint32_t circuit_breaker_half_open_calls = 5;  ///< trial calls permitted in HALF_OPEN
  double slow_call_ms = 10'000.0;                     ///< calls slower than this count as slow
  double slow_call_rate_threshold = 1.0;              ///< slow-call share that opens a breaker (1.0 = never)
  bool distributed = false;                           ///< share the global limit through Redis
  bool fail_open = true;                              ///< when Redis is down: admit (true) or refuse (false)
  bool operator==(const LimitsConfig&) const = default;
};

struct HttpConfig {
  static constexpr std::uint32_t kMaxThreads = 64;  ///< io threads accepted, here and by http::Server
  bool enabled = true;                              ///< run the embedded server with start_monitoring()
  std::string bind = "127.0.0.1";                   ///< loopback by default: exposing it is a decision
  std::uint16_t port = 3000;                ///< also settable as monitoring.metrics_port (the original name of the key)
  std::string token;                        ///< bearer token; required off loopback for gc and pprof
  std::uint32_t threads = 1;                ///< io threads, 1 to kMaxThreads
  std::uint32_t max_connections = 256;      ///< at once; when full, eviction or 503 (http::Server)
  std::uint32_t header_limit_bytes = 8192;  ///< request header limit
  std::uint32_t body_limit_bytes = 65536;   ///< request body limit (a pprof symbol request lists every unnamed address)
  double read_timeout_sec = 10.0;           ///< time to receive a whole request
  double idle_timeout_sec = 30.0;           ///< keep-alive idle time
  double gc_cooldown_sec = 10.0;            ///< minimum time between POST /metrics/memory/gc
  std::uint32_t cpu_profile_max_sec = 60;   ///< bound on /debug/pprof/profile?seconds=
  std::uint32_t max_trend_points = 1000;    ///< cap on points one trend query returns
  bool operator==(const HttpConfig&) const = default;
};

struct RedisConfig {
  std::string url;                      ///< redis://host:port[/db]; empty disables the Redis layer
  double connect_timeout_ms = 200.0;    ///< per connection attempt
  double command_timeout_ms = 100.0;    ///< per command
  std::string key_prefix = "riptide:";  ///< namespaces every key this library writes
  std::uint32_t pool_size = 4;          ///< connections kept
  bool operator==(const RedisConfig&) const = default;
};

struct Config {
  PerformanceTargets targets;
  MonitoringConfig monitoring;
  ProfilingConfig profiling;
  CacheConfig cache;
  LimitsConfig limits;
  HttpConfig http;
  RedisConfig redis;

  bool operator==(const Config&) const = default;

  /// Defaults, then the file (explicit `path`, else $RIPTIDE_PERF_CONFIG, else ./performance.toml when it
  /// exists), then the environment. Throws ConfigError naming source, key, value and accepted form.
  [[nodiscard]] static Config load(const std::optional<std::filesystem::path>& path = std::nullopt);

  /// Defaults overlaid with TOML text; `source_name` is used in error messages ("performance.toml").
  [[nodiscard]] static Config from_toml(std::string_view toml_text, std::string_view source_name = "<string>");

  /// Overlays TOML text onto this configuration (keys not present keep their values). Checks each key's
  /// type and range; relations between keys are checked by validate(), once every layer is applied.
  void apply_toml(std::string_view toml_text, std::string_view source_name);

  /// Overlays RIPTIDE_PERF_* variables from `environment` (name -> value; other names are ignored, as are
  /// RIPTIDE_PERF_CONFIG and the test harness's RIPTIDE_PERF_TEST_*, _SOURCE_DIR, _BINARY_DIR). Checks like
  /// apply_toml(); an unknown RIPTIDE_PERF_* name is an error that suggests the nearest valid one.
  void apply_environment(const std::map<std::string, std::string>& environment);

  /// Overlays RIPTIDE_PERF_* variables of this process.
  void apply_process_environment();

  /// Checks ranges and relations (p95 >= p50, memory_alert_mb >= max_memory_mb, ...); throws ConfigError.
  /// `source` names where the values came from in the message ("code" for values set by the host).
  void validate(std::string_view source = "code") const;

  /// Dotted names ("targets.p95_latency_ms") of the keys whose values differ from `other`'s, in the order of
  /// the key table (docs/configuration.md). Aliases are not listed: a changed monitoring.metrics_port shows
  /// as http.port.
  [[nodiscard]] std::vector<std::string> changed_keys(const Config& other) const;

  /// The effective configuration as TOML text (for logs and `scripts/demo`); the token is redacted.
  [[nodiscard]] std::string to_toml() const;
};

}  // namespace riptide::performance
