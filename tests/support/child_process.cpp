#include "support/child_process.hpp"

#include <cstdio>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace riptide::test {

CommandResult run_command(const std::string& shell_command) {
  CommandResult result;
  FILE* pipe = ::popen((shell_command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  result.status = ::pclose(pipe);
  return result;
}

using namespace std::chrono_literals;

ChildProcess::~ChildProcess() {
  if (pid_ > 0) kill();
}

void ChildProcess::start(const std::vector<std::string>& args) {
  if (args.empty()) throw std::runtime_error("ChildProcess::start: no program");
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  pid_ = ::fork();
  if (pid_ < 0) {
    const int code = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(code));
  }
  if (pid_ == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  ::close(fds[1]);
  reader_ = std::thread([this, fd = fds[0]] {
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) {
      std::lock_guard lock{mutex_};
      output_.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
  });
}

std::string ChildProcess::output() {
  std::lock_guard lock{mutex_};
  return output_;
}

bool ChildProcess::running() {
  if (exited_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    exited_ = true;
    status_ = status;
    return false;
  }
  return true;
}

int ChildProcess::wait() {
  if (!exited_ && pid_ > 0) {
    ::waitpid(pid_, &status_, 0);
    exited_ = true;
  }
  if (reader_.joinable()) reader_.join();
  return status_;
}

void ChildProcess::terminate() {
  send(SIGTERM);
}

void ChildProcess::send(int signal) {
  if (pid_ > 0 && running()) ::kill(pid_, signal);
}

bool ChildProcess::wait_for_output(const std::string& text, std::size_t from, std::chrono::milliseconds timeout) {
  for (auto waited = 0ms; waited < timeout; waited += 100ms) {
    if (output().find(text, from) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

void ChildProcess::kill() {
  if (pid_ > 0 && running()) ::kill(pid_, SIGKILL);
  wait();
}

}  // namespace riptide::test
