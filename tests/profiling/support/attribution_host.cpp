// A host program of our own making for attribution_host_test: a service that embeds riptide-performance
// (heap profiling on, the leak detector every 2 s, every endpoint served on loopback) and allocates in
// shapes a real service has. Three of them leak; three hold memory without leaking. It prints what a
// leak report must say, so the test can compare the report with the truth:
//   PORT <port>                         the endpoints' port
//   START <unix milliseconds>           the origin of the seconds below
//   LINE <function> <line>              the line of each site that allocates (the module's once loaded)
//   MODULE_LOADED <seconds>             when the module was loaded with dlopen
//   TRUTH <seconds> retain=<bytes> sessions=<bytes> module=<bytes>   the leaks' live bytes, every second
// Arguments: [duration seconds, default 75] [path of attribution_module]. Exits with status 0 after the
// duration or on SIGTERM.
#include <dlfcn.h>
#include <jemalloc/jemalloc.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "riptide/performance/http/serve.hpp"
#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"

// One sample per 32 KiB on average: by the end of a run the smallest leak (about 9 MB) holds about 290
// samples and the module's (about 18 MB) about 580, so the test's size bounds (±50% and ±25%) sit at 8 and 6
// standard deviations of the sampling error. At 128 KiB the module's ±25% was 2.9 standard deviations:
// 1 run in about 250 would miss it by chance alone (over 30 runs its error was within 0.92 error bars on
// average, the largest 3.0).
RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:15,prof_accum:false");

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

enum Site { retain, sessions, warm, grow, handoff, kSites };
constexpr std::array<const char*, kSites> kSiteNames = {"retain_parsed_documents", "slow_leak_sessions", "warm_cache",
                                                        "grow_and_release", "handoff_buffers"};
std::array<std::atomic<int>, kSites> g_site_lines{};

// Records the line it is written on: it shares its line with the allocation the report must name.
#define SITE_LINE(site) (g_site_lines[site] = __LINE__)

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) {
  g_stop = true;
}

using Clock = std::chrono::steady_clock;
Clock::time_point g_start;
double seconds_since_start() {
  return std::chrono::duration<double>(Clock::now() - g_start).count();
}

// Allocates `rate` bytes per second on average from the start of `work`: how many bytes are due now.
struct Pacer {
  double bytes_per_second;
  Clock::time_point from = Clock::now();
  double done = 0;
  double due() const { return bytes_per_second * std::chrono::duration<double>(Clock::now() - from).count() - done; }
};

void sleep_unless_stopped(std::chrono::milliseconds period) {
  if (!g_stop) std::this_thread::sleep_for(period);
}

// --- retain_parsed_documents: three workers parse documents and keep every one (bodies and map nodes
// allocated on one line), about 400 KB/s in all.
constexpr std::size_t kDocumentBytes = 1500;
using Documents = std::map<std::uint64_t, std::string>;
Documents& g_documents = *new Documents;  // never freed
std::mutex g_documents_mutex;
std::uint64_t g_next_id = 0;
std::atomic<std::size_t> g_document_count{0};

__attribute__((noinline)) void retain_parsed_documents(int count) {
  std::lock_guard lock{g_documents_mutex};
  for (int i = 0; i < count; ++i) {
    g_documents.emplace(g_next_id++, std::string(kDocumentBytes, 'x')), SITE_LINE(retain);
    ++g_document_count;
  }
}

std::size_t retained_document_bytes() {
  // A std::map node is the tree's 32-byte header followed by the value.
  const std::size_t node = nallocx(32 + sizeof(Documents::value_type), 0);
  return g_document_count.load() * (nallocx(kDocumentBytes + 1, 0) + node);
}

// --- slow_leak_sessions: 128 KB/s of 4 KiB session buffers that nobody releases; the vector's growth
// happens inside the leaking function, on the same line.
constexpr std::size_t kSessionBytes = 4096;
auto& g_sessions = *new std::vector<std::unique_ptr<char[]>>;  // never freed
std::atomic<std::size_t> g_session_count{0};
std::atomic<std::size_t> g_session_capacity{0};

__attribute__((noinline)) void slow_leak_sessions(int count) {
  for (int i = 0; i < count; ++i) {
    g_sessions.push_back(std::make_unique<char[]>(kSessionBytes)), SITE_LINE(sessions);
  }
  g_session_count = g_sessions.size();
  g_session_capacity = g_sessions.capacity();
}

std::size_t session_bytes() {
  const std::size_t capacity = g_session_capacity.load();
  return g_session_count.load() * nallocx(kSessionBytes, 0) +
         (capacity > 0 ? nallocx(capacity * sizeof(std::unique_ptr<char[]>), 0) : 0);
}

// --- warm_cache: fills to about 8 MB over 20 s, then only replaces entries (same keys, same line), so it
// stays flat.
constexpr std::size_t kCacheValueBytes = 2000;
constexpr std::uint64_t kCacheEntries = 4000;
auto& g_cache = *new std::unordered_map<std::uint64_t, std::string>;

__attribute__((noinline)) void warm_cache(std::uint64_t key) {
  g_cache.insert_or_assign(key, std::string(kCacheValueBytes, 'c')), SITE_LINE(warm);
}

// --- grow_and_release: a batch that grows ~300 KB/s for 15 s and is then released, in cycles.
constexpr std::size_t kBatchItemBytes = 1000;
auto& g_batch = *new std::vector<std::string>;

__attribute__((noinline)) void grow_and_release(int count) {
  for (int i = 0; i < count; ++i) {
    g_batch.emplace_back(kBatchItemBytes, 'g'), SITE_LINE(grow);
  }
}

__attribute__((noinline)) void release_batch() {
  g_batch.clear();
  g_batch.shrink_to_fit();
}

// --- handoff_buffers: a producer allocates 16 KiB buffers into a queue of at most 64, a consumer frees
// them: allocated here, freed there.
constexpr std::size_t kHandoffBytes = 16384;
constexpr std::size_t kHandoffDepth = 64;
std::mutex g_handoff_mutex;
std::condition_variable g_handoff_changed;
std::deque<std::unique_ptr<char[]>> g_handoff;

__attribute__((noinline)) std::unique_ptr<char[]> handoff_buffers() {
  auto buffer = (SITE_LINE(handoff), std::make_unique<char[]>(kHandoffBytes));
  return buffer;
}

using StepFunction = void (*)(std::size_t);
using LineFunction = int (*)();
using BytesFunction = std::size_t (*)();

}  // namespace

int main(int argc, char** argv) {
  const double duration = argc > 1 ? std::atof(argv[1]) : 75.0;
  const std::string module_path = argc > 2 ? argv[2] : "";
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  g_start = Clock::now();

  rp::Config config;
  config.profiling.leak_detection_interval_sec = 2;
  config.monitoring.enabled = true;
  config.http.bind = "127.0.0.1";
  config.http.port = 0;
  auto manager = rp::PerformanceManager::with_config(config);
  manager->start_monitoring();
  auto endpoints = rp::http::serve(manager);
  std::printf("PORT %u\n", static_cast<unsigned>(endpoints->port()));
  std::printf("START %lld\n", static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                         std::chrono::system_clock::now().time_since_epoch())
                                                         .count()));

  std::vector<std::thread> threads;
  // Three document workers, 8 documents every 100 ms each: 240 documents (~390 KB) a second.
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([] {
      while (!g_stop) {
        retain_parsed_documents(8);
        sleep_unless_stopped(100ms);
      }
    });
  }
  threads.emplace_back([] {
    Pacer sessions{128.0 * 1024};
    Pacer batch{300.0 * 1024};
    Pacer cache{400.0 * 1024};
    Pacer replacements{100.0 * 1024};
    std::mt19937_64 random{42};
    std::uint64_t next_key = 0;
    auto cycle_start = Clock::now();
    while (!g_stop) {
      if (const int n = static_cast<int>(sessions.due() / kSessionBytes); n > 0) {
        slow_leak_sessions(n);
        sessions.done += static_cast<double>(n) * kSessionBytes;
      }
      if (Clock::now() - cycle_start >= 15s) {
        release_batch();
        cycle_start = Clock::now();
      }
      if (const int n = static_cast<int>(batch.due() / kBatchItemBytes); n > 0) {
        grow_and_release(n);
        batch.done += static_cast<double>(n) * kBatchItemBytes;
      }
      if (next_key < kCacheEntries) {
        for (; next_key < kCacheEntries && cache.due() >= kCacheValueBytes; cache.done += kCacheValueBytes) {
          warm_cache(next_key++);
        }
        replacements.from = Clock::now();
      } else {
        for (; replacements.due() >= kCacheValueBytes; replacements.done += kCacheValueBytes) {
          warm_cache(random() % kCacheEntries);
        }
      }
      sleep_unless_stopped(50ms);
    }
  });
  // 500 buffers a second through the queue.
  threads.emplace_back([] {
    Pacer produced{500.0 * kHandoffBytes};
    while (!g_stop) {
      for (; produced.due() >= kHandoffBytes; produced.done += kHandoffBytes) {
        auto buffer = handoff_buffers();
        std::unique_lock lock{g_handoff_mutex};
        g_handoff_changed.wait_for(lock, 100ms, [] { return g_handoff.size() < kHandoffDepth || g_stop; });
        if (g_stop) break;
        g_handoff.push_back(std::move(buffer));
        g_handoff_changed.notify_all();
      }
      sleep_unless_stopped(10ms);
    }
  });
  threads.emplace_back([] {
    while (!g_stop) {
      std::unique_ptr<char[]> buffer;
      {
        std::unique_lock lock{g_handoff_mutex};
        g_handoff_changed.wait_for(lock, 100ms, [] { return !g_handoff.empty() || g_stop; });
        if (g_handoff.empty()) continue;
        buffer = std::move(g_handoff.front());
        g_handoff.pop_front();
        g_handoff_changed.notify_all();
      }
      buffer[0] = 1;  // consumed, then freed on this thread
    }
  });

  // Each site records its line on its first allocation.
  const auto lines_known = [] {
    return std::all_of(g_site_lines.begin(), g_site_lines.end(), [](const auto& line) { return line > 0; });
  };
  while (!g_stop && !lines_known()) std::this_thread::sleep_for(10ms);
  for (int site = 0; site < kSites; ++site) std::printf("LINE %s %d\n", kSiteNames[site], g_site_lines[site].load());

  StepFunction module_step = nullptr;
  BytesFunction module_bytes = nullptr;
  auto last_truth = Clock::now() - 1s;
  auto last_module_step = Clock::now();
  int status = 0;
  while (!g_stop && seconds_since_start() < duration) {
    // The module comes after the first heap profiles: the symbolizer has read the process's modules
    // without it.
    if (module_step == nullptr && !module_path.empty() && seconds_since_start() >= 5.0) {
      void* handle = ::dlopen(module_path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        std::printf("ERROR dlopen %s: %s\n", module_path.c_str(), ::dlerror());
        status = 1;
        break;
      }
      module_step = reinterpret_cast<StepFunction>(::dlsym(handle, "module_leak_step"));
      module_bytes = reinterpret_cast<BytesFunction>(::dlsym(handle, "module_live_bytes"));
      auto module_line = reinterpret_cast<LineFunction>(::dlsym(handle, "module_leak_line"));
      if (module_step == nullptr || module_bytes == nullptr || module_line == nullptr) {
        std::printf("ERROR dlsym in %s: %s\n", module_path.c_str(), ::dlerror());
        status = 1;
        break;
      }
      module_step(1000);
      std::printf("MODULE_LOADED %.1f\n", seconds_since_start());
      std::printf("LINE module_leak_step %d\n", module_line());
      last_module_step = Clock::now();
    }
    if (module_step != nullptr) {
      // ~256 KB/s from the load on.
      const auto now = Clock::now();
      module_step(
          static_cast<std::size_t>(256.0 * 1024 * std::chrono::duration<double>(now - last_module_step).count()));
      last_module_step = now;
    }
    if (Clock::now() - last_truth >= 1s) {
      last_truth += 1s;
      std::printf("TRUTH %.1f retain=%zu sessions=%zu module=%zu\n", seconds_since_start(), retained_document_bytes(),
                  session_bytes(), module_bytes != nullptr ? module_bytes() : std::size_t{0});
    }
    std::this_thread::sleep_for(100ms);
  }
  g_stop = true;
  g_handoff_changed.notify_all();
  for (auto& thread : threads) thread.join();
  endpoints->stop();
  (void)manager->stop_monitoring();
  std::printf("EXIT %d\n", status);
  std::fflush(stdout);
  return status;
}
