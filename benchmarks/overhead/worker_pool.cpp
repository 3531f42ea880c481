#include "worker_pool.hpp"

#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

namespace riptide::overhead {

namespace {

double seconds_of(const timespec& ts) {
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// jemalloc's mallctl when the process allocator is jemalloc, looked up at run time: the plain workload
// binaries must not link anything of jemalloc's for their glibc configuration.
using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
Mallctl find_mallctl() {
  static const Mallctl found = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  return found;
}

std::optional<std::uint64_t> thread_allocated_bytes() {
  const Mallctl mallctl = find_mallctl();
  if (!mallctl) return std::nullopt;
  std::uint64_t value = 0;
  std::size_t size = sizeof value;
  if (mallctl("thread.allocated", &value, &size, nullptr, 0) != 0) return std::nullopt;
  return value;
}

}  // namespace

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return seconds_of(ts);
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return seconds_of(ts);
}

std::optional<double> thread_cpu_seconds(pthread_t thread) {
  clockid_t clock{};
  timespec ts{};
  if (pthread_getcpuclockid(thread, &clock) != 0 || clock_gettime(clock, &ts) != 0) return std::nullopt;
  return seconds_of(ts);
}

double load_average() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1.0;
}

const char* process_allocator() {
  return find_mallctl() ? "jemalloc" : "glibc";
}

PageResult process_page(PageProcessor& processor, const PageJob& job) {
  const std::string html = processor.fetch(job);
  const riptide::example::ParsedPage parsed = processor.parse(html, job);
  return processor.extract(parsed, job, html.size());
}

[[gnu::noinline]] PageTally run_pages_on_this_thread(PageProcessor& processor, const std::vector<PageJob>& jobs,
                                                     const PageStep& step, std::atomic<std::size_t>& next,
                                                     const std::atomic<bool>& stop, bool cycle) {
  PageTally tally;
  for (std::size_t i = next.fetch_add(1, std::memory_order_relaxed);;
       i = next.fetch_add(1, std::memory_order_relaxed)) {
    if (cycle ? stop.load(std::memory_order_relaxed) : i >= jobs.size()) break;
    const PageResult result = step(processor, jobs[i % jobs.size()]);
    ++tally.pages;
    tally.checksum += result.checksum;
    tally.links += result.links;
  }
  return tally;
}

WorkerPool::WorkerPool(const riptide::example::Site& site, const std::vector<PageJob>& jobs, unsigned workers,
                       PageStep step, bool cycle)
    : site_(site), jobs_(jobs), step_(std::move(step)), cycle_(cycle) {
  load_before_ = load_average();
  cpu_before_ = process_cpu_seconds();
  started_ = std::chrono::steady_clock::now();
  for (unsigned w = 0; w < workers; ++w) workers_.push_back(std::make_unique<Worker>());
  for (auto& worker : workers_) {
    threads_.emplace_back([this, &worker] { run(*worker); });
    handles_.push_back(threads_.back().native_handle());
  }
}

WorkerPool::~WorkerPool() {
  stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::run(Worker& worker) {
  (void)pthread_setname_np(pthread_self(), "ov-worker");  // tells the workers apart in /proc/self/task
  const auto allocated_before = thread_allocated_bytes();
  PageProcessor processor{site_};
  worker.tally = run_pages_on_this_thread(processor, jobs_, step_, next_, stop_, cycle_);
  if (const auto allocated_after = thread_allocated_bytes(); allocated_before && allocated_after) {
    worker.allocated = *allocated_after - *allocated_before;
  }
  worker.final_cpu.store(thread_cpu_seconds());
}

double WorkerPool::workers_cpu_seconds() const {
  double total = 0;
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    double cpu = workers_[w]->final_cpu.load();
    if (cpu < 0) {
      // Still running: its clock. A worker that ended between the two reads has stored its final CPU.
      cpu = thread_cpu_seconds(handles_[w]).value_or(workers_[w]->final_cpu.load());
    }
    total += std::max(0.0, cpu);
  }
  return total;
}

PoolTotals WorkerPool::join() {
  for (auto& t : threads_) t.join();
  PoolTotals totals;
  totals.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  totals.cpu_s = process_cpu_seconds() - cpu_before_;
  totals.load_before = load_before_;
  totals.load_after = load_average();
  for (const auto& worker : workers_) {
    totals.pages += worker->tally.pages;
    totals.checksum += worker->tally.checksum;
    totals.links += worker->tally.links;
    totals.worker_cpu_s += worker->final_cpu.load();
    if (worker->allocated) totals.allocated_bytes = totals.allocated_bytes.value_or(0) + *worker->allocated;
  }
  return totals;
}

}  // namespace riptide::overhead
