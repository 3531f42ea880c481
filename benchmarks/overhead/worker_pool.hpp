#pragma once
// Runs the workload's page list on worker threads and measures it: wall time, process CPU, each
// worker's CPU (readable while the workers run, for the background timeline), bytes allocated and the
// checksum. Shared by overhead_benchmark (the library's configurations) and the overhead_workload_*
// binaries (no library), so every configuration runs and measures the very same loop.

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "workload.hpp"

namespace riptide::overhead {

/// CPU seconds of the whole process (every thread, including those that have exited).
[[nodiscard]] double process_cpu_seconds();
/// CPU seconds of the calling thread.
[[nodiscard]] double thread_cpu_seconds();
/// CPU seconds of another running thread; nullopt once it has exited.
[[nodiscard]] std::optional<double> thread_cpu_seconds(pthread_t thread);
/// The 1-minute load average (-1 when unreadable).
[[nodiscard]] double load_average();

/// "jemalloc" when the process allocator answers mallctl, otherwise "glibc": each child reports what it
/// really ran on, so a link mistake cannot pass for a configuration.
[[nodiscard]] const char* process_allocator();

/// One page's work. Instrumented configurations wrap the plain step with their per-page library calls.
using PageStep = std::function<PageResult(PageProcessor&, const PageJob&)>;

/// The plain step: fetch (generate), parse, extract.
[[nodiscard]] PageResult process_page(PageProcessor& processor, const PageJob& job);

/// What one run of the pool did.
struct PoolTotals {
  std::size_t pages = 0;  ///< pages processed
  double elapsed_s = 0;
  double cpu_s = 0;         ///< process CPU over the run
  double worker_cpu_s = 0;  ///< the workers' share of it
  std::uint64_t checksum = 0;
  std::uint64_t links = 0;
  std::optional<std::uint64_t> allocated_bytes;  ///< by the workers; jemalloc only (thread.allocated)
  double load_before = 0;
  double load_after = 0;
};

/// What one worker's pages added up to.
struct PageTally {
  std::uint64_t pages = 0;
  std::uint64_t checksum = 0;
  std::uint64_t links = 0;
};

/// The workers' page loop. Out of line under this name so that callgrind can count exactly the pages'
/// instructions, setup and the library's own threads left out: --toggle-collect=*run_pages_on_this_thread*
/// (kCountedFunction).
PageTally run_pages_on_this_thread(PageProcessor& processor, const std::vector<PageJob>& jobs, const PageStep& step,
                                   std::atomic<std::size_t>& next, const std::atomic<bool>& stop, bool cycle);
inline constexpr const char* kCountedFunction = "run_pages_on_this_thread";

/// The workers start in the constructor. In a fixed run (`cycle` false) each page of `jobs` is taken
/// once and the workers end by themselves; in a cycling run they go round the list until stop().
class WorkerPool {
 public:
  WorkerPool(const riptide::example::Site& site, const std::vector<PageJob>& jobs, unsigned workers, PageStep step,
             bool cycle);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// The workers' CPU so far, while they run or after they ended.
  [[nodiscard]] double workers_cpu_seconds() const;
  /// Ends a cycling run after the pages in progress.
  void stop() { stop_.store(true, std::memory_order_relaxed); }
  /// Waits for the workers and returns the run's totals (call once).
  PoolTotals join();

 private:
  struct Worker {
    std::atomic<double> final_cpu{-1.0};  ///< set by the worker as it ends
    PageTally tally;
    std::optional<std::uint64_t> allocated;
  };
  void run(Worker& worker);

  const riptide::example::Site& site_;
  const std::vector<PageJob>& jobs_;
  PageStep step_;
  bool cycle_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<pthread_t> handles_;  ///< for reading the workers' clocks while they run
  double load_before_ = 0;
  double cpu_before_ = 0;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace riptide::overhead
