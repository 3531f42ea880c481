#include "riptide/performance/core/periodic_worker.hpp"

#include <utility>

namespace riptide::performance {

PeriodicWorker::PeriodicWorker(std::string name, std::chrono::steady_clock::duration interval,
                               std::function<void()> task, FirstRun first_run)
    : PeriodicWorker(nullptr, std::move(name), interval, std::move(task), first_run) {}

PeriodicWorker::PeriodicWorker(std::shared_ptr<PeriodicScheduler> scheduler, std::string name,
                               std::chrono::steady_clock::duration interval, std::function<void()> task,
                               FirstRun first_run)
    : scheduler_(scheduler ? std::move(scheduler) : std::make_shared<PeriodicScheduler>(name)),
      name_(std::move(name)),
      interval_(interval),
      task_(std::move(task)),
      first_run_(first_run) {}

PeriodicWorker::~PeriodicWorker() {
  stop();
}

void PeriodicWorker::start() {
  const std::lock_guard lock(mutex_);
  if (job_ && scheduler_->contains(*job_)) return;
  job_ = scheduler_->add(name_, interval_, task_, first_run_);
}

void PeriodicWorker::stop() noexcept {
  const std::lock_guard lock(mutex_);
  if (!job_) return;
  scheduler_->remove(*job_);
  job_.reset();
}

bool PeriodicWorker::running() const noexcept {
  const std::lock_guard lock(mutex_);
  return job_ && scheduler_->contains(*job_);
}

}  // namespace riptide::performance
