#include "riptide/performance/core/fork_safety.hpp"

#include <fcntl.h>
#include <pthread.h>

#include <atomic>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace riptide::performance {
namespace {

// Process-wide state, created on first use and never destroyed: fork handlers may run while the process
// exits, after function-local statics would have been destroyed.
struct ForkState {
  std::atomic<std::uint64_t> generation{0};
  // Held from the prepare handler to the parent/child handler, so registrations cannot change during a
  // fork; the handlers themselves neither allocate nor log (allocators lock around fork too).
  std::mutex registry_mutex;
  // Prepared in key order (stage, then registration), released in the reverse order.
  std::map<std::pair<detail::ForkStage, std::uint64_t>, detail::ForkHandlers> handlers;
  std::uint64_t next_id = 1;
  std::mutex kept_mutex;
  std::vector<std::shared_ptr<void>> kept;
};

void before_fork() noexcept;
void after_fork_in_parent() noexcept;
void after_fork_in_child() noexcept;

ForkState& state() noexcept {
  static ForkState* const instance = [] {
    auto* created = new ForkState();
    // Cannot fail on Linux except for ENOMEM at start-up, when nothing else would work either.
    (void)pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    return created;
  }();
  return *instance;
}

void before_fork() noexcept {
  ForkState& s = state();
  s.registry_mutex.lock();
  for (const auto& [key, handlers] : s.handlers) {
    if (handlers.prepare) handlers.prepare(handlers.context);
  }
}

void after_fork_in_parent() noexcept {
  ForkState& s = state();
  for (auto it = s.handlers.rbegin(); it != s.handlers.rend(); ++it) {
    if (it->second.parent) it->second.parent(it->second.context);
  }
  s.registry_mutex.unlock();
}

void after_fork_in_child() noexcept {
  ForkState& s = state();
  s.generation.fetch_add(1, std::memory_order_relaxed);
  for (auto it = s.handlers.rbegin(); it != s.handlers.rend(); ++it) {
    if (it->second.child) it->second.child(it->second.context);
  }
  s.registry_mutex.unlock();  // locked by this very thread in before_fork, in the parent
}

}  // namespace

std::uint64_t fork_generation() noexcept {
  return state().generation.load(std::memory_order_relaxed);
}

void keep_until_exit(std::shared_ptr<void> object) noexcept {
  ForkState& s = state();
  try {
    const std::lock_guard lock(s.kept_mutex);
    s.kept.push_back(std::move(object));
  } catch (...) {
    // Out of memory: leak the object outright rather than destroy it.
    new (std::nothrow) std::shared_ptr<void>(std::move(object));
  }
}

int mark_close_on_exec(int descriptor) noexcept {
  if (descriptor >= 0) {
    const int flags = ::fcntl(descriptor, F_GETFD);
    if (flags >= 0) (void)::fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC);
  }
  return descriptor;
}

namespace detail {

ForkRegistration::ForkRegistration(ForkStage stage, ForkHandlers handlers) : stage_(stage) {
  ForkState& s = state();
  const std::lock_guard lock(s.registry_mutex);
  id_ = s.next_id++;
  s.handlers.emplace(std::pair{stage_, id_}, handlers);
}

ForkRegistration::ForkRegistration(ForkRegistration&& other) noexcept : stage_(other.stage_), id_(other.id_) {
  other.id_ = 0;
}

ForkRegistration& ForkRegistration::operator=(ForkRegistration&& other) noexcept {
  if (this != &other) {
    reset();
    stage_ = other.stage_;
    id_ = other.id_;
    other.id_ = 0;
  }
  return *this;
}

ForkRegistration::~ForkRegistration() {
  reset();
}

void ForkRegistration::reset() noexcept {
  if (id_ == 0) return;
  ForkState& s = state();
  const std::lock_guard lock(s.registry_mutex);
  s.handlers.erase(std::pair{stage_, id_});
  id_ = 0;
}

ForkRegistration hold_across_fork(std::mutex& mutex, ForkStage stage) {
  const auto lock = [](void* context) { static_cast<std::mutex*>(context)->lock(); };
  const auto unlock = [](void* context) { static_cast<std::mutex*>(context)->unlock(); };
  return ForkRegistration(stage, {lock, unlock, unlock, &mutex});
}

}  // namespace detail
}  // namespace riptide::performance
