#pragma once
// A real redis-server for tests: started on a free 127.0.0.1 port with persistence off, killed with
// SIGKILL to simulate an outage, restarted on the same port, and killed when the fixture goes away.
// The binary is $RIPTIDE_PERF_TEST_REDIS_SERVER when set (CMake passes the one it found), else
// `redis-server` from PATH.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace riptide::performance::testing {

class RedisServer {
 public:
  /// Starts a server on a free loopback port; throws std::runtime_error when none comes up.
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  /// The redis-server binary this fixture would run, or nullopt when none is installed (tests skip).
  [[nodiscard]] static std::optional<std::filesystem::path> find_binary();

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// "redis://127.0.0.1:<port>", what RedisConfig::url takes.
  [[nodiscard]] std::string url() const;
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

  /// SIGKILL, then reaps the process: clients see a dead peer, exactly like a crashed server.
  void stop();
  /// Starts again on the same port (data is gone: persistence is off) and waits until it answers PING.
  void restart();

  /// True when a PING on a fresh connection gets +PONG within `timeout`.
  [[nodiscard]] bool ping(std::chrono::milliseconds timeout = std::chrono::milliseconds{200}) const;

 private:
  // Spawns the server on port_ and waits for PING; false when it exited or never answered.
  bool launch();

  std::filesystem::path binary_;
  std::filesystem::path directory_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace riptide::performance::testing
