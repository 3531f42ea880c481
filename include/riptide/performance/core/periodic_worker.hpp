#pragma once
// One background thread that runs a task at a fixed pace until stopped: the library's sampler, leak
// observer and target checker. It keeps the host safe around fork(): a fork waits until the task is not
// in the middle of a run, and in a child (which has no copy of the thread) stop() and the destructor
// neither join nor block; start() in the child starts a fresh thread.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace riptide::performance {

class PeriodicWorker {
 public:
  /// Whether the first run happens as soon as the thread starts or one interval later.
  enum class FirstRun { immediately, after_interval };

  /// `name` names the thread (the first 15 characters, as the kernel shows them in `top -H` and
  /// /proc/PID/task/*/comm: the library's threads are recognisable among the host's). `task` must not
  /// call fork(); exceptions it throws are logged and the next run happens on time.
  PeriodicWorker(std::string name, std::chrono::steady_clock::duration interval, std::function<void()> task,
                 FirstRun first_run = FirstRun::immediately);
  ~PeriodicWorker();
  PeriodicWorker(const PeriodicWorker&) = delete;
  PeriodicWorker& operator=(const PeriodicWorker&) = delete;

  /// Starts the thread; nothing happens when it already runs. start(), stop() and running() may be called
  /// from any thread. Throws riptide::performance::Error when the
  /// thread cannot be created.
  void start();
  /// Stops the thread and waits for the current run to end. Idempotent, never throws.
  void stop() noexcept;
  /// True between start() and stop() in the process that started the thread (false in a forked child).
  [[nodiscard]] bool running() const noexcept;

 private:
  struct Thread;
  void abandon_if_inherited_locked() noexcept;

  std::string name_;
  std::chrono::steady_clock::duration interval_;
  std::function<void()> task_;
  FirstRun first_run_;
  mutable std::mutex lifecycle_mutex_;  // thread_
  std::shared_ptr<Thread> thread_;      // null while stopped
};

}  // namespace riptide::performance
