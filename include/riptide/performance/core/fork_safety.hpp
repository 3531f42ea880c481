#pragma once
// What the library does when its host calls fork() without exec.
//
// fork() copies the calling thread only: the library's sampler, checker and HTTP threads do not exist in
// the child, yet the child inherits their objects. Joining such a thread would wait forever (or corrupt
// the C library's thread list), and a condition variable one of them was waiting on can never be
// destroyed. So every thread-owning object of the library remembers the fork generation it started its
// threads in; in a later generation (a child) it neither joins nor destroys that state, it keeps it until
// the process ends (see keep_until_exit). Before a fork, the library waits until none of its periodic
// tasks is half-way through its work (a few milliseconds at most), so no lock of the library is held by a
// thread that will not exist in the child.

#include <cstdint>
#include <memory>
#include <mutex>

namespace riptide::performance {

/// 0 in the process that loaded the library; each fork() without exec gives the child its parent's
/// generation + 1. Lock-free, cheap enough for a destructor. Also installs the library's fork handlers the
/// first time it is called (every thread-owning class calls it before starting a thread).
[[nodiscard]] std::uint64_t fork_generation() noexcept;

/// Keeps `object` alive, never destroyed, until the process ends. For state inherited through fork() whose
/// threads are gone: destroying it could block forever. The objects stay reachable, so leak checkers do not
/// report them.
void keep_until_exit(std::shared_ptr<void> object) noexcept;

/// Sets FD_CLOEXEC on `descriptor` (for those opened by code that cannot pass SOCK_CLOEXEC/O_CLOEXEC:
/// Asio, hiredis, libdw), so a child that execs does not inherit it; returns `descriptor`. A negative
/// descriptor is returned unchanged. A fork+exec in another thread between the open and this call still
/// inherits it: the window only the opener could close.
int mark_close_on_exec(int descriptor) noexcept;

namespace detail {

/// Work run around every fork() of the process: `prepare` in the forking thread before the fork, then
/// `parent` in the parent or `child` in the child. Handlers must not allocate or log (allocators take
/// their own locks around fork). Registration lasts until the returned handle is destroyed; a handle must
/// not be destroyed from inside a handler.
struct ForkHandlers {
  void (*prepare)(void* context) = nullptr;
  void (*parent)(void* context) = nullptr;
  void (*child)(void* context) = nullptr;
  void* context = nullptr;
};

/// Which handlers prepare first. Background runs are let finish before any data lock is taken, so a run
/// can never wait for a lock that the forking thread already holds.
enum class ForkStage { finish_background_runs = 0, lock_data = 1 };

class ForkRegistration {
 public:
  ForkRegistration() = default;
  ForkRegistration(ForkStage stage, ForkHandlers handlers);
  ForkRegistration(ForkRegistration&& other) noexcept;
  ForkRegistration& operator=(ForkRegistration&& other) noexcept;
  ForkRegistration(const ForkRegistration&) = delete;
  ForkRegistration& operator=(const ForkRegistration&) = delete;
  ~ForkRegistration();

 private:
  void reset() noexcept;
  ForkStage stage_ = ForkStage::lock_data;
  std::uint64_t id_ = 0;
};

/// Holds `mutex` across every fork(): locked before, unlocked after in the parent and in the child, so no
/// copy of the process has it held by a thread that is not there.
[[nodiscard]] ForkRegistration hold_across_fork(std::mutex& mutex, ForkStage stage);

}  // namespace detail
}  // namespace riptide::performance
