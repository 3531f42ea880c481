#pragma once
// One background thread that runs several periodic jobs, each at its own pace: a PerformanceManager runs
// its memory sampling, leak observations and target checks on one such thread (`riptide-periodic`), so
// the library adds one periodic thread to the host, not one per component. Jobs run one at a time, in
// the order they fall due; a slow run (a leak observation parses a heap profile) delays the others and
// never overlaps them. Every job stamps its own readings with the clock, so a delay shifts a sample, it
// does not distort it.
//
// Fork safety is the scheduler's: a fork waits until no run is half-done, and in a forked child (which
// has no copy of the thread) the scheduler holds no jobs, remove() and the destructor neither join nor
// block, and add() starts a fresh thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace riptide::performance {

class PeriodicScheduler {
 public:
  using JobId = std::uint64_t;
  /// Whether a job's first run happens as soon as it is added or one interval later.
  enum class FirstRun { immediately, after_interval };

  /// `thread_name` names the thread (the first 15 characters, as the kernel shows them in `top -H` and
  /// /proc/PID/task/*/comm: the library's threads are recognisable among the host's).
  explicit PeriodicScheduler(std::string thread_name);
  /// Removes every job and joins the thread. Never throws.
  ~PeriodicScheduler();
  PeriodicScheduler(const PeriodicScheduler&) = delete;
  PeriodicScheduler& operator=(const PeriodicScheduler&) = delete;

  /// Adds a job and starts the thread if it does not run. `name` names the job in the log: a run that
  /// throws is logged under it and the next run happens on time. `task` must not call fork() and must
  /// not add or remove jobs of this scheduler. Throws riptide::performance::Error when the thread cannot
  /// be created.
  [[nodiscard]] JobId add(std::string name, std::chrono::steady_clock::duration interval, std::function<void()> task,
                          FirstRun first_run = FirstRun::immediately);
  /// Removes a job and waits for its current run to end; the thread ends with the last job. Unknown ids
  /// are ignored. Never throws.
  void remove(JobId id) noexcept;
  /// True while the job is scheduled in the process that added it (false in a forked child).
  [[nodiscard]] bool contains(JobId id) const noexcept;
  /// True while the scheduler's thread exists in this process.
  [[nodiscard]] bool has_thread() const noexcept;
  [[nodiscard]] const std::string& thread_name() const noexcept { return thread_name_; }

 private:
  struct Job;
  struct Thread;
  void abandon_if_inherited_locked() noexcept;
  static void end_thread(std::shared_ptr<Thread> ending) noexcept;

  std::string thread_name_;
  mutable std::mutex lifecycle_mutex_;  // thread_, next_id_
  std::shared_ptr<Thread> thread_;      // null while no job is scheduled
  JobId next_id_ = 1;
};

}  // namespace riptide::performance
