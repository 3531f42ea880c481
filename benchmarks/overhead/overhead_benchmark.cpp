// The overhead harness: how many pages/s a scraper-like, allocation-heavy workload loses when the whole
// library runs beside it.
//
// Each configuration runs in its own process (this binary re-executes itself with --child=<name>), so
// allocator state, threads and caches never leak from one measurement into the next. Configurations are
// alternated (A B A B ... or A memory sampling ... B A memory ...) so that slow drifts of a shared
// machine hit all of them alike; each ratio is paired with the A run of the same round.
//
//   overhead_benchmark                               # A vs B, 5 rounds, ~2 minutes
//   overhead_benchmark --mode features --rounds 5    # one child per feature: the per-feature table
//   overhead_benchmark --output runs.json            # every run, the machine and the settings as JSON
//
// A: jemalloc with the heap profiler compiled in (prof:true from RIPTIDE_PERF_ENABLE_HEAP_PROFILING)
//    but not sampling (MALLOC_CONF=prof_active:false) and nothing of the library started.
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
#include <riptide/performance/memory/jemalloc_ctl.hpp>
#include <riptide/performance/profiling/allocation_analyzer.hpp>
#include <riptide/performance/profiling/enable_heap_profiling.hpp>
#include <riptide/performance/profiling/heap_profiling_control.hpp>
#include <riptide/performance/profiling/leak_detector.hpp>

#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "scraper/site.hpp"
#include "scraper/transport.hpp"
#include "workload.hpp"

// The same binary serves every configuration, so the profiler is compiled in for all of them; A and the
// configurations without sampling switch it off through MALLOC_CONF (read after malloc_conf, so it wins).
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
  const char* row;  // the per-feature table's row
  Features features;
};

// B = every feature; each other configuration switches exactly one on (leaks and allocations need the
// sampling, so theirs includes it: the table says so).
const std::vector<ConfigurationInfo>& configurations() {
  static const std::vector<ConfigurationInfo> all = {
      {"A", "baseline (profiler compiled in, inactive)", {}},
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
  std::size_t pages = 6000;  // fixed work per child (~8 s on an idle 2-core machine)
  unsigned workers = 2;      // worker threads (the machine's cores)
  std::uint64_t seed = 42;   // the site and the page list
  std::chrono::milliseconds scrape_interval{1000};
  double leak_interval_sec = 10.0;
};

// Every GET endpoint of the server except the CPU profile (it runs gperftools' profiler for N seconds on
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

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double load_average() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1.0;
}

// The scrape client: one keep-alive connection, every endpoint once per interval, like a Prometheus
// server plus a dashboard plus a profile collector all polling at 1 s. Its own CPU is reported apart:
// in production the client is another process.
class ScrapeClient {
 public:
  ScrapeClient(std::uint16_t port, std::chrono::milliseconds interval, unsigned heavy_every)
      : port_(port), interval_(interval), heavy_every_(heavy_every), thread_([this] { run(); }) {}
  ~ScrapeClient() { stop(); }

  void stop() {
    {
      std::lock_guard lock{mutex_};
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  [[nodiscard]] Json to_json() const {
    Json endpoints = Json::object();
    for (const auto& [target, e] : endpoints_) {
      endpoints[target] = {
          {"requests", e.requests},       {"non_200", e.failures},
          {"last_status", e.last_status}, {"mean_ms", e.requests ? e.total_ms / static_cast<double>(e.requests) : 0.0},
          {"max_ms", e.max_ms},           {"mean_bytes", e.requests ? e.bytes / e.requests : 0}};
    }
    return {{"rounds", rounds_}, {"cpu_s", cpu_s_}, {"endpoints", endpoints}};
  }

 private:
  struct Endpoint {
    std::uint64_t requests = 0, failures = 0, bytes = 0;
    unsigned last_status = 0;
    double total_ms = 0, max_ms = 0;
  };

  void run() {
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
    cpu_s_ = thread_cpu_seconds();
  }

  std::uint16_t port_;
  std::chrono::milliseconds interval_;
  unsigned heavy_every_;
  std::map<std::string, Endpoint> endpoints_;
  std::uint64_t rounds_ = 0;
  double cpu_s_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
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

int run_child(const ConfigurationInfo& info, const Settings& settings) {
  const Features f = info.features;
  const ex::Site site{{.seed = settings.seed}};
  const std::vector<ov::PageJob> jobs = ov::make_page_list(site, settings.seed, settings.pages);

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

  // --- the work
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> checksum{0}, links{0}, cache_hits{0}, refused{0};
  std::vector<double> worker_cpu(settings.workers, 0.0);
  std::atomic<std::uint64_t> allocated_bytes{0};
  const double load_before = load_average();
  const double cpu_before = process_cpu_seconds();
  const auto started = std::chrono::steady_clock::now();
  if (f.http) scraper = std::make_unique<ScrapeClient>(server->port(), settings.scrape_interval, f.heavy_every);

  auto worker = [&](unsigned index) {
    const auto allocated_before = rp::JemallocCtl::read_u64("thread.allocated");
    ov::PageProcessor processor{site};
    std::uint64_t local_sum = 0, local_links = 0, local_hits = 0, local_refused = 0;
    for (std::size_t i = next.fetch_add(1); i < jobs.size(); i = next.fetch_add(1)) {
      const ov::PageJob& job = jobs[i];
      const auto page_start = std::chrono::steady_clock::now();
      std::string url;
      if (f.cache || f.hot) url = processor.url_of(job);
      if (f.hot) {
        const auto& host = site.options().hosts[job.host_index].name;
        local_refused += host_limits->check(host).allowed ? 0 : 1;
        local_refused += global_limit->check().allowed ? 0 : 1;
      }
      // The cache is consulted and filled, but a hit does not skip the work: the harness measures what
      // the cache costs, not what it saves.
      if (f.cache && cache->get(url)) ++local_hits;

      std::string html;
      ex::ParsedPage parsed;
      ov::PageResult result;
      if (f.hot) {
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
        html = processor.fetch(job);
        parsed = processor.parse(html, job);
        result = processor.extract(parsed, job, html.size());
      }
      if (f.cache) cache->put(url, result.record);
      if (f.hot) manager->record_request(std::chrono::steady_clock::now() - page_start);
      local_sum += result.checksum;
      local_links += result.links;
    }
    checksum.fetch_add(local_sum);
    links.fetch_add(local_links);
    cache_hits.fetch_add(local_hits);
    refused.fetch_add(local_refused);
    worker_cpu[index] = thread_cpu_seconds();
    if (const auto allocated = rp::JemallocCtl::read_u64("thread.allocated"); allocated && allocated_before) {
      allocated_bytes.fetch_add(*allocated - *allocated_before);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < settings.workers; ++w) threads.emplace_back(worker, w);
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double cpu = process_cpu_seconds() - cpu_before;
  const double load_after = load_average();

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

  double workers_cpu = 0;
  for (const double c : worker_cpu) workers_cpu += c;
  const double client_cpu = library.contains("scrape") ? library["scrape"]["cpu_s"].get<double>() : 0.0;
  Json out = {{"config", info.name},
              {"pages", jobs.size()},
              {"workers", settings.workers},
              {"elapsed_s", elapsed},
              {"pages_per_s", static_cast<double>(jobs.size()) / elapsed},
              {"cpu_s", cpu},
              {"worker_cpu_s", workers_cpu},
              {"client_cpu_s", client_cpu},
              {"background_cpu_s", std::max(0.0, cpu - workers_cpu - client_cpu)},
              {"checksum", checksum.load()},
              {"links", links.load()},
              {"cache_hits", cache_hits.load()},
              {"refused", refused.load()},
              {"worker_allocated_bytes", allocated_bytes.load()},
              {"load_before", load_before},
              {"load_after", load_after},
              {"prof_enabled", status.enabled_at_start},
              {"prof_active", active.active},
              {"lg_prof_sample", rp::HeapProfilingControl::lg_sample().value_or(0)},
              {"library", library}};
  std::cout << out.dump() << std::endl;

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

std::optional<Json> spawn_child(const std::string& self, const ConfigurationInfo& info, const Settings& settings,
                                std::string& diagnostics) {
  std::vector<std::string> args = {self,
                                   std::string{"--child="} + info.name,
                                   "--pages",
                                   std::to_string(settings.pages),
                                   "--workers",
                                   std::to_string(settings.workers),
                                   "--seed",
                                   std::to_string(settings.seed),
                                   "--scrape-interval-ms",
                                   std::to_string(settings.scrape_interval.count()),
                                   "--leak-interval",
                                   std::to_string(settings.leak_interval_sec)};
  int out_pipe[2];
  if (pipe(out_pipe) != 0) {
    diagnostics = std::string{"pipe: "} + std::strerror(errno);
    return std::nullopt;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    diagnostics = std::string{"fork: "} + std::strerror(errno);
    return std::nullopt;
  }
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    close(out_pipe[0]);
    close(out_pipe[1]);
    // Sampling off unless the configuration needs it; the rest of malloc_conf (prof:true, lg 19,
    // prof_accum) stays, so every child runs the same allocator build and options.
    if (!info.features.sampling) setenv("MALLOC_CONF", "prof_active:false", 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(self.c_str(), argv.data());
    std::perror("execv");
    _exit(127);
  }
  close(out_pipe[1]);
  std::string output;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(out_pipe[0], buffer, sizeof buffer);
    if (n > 0) {
      output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(out_pipe[0]);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  // The result is the last line that parses as JSON (libraries may log other lines to stdout).
  std::istringstream lines{output};
  std::optional<Json> result;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() != '{') continue;
    auto parsed = Json::parse(line, nullptr, false);
    if (!parsed.is_discarded()) result = std::move(parsed);
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || !result) {
    diagnostics = "child " + std::string{info.name} + " failed (status " + std::to_string(wstatus) + "): " + output;
    return std::nullopt;
  }
  return result;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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
      << "usage: overhead_benchmark [--mode defaults|features] [--configs A,B,...] [--rounds N] [--pages N]\n"
         "                          [--workers N] [--seed N] [--scrape-interval-ms N] [--leak-interval S]\n"
         "                          [--output runs.json]\n"
         "  --mode defaults   A and B alternated (default)\n"
         "  --mode features   A, one child per feature, B, alternated (the per-feature table)\n"
         "  --rounds N        rounds of alternation (default 5)\n"
         "  --pages N         fixed pages of work per child (default 6000)\n"
         "configurations: A memory sampling allocations leaks http http_light cache hot B B_light\n";
  std::exit(code);
}

std::uint64_t parse_number(std::string_view flag, std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    std::cerr << "overhead_benchmark: " << flag << " expects a non-negative integer, got '" << text << "'\n";
    usage(2);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  std::string mode = "defaults";
  std::string configs_flag;
  std::string output;
  std::string child;
  unsigned rounds = 5;
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    command.append(" ").append(flag);  // append, not " " + string: g++ 12 warns falsely (-Wrestrict)
    if (flag == "--help" || flag == "-h") usage(0);
    if (flag.rfind("--child=", 0) == 0) {
      child = std::string{flag.substr(8)};
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "overhead_benchmark: " << flag << " needs a value (or is unknown)\n";
      usage(2);
    }
    const std::string_view value = argv[++i];
    command.append(" ").append(value);
    if (flag == "--mode") {
      mode = std::string{value};
      if (mode != "defaults" && mode != "features") usage(2);
    } else if (flag == "--configs") {
      configs_flag = std::string{value};
    } else if (flag == "--rounds") {
      rounds = static_cast<unsigned>(std::max<std::uint64_t>(1, parse_number(flag, value)));
    } else if (flag == "--pages") {
      settings.pages = std::max<std::uint64_t>(1, parse_number(flag, value));
    } else if (flag == "--workers") {
      settings.workers = static_cast<unsigned>(std::clamp<std::uint64_t>(parse_number(flag, value), 1, 64));
    } else if (flag == "--seed") {
      settings.seed = parse_number(flag, value);
    } else if (flag == "--scrape-interval-ms") {
      settings.scrape_interval = std::chrono::milliseconds{std::max<std::uint64_t>(10, parse_number(flag, value))};
    } else if (flag == "--leak-interval") {
      settings.leak_interval_sec = std::strtod(std::string{value}.c_str(), nullptr);
    } else if (flag == "--output") {
      output = std::string{value};
    } else {
      std::cerr << "overhead_benchmark: unknown flag " << flag << "\n";
      usage(2);
    }
  }

  if (!child.empty()) {
    const ConfigurationInfo* info = find_configuration(child);
    if (!info) usage(2);
    try {
      return run_child(*info, settings);
    } catch (const std::exception& e) {
      std::cerr << "overhead_benchmark --child=" << child << ": " << e.what() << "\n";
      return 1;
    }
  }

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
    for (const auto& c : configurations()) order.push_back(&c);
  } else {
    order = {find_configuration("A"), find_configuration("B")};
  }
  if (order.empty() || std::string_view{order.front()->name} != "A") {
    order.insert(order.begin(), find_configuration("A"));  // every ratio needs its baseline
  }

  char self_path[4096];
  const ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
  if (n <= 0) {
    std::cerr << "overhead_benchmark: cannot read /proc/self/exe\n";
    return 1;
  }
  const std::string self{self_path, static_cast<std::size_t>(n)};

  std::cout << "overhead_benchmark: " << order.size() << " configurations x " << rounds << " rounds, " << settings.pages
            << " pages per child, " << settings.workers << " workers, seed " << settings.seed << "\n"
            << "machine: " << machine_description() << "; load average " << load_average() << "\n";

  Json runs = Json::array();
  std::map<std::string, std::vector<Json>> by_config;
  std::optional<std::uint64_t> checksum;
  bool deterministic = true;
  for (unsigned round = 0; round < rounds; ++round) {
    for (const auto* info : order) {
      std::string diagnostics;
      auto result = spawn_child(self, *info, settings, diagnostics);
      if (!result) {
        std::cerr << "overhead_benchmark: " << diagnostics << "\n";
        return 1;
      }
      (*result)["round"] = round;
      const auto sum = (*result)["checksum"].get<std::uint64_t>();
      if (checksum && *checksum != sum) deterministic = false;
      checksum = sum;
      std::printf(
          "  round %u %-12s %8.1f pages/s  %6.2f s  cpu %6.2f s (workers %6.2f, background %5.2f, client %5.2f)  load "
          "%.1f\n",
          round + 1, info->name, (*result)["pages_per_s"].get<double>(), (*result)["elapsed_s"].get<double>(),
          (*result)["cpu_s"].get<double>(), (*result)["worker_cpu_s"].get<double>(),
          (*result)["background_cpu_s"].get<double>(), (*result)["client_cpu_s"].get<double>(),
          (*result)["load_after"].get<double>());
      std::fflush(stdout);
      by_config[info->name].push_back(*result);
      runs.push_back(std::move(*result));
    }
  }

  // --- summary: medians, and each configuration's ratio to the A run of the same round. Wall-clock
  // pages/s is what the goal is about; on a shared machine it moves with everyone else's load, so each
  // configuration also gets its CPU ratio (A's CPU per page / its CPU per page, scrape client excluded:
  // in production the scraper is another process), which is what pages/s becomes when the workers
  // have the cores to themselves and the library's threads take CPU from them.
  const auto& baseline = by_config["A"];
  auto cpu_per_page = [](const Json& run) {
    return (run["cpu_s"].get<double>() - run["client_cpu_s"].get<double>()) / run["pages"].get<double>();
  };
  Json summary = Json::object();
  std::vector<double> loads;
  std::printf("\n%-11s %9s %8s %25s %25s %9s  %s\n", "config", "pages/s", "ratio", "paired ratio med [min-max]",
              "cpu ratio med [min-max]", "bg cores", "what");
  for (const auto* info : order) {
    if (summary.contains(info->name)) continue;
    const auto& list = by_config[info->name];
    std::vector<double> pps, base_pps, paired, cpu_paired, bg_cores, worker_ms;
    for (std::size_t r = 0; r < list.size(); ++r) {
      const Json& run = list[r];
      pps.push_back(run["pages_per_s"].get<double>());
      if (r < baseline.size()) {
        paired.push_back(run["pages_per_s"].get<double>() / baseline[r]["pages_per_s"].get<double>());
        cpu_paired.push_back(cpu_per_page(baseline[r]) / cpu_per_page(run));
      }
      bg_cores.push_back(run["background_cpu_s"].get<double>() / run["elapsed_s"].get<double>());
      worker_ms.push_back(run["worker_cpu_s"].get<double>() / run["pages"].get<double>() * 1e3);
      loads.push_back(run["load_before"].get<double>());
      loads.push_back(run["load_after"].get<double>());
    }
    for (const auto& b : baseline) base_pps.push_back(b["pages_per_s"].get<double>());
    const double ratio = median(pps) / median(base_pps);
    const auto [lo, hi] = std::minmax_element(paired.begin(), paired.end());
    const auto [cpu_lo, cpu_hi] = std::minmax_element(cpu_paired.begin(), cpu_paired.end());
    summary[info->name] = {{"description", info->row},
                           {"runs", list.size()},
                           {"median_pages_per_s", median(pps)},
                           {"ratio_of_medians", ratio},
                           {"paired_ratio_median", median(paired)},
                           {"paired_ratio_min", *lo},
                           {"paired_ratio_max", *hi},
                           {"cpu_ratio_median", median(cpu_paired)},
                           {"cpu_ratio_min", *cpu_lo},
                           {"cpu_ratio_max", *cpu_hi},
                           {"median_worker_cpu_ms_per_page", median(worker_ms)},
                           {"median_background_cores", median(bg_cores)}};
    char range[64], cpu_range[64];
    std::snprintf(range, sizeof range, "%.4f [%.4f-%.4f]", median(paired), *lo, *hi);
    std::snprintf(cpu_range, sizeof cpu_range, "%.4f [%.4f-%.4f]", median(cpu_paired), *cpu_lo, *cpu_hi);
    std::printf("%-11s %9.1f %8.4f %25s %25s %9.4f  %s\n", info->name, median(pps), ratio, range, cpu_range,
                median(bg_cores), info->row);
  }
  const auto [load_lo, load_hi] = std::minmax_element(loads.begin(), loads.end());
  std::printf(
      "\nratio = median pages/s / median pages/s of A; paired = each round against its own A run;\n"
      "cpu ratio = A's CPU per page / this CPU per page (scrape client excluded); bg cores = CPU of the\n"
      "library's threads per second of run. 1-minute load average during the runs: %.1f-%.1f on %u cores.\n"
      "work: %s (checksum %llu in every run)\n",
      *load_lo, *load_hi, std::thread::hardware_concurrency(), deterministic ? "identical" : "DIFFERED BETWEEN RUNS",
      static_cast<unsigned long long>(checksum.value_or(0)));
  if (summary.contains("B")) {
    // A verdict needs a machine that gives the workers their cores: with the load average above the core
    // count, other processes' CPU moves pages/s by tens of percent between runs and no ratio is a verdict.
    const auto& b = summary["B"];
    const bool quiet = *load_hi < static_cast<double>(std::thread::hardware_concurrency());
    const bool met = b["ratio_of_medians"].get<double>() >= 0.99 && b["paired_ratio_median"].get<double>() >= 0.99;
    std::printf("B/A = %.4f pages/s (paired median %.4f, %.4f-%.4f), %.4f by CPU; goal >= 0.99: %s\n",
                b["ratio_of_medians"].get<double>(), b["paired_ratio_median"].get<double>(),
                b["paired_ratio_min"].get<double>(), b["paired_ratio_max"].get<double>(),
                b["cpu_ratio_median"].get<double>(),
                !quiet ? "inconclusive (load average above the core count)"
                : met  ? "met"
                       : "MISSED");
    summary["verdict"] = !quiet ? "inconclusive" : met ? "met" : "missed";
  }
  summary["load_average_min"] = *load_lo;
  summary["load_average_max"] = *load_hi;

  if (!output.empty()) {
    Json document = {{"benchmark", "overhead_benchmark"},
                     {"date", rp::format_rfc3339_utc(std::chrono::system_clock::now())},
                     {"command", command},
                     {"machine", machine_description()},
                     {"settings",
                      {{"pages", settings.pages},
                       {"workers", settings.workers},
                       {"seed", settings.seed},
                       {"rounds", rounds},
                       {"scrape_interval_ms", settings.scrape_interval.count()},
                       {"leak_interval_sec", settings.leak_interval_sec},
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
