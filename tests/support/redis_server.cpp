#include "support/redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace riptide::performance::testing {
namespace {

// Asks the kernel for a free port by binding port 0. Another process could take it before
// redis-server binds it; the constructor retries with a new port when that happens.
std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int saved = errno;
    ::close(fd);
    throw std::system_error(saved, std::generic_category(), "bind to a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

bool executable(const std::filesystem::path& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::optional<std::filesystem::path> RedisServer::find_binary() {
  if (const char* configured = std::getenv("RIPTIDE_PERF_TEST_REDIS_SERVER");
      configured != nullptr && *configured != '\0' && executable(configured)) {
    return std::filesystem::path(configured);
  }
  const char* path = std::getenv("PATH");
  std::string directories = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= directories.size()) {
    const std::size_t end = std::min(directories.find(':', start), directories.size());
    const std::filesystem::path candidate =
        std::filesystem::path(directories.substr(start, end - start)) / "redis-server";
    if (end > start && executable(candidate)) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

RedisServer::RedisServer() {
  auto binary = find_binary();
  if (!binary) throw std::runtime_error("redis-server not found (set RIPTIDE_PERF_TEST_REDIS_SERVER or PATH)");
  binary_ = *binary;
  std::string pattern = (std::filesystem::temp_directory_path() / "riptide-redis-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
  directory_ = pattern;
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_loopback_port();
    if (launch()) return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
  throw std::runtime_error("redis-server did not start on a free loopback port after 5 attempts");
}

RedisServer::~RedisServer() {
  stop();
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

std::string RedisServer::url() const {
  return "redis://127.0.0.1:" + std::to_string(port_);
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

void RedisServer::restart() {
  stop();
  // The listening socket of the killed server is closed by the kernel at once; a bind can still
  // race a slow teardown, so a few launches are tried.
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (launch()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_));
}

bool RedisServer::launch() {
  const std::string port = std::to_string(port_);
  const std::string log = (directory_ / "redis.log").string();
  std::vector<std::string> arguments = {binary_.string(),
                                        "--port",
                                        port,
                                        "--bind",
                                        "127.0.0.1",
                                        "--save",
                                        "",
                                        "--appendonly",
                                        "no",
                                        "--daemonize",
                                        "no",
                                        "--dir",
                                        directory_.string(),
                                        "--logfile",
                                        log,
                                        "--protected-mode",
                                        "no"};
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t child = -1;
  const int spawned = ::posix_spawn(&child, binary_.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) throw std::system_error(spawned, std::generic_category(), "posix_spawn redis-server");
  pid_ = child;

  // A hang guard, not a start-up figure: a loaded machine may take seconds to start redis-server.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: most likely the port was taken
      pid_ = -1;
      return false;
    }
    if (ping()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  stop();
  return false;
}

bool RedisServer::ping(std::chrono::milliseconds timeout) const {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port_);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  bool answered = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    static constexpr char kPing[] = "PING\r\n";
    if (::send(fd, kPing, sizeof(kPing) - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(kPing) - 1)) {
      char buffer[16] = {};
      const ssize_t got = ::recv(fd, buffer, sizeof(buffer) - 1, 0);
      answered = got >= 5 && std::strncmp(buffer, "+PONG", 5) == 0;
    }
  }
  ::close(fd);
  return answered;
}

}  // namespace riptide::performance::testing
