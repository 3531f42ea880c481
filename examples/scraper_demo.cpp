// The main job: a small but real scraper on loopback, watched by riptide-performance while it runs.
//
// An in-process origin server serves a synthetic site (six hosts, one slow, one failing on purpose).
// Worker threads take URLs from a shared frontier and, per page: look in the tiered cache; on a miss
// check the host's rate limit and circuit breaker, take a permit and fetch over HTTP keep-alive; parse
// with gumbo; extract links and text; run a CPU-bound "ai" stage; record the page and every stage in the
// PerformanceManager. The library's HTTP server shows it all on http://127.0.0.1:3000/dashboard.
//
//   scraper_demo --duration 60s --workers 4 --port 3000 --leak-bytes-per-page 4096 --report report.json
// SIGHUP re-reads the configuration: new targets take effect, a file with a bad value changes nothing.
#include <riptide/performance/cache/cache_stats.hpp>
#include <riptide/performance/cache/tiered_cache.hpp>
#include <riptide/performance/core/duration.hpp>
#include <riptide/performance/core/error.hpp>
#include <riptide/performance/core/time_format.hpp>
#include <riptide/performance/http/dashboard_assets.hpp>
#include <riptide/performance/http/serve.hpp>
#include <riptide/performance/limits/circuit_breaker_registry.hpp>
#include <riptide/performance/limits/resource_limits.hpp>
#include <riptide/performance/manager/performance_json.hpp>
#include <riptide/performance/manager/performance_manager.hpp>
#include <riptide/performance/manager/performance_state.hpp>
#include <riptide/performance/profiling/enable_heap_profiling.hpp>
#include <riptide/performance/profiling/leak_detector.hpp>
#include <riptide/performance/profiling/profiling_json.hpp>
#include <riptide/performance/profiling/symbolizer.hpp>

#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "scraper/ai_stage.hpp"
#include "scraper/html.hpp"
#include "scraper/site.hpp"
#include "scraper/transport.hpp"

// jemalloc's heap profiler must be on from the first allocation: this defines malloc_conf.
RIPTIDE_PERF_ENABLE_HEAP_PROFILING();

namespace rp = riptide::performance;
namespace ex = riptide::example;
using namespace std::chrono_literals;

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

extern "C" void on_signal(int) {
  g_stop.store(true);
}

extern "C" void on_reload_signal(int) {
  g_reload.store(true);
}

struct Options {
  std::chrono::nanoseconds duration = 60s;
  unsigned workers = 4;
  std::uint16_t port = 3000;
  std::optional<std::string> bind;
  std::optional<std::string> config_path;
  std::size_t leak_bytes_per_page = 0;
  std::optional<std::string> report_json;
  std::optional<std::string> report_html;
  unsigned ai_layers = 6;
  std::uint64_t seed = 42;
  std::size_t allocation_sites = 0;
};

// --allocation-sites: a host with many distinct allocation sites. Each site is its own function (a template
// instantiated over an index; the index in its body keeps the linker from folding them into one), so the
// heap profile and the leak detector see that many call sites.
constexpr std::size_t kMaxAllocationSites = 2048;

[[noreturn]] void usage(int code) {
  std::ostream& out = code == 0 ? std::cout : std::cerr;
  out << "usage: scraper_demo [--duration 60s] [--workers 4] [--port 3000] [--bind 127.0.0.1]\n"
         "                    [--config performance.toml] [--leak-bytes-per-page N]\n"
         "                    [--allocation-sites N] [--report report.json] [--report-html report.html]\n"
         "                    [--seed N]\n"
         "  --duration D            run time: 90, 90s, 1m30s (units ms s m h); Ctrl-C stops earlier\n"
         "  --workers N             scraper threads (default 4)\n"
         "  --port P                the monitoring server's port on 127.0.0.1 (default 3000; 0: any free port)\n"
         "  --config FILE           performance.toml overriding the demo's settings; SIGHUP re-reads it\n"
         "  --leak-bytes-per-page N leak N bytes per page from leak_page_bytes_for_demo(), to watch the\n"
         "                          leak detector find it (default 0)\n"
         "  --allocation-sites N    allocate from N distinct call sites (at most 2048; default 0): each page\n"
         "                          replaces 4 blocks of 8 KiB, each site keeps its last 4 alive (N x 32 KiB)\n"
         "  --report FILE           write the final PerformanceReport as JSON\n"
         "  --report-html FILE      write the final report as a standalone HTML page with the dashboard's charts\n";
  std::exit(code);
}

std::uint64_t parse_count(std::string_view flag, std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    std::cerr << "scraper_demo: " << flag << " expects a non-negative integer, got '" << text << "'\n";
    usage(2);
  }
  return value;
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") usage(0);
    if (i + 1 >= argc) {
      std::cerr << "scraper_demo: " << flag << " needs a value (or is unknown)\n";
      usage(2);
    }
    const std::string_view value = argv[++i];
    if (flag == "--duration") {
      // A bare number means seconds; anything else goes through the library's duration parser.
      if (!value.empty() && value.find_first_not_of("0123456789") == std::string_view::npos) {
        options.duration = std::chrono::seconds{parse_count(flag, value)};
      } else {
        const auto parsed = rp::parse_duration(value);
        if (const auto* error = std::get_if<rp::DurationParseError>(&parsed)) {
          std::cerr << "scraper_demo: --duration '" << value << "': " << error->message << "\n";
          usage(2);
        }
        options.duration = std::get<std::chrono::nanoseconds>(parsed);
      }
    } else if (flag == "--workers") {
      options.workers = static_cast<unsigned>(std::clamp<std::uint64_t>(parse_count(flag, value), 1, 256));
    } else if (flag == "--port") {
      const auto port = parse_count(flag, value);
      if (port > 65535) {
        std::cerr << "scraper_demo: --port " << port << " is not a port (0-65535)\n";
        usage(2);
      }
      options.port = static_cast<std::uint16_t>(port);
    } else if (flag == "--bind") {
      options.bind = std::string{value};
    } else if (flag == "--config") {
      options.config_path = std::string{value};
    } else if (flag == "--leak-bytes-per-page") {
      options.leak_bytes_per_page = parse_count(flag, value);
    } else if (flag == "--report") {
      options.report_json = std::string{value};
    } else if (flag == "--report-html") {
      options.report_html = std::string{value};
    } else if (flag == "--ai-layers") {
      options.ai_layers = static_cast<unsigned>(std::clamp<std::uint64_t>(parse_count(flag, value), 0, 64));
    } else if (flag == "--seed") {
      options.seed = parse_count(flag, value);
    } else if (flag == "--allocation-sites") {
      const auto sites = parse_count(flag, value);
      if (sites > kMaxAllocationSites) {
        std::cerr << "scraper_demo: --allocation-sites " << sites << " is more than " << kMaxAllocationSites << "\n";
        usage(2);
      }
      options.allocation_sites = static_cast<std::size_t>(sites);
    } else {
      std::cerr << "scraper_demo: unknown flag " << flag << "\n";
      usage(2);
    }
  }
  return options;
}

// The deliberate leak: --leak-bytes-per-page makes every page lose this much memory here, so the leak
// detector (and pprof, and the dashboard's flame graph) can be seen naming this function.
std::atomic<char*> g_last_leak{nullptr};
[[gnu::noinline]] void leak_page_bytes_for_demo(std::size_t bytes) {
  char* block = new char[bytes];
  std::memset(block, 0x5a, bytes);  // touch it: a leak that costs RSS, like a real one
  g_last_leak.store(block, std::memory_order_relaxed);
}

// One allocation site of --allocation-sites: block I of the table below.
template <std::size_t I>
[[gnu::noinline]] char* allocate_at_demo_site(std::size_t bytes) {
  char* block = new char[bytes + I % 64];
  std::memset(block, static_cast<int>(I & 0xff), bytes);  // touched, like real data
  return block;
}

using DemoSite = char* (*)(std::size_t);
template <std::size_t... I>
constexpr std::array<DemoSite, sizeof...(I)> demo_site_table(std::index_sequence<I...>) {
  return {&allocate_at_demo_site<I>...};
}
constexpr auto kDemoSites = demo_site_table(std::make_index_sequence<kMaxAllocationSites>{});

// The blocks the sites keep alive: per page, kVisitsPerPage sites (round robin) each replace one of their
// kBlocksPerSite blocks, so every site holds memory while its blocks churn.
class DemoSiteChurn {
 public:
  static constexpr std::size_t kVisitsPerPage = 4;
  static constexpr std::size_t kBlocksPerSite = 4;
  static constexpr std::size_t kBlockBytes = 8192;

  explicit DemoSiteChurn(std::size_t sites) : sites_(sites), blocks_(sites * kBlocksPerSite) {}
  ~DemoSiteChurn() {
    for (auto& block : blocks_) delete[] block.load();
  }
  DemoSiteChurn(const DemoSiteChurn&) = delete;
  DemoSiteChurn& operator=(const DemoSiteChurn&) = delete;

  void page() {
    if (sites_ == 0) return;
    for (std::size_t i = 0; i < kVisitsPerPage; ++i) {
      const std::uint64_t visit = visits_.fetch_add(1, std::memory_order_relaxed);
      const std::size_t site = visit % sites_;
      const std::size_t slot = site * kBlocksPerSite + (visit / sites_) % kBlocksPerSite;
      delete[] blocks_[slot].exchange(kDemoSites[site](kBlockBytes), std::memory_order_acq_rel);
    }
  }

 private:
  std::size_t sites_;
  std::vector<std::atomic<char*>> blocks_;
  std::atomic<std::uint64_t> visits_{0};
};

// URLs waiting to be scraped. Bounded: links beyond the bound are dropped, and an empty frontier is
// refilled with deterministic random pages, so the crawl never ends and revisits (cache hits) happen.
class Frontier {
 public:
  Frontier(const ex::Site& site, std::size_t bound) : site_(site), bound_(bound) {
    for (auto& url : site.seed_urls()) urls_.push_back(std::move(url));
  }
  ex::Url pop() {
    std::lock_guard lock{mutex_};
    if (urls_.empty()) return site_.random_url(++draws_);
    ex::Url url = std::move(urls_.front());
    urls_.pop_front();
    return url;
  }
  void push(std::vector<ex::Url> urls) {
    std::lock_guard lock{mutex_};
    for (auto& url : urls) {
      if (urls_.size() >= bound_) break;
      urls_.push_back(std::move(url));
    }
  }
  void push_back(ex::Url url) {
    std::lock_guard lock{mutex_};
    if (urls_.size() < bound_) urls_.push_back(std::move(url));
  }

 private:
  const ex::Site& site_;
  const std::size_t bound_;
  std::mutex mutex_;
  std::deque<ex::Url> urls_;
  std::uint64_t draws_ = 0;
};

// What the workers count beyond what the manager records (shown in the progress line and the report).
struct Counters {
  std::atomic<std::uint64_t> pages{0};
  std::atomic<std::uint64_t> fetched{0};
  std::atomic<std::uint64_t> cache_hits{0};
  std::atomic<std::uint64_t> fetch_failures{0};
  std::atomic<std::uint64_t> rate_limited{0};
  std::atomic<std::uint64_t> breaker_rejected{0};
  std::atomic<std::uint64_t> leaked_bytes{0};
  std::atomic<std::uint64_t> links{0};
};

// The demo's defaults: finer than the library's so a one-minute run shows leaks, breakers and limits.
// A --config file and RIPTIDE_PERF_* variables override them.
rp::Config demo_config(const Options& options) {
  rp::Config config;
  config.monitoring.sample_interval_sec = 1.0;
  config.profiling.leak_detection_interval_sec = 5.0;
  config.profiling.leak_min_observations = 3;
  config.profiling.leak_min_bytes = 512 * 1024;
  config.limits.max_concurrent_requests = 64;
  config.limits.rate_limit_per_second = 2000.0;
  config.limits.rate_limit_burst = 200;
  config.limits.per_client_rate_per_second = 60.0;  // per host: "be polite"
  config.limits.per_client_burst = 20;
  config.limits.circuit_breaker_open_sec = 10.0;
  config.limits.circuit_breaker_min_calls = 10;
  config.limits.circuit_breaker_window = 50;
  config.cache.max_size_mb = 64;
  config.cache.ttl_sec = 120.0;
  config.targets.min_throughput_pps = 70.0;
  config.targets.p95_latency_ms = 500;
  config.targets.p50_latency_ms = 100;
  config.http.port = options.port;
  if (options.config_path) {
    std::ifstream in{*options.config_path};
    if (!in) throw rp::Error("cannot read --config " + *options.config_path);
    std::stringstream text;
    text << in.rdbuf();
    config.apply_toml(text.str(), *options.config_path);
  }
  config.apply_process_environment();
  // Flags given on the command line win over the file and the environment.
  config.http.port = options.port;
  if (options.bind) config.http.bind = *options.bind;
  config.validate("scraper_demo");
  return config;
}

// SIGHUP: the file and the environment again, with the same flags on top. A bad edit is reported and the
// running configuration stays.
void reload_configuration(rp::PerformanceManager& manager, const Options& options) {
  try {
    const rp::ConfigReload reload = manager.reload_config(demo_config(options));
    std::string applied;
    std::string kept;
    for (const auto& key : reload.applied) applied += " " + key;
    for (const auto& key : reload.restart_required) kept += " " + key;
    std::cout << "\nscraper_demo: configuration reloaded; applied:" << (applied.empty() ? " nothing" : applied)
              << (kept.empty() ? "" : "; need a restart, kept:" + kept) << "\n";
  } catch (const std::exception& error) {
    std::cerr << "\nscraper_demo: configuration reload refused, the running configuration stays: " << error.what()
              << "\n";
  }
}

std::string mib(std::optional<double> value) {
  if (!value) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f MiB", *value);
  return buffer;
}

// Leak suspects of the latest published analysis ("-" before the first): reading the state never takes a
// heap profile.
std::string leaks_found(const rp::MemoryState& memory) {
  if (!memory.leaks) return "-";
  if (!memory.leaks->available) return "n/a";
  return std::to_string(memory.leaks->leak_count);
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_reload_signal);

  try {
    const rp::Config config = demo_config(options);

    // --- the site and its origin server
    const ex::Site site{{.seed = options.seed}};
    auto origin = ex::OriginServer::start(site);

    // --- monitoring: the manager records pages and stages and owns the cache, the limits and the breakers;
    // serve() mounts every route and the dashboard over it and starts the embedded server ([http]).
    auto manager = rp::PerformanceManager::with_config(config);
    rp::TieredCache* cache = manager->cache();  // null when [cache] enabled = false
    manager->start_monitoring();
    auto endpoints = rp::http::serve(manager);
    rp::http::Server* server = endpoints->server();
    if (server == nullptr) throw rp::Error("http.enabled = false: the demo needs its endpoints");
    const std::string base = "http://" + server->bind_address() + ":" + std::to_string(server->port());

    std::cout << "scraper_demo: origin 127.0.0.1:" << origin->port() << " (" << site.options().hosts.size()
              << " hosts), " << options.workers << " workers, " << rp::format_duration(options.duration) << "\n"
              << "  dashboard   " << base << "/dashboard\n"
              << "  endpoints   " << base << "/metrics/memory/{snapshot,leaks,allocations,trend,health}  " << base
              << "/metrics/performance  " << base << "/metrics\n";
    if (options.allocation_sites > 0) {
      std::cout << "  sites       allocating from " << options.allocation_sites
                << " distinct call sites (allocate_at_demo_site<0..N-1>)\n";
    }
    if (options.leak_bytes_per_page > 0) {
      std::cout << "  leaking     " << options.leak_bytes_per_page
                << " bytes per page from leak_page_bytes_for_demo()\n";
    }
    std::cout.flush();

    Frontier frontier{site, 20'000};
    Counters counters;
    DemoSiteChurn site_churn{options.allocation_sites};
    const auto deadline = std::chrono::steady_clock::now() + options.duration;

    auto worker = [&] {
      ex::FetchClient client{"127.0.0.1", origin->port()};
      std::uint64_t local = 0;
      while (!g_stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < deadline) {
        ex::Url url = frontier.pop();
        const std::string key = url.to_string();
        const auto page_start = std::chrono::steady_clock::now();

        rp::TieredCache::Value body = cache != nullptr ? cache->get(key) : nullptr;
        if (body) {
          counters.cache_hits.fetch_add(1, std::memory_order_relaxed);
        } else {
          // Politeness per host, then the host's breaker, then a permit: the order a scraper wants, so a
          // refused request holds nothing.
          const rp::RateDecision decision = manager->check_rate_limits(url.host);
          if (!decision.allowed) {
            counters.rate_limited.fetch_add(1, std::memory_order_relaxed);
            frontier.push_back(std::move(url));
            std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(decision.retry_after, 20ms));
            continue;
          }
          if (!manager->allow_call(url.host)) {
            counters.breaker_rejected.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          ex::FetchResult result;
          const auto fetch_start = std::chrono::steady_clock::now();
          {
            auto permit = manager->acquire_request_permit();
            auto timer = manager->time_stage("fetch");
            result = client.get(url);
          }
          const auto fetch_time = std::chrono::steady_clock::now() - fetch_start;
          counters.fetched.fetch_add(1, std::memory_order_relaxed);
          if (result.status != 200) {
            // 5xx and transport errors count against the host; a 404 is the page's fault, not the host's.
            if (result.status >= 500 || result.status == 0) {
              manager->record_failure(url.host, fetch_time);
            } else {
              manager->record_success(url.host, fetch_time);
            }
            counters.fetch_failures.fetch_add(1, std::memory_order_relaxed);
            manager->record_request(std::chrono::steady_clock::now() - page_start);
            continue;
          }
          manager->record_success(url.host, fetch_time);
          if (cache != nullptr) cache->put(key, result.body);
          body = std::make_shared<const std::string>(std::move(result.body));
        }

        ex::ParsedPage parsed;
        {
          auto timer = manager->time_stage("parse");
          parsed = ex::parse_html(*body, url);
        }
        {
          auto timer = manager->time_stage("extract");
          counters.links.fetch_add(parsed.links.size(), std::memory_order_relaxed);
          // Keep the crawl wide: a few links per page go on the frontier.
          std::vector<ex::Url> next;
          for (std::size_t i = 0; i < parsed.links.size() && next.size() < 4; i += 1 + (local % 3)) {
            next.push_back(parsed.links[i]);
          }
          frontier.push(std::move(next));
        }
        {
          auto timer = manager->time_stage("ai");
          const auto summary = ex::run_ai_stage(parsed.text, options.ai_layers);
          if (summary.score == 12345.0) std::cout << "";  // keeps the stage from being optimised away
        }
        site_churn.page();
        if (options.leak_bytes_per_page > 0) {
          leak_page_bytes_for_demo(options.leak_bytes_per_page);
          counters.leaked_bytes.fetch_add(options.leak_bytes_per_page, std::memory_order_relaxed);
        }
        manager->record_request(std::chrono::steady_clock::now() - page_start);
        counters.pages.fetch_add(1, std::memory_order_relaxed);
        ++local;
      }
    };

    std::vector<std::thread> workers;
    for (unsigned i = 0; i < options.workers; ++i) workers.emplace_back(worker);

    // --- one progress line per second (overwritten in place on a terminal)
    const bool tty = isatty(STDOUT_FILENO) != 0;
    const auto started = std::chrono::steady_clock::now();
    nlohmann::json history = nlohmann::json::array();
    std::uint64_t last_pages = 0;
    auto last_tick = started;
    while (!g_stop.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_until(std::min(deadline, last_tick + 1s));
      const auto now = std::chrono::steady_clock::now();
      const double elapsed = std::chrono::duration<double>(now - started).count();
      const double tick = std::chrono::duration<double>(now - last_tick).count();
      last_tick = now;
      if (g_reload.exchange(false)) reload_configuration(*manager, options);
      const std::uint64_t pages = counters.pages.load();
      const double pps = tick > 0 ? static_cast<double>(pages - last_pages) / tick : 0.0;
      last_pages = pages;

      const auto state = manager->state();
      const rp::Metrics& metrics = state->metrics;
      std::string breaker_text;
      for (const auto& b : state->resources.circuit_breakers) {
        if (b.state != rp::CircuitState::closed)
          breaker_text += " " + b.name + "=" + std::string{rp::to_string(b.state)};
      }
      char line[512];
      std::snprintf(line, sizeof line,
                    "[%4.0fs] pages %-7llu %6.1f p/s  p50 %6.1f ms  p95 %6.1f ms  RSS %s  heap %s  leaks %s  "
                    "breakers:%s",
                    elapsed, static_cast<unsigned long long>(pages), pps, metrics.p50_latency_ms.value_or(0.0),
                    metrics.p95_latency_ms.value_or(0.0), mib(metrics.memory_rss_mb).c_str(),
                    mib(metrics.heap_mb).c_str(), leaks_found(state->memory).c_str(),
                    breaker_text.empty() ? " all closed" : breaker_text.c_str());
      std::cout << (tty ? "\r\033[K" : "") << line << (tty ? "" : "\n") << std::flush;
      history.push_back({{"timestamp", rp::format_rfc3339_utc(std::chrono::system_clock::now())},
                         {"p50_ms", metrics.p50_latency_ms.value_or(0.0)},
                         {"p95_ms", metrics.p95_latency_ms.value_or(0.0)},
                         {"pages_per_second", pps}});
    }
    if (tty) std::cout << "\n";
    g_stop.store(true);
    for (auto& thread : workers) thread.join();

    // --- the report: the endpoints' final answers feed the HTML version, taken before anything stops
    nlohmann::json data;
    for (const char* path : {"/metrics/memory/snapshot", "/metrics/memory/leaks", "/metrics/memory/allocations",
                             "/metrics/memory/trend", "/metrics/memory/health", "/metrics/memory/fragmentation",
                             "/metrics/memory/lifetimes", "/metrics/performance"}) {
      rp::http::Request request;
      request.method = "GET";
      request.target = path;
      if (std::string_view{path} == "/metrics/memory/trend") request.target += "?duration=1h&interval=2s";
      const auto response = endpoints->router().handle(request);
      if (response.status == 200) data[path] = nlohmann::json::parse(response.body, nullptr, false);
    }
    if (data.contains("/metrics/performance")) data["/metrics/performance"]["history"] = history;
    data["generated_at"] = rp::format_rfc3339_utc(std::chrono::system_clock::now());

    const rp::PerformanceReport report = manager->stop_monitoring();
    // The report took the last heap profile, so the summary below matches its Markdown; without one
    // (profiling off or compiled out) an explicit detection answers and says why.
    const rp::LeakReport leak_report = report.leaks ? *report.leaks : manager->detect_leaks_now();
    endpoints->stop();
    origin->stop();

    std::cout << "\n"
              << report.to_markdown() << "\n"
              << "scraper_demo: " << counters.pages.load() << " pages (" << counters.fetched.load() << " fetched, "
              << counters.cache_hits.load() << " from cache, " << counters.fetch_failures.load() << " failed fetches, "
              << counters.rate_limited.load() << " rate-limited, " << counters.breaker_rejected.load()
              << " refused by breakers), " << counters.links.load() << " links, leaked " << counters.leaked_bytes.load()
              << " bytes on purpose\n";
    if (!leak_report.available) {
      std::cout << "leak detection unavailable: " << leak_report.reason << "\n";
    } else {
      std::cout << "leak suspects (" << leak_report.leak_count << ", from " << leak_report.observations
                << " heap profiles):\n";
      for (const auto& leak : leak_report.leaks) {
        std::cout << "  " << leak.location << ": ~" << mib(static_cast<double>(leak.size) / 1048576.0)
                  << " in use, growing " << static_cast<std::uint64_t>(leak.growth_rate) << " B/s, age "
                  << leak.age.count() << " s\n";
      }
    }
    // What watching cost: the library's own heap in the last heap profile, and who holds it.
    if (const auto self = manager->memory_profiler().self_heap()) {
      std::cout << "riptide-performance's own heap (sampled estimate): "
                << mib(static_cast<double>(self->bytes) / 1048576.0) << " +- "
                << mib(static_cast<double>(self->error_bytes) / 1048576.0) << " (" << self->sampled_objects
                << " samples); heaviest holders:\n";
      for (const auto& holder : self->top_holders) {
        std::cout << "  " << mib(static_cast<double>(holder.bytes) / 1048576.0) << "  "
                  << rp::Symbolizer::shared().resolve(holder.address)->location() << "\n";
      }
    }
    if (options.report_json) {
      nlohmann::json out = report;
      out["demo"] = {{"pages", counters.pages.load()},
                     {"fetched", counters.fetched.load()},
                     {"cache_hits", counters.cache_hits.load()},
                     {"fetch_failures", counters.fetch_failures.load()},
                     {"rate_limited", counters.rate_limited.load()},
                     {"breaker_rejected", counters.breaker_rejected.load()},
                     {"leaked_bytes", counters.leaked_bytes.load()},
                     {"leak_report", leak_report},
                     {"endpoints", data}};
      std::ofstream{*options.report_json} << out.dump(2) << "\n";
      std::cout << "scraper_demo: JSON report written to " << *options.report_json << "\n";
    }
    if (options.report_html) {
      std::ofstream{*options.report_html} << rp::http::render_static_dashboard(
          data.dump(), "riptide-performance report " + data["generated_at"].get<std::string>());
      std::cout << "scraper_demo: HTML report written to " << *options.report_html << "\n";
    }
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "scraper_demo: " << error.what() << "\n";
    return 1;
  }
}
