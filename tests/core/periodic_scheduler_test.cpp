// PeriodicScheduler: several jobs, each at its own pace, on one named thread; removing a job waits for
// its run; the thread ends with the last job; a failing run does not stop the job.
#include <gtest/gtest.h>
#include <pthread.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "riptide/performance/core/periodic_scheduler.hpp"
#include "riptide/performance/core/periodic_worker.hpp"

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace {

std::string current_thread_name() {
  std::array<char, 32> name{};
  (void)pthread_getname_np(pthread_self(), name.data(), name.size());
  return name.data();
}

// Polls until `done` or 10 s (a bound far above any pace below, for loaded and sanitized machines).
template <typename Predicate>
bool eventually(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

struct Runs {
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::set<std::string> names;
  std::atomic<int> count{0};
  void note() {
    {
      const std::lock_guard lock(mutex);
      threads.insert(std::this_thread::get_id());
      names.insert(current_thread_name());
    }
    ++count;
  }
};

}  // namespace

TEST(PeriodicScheduler, RunsEveryJobAtItsOwnPaceOnOneNamedThread) {
  rp::PeriodicScheduler scheduler("riptide-test-sch");
  Runs fast;
  Runs slow;
  const auto fast_id = scheduler.add("fast", 2ms, [&] { fast.note(); });
  const auto slow_id = scheduler.add(
      "slow", 50ms, [&] { slow.note(); }, rp::PeriodicScheduler::FirstRun::after_interval);
  ASSERT_TRUE(eventually([&] { return slow.count >= 2; }));
  // The slow job's second run comes at least 100 ms after the start; the fast one ran in between.
  EXPECT_GT(fast.count.load(), slow.count.load());
  scheduler.remove(fast_id);
  scheduler.remove(slow_id);
  std::set<std::thread::id> all = fast.threads;
  all.insert(slow.threads.begin(), slow.threads.end());
  EXPECT_EQ(all.size(), 1U);
  EXPECT_EQ(fast.names, std::set<std::string>{"riptide-test-sc"});  // the kernel keeps 15 characters
  EXPECT_EQ(slow.names, std::set<std::string>{"riptide-test-sc"});
  EXPECT_FALSE(scheduler.has_thread());
}

TEST(PeriodicScheduler, RemoveWaitsForTheJobsRunAndTheThreadEndsWithTheLastJob) {
  rp::PeriodicScheduler scheduler("riptide-test");
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  const auto other = scheduler.add(
      "other", 1h, [] {}, rp::PeriodicScheduler::FirstRun::after_interval);
  const auto slow = scheduler.add("slow", 1h, [&] {
    started = true;
    std::this_thread::sleep_for(100ms);
    finished = true;
  });
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  scheduler.remove(slow);
  EXPECT_TRUE(finished.load());
  EXPECT_FALSE(scheduler.contains(slow));
  EXPECT_TRUE(scheduler.contains(other));
  EXPECT_TRUE(scheduler.has_thread());
  scheduler.remove(other);
  EXPECT_FALSE(scheduler.has_thread());
  scheduler.remove(other);  // unknown ids are ignored
}

TEST(PeriodicScheduler, ARunThatAsksAboutItsJobWhileBeingRemovedDoesNotDeadlock) {
  rp::PeriodicScheduler scheduler("riptide-test");
  std::atomic<bool> started{false};
  std::atomic<bool> asked{false};
  rp::PeriodicScheduler::JobId id = 0;
  std::atomic<rp::PeriodicScheduler::JobId> published_id{0};
  id = scheduler.add("asks", 1h, [&] {
    started = true;
    std::this_thread::sleep_for(50ms);  // remove() is waiting by now
    (void)scheduler.contains(published_id.load());
    asked = true;
  });
  published_id = id;
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  scheduler.remove(id);
  EXPECT_TRUE(asked.load());
}

TEST(PeriodicScheduler, AFailingRunIsLoggedAndTheJobRunsAgain) {
  rp::PeriodicScheduler scheduler("riptide-test");
  std::atomic<int> runs{0};
  const auto id = scheduler.add("throws", 1ms, [&] {
    ++runs;
    throw std::runtime_error("expected by the test");
  });
  EXPECT_TRUE(eventually([&] { return runs >= 3; }));
  scheduler.remove(id);
}

TEST(PeriodicWorker, SharesAGivenSchedulerAndOwnsAThreadOtherwise) {
  auto scheduler = std::make_shared<rp::PeriodicScheduler>("riptide-shared");
  Runs shared_a;
  Runs shared_b;
  Runs own;
  rp::PeriodicWorker a(scheduler, "a", 1ms, [&] { shared_a.note(); });
  rp::PeriodicWorker b(scheduler, "b", 1ms, [&] { shared_b.note(); });
  rp::PeriodicWorker c("riptide-own", 1ms, [&] { own.note(); });
  a.start();
  b.start();
  c.start();
  a.start();  // idempotent
  ASSERT_TRUE(eventually([&] { return shared_a.count >= 2 && shared_b.count >= 2 && own.count >= 2; }));
  EXPECT_TRUE(a.running());
  a.stop();
  b.stop();
  c.stop();
  EXPECT_FALSE(a.running());
  EXPECT_FALSE(scheduler->has_thread());
  EXPECT_EQ(shared_a.names, std::set<std::string>{"riptide-shared"});
  EXPECT_EQ(shared_b.threads, shared_a.threads);
  EXPECT_EQ(own.names, std::set<std::string>{"riptide-own"});
  EXPECT_NE(own.threads, shared_a.threads);
}
