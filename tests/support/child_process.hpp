#pragma once
// A program the test runs as a child process: fork/exec with its stdout and stderr captured together by a
// reader thread, so a test can wait for what the program prints, signal it and collect its exit status.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace riptide::test {

/// What a shell command printed (stdout and stderr together) and its wait status.
struct CommandResult {
  int status = -1;
  std::string output;
};

/// Runs `shell_command` with /bin/sh and waits for it: the third-party validators (pprof, promtool,
/// readelf). Status -1 when it could not be started.
[[nodiscard]] CommandResult run_command(const std::string& shell_command);

class ChildProcess {
 public:
  ChildProcess() = default;
  /// Kills the child (SIGKILL) if it still runs and reaps it: a failed test never leaves it behind.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// Runs args[0] (a path, not searched in PATH) with `args`. Throws std::runtime_error when the pipe or
  /// the fork fails; an exec failure shows as exit status 127.
  void start(const std::vector<std::string>& args);

  /// Everything the child wrote to stdout and stderr so far.
  [[nodiscard]] std::string output();

  /// False once the child has exited (its status is then kept for wait()).
  bool running();

  /// Waits for the child to exit and for its output to be read to the end; the waitpid status.
  int wait();

  void terminate();  ///< SIGTERM
  /// Sends `signal` while the child runs.
  void send(int signal);
  /// SIGKILL, then wait().
  void kill();

  /// Waits up to `timeout` for `text` to appear in the output after `from` bytes; whether it did.
  bool wait_for_output(const std::string& text, std::size_t from, std::chrono::milliseconds timeout);

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::string output_;
};

}  // namespace riptide::test
