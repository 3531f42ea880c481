#include "riptide/performance/core/periodic_scheduler.hpp"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <system_error>
#include <thread>
#include <utility>

#include "riptide/performance/core/error.hpp"
#include "riptide/performance/core/fork_safety.hpp"
#include "riptide/performance/core/logger.hpp"

namespace riptide::performance {

struct PeriodicScheduler::Job {
  std::string name;
  std::chrono::steady_clock::duration interval;
  std::function<void()> task;
  std::chrono::steady_clock::time_point next;
};

// Everything the thread touches. The thread holds a reference, so the state outlives a scheduler that
// a run destroyed; in a forked child it goes to keep_until_exit: `wake` and `run_ended` may have had
// the vanished thread as a waiter.
struct PeriodicScheduler::Thread {
  std::mutex mutex;                   // jobs, running_job, stop_requested
  std::condition_variable wake;       // a job was added or the thread should end
  std::condition_variable run_ended;  // running_job went back to 0
  std::map<JobId, std::shared_ptr<Job>> jobs;
  JobId running_job = 0;
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

PeriodicScheduler::PeriodicScheduler(std::string thread_name) : thread_name_(std::move(thread_name)) {}

PeriodicScheduler::~PeriodicScheduler() {
  std::shared_ptr<Thread> ending;
  {
    const std::lock_guard lifecycle(lifecycle_mutex_);
    abandon_if_inherited_locked();
    ending = std::move(thread_);
  }
  end_thread(std::move(ending));
}

void PeriodicScheduler::abandon_if_inherited_locked() noexcept {
  if (thread_ && thread_->generation != fork_generation()) {
    // This process is a fork() child: the thread is not here, nor are its jobs. Detaching only marks
    // glibc's copy of its descriptor; joining would wait for a thread that never ends.
    thread_->thread.detach();
    thread_->fork_registration = {};
    keep_until_exit(std::move(thread_));  // leaves thread_ empty
  }
}

// Called without the lifecycle lock: a run that is ending may still ask contains().
void PeriodicScheduler::end_thread(std::shared_ptr<Thread> ending) noexcept {
  if (!ending) return;
  {
    const std::lock_guard lock(ending->mutex);
    ending->stop_requested = true;
  }
  ending->wake.notify_all();
  if (ending->thread.get_id() == std::this_thread::get_id()) {
    ending->thread.detach();  // a run ended its own scheduler: the thread finishes that run and returns
  } else if (ending->thread.joinable()) {
    ending->thread.join();
  }
}

PeriodicScheduler::JobId PeriodicScheduler::add(std::string name, std::chrono::steady_clock::duration interval,
                                                std::function<void()> task, FirstRun first_run) {
  const std::lock_guard lifecycle(lifecycle_mutex_);
  abandon_if_inherited_locked();
  if (!thread_) {
    auto state = std::make_shared<Thread>();
    state->fork_registration = detail::hold_across_fork(state->run_mutex, detail::ForkStage::finish_background_runs);
    try {
      state->thread = std::thread([state, thread_name = thread_name_] {
        (void)pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
        std::unique_lock lock(state->mutex);
        while (!state->stop_requested) {
          if (state->jobs.empty()) {
            state->wake.wait(lock, [&] { return state->stop_requested || !state->jobs.empty(); });
            continue;
          }
          const auto due = std::min_element(state->jobs.begin(), state->jobs.end(), [](const auto& a, const auto& b) {
            return a.second->next < b.second->next;
          });
          const std::shared_ptr<Job> job = due->second;
          if (std::chrono::steady_clock::now() < job->next) {
            // Woken early by an added job or a stop: choose again.
            state->wake.wait_until(lock, job->next);
            continue;
          }
          state->running_job = due->first;
          lock.unlock();
          {
            const std::lock_guard run(state->run_mutex);
            run_logging_failures(job->name, job->task);
          }
          lock.lock();
          state->running_job = 0;
          state->run_ended.notify_all();
          job->next += job->interval;
          const auto now = std::chrono::steady_clock::now();
          if (job->next < now) job->next = now + job->interval;  // fell behind: no burst of catch-up runs
        }
      });
    } catch (const std::system_error& error) {
      throw Error("cannot start the " + thread_name_ + " thread: " + error.what());
    }
    thread_ = std::move(state);
  }
  const JobId id = next_id_++;
  auto job = std::make_shared<Job>();
  job->name = std::move(name);
  job->interval = interval;
  job->task = std::move(task);
  job->next = std::chrono::steady_clock::now();
  if (first_run == FirstRun::after_interval) job->next += interval;
  {
    const std::lock_guard lock(thread_->mutex);
    thread_->jobs.emplace(id, std::move(job));
  }
  thread_->wake.notify_all();
  return id;
}

void PeriodicScheduler::remove(JobId id) noexcept {
  std::shared_ptr<Thread> current;
  bool on_own_thread = false;
  {
    const std::lock_guard lifecycle(lifecycle_mutex_);
    abandon_if_inherited_locked();
    current = thread_;
    on_own_thread = current && current->thread.get_id() == std::this_thread::get_id();
  }
  if (!current) return;
  {
    // Waits without the lifecycle lock: the run it waits for may ask contains().
    std::unique_lock lock(current->mutex);
    if (current->jobs.erase(id) == 0) return;
    if (!on_own_thread) current->run_ended.wait(lock, [&] { return current->running_job != id; });
  }
  std::shared_ptr<Thread> ending;
  {
    const std::lock_guard lifecycle(lifecycle_mutex_);
    if (thread_ == current) {
      const std::lock_guard lock(current->mutex);
      if (current->jobs.empty()) ending = std::move(thread_);
    }
  }
  end_thread(std::move(ending));
}

bool PeriodicScheduler::contains(JobId id) const noexcept {
  const std::lock_guard lifecycle(lifecycle_mutex_);
  if (!thread_ || thread_->generation != fork_generation()) return false;
  const std::lock_guard lock(thread_->mutex);
  return thread_->jobs.count(id) != 0;
}

bool PeriodicScheduler::has_thread() const noexcept {
  const std::lock_guard lifecycle(lifecycle_mutex_);
  return thread_ && thread_->generation == fork_generation();
}

}  // namespace riptide::performance
