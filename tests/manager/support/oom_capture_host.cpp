// A host program for memory_capture_oom_test: it joins the memory cgroup it is given, embeds a
// PerformanceManager that writes memory captures, and allocates steadily until the kernel's OOM killer
// ends it. What it prints, so the test can follow:
//   JOINED <cgroup.procs path>   it moved itself into the cgroup (before the manager looks for its cgroup)
//   CGROUP <version> <dir>       the cgroup the manager's reader found
//   ALLOCATED <MiB>              every 8 MiB
// Arguments: <cgroup.procs path> <capture dir> <cgroup share>. It never exits on its own: the OOM killer
// (or the test, after a timeout) ends it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "riptide/performance/manager/performance_manager.hpp"
#include "riptide/performance/memory/cgroup_memory.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:19,prof_accum:false");

namespace rp = riptide::performance;

namespace {

// The site the capture's heap profile must show: every byte that fills the cgroup is allocated here.
[[gnu::noinline]] char* allocate_steadily(std::size_t bytes) {
  auto* block = static_cast<char*>(std::malloc(bytes));
  if (block != nullptr) std::memset(block, 0x5a, bytes);  // touched: resident, charged to the cgroup
  return block;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <cgroup.procs> <capture dir> <cgroup share>\n", argv[0]);
    return 2;
  }
  {
    std::ofstream procs(argv[1]);
    procs << ::getpid() << std::flush;
    if (!procs) {
      std::fprintf(stderr, "cannot write my pid into %s: %s\n", argv[1], std::strerror(errno));
      return 3;
    }
  }
  std::printf("JOINED %s\n", argv[1]);
  const rp::CgroupMemoryReader cgroup;
  std::printf("CGROUP %d %s\n", cgroup.version(),
              cgroup.available() ? cgroup.directory().c_str() : cgroup.unavailable_reason().c_str());
  std::fflush(stdout);

  rp::Config config;
  config.http.enabled = false;
  config.cache.enabled = false;
  config.monitoring.sample_interval_sec = 0.1;
  config.targets.max_memory_mb = 1 << 20;  // only the cgroup share triggers
  config.targets.memory_alert_mb = 1 << 20;
  config.profiling.capture_dir = argv[2];
  config.profiling.capture_cgroup_share = std::strtod(argv[3], nullptr);
  config.profiling.capture_min_free_mb = 16;
  config.profiling.leak_detection_interval_sec = 3600;
  auto manager = rp::PerformanceManager::with_config(config);
  manager->start_monitoring();

  // 8 MiB every 200 ms (40 MiB/s): about 2.5 s between a 0.6 share and the limit of a 256 MiB cgroup, time
  // enough for a capture (a heap dump, symbolization and a few fsyncs).
  std::vector<char*> kept;
  constexpr std::size_t kChunk = 8u << 20;
  for (std::size_t total = kChunk;; total += kChunk) {
    kept.push_back(allocate_steadily(kChunk));
    std::printf("ALLOCATED %zu\n", total >> 20);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
}
