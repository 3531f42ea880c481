// The overhead harness: how many pages/s, and how much CPU per page, a scraper-like, allocation-heavy
// workload loses when the whole library runs beside it, against what a user compares with: the same
// program without the library.
//
// Each configuration runs in its own process, so allocator state, threads and caches never leak from one
// measurement into the next: the library's configurations re-execute this binary with --child=<name>,
// the no-library ones run overhead_workload_plain / overhead_workload_jemalloc (built from the same
// workload sources, without the library). Configurations are alternated, and the order rotates every
// round, so slow drifts of a shared machine and a configuration's after-effects hit all of them alike;
// each ratio is paired with the reference's run of the same round.
//
//   overhead_benchmark                               # no library (glibc, jemalloc), A, B; 5 rounds
//   overhead_benchmark --callgrind                   # ... and instructions per page under callgrind
//   overhead_benchmark --mode features --rounds 5    # one child per feature: the per-feature table
//   overhead_benchmark --mode background --seconds 180   # the library's threads' CPU over 3 minutes of B
//   overhead_benchmark --output runs.json            # every run, the machine and the settings as JSON
//
// plain_glibc: the workload alone, glibc malloc. plain_jemalloc: the workload alone, jemalloc without
//    profiling (prof:false, MALLOC_CONF unset).
// A: the library linked, jemalloc with the heap profiler compiled in (prof:true from
//    RIPTIDE_PERF_ENABLE_HEAP_PROFILING) but not sampling (MALLOC_CONF=prof_active:false), nothing started.
// B: everything at defaults: memory sampler (1 s) and target checker, heap sampling at lg_prof_sample 19,
//    leak detection every 10 s, per page record_request + stage timers + two limiter checks + cache get
//    and put, and the HTTP server on 127.0.0.1:0 scraped every second on every GET endpoint.
#include <riptide/performance/cache/cache_stats.hpp>
#include <riptide/performance/cache/tiered_cache.hpp>
#include <riptide/performance/core/config.hpp>
#include <riptide/performance/core/time_format.hpp>
#include <riptide/performance/http/memory_metrics_router.hpp>
#include <riptide/performance/http/server.hpp>
#include <riptide/performance/limits/gcra_limiter.hpp>
#include <riptide/performance/limits/keyed_rate_limiter.hpp>
#include <riptide/performance/manager/performance_manager.hpp>
#include <riptide/performance/profiling/allocation_analyzer.hpp>
#include <riptide/performance/profiling/enable_heap_profiling.hpp>
#include <riptide/performance/profiling/heap_profiling_control.hpp>
#include <riptide/performance/profiling/leak_detector.hpp>

#include <pthread.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_protocol.hpp"
#include "scraper/site.hpp"
#include "scraper/transport.hpp"
#include "worker_pool.hpp"
#include "workload.hpp"

// The same binary serves every library configuration, so the profiler is compiled in for all of them; A
// and the configurations without sampling switch it off through MALLOC_CONF (read after malloc_conf, so
// it wins).
RIPTIDE_PERF_ENABLE_HEAP_PROFILING();

namespace rp = riptide::performance;
namespace ex = riptide::example;
namespace ov = riptide::overhead;
using namespace std::chrono_literals;
using Json = nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------------
// What a child runs.

struct Features {
  bool memory = false;       // sampler thread (1 s snapshots) + target checker (start_monitoring)
  bool sampling = false;     // jemalloc heap sampling active at lg_prof_sample 19
  bool allocations = false;  // allocation analysis (counters + heap profile) once per scrape interval
  bool leaks = false;        // leak detector observing every 10 s in the background
  bool http = false;         // embedded server, every GET endpoint scraped once per scrape interval
  unsigned heavy_every = 1;  // scrape the heap-profile routes every Nth round only (0: never)
  bool cache = false;        // TieredCache (L1) get per page, put on a miss
  bool hot = false;          // record_request + stage timers + keyed and global limiter checks per page
};

struct ConfigurationInfo {
  const char* name;
  const char* row;  // the tables' description
  Features features;
  const char* executable = nullptr;    // the no-library binary next to this one; nullptr: this binary
  const char* allocator = "jemalloc";  // what the child must report having run on
};

// B = every feature; each other library configuration switches exactly one on (leaks and allocations need
// the sampling, so theirs includes it: the table says so).
const std::vector<ConfigurationInfo>& configurations() {
  static const std::vector<ConfigurationInfo> all = {
      {"plain_glibc", "no library, glibc malloc", {}, "overhead_workload_plain", "glibc"},
      {"plain_jemalloc", "no library, jemalloc without profiling", {}, "overhead_workload_jemalloc"},
      {"A", "library linked, profiler compiled in but inactive, nothing started", {}},
      {"memory", "memory tracking (sampler 1 s, target checker)", {.memory = true}},
      {"sampling", "allocation sampling (prof_active, lg_prof_sample 19)", {.sampling = true}},
      {"allocations", "allocation tracking (sampling + analysis every 1 s)", {.sampling = true, .allocations = true}},
      {"leaks", "leak detection (sampling + heap profile every 10 s)", {.sampling = true, .leaks = true}},
      {"http", "HTTP endpoints (all GET endpoints scraped every 1 s)", {.http = true}},
      {"http_light",
       "HTTP endpoints without heap-profile routes (no leaks, allocations, pprof)",
       {.http = true, .heavy_every = 0}},
      {"cache", "cache (L1 get + put per page)", {.cache = true}},
      {"hot", "request/stage timers + limiter checks per page", {.hot = true}},
      {"B",
       "total: everything on at defaults",
       {.memory = true,
        .sampling = true,
        .allocations = true,
        .leaks = true,
        .http = true,
        .cache = true,
        .hot = true}},
      {"B_light",
       "total, heap-profile routes scraped every 10 s (others every 1 s)",
       {.memory = true,
        .sampling = true,
        .allocations = true,
        .leaks = true,
        .http = true,
        .heavy_every = 10,
        .cache = true,
        .hot = true}},
  };
  return all;
}

const ConfigurationInfo* find_configuration(std::string_view name) {
  for (const auto& c : configurations()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

struct Settings {
  ov::WorkloadSettings workload;
  std::chrono::milliseconds scrape_interval{1000};
  double leak_interval_sec = 10.0;
  unsigned seconds = 0;          // > 0: the background mode's run length (pages cycle until then)
  unsigned warmup_seconds = 60;  // the background mode's first window (cold symbolizer)
};

// Every GET endpoint of the server except the CPU profile (it samples the process for N seconds on
// demand: a diagnostic, not a scrape) and the dashboard (static assets from memory).
const std::vector<std::string>& scrape_targets(bool light = false) {
  // The light set leaves out the three routes that take a heap profile on every request.
  static const std::vector<std::string> light_targets = {"/metrics/memory/snapshot",
                                                         "/metrics/memory/trend?duration=1h&interval=1m",
                                                         "/metrics/memory/health", "/metrics", "/metrics/performance"};
  if (light) return light_targets;
  static const std::vector<std::string> targets = {
      "/metrics/memory/snapshot",    "/metrics/memory/leaks",
      "/metrics/memory/allocations", "/metrics/memory/trend?duration=1h&interval=1m",
      "/metrics/memory/health",      "/metrics",
      "/metrics/performance",        "/debug/pprof/heap",
  };
  return targets;
}

// CPU seconds of every live thread of this process by thread name, from /proc/self/task/*/stat (clock
// ticks, 10 ms): which of the library's threads the background CPU goes to. Threads that have ended are
// missing; the total background figure comes from the process clock instead, which keeps them.
std::map<std::string, double> cpu_seconds_by_thread_name() {
  std::map<std::string, double> by_name;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator{"/proc/self/task", error}) {
    std::string name;
    std::getline(std::ifstream{task.path() / "comm"}, name);
    std::string stat;
    std::getline(std::ifstream{task.path() / "stat"}, stat);
    const auto after_name = stat.rfind(')');  // the name field may hold spaces; the rest does not
    if (after_name == std::string::npos) continue;
    std::istringstream fields{stat.substr(after_name + 2)};
    std::string field;
    double utime = 0, stime = 0;
    // Fields 3..15 of stat(5): state ... utime (14) stime (15).
    for (int index = 3; index <= 15 && fields >> field; ++index) {
      if (index == 14) utime = std::strtod(field.c_str(), nullptr);
      if (index == 15) stime = std::strtod(field.c_str(), nullptr);
    }
    by_name[name] += (utime + stime) / tick;
  }
  return by_name;
}

// The scrape client: one keep-alive connection, every endpoint once per interval, like a Prometheus
// server plus a dashboard plus a profile collector all polling at 1 s. Its own CPU is reported apart:
// in production the client is another process.
class ScrapeClient {
 public:
  ScrapeClient(std::uint16_t port, std::chrono::milliseconds interval, unsigned heavy_every)
      : port_(port), interval_(interval), heavy_every_(heavy_every), thread_([this] { run(); }) {
    handle_ = thread_.native_handle();
  }
  ~ScrapeClient() { stop(); }

  void stop() {
    {
      std::lock_guard lock{mutex_};
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  /// The client thread's CPU so far, while it runs or after it stopped.
  [[nodiscard]] double cpu_seconds() const {
    const double final_cpu = cpu_s_.load();
    if (final_cpu >= 0) return final_cpu;
    return ov::thread_cpu_seconds(handle_).value_or(std::max(0.0, cpu_s_.load()));
  }

  [[nodiscard]] Json to_json() const {
    Json endpoints = Json::object();
    for (const auto& [target, e] : endpoints_) {
      endpoints[target] = {
          {"requests", e.requests},       {"non_200", e.failures},
          {"last_status", e.last_status}, {"mean_ms", e.requests ? e.total_ms / static_cast<double>(e.requests) : 0.0},
          {"max_ms", e.max_ms},           {"mean_bytes", e.requests ? e.bytes / e.requests : 0}};
    }
    return {{"rounds", rounds_}, {"cpu_s", cpu_seconds()}, {"endpoints", endpoints}};
  }

 private:
  struct Endpoint {
    std::uint64_t requests = 0, failures = 0, bytes = 0;
    unsigned last_status = 0;
    double total_ms = 0, max_ms = 0;
  };

  void run() {
    (void)pthread_setname_np(pthread_self(), "ov-scrape");
    ex::FetchClient client{"127.0.0.1", port_, 30s};
    auto next = std::chrono::steady_clock::now();
    std::unique_lock lock{mutex_};
    while (!stop_) {
      lock.unlock();
      const bool light = heavy_every_ == 0 || rounds_ % heavy_every_ != 0;
      for (const auto& target : scrape_targets(light)) {
        const auto start = std::chrono::steady_clock::now();
        const auto result = client.get({"127.0.0.1", target});
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        Endpoint& e = endpoints_[target];
        ++e.requests;
        e.failures += result.status == 200 ? 0 : 1;
        e.last_status = result.status;
        e.bytes += result.body.size();
        e.total_ms += ms;
        e.max_ms = std::max(e.max_ms, ms);
      }
      ++rounds_;
      next += interval_;
      lock.lock();
      wake_.wait_until(lock, next, [this] { return stop_; });
    }
    cpu_s_.store(ov::thread_cpu_seconds());
  }

  std::uint16_t port_;
  std::chrono::milliseconds interval_;
  unsigned heavy_every_;
  std::map<std::string, Endpoint> endpoints_;
  std::uint64_t rounds_ = 0;
  std::atomic<double> cpu_s_{-1.0};  // set as the thread ends
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
  pthread_t handle_{};
};

// Runs `body` every `interval` on its own thread until destroyed (allocation analysis without HTTP).
class Periodic {
 public:
  Periodic(std::chrono::milliseconds interval, std::function<void()> body)
      : interval_(interval), body_(std::move(body)), thread_([this] { run(); }) {}
  ~Periodic() {
    {
      std::lock_guard lock{mutex_};
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    std::unique_lock lock{mutex_};
    while (!wake_.wait_for(lock, interval_, [this] { return stop_; })) {
      lock.unlock();
      body_();
      lock.lock();
    }
  }
  std::chrono::milliseconds interval_;
  std::function<void()> body_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// The background mode's record while the workers cycle: the library's CPU (process CPU minus the
// workers' and the scrape client's) once a second, and the CPU by thread name at the end of the first
// window and at the end of the run.
Json sample_background(ov::WorkerPool& pool, const ScrapeClient* scraper, const Settings& settings) {
  const auto started = std::chrono::steady_clock::now();
  const double process_start = ov::process_cpu_seconds();
  auto library_cpu = [&] {
    return ov::process_cpu_seconds() - process_start - pool.workers_cpu_seconds() -
           (scraper ? scraper->cpu_seconds() : 0.0);
  };
  const double library_start = library_cpu();
  Json timeline = Json::array();
  Json threads_after_warmup = nullptr;
  for (unsigned second = 1; second <= settings.seconds; ++second) {
    std::this_thread::sleep_until(started + std::chrono::seconds{second});
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    timeline.push_back({elapsed, library_cpu() - library_start});
    if (second == settings.warmup_seconds) threads_after_warmup = cpu_seconds_by_thread_name();
  }
  return {{"warmup_s", settings.warmup_seconds},
          {"timeline", timeline},
          {"threads_after_warmup", threads_after_warmup},
          {"threads_at_end", cpu_seconds_by_thread_name()}};
}

int run_library_child(const ConfigurationInfo& info, const Settings& settings) {
  const Features f = info.features;
  const ex::Site site{{.seed = settings.workload.seed}};
  const std::vector<ov::PageJob> jobs = ov::make_page_list(site, settings.workload.seed, settings.workload.pages);

  rp::Config config;                                                          // library defaults ...
  config.profiling.leak_detection_interval_sec = settings.leak_interval_sec;  // ... but the brief's 10 s
  config.profiling.enabled = f.leaks || f.allocations || f.http;
  config.http.port = 0;
  config.validate("overhead_benchmark");

  // --- the library, set up before the clock starts (setup is not the steady-state cost we measure)
  const auto status = rp::HeapProfilingControl::status();
  std::shared_ptr<rp::PerformanceManager> manager;
  if (f.memory || f.hot || f.http) manager = rp::PerformanceManager::with_config(config);
  if (f.memory) manager->start_monitoring();  // sampler + checker; the leak detector too when profiling
  std::shared_ptr<rp::LeakDetector> leak_detector;
  if (f.leaks) {
    leak_detector = manager ? manager->memory_profiler().leak_detector() : nullptr;
    if (!leak_detector) leak_detector = std::make_shared<rp::LeakDetector>(config.profiling);
    if (!manager || !f.memory) leak_detector->start();  // start_monitoring() started the profiler's own
  }
  std::unique_ptr<Periodic> analysis;
  std::shared_ptr<rp::AllocationAnalyzer> analyzer;
  if (f.allocations && !f.http) {  // with HTTP the /allocations scrape is the analysis
    // The detector's dumps when it runs (as the router does), so one dump per interval serves both.
    analyzer = std::make_shared<rp::AllocationAnalyzer>(config.profiling, rp::system_clock(), nullptr, 20,
                                                        leak_detector ? leak_detector->heap_profiles() : nullptr);
    analysis = std::make_unique<Periodic>(settings.scrape_interval, [analyzer] { (void)analyzer->analyze(); });
  }
  std::unique_ptr<rp::TieredCache> cache;
  if (f.cache) cache = rp::TieredCache::from_config(config.cache, config.redis);
  std::unique_ptr<rp::KeyedRateLimiter> host_limits;
  std::unique_ptr<rp::GcraLimiter> global_limit;
  if (f.hot) {
    // Generous quotas: the check runs in full on every page but never refuses, so the work is unchanged.
    host_limits = std::make_unique<rp::KeyedRateLimiter>(
        rp::KeyedRateLimiterOptions{.default_quota = rp::RateQuota::per_second(1e7, 1'000'000)});
    global_limit = std::make_unique<rp::GcraLimiter>(rp::RateQuota::per_second(1e8, 1'000'000));
  }
  std::unique_ptr<rp::http::MemoryMetricsRouter> router;
  std::unique_ptr<rp::http::Server> server;
  std::unique_ptr<ScrapeClient> scraper;
  if (f.http) {
    rp::http::MemoryMetricsOptions options;
    // The manager's detector (not started unless leaks are on), so the router starts no second one.
    options.leak_detector = leak_detector ? leak_detector : manager->memory_profiler().leak_detector();
    rp::TieredCache* cache_ptr = cache.get();
    options.performance_json = [m = manager.get(), cache_ptr] {
      Json body = m->performance_json();
      if (cache_ptr && !body.contains("cache")) body["cache"] = cache_ptr->stats();
      return body;
    };
    router = std::make_unique<rp::http::MemoryMetricsRouter>(
        std::shared_ptr<rp::MemoryProfiler>(manager, &manager->memory_profiler()), manager->session_id(), options);
    rp::http::ServerOptions server_options;  // defaults, on a free loopback port
    server_options.port = 0;
    server = rp::http::Server::start(*router, server_options);
  }

  // --- the work. Without per-page library calls the step is the plain one, the very code the
  // no-library children run.
  std::atomic<std::uint64_t> cache_hits{0}, refused{0};
  ov::PageStep step = ov::process_page;
  if (f.cache || f.hot) {
    step = [&](ov::PageProcessor& processor, const ov::PageJob& job) {
      const auto page_start = std::chrono::steady_clock::now();
      const std::string url = processor.url_of(job);
      if (f.hot) {
        const auto& host = site.options().hosts[job.host_index].name;
        if (!host_limits->check(host).allowed) refused.fetch_add(1, std::memory_order_relaxed);
        if (!global_limit->check().allowed) refused.fetch_add(1, std::memory_order_relaxed);
      }
      // The cache is consulted and filled, but a hit does not skip the work: the harness measures what
      // the cache costs, not what it saves.
      if (f.cache && cache->get(url)) cache_hits.fetch_add(1, std::memory_order_relaxed);
      ov::PageResult result;
      if (f.hot) {
        std::string html;
        ex::ParsedPage parsed;
        {
          auto timer = manager->time_stage("fetch");
          html = processor.fetch(job);
        }
        {
          auto timer = manager->time_stage("parse");
          parsed = processor.parse(html, job);
        }
        auto timer = manager->time_stage("extract");
        result = processor.extract(parsed, job, html.size());
      } else {
        result = ov::process_page(processor, job);
      }
      if (f.cache) cache->put(url, result.record);
      if (f.hot) manager->record_request(std::chrono::steady_clock::now() - page_start);
      return result;
    };
  }
  if (f.http) scraper = std::make_unique<ScrapeClient>(server->port(), settings.scrape_interval, f.heavy_every);
  const bool cycle = settings.seconds > 0;
  ov::WorkerPool pool{site, jobs, settings.workload.workers, step, cycle};
  Json background = nullptr;
  if (cycle) {
    background = sample_background(pool, scraper.get(), settings);
    pool.stop();
  }
  const ov::PoolTotals totals = pool.join();

  // --- what the library did meanwhile (not timed)
  Json library = Json::object();
  if (scraper) {
    scraper->stop();
    library["scrape"] = scraper->to_json();
  }
  if (leak_detector) {
    if (const auto report = leak_detector->latest()) library["leak_observations"] = report->observations;
  }
  if (manager) library["requests_recorded"] = manager->request_histogram().count();
  if (f.memory) library["memory_samples"] = manager->memory_profiler().tracker().history_size();
  if (cache) library["cache"] = cache->stats();
  const auto active = rp::HeapProfilingControl::status();

  Json out = ov::result_json(info.name, totals, settings.workload.workers, scraper ? scraper->cpu_seconds() : 0.0);
  out["cache_hits"] = cache_hits.load();
  out["refused"] = refused.load();
  out["prof_enabled"] = status.enabled_at_start;
  out["prof_active"] = active.active;
  out["lg_prof_sample"] = rp::HeapProfilingControl::lg_sample().value_or(0);
  out["library"] = library;
  if (cycle) out["background"] = background;
  ov::print_result_line(out);

  scraper.reset();
  server.reset();
  router.reset();
  analysis.reset();
  if (leak_detector) leak_detector->stop();
  if (manager && manager->is_monitoring()) (void)manager->stop_monitoring();
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// The parent: spawns the children in alternation, collects their JSON lines, summarises.

std::string binary_directory() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  return std::filesystem::path{std::string{path, static_cast<std::size_t>(n)}}.parent_path().string();
}

// The command that runs `info` as a child: this binary for the library's configurations, the
// no-library binary beside it otherwise. The allocator's options come from the environment, set here
// for every configuration so that the user's own MALLOC_CONF cannot change one of them.
ov::ChildCommand child_command(const ConfigurationInfo& info, const Settings& settings) {
  const std::string directory = binary_directory();
  ov::ChildCommand command;
  command.argv = {directory + "/" + (info.executable ? info.executable : "overhead_benchmark"),
                  std::string{"--child="} + info.name};
  for (auto& argument : ov::workload_arguments(settings.workload)) command.argv.push_back(std::move(argument));
  if (info.executable) {
    // jemalloc at its defaults: prof:false, nothing sampled, no profiler state per thread.
    command.environment.emplace_back("MALLOC_CONF", std::nullopt);
    return command;
  }
  for (std::string argument : {std::string{"--scrape-interval-ms"}, std::to_string(settings.scrape_interval.count()),
                               std::string{"--leak-interval"}, std::to_string(settings.leak_interval_sec)}) {
    command.argv.push_back(std::move(argument));
  }
  if (settings.seconds > 0) {
    for (std::string argument : {std::string{"--seconds"}, std::to_string(settings.seconds),
                                 std::string{"--warmup-seconds"}, std::to_string(settings.warmup_seconds)}) {
      command.argv.push_back(std::move(argument));
    }
  }
  // Sampling off unless the configuration needs it; the rest of malloc_conf (prof:true, lg 19,
  // prof_accum) stays, so every library child runs the same allocator build and options.
  if (info.features.sampling) {
    command.environment.emplace_back("MALLOC_CONF", std::nullopt);
  } else {
    command.environment.emplace_back("MALLOC_CONF", "prof_active:false");
  }
  return command;
}

std::optional<ov::ChildOutcome> run_configuration(const ConfigurationInfo& info, const Settings& settings,
                                                  std::string& diagnostics) {
  auto outcome = ov::run_child(child_command(info, settings), diagnostics);
  if (!outcome) {
    diagnostics = std::string{info.name} + ": " + diagnostics;
    return std::nullopt;
  }
  if (outcome->result.value("allocator", "") != info.allocator) {
    diagnostics = std::string{info.name} + " ran on " + outcome->result.value("allocator", "?") + ", expected " +
                  info.allocator + " (how was it linked?)";
    return std::nullopt;
  }
  return outcome;
}

// Instructions of the workers' page loop per page, under callgrind: load-independent, so it resolves
// the inline cost (sampling, timers, limiter and cache calls) far below the machine's noise. Only the
// workers' loop is counted (--toggle-collect): the library's own threads run per second of wall time,
// which valgrind stretches ~50x, so counted here they would look ~50x heavier than they are; the
// background mode measures them instead. One worker, so the count does not depend on how the pages split.
std::optional<double> callgrind_instructions_per_page(const ConfigurationInfo& info, Settings settings,
                                                      const std::string& out_directory, std::string& diagnostics) {
  settings.workload.workers = 1;
  ov::ChildCommand command = child_command(info, settings);
  const std::string out_file = out_directory + "/callgrind." + info.name + ".out";
  command.argv.insert(command.argv.begin(), {"valgrind", "--tool=callgrind", "-q", "--collect-atstart=no",
                                             std::string{"--toggle-collect=*"} + ov::kCountedFunction + "*",
                                             "--callgrind-out-file=" + out_file});
  if (!ov::run_child(command, diagnostics)) {
    diagnostics = std::string{info.name} + " under callgrind: " + diagnostics;
    return std::nullopt;
  }
  std::ifstream in{out_file};
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("totals:", 0) == 0 || line.rfind("summary:", 0) == 0) {
      return std::strtod(line.c_str() + line.find(':') + 1, nullptr) / static_cast<double>(settings.workload.pages);
    }
  }
  diagnostics = "no totals in " + out_file;
  return std::nullopt;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A set of paired ratios and how far its median can be trusted. The resolution is one standard error of
// the median estimated from the median absolute deviation (sigma ~ 1.4826 MAD for normal noise, the
// median's standard error ~ 1.2533 sigma / sqrt(n)): robust to the one round a build on the shared machine
// spoils.
struct RatioSpread {
  double median = 0, mad = 0, min = 0, max = 0, resolution = 0;
  std::size_t n = 0;
};

RatioSpread spread_of(const std::vector<double>& values) {
  RatioSpread s;
  if (values.empty()) return s;
  s.n = values.size();
  s.median = median(values);
  std::vector<double> deviations;
  for (const double v : values) deviations.push_back(std::abs(v - s.median));
  s.mad = median(deviations);
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  s.min = *lo;
  s.max = *hi;
  s.resolution = 1.2533 * 1.4826 * s.mad / std::sqrt(static_cast<double>(s.n));
  return s;
}

Json to_json(const RatioSpread& s) {
  return {{"median", s.median},         {"mad", s.mad}, {"min", s.min}, {"max", s.max},
          {"resolution", s.resolution}, {"rounds", s.n}};
}

std::string describe(const RatioSpread& s) {
  char text[96];
  std::snprintf(text, sizeof text, "%.4f ±%.4f [%.4f-%.4f]", s.median, s.mad, s.min, s.max);
  return text;
}

// CPU per page of a run, the scrape client excluded (in production the scraper is another process).
double cpu_per_page(const Json& run) {
  return (run["cpu_s"].get<double>() - run["client_cpu_s"].get<double>()) / run["pages"].get<double>();
}

std::string machine_description() {
  std::string model;
  std::ifstream cpuinfo{"/proc/cpuinfo"};
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname u{};
  uname(&u);
  return std::to_string(std::thread::hardware_concurrency()) + " cores, " + model + ", " + u.sysname + " " + u.release;
}

[[noreturn]] void usage(int code) {
  (code ? std::cerr : std::cout)
      << "usage: overhead_benchmark [--mode defaults|features|background] [--configs A,B,...] [--rounds N]\n"
         "                          [--pages N] [--workers N] [--seed N] [--scrape-interval-ms N] [--leak-interval S]\n"
         "                          [--callgrind] [--callgrind-pages N] [--seconds N] [--warmup-seconds N]\n"
         "                          [--output runs.json]\n"
         "  --mode defaults    plain_glibc, plain_jemalloc, A and B alternated (default)\n"
         "  --mode features    A, one child per feature, B, alternated (the per-feature table)\n"
         "  --mode background  B for --seconds (default 180), the library's threads' CPU per second in the\n"
         "                     first --warmup-seconds (default 60) and after\n"
         "  --rounds N         rounds of alternation (default 5; the order rotates every round)\n"
         "  --pages N          fixed pages of work per child (default 6000)\n"
         "  --callgrind        also one run per configuration under valgrind's callgrind: instructions of the\n"
         "                     workers' page loop per page (--callgrind-pages, default 100, one worker)\n"
         "configurations: plain_glibc plain_jemalloc A memory sampling allocations leaks http http_light cache hot\n"
         "                B B_light\n";
  std::exit(code);
}

// The background mode: one child of B cycling the pages for --seconds, and the library's threads' CPU
// per second of wall time, in the first window (cold symbolizer: every return address is new) and after
// it (steady state), against the budget of 0.5% of one core in steady state.
int run_background_mode(const Settings& settings, const std::string& command, const std::string& output) {
  const ConfigurationInfo& info = *find_configuration("B");
  std::cout << "overhead_benchmark --mode background: B for " << settings.seconds << " s, " << settings.workload.workers
            << " workers cycling " << settings.workload.pages << " pages, first window " << settings.warmup_seconds
            << " s\nmachine: " << machine_description() << "; load average " << ov::load_average() << "\n";
  std::string diagnostics;
  const auto outcome = run_configuration(info, settings, diagnostics);
  if (!outcome) {
    std::cerr << "overhead_benchmark: " << diagnostics << "\n";
    return 1;
  }
  const Json& run = outcome->result;
  const Json& background = run["background"];
  const Json& timeline = background["timeline"];
  // Library CPU (cumulative) at a second of the timeline; second 0 is the start.
  auto at = [&](std::size_t second) {
    return second == 0
               ? std::array<double, 2>{0, 0}
               : std::array<double, 2>{timeline[second - 1][0].get<double>(), timeline[second - 1][1].get<double>()};
  };
  auto rate = [&](std::size_t from, std::size_t to) -> std::optional<double> {
    if (to <= from || to > timeline.size()) return std::nullopt;
    const auto a = at(from), b = at(to);
    return (b[1] - a[1]) / (b[0] - a[0]);
  };
  const std::size_t warmup = std::min<std::size_t>(settings.warmup_seconds, timeline.size());
  const auto cold = rate(0, warmup);
  const auto steady = rate(warmup, timeline.size());
  std::printf("\nlibrary threads' CPU per second of wall time (share of one core):\n");
  for (std::size_t from = 0; from < timeline.size(); from += 30) {
    const std::size_t to = std::min(from + 30, timeline.size());
    if (const auto r = rate(from, to)) std::printf("  %4zu-%4zu s  %.4f%%\n", from, to, *r * 100);
  }
  auto percent = [](const std::optional<double>& r) { return r ? std::to_string(*r * 100) + "%" : std::string{"n/a"}; };
  std::printf("first %zu s (cold symbolizer): %s of one core\n", warmup, percent(cold).c_str());
  std::printf("after %zu s (steady state):    %s of one core; budget <= 0.5%%: %s\n", warmup, percent(steady).c_str(),
              !steady            ? "n/a (run longer than the first window)"
              : *steady <= 0.005 ? "met"
                                 : "MISSED");
  std::printf(
      "CPU by thread name after the first window and at the end (s; workers ov-worker, client ov-scrape;\n"
      "unnamed library threads and the main thread share the process's name):\n");
  for (const auto& [name, cpu] : background["threads_at_end"].items()) {
    const double early =
        background["threads_after_warmup"].is_object() ? background["threads_after_warmup"].value(name, 0.0) : 0.0;
    std::printf("  %-16s %8.3f %8.3f\n", name.c_str(), early, cpu.get<double>());
  }
  std::printf("load average %.1f before, %.1f after\n", run["load_before"].get<double>(),
              run["load_after"].get<double>());
  Json summary = {{"cold_cores", cold ? Json(*cold) : Json(nullptr)},
                  {"steady_cores", steady ? Json(*steady) : Json(nullptr)},
                  {"budget_steady_cores", 0.005},
                  {"verdict", !steady            ? "n/a"
                              : *steady <= 0.005 ? "met"
                                                 : "missed"}};
  if (!output.empty()) {
    Json document = {{"benchmark", "overhead_benchmark"},
                     {"mode", "background"},
                     {"date", rp::format_rfc3339_utc(std::chrono::system_clock::now())},
                     {"command", command},
                     {"machine", machine_description()},
                     {"summary", summary},
                     {"run", run}};
    std::ofstream{output} << document.dump(2) << "\n";
    std::cout << "overhead_benchmark: run written to " << output << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  std::string mode = "defaults";
  std::string configs_flag;
  std::string output;
  std::string child;
  unsigned rounds = 5;
  bool callgrind = false;
  std::size_t callgrind_pages = 100;
  std::string command = argv[0];
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string_view flag = argv[i];
      command.append(" ").append(flag);  // append, not " " + string: g++ 12 warns falsely (-Wrestrict)
      if (flag == "--help" || flag == "-h") usage(0);
      if (flag.rfind("--child=", 0) == 0) {
        child = std::string{flag.substr(8)};
        continue;
      }
      if (flag == "--callgrind") {
        callgrind = true;
        continue;
      }
      if (i + 1 >= argc) {
        std::cerr << "overhead_benchmark: " << flag << " needs a value (or is unknown)\n";
        usage(2);
      }
      const std::string_view value = argv[++i];
      command.append(" ").append(value);
      if (ov::parse_workload_flag(flag, value, settings.workload)) continue;
      if (flag == "--mode") {
        mode = std::string{value};
        if (mode != "defaults" && mode != "features" && mode != "background") usage(2);
      } else if (flag == "--configs") {
        configs_flag = std::string{value};
      } else if (flag == "--rounds") {
        rounds = static_cast<unsigned>(std::max<std::uint64_t>(1, ov::parse_count(flag, value)));
      } else if (flag == "--scrape-interval-ms") {
        settings.scrape_interval = std::chrono::milliseconds{std::max<std::uint64_t>(10, ov::parse_count(flag, value))};
      } else if (flag == "--leak-interval") {
        settings.leak_interval_sec = std::strtod(std::string{value}.c_str(), nullptr);
      } else if (flag == "--seconds") {
        settings.seconds = static_cast<unsigned>(std::max<std::uint64_t>(1, ov::parse_count(flag, value)));
      } else if (flag == "--warmup-seconds") {
        settings.warmup_seconds = static_cast<unsigned>(ov::parse_count(flag, value));
      } else if (flag == "--callgrind-pages") {
        callgrind_pages = std::max<std::uint64_t>(1, ov::parse_count(flag, value));
      } else if (flag == "--output") {
        output = std::string{value};
      } else {
        std::cerr << "overhead_benchmark: unknown flag " << flag << "\n";
        usage(2);
      }
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "overhead_benchmark: " << e.what() << "\n";
    usage(2);
  }

  if (!child.empty()) {
    const ConfigurationInfo* info = find_configuration(child);
    if (!info || info->executable) usage(2);  // the no-library configurations are other binaries
    try {
      return run_library_child(*info, settings);
    } catch (const std::exception& e) {
      std::cerr << "overhead_benchmark --child=" << child << ": " << e.what() << "\n";
      return 1;
    }
  }

  if (mode == "background") {
    if (settings.seconds == 0) settings.seconds = 180;
    return run_background_mode(settings, command, output);
  }
  settings.seconds = 0;  // the rounds run fixed page lists

  // --- parent
  std::vector<const ConfigurationInfo*> order;
  if (!configs_flag.empty()) {
    std::string_view rest = configs_flag;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const auto name = rest.substr(0, comma);
      const auto* info = find_configuration(name);
      if (!info) {
        std::cerr << "overhead_benchmark: unknown configuration '" << name << "'\n";
        usage(2);
      }
      order.push_back(info);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  } else if (mode == "features") {
    for (const auto& c : configurations()) {
      if (!c.executable) order.push_back(&c);
    }
  } else {
    order = {find_configuration("plain_glibc"), find_configuration("plain_jemalloc"), find_configuration("A"),
             find_configuration("B")};
  }
  if (std::none_of(order.begin(), order.end(), [](const auto* c) { return std::string_view{c->name} == "A"; })) {
    order.insert(order.begin(), find_configuration("A"));  // the per-feature ratios need their baseline
  }

  std::cout << "overhead_benchmark: " << order.size() << " configurations x " << rounds << " rounds, "
            << settings.workload.pages << " pages per child, " << settings.workload.workers << " workers, seed "
            << settings.workload.seed << "\n"
            << "machine: " << machine_description() << "; load average " << ov::load_average() << "\n";

  Json runs = Json::array();
  std::map<std::string, std::vector<Json>> by_config;
  std::optional<std::uint64_t> checksum;
  bool deterministic = true;
  for (unsigned round = 0; round < rounds; ++round) {
    // Rotated each round: no configuration always runs first, or always right after a heavy one.
    std::vector<const ConfigurationInfo*> round_order = order;
    std::rotate(round_order.begin(), round_order.begin() + static_cast<std::ptrdiff_t>(round % order.size()),
                round_order.end());
    for (const auto* info : round_order) {
      std::string diagnostics;
      auto outcome = run_configuration(*info, settings, diagnostics);
      if (!outcome) {
        std::cerr << "overhead_benchmark: " << diagnostics << "\n";
        return 1;
      }
      Json& result = outcome->result;
      result["round"] = round;
      result["child_wall_s"] = outcome->wall_s;
      result["startup_s"] = std::max(0.0, outcome->wall_s - result["elapsed_s"].get<double>());
      const auto sum = result["checksum"].get<std::uint64_t>();
      if (checksum && *checksum != sum) deterministic = false;
      checksum = sum;
      std::printf(
          "  round %u %-14s %8.1f pages/s  %6.2f s  cpu %6.3f ms/page (workers %6.2f s, background %5.2f s, client "
          "%5.2f s)  start-up+exit %5.2f s  load %.1f\n",
          round + 1, info->name, result["pages_per_s"].get<double>(), result["elapsed_s"].get<double>(),
          cpu_per_page(result) * 1e3, result["worker_cpu_s"].get<double>(), result["background_cpu_s"].get<double>(),
          result["client_cpu_s"].get<double>(), result["startup_s"].get<double>(), result["load_after"].get<double>());
      std::fflush(stdout);
      by_config[info->name].push_back(result);
      runs.push_back(std::move(result));
    }
  }

  // --- instructions per page (load-independent), when asked for
  std::map<std::string, double> instructions;
  std::string callgrind_note = "not run (--callgrind)";
  if (callgrind) {
    char directory_template[] = "/tmp/overhead_callgrind.XXXXXX";
    const char* directory = mkdtemp(directory_template);
    Settings short_run = settings;
    short_run.workload.pages = callgrind_pages;
    callgrind_note = "valgrind not available";
    if (directory && std::system("valgrind --version >/dev/null 2>&1") == 0) {
      callgrind_note =
          std::string{"callgrind, "} + std::to_string(callgrind_pages) + " pages, 1 worker; files in " + directory;
      for (const auto* info : order) {
        if (instructions.contains(info->name)) continue;
        std::string diagnostics;
        const auto per_page = callgrind_instructions_per_page(*info, short_run, directory, diagnostics);
        if (!per_page) {
          std::cerr << "overhead_benchmark: " << diagnostics << "\n";
          return 1;
        }
        instructions[info->name] = *per_page;
        std::printf("  callgrind %-14s %.4g instructions per page\n", info->name, *per_page);
        std::fflush(stdout);
      }
    }
  }

  // --- summary. Wall-clock pages/s is what a user sees; on a shared machine it moves with everyone
  // else's load, so every configuration also gets CPU per page (scrape client excluded: in production the
  // scraper is another process), which is what pages/s becomes when the workers have the cores to
  // themselves, and, with --callgrind, instructions per page, which no load moves.
  Json summary = Json::object();
  std::vector<double> loads;
  std::printf("\n%-14s %9s %12s %12s %9s %15s %14s  %s\n", "config", "pages/s", "cpu ms/page", "worker ms/pg",
              "bg cores", "start-up share", "instr/page", "what");
  for (const auto* info : order) {
    if (summary.contains(info->name)) continue;
    std::vector<double> pps, cpu_ms, worker_ms, bg_cores, startup, startup_share;
    for (const Json& run : by_config[info->name]) {
      pps.push_back(run["pages_per_s"].get<double>());
      cpu_ms.push_back(cpu_per_page(run) * 1e3);
      worker_ms.push_back(run["worker_cpu_s"].get<double>() / run["pages"].get<double>() * 1e3);
      bg_cores.push_back(run["background_cpu_s"].get<double>() / run["elapsed_s"].get<double>());
      startup.push_back(run["startup_s"].get<double>());
      startup_share.push_back(run["startup_s"].get<double>() / run["child_wall_s"].get<double>());
      loads.push_back(run["load_before"].get<double>());
      loads.push_back(run["load_after"].get<double>());
    }
    Json entry = {{"description", info->row},
                  {"runs", pps.size()},
                  {"median_pages_per_s", median(pps)},
                  {"median_cpu_ms_per_page", median(cpu_ms)},
                  {"median_worker_cpu_ms_per_page", median(worker_ms)},
                  {"median_background_cores", median(bg_cores)},
                  {"median_startup_s", median(startup)},
                  {"max_startup_share", *std::max_element(startup_share.begin(), startup_share.end())}};
    char instr[32] = "-";
    if (instructions.contains(info->name)) {
      entry["instructions_per_page"] = instructions[info->name];
      std::snprintf(instr, sizeof instr, "%.4g", instructions[info->name]);
    }
    summary[info->name] = entry;
    char share[48];
    std::snprintf(share, sizeof share, "%.2f s %.2f%%", median(startup), median(startup_share) * 100);
    std::printf("%-14s %9.1f %12.4f %12.4f %9.4f %15s %14s  %s\n", info->name, median(pps), median(cpu_ms),
                median(worker_ms), median(bg_cores), share, instr, info->row);
  }

  // Paired ratios against each reference present: the no-library baselines first (what a user compares
  // with), then A. Every ratio reads "1 = the same, 0.99 = 1% slower / costlier".
  std::map<std::string, std::map<std::string, RatioSpread>> cpu_against;
  for (const char* reference : {"plain_jemalloc", "plain_glibc", "A"}) {
    if (!by_config.contains(reference)) continue;
    const auto& base = by_config[reference];
    std::printf("\nagainst %s (%s): paired per round, median ±MAD [min-max]\n", reference,
                find_configuration(reference)->row);
    std::printf("  %-14s %38s %38s %12s\n", "config", "pages/s ratio", "CPU-per-page ratio (ref/this)", "instr ratio");
    for (const auto* info : order) {
      if (info->name == std::string_view{reference} || cpu_against[reference].contains(info->name)) continue;
      const auto& list = by_config[info->name];
      std::vector<double> pages_ratio, cpu_ratio;
      for (std::size_t r = 0; r < list.size() && r < base.size(); ++r) {
        pages_ratio.push_back(list[r]["pages_per_s"].get<double>() / base[r]["pages_per_s"].get<double>());
        cpu_ratio.push_back(cpu_per_page(base[r]) / cpu_per_page(list[r]));
      }
      const RatioSpread pages = spread_of(pages_ratio), cpu = spread_of(cpu_ratio);
      cpu_against[reference][info->name] = cpu;
      Json against = {{"pages_per_s_ratio", to_json(pages)}, {"cpu_per_page_ratio", to_json(cpu)}};
      char instr[32] = "-";
      if (instructions.contains(info->name) && instructions.contains(reference)) {
        against["instructions_ratio"] = instructions[reference] / instructions[info->name];
        std::snprintf(instr, sizeof instr, "%.4f", instructions[reference] / instructions[info->name]);
      }
      summary[info->name]["against"][reference] = against;
      std::printf("  %-14s %38s %38s %12s\n", info->name, describe(pages).c_str(), describe(cpu).c_str(), instr);
    }
  }

  const auto [load_lo, load_hi] = std::minmax_element(loads.begin(), loads.end());
  std::printf(
      "\npaired ratio = each round against the reference's run of the same round; ±MAD = median absolute\n"
      "deviation of those ratios. CPU per page excludes the scrape client; bg cores = CPU of the library's\n"
      "threads per second of run; start-up share = the child's start-up and exit over its wall time.\n"
      "instructions: %s. 1-minute load average during the runs: %.1f-%.1f on %u cores.\n"
      "work: %s (checksum %llu in every run)\n",
      callgrind_note.c_str(), *load_lo, *load_hi, std::thread::hardware_concurrency(),
      deterministic ? "identical" : "DIFFERED BETWEEN RUNS", static_cast<unsigned long long>(checksum.value_or(0)));

  // The verdict: B's CPU per page against the program without the library (jemalloc, no profiling when it
  // ran, else A), budget 1%. It is a verdict only when the machine gave the workers their cores (load
  // average below the core count) and the budget line lies outside two resolutions of the median.
  if (by_config.contains("B")) {
    const std::string reference = by_config.contains("plain_jemalloc") ? "plain_jemalloc" : "A";
    const RatioSpread& b = cpu_against[reference]["B"];
    const bool quiet = *load_hi < static_cast<double>(std::thread::hardware_concurrency());
    const bool resolved = std::abs(b.median - 0.99) >= 2 * b.resolution;
    const char* verdict = !quiet             ? "inconclusive (load average above the core count)"
                          : !resolved        ? "inconclusive (the budget lies within two resolutions of the median)"
                          : b.median >= 0.99 ? "met"
                                             : "MISSED";
    std::printf(
        "verdict: B against %s by CPU per page = %.4f (paired median of %zu rounds)\n"
        "         resolution ±%.4f (one standard error of that median, from the MAD %.4f)\n"
        "         budget >= 0.99: %s\n",
        reference.c_str(), b.median, b.n, b.resolution, b.mad, verdict);
    summary["verdict"] = {{"reference", reference},
                          {"cpu_per_page_ratio", to_json(b)},
                          {"budget", 0.99},
                          {"quiet", quiet},
                          {"resolved", resolved},
                          {"result", !quiet || !resolved ? "inconclusive" : b.median >= 0.99 ? "met" : "missed"}};
    if (by_config.contains("plain_glibc") && by_config.contains("plain_jemalloc")) {
      const RatioSpread& jemalloc = cpu_against["plain_glibc"]["plain_jemalloc"];
      const RatioSpread& b_glibc = cpu_against["plain_glibc"]["B"];
      std::printf(
          "glibc vs jemalloc: glibc's CPU per page over jemalloc's, workload alone = %.4f (±%.4f);\n"
          "         B against the glibc program = %.4f (±%.4f): the allocator moves the figure by %+.2f points\n",
          jemalloc.median, jemalloc.resolution, b_glibc.median, b_glibc.resolution, (b_glibc.median - b.median) * 100);
    }
  }
  if (by_config.contains("B") && by_config.contains("A") && cpu_against.contains("A")) {
    const RatioSpread& b = cpu_against["A"]["B"];
    std::printf(
        "B against A by CPU per page = %.4f ±%.4f (the library's features alone, allocator and linking equal)\n",
        b.median, b.resolution);
  }
  summary["load_average_min"] = *load_lo;
  summary["load_average_max"] = *load_hi;

  if (!output.empty()) {
    Json document = {{"benchmark", "overhead_benchmark"},
                     {"mode", mode},
                     {"date", rp::format_rfc3339_utc(std::chrono::system_clock::now())},
                     {"command", command},
                     {"machine", machine_description()},
                     {"settings",
                      {{"pages", settings.workload.pages},
                       {"workers", settings.workload.workers},
                       {"seed", settings.workload.seed},
                       {"rounds", rounds},
                       {"scrape_interval_ms", settings.scrape_interval.count()},
                       {"leak_interval_sec", settings.leak_interval_sec},
                       {"callgrind", callgrind_note},
                       {"scrape_targets", scrape_targets()}}},
                     {"deterministic", deterministic},
                     {"checksum", checksum.value_or(0)},
                     {"summary", summary},
                     {"runs", runs}};
    std::ofstream{output} << document.dump(2) << "\n";
    std::cout << "overhead_benchmark: runs written to " << output << "\n";
  }
  return deterministic ? 0 : 3;
}
