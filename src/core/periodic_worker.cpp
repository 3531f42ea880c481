#include "riptide/performance/core/periodic_worker.hpp"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/fork_safety.hpp"
#include "riptide/performance/core/logger.hpp"

namespace riptide::performance {

// Everything the thread touches. The worker owns it (the thread only borrows it) and, in a forked child,
// hands it to keep_until_exit instead of destroying it: `wake` may have had the vanished thread as a waiter.
struct PeriodicWorker::Thread {
  std::mutex mutex;  // stop_requested
  std::condition_variable wake;
  bool stop_requested = false;
  // Held for the whole of each run; the fork handler takes it, so a fork never copies a half-done run.
  std::mutex run_mutex;
  std::uint64_t generation = fork_generation();
  detail::ForkRegistration fork_registration;
  std::thread thread;
};

namespace {

void run_logging_failures(const std::string& name, const std::function<void()>& task) noexcept {
  try {
    task();
  } catch (const std::exception& error) {
    try {
      logger()->warn("{}: run failed: {}", name, error.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      logger()->warn("{}: run failed with an unknown exception", name);
    } catch (...) {
    }
  }
}

}  // namespace

PeriodicWorker::PeriodicWorker(std::string name, std::chrono::steady_clock::duration interval,
                               std::function<void()> task, FirstRun first_run)
    : name_(std::move(name)), interval_(interval), task_(std::move(task)), first_run_(first_run) {}

PeriodicWorker::~PeriodicWorker() {
  stop();
}

void PeriodicWorker::abandon_if_inherited_locked() noexcept {
  if (thread_ && thread_->generation != fork_generation()) {
    // This process is a fork() child: the thread is not here. Detaching only marks glibc's copy of its
    // descriptor; joining would wait for a thread that never ends.
    thread_->thread.detach();
    thread_->fork_registration = {};
    keep_until_exit(std::move(thread_));  // leaves thread_ empty
  }
}

void PeriodicWorker::start() {
  const std::lock_guard lifecycle(lifecycle_mutex_);
  abandon_if_inherited_locked();
  if (thread_) return;
  auto state = std::make_shared<Thread>();
  state->fork_registration = detail::hold_across_fork(state->run_mutex, detail::ForkStage::finish_background_runs);
  Thread* raw = state.get();
  try {
    state->thread = std::thread([raw, name = name_, interval = interval_, task = task_, first = first_run_] {
      (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      auto next = std::chrono::steady_clock::now();
      if (first == FirstRun::after_interval) next += interval;
      std::unique_lock lock(raw->mutex);
      for (;;) {
        if (raw->wake.wait_until(lock, next, [raw] { return raw->stop_requested; })) return;
        lock.unlock();
        {
          const std::lock_guard run(raw->run_mutex);
          run_logging_failures(name, task);
        }
        lock.lock();
        next += interval;
        const auto now = std::chrono::steady_clock::now();
        if (next < now) next = now + interval;  // fell behind (suspended process): no burst of catch-up runs
      }
    });
  } catch (const std::system_error& error) {
    throw Error("cannot start the " + name_ + " thread: " + error.what());
  }
  thread_ = std::move(state);
}

void PeriodicWorker::stop() noexcept {
  const std::lock_guard lifecycle(lifecycle_mutex_);
  abandon_if_inherited_locked();
  if (!thread_) return;
  {
    const std::lock_guard lock(thread_->mutex);
    thread_->stop_requested = true;
  }
  thread_->wake.notify_all();
  if (thread_->thread.joinable()) thread_->thread.join();
  thread_.reset();
}

bool PeriodicWorker::running() const noexcept {
  const std::lock_guard lifecycle(lifecycle_mutex_);
  return thread_ && thread_->generation == fork_generation();
}

}  // namespace riptide::performance
