#pragma once
// One periodic job that a component starts and stops: the memory sampler, the leak observer, the target
// checker. On its own it runs on a thread of its own; given a PeriodicScheduler it runs on that
// scheduler's thread beside the scheduler's other jobs (what a PerformanceManager does). Fork safety is
// the scheduler's (see periodic_scheduler.hpp).

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "riptide/performance/core/periodic_scheduler.hpp"

namespace riptide::performance {

class PeriodicWorker {
 public:
  using FirstRun = PeriodicScheduler::FirstRun;

  /// A job on a thread of its own named `name` (see PeriodicScheduler). `task` must not call fork();
  /// exceptions it throws are logged and the next run happens on time.
  PeriodicWorker(std::string name, std::chrono::steady_clock::duration interval, std::function<void()> task,
                 FirstRun first_run = FirstRun::immediately);
  /// A job on `scheduler`'s thread; a null scheduler gives the job a thread of its own.
  PeriodicWorker(std::shared_ptr<PeriodicScheduler> scheduler, std::string name,
                 std::chrono::steady_clock::duration interval, std::function<void()> task,
                 FirstRun first_run = FirstRun::immediately);
  ~PeriodicWorker();
  PeriodicWorker(const PeriodicWorker&) = delete;
  PeriodicWorker& operator=(const PeriodicWorker&) = delete;

  /// Schedules the job; nothing happens when it is scheduled already. start(), stop() and running() may
  /// be called from any thread. Throws riptide::performance::Error when the thread cannot be created.
  void start();
  /// Unschedules the job and waits for its current run to end. Idempotent, never throws.
  void stop() noexcept;
  /// True between start() and stop() in the process that started the job (false in a forked child).
  [[nodiscard]] bool running() const noexcept;

 private:
  std::shared_ptr<PeriodicScheduler> scheduler_;
  std::string name_;
  std::chrono::steady_clock::duration interval_;
  std::function<void()> task_;
  FirstRun first_run_;
  mutable std::mutex mutex_;                     // job_
  std::optional<PeriodicScheduler::JobId> job_;  // set between start() and stop()
};

}  // namespace riptide::performance
