// The symbolizer reaches the network only when the host opts in (profiling.debuginfod): with
// DEBUGINFOD_URLS naming a listening loopback port, a lookup that misses local debug information connects
// only with the opt-in. Its own process: libdw reads DEBUGINFOD_URLS once, when its client starts.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "riptide/performance/profiling/symbol_lookup.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

namespace rp = riptide::performance;

namespace {

// A loopback listener that counts the connections it sees (and drops them at once, so a client fails fast).
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~Listener() {
    if (fd_ >= 0) ::close(fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  [[nodiscard]] int port() const { return port_; }

  // Connections accepted within `wait` (or until the first, when asked).
  int accept_for(std::chrono::milliseconds wait, bool until_first = false) {
    int accepted = 0;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd poll_fd{fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 50) == 1) {
        const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0) {
          ++accepted;
          ::close(client);
          if (until_first) break;
        }
      }
    }
    return accepted;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// An address inside Debian's stripped libstdc++, whose debug information is not installed: symbol and
// line lookups there look for a separate debug file.
std::uint64_t address_in_libstdcxx() {
  void* library = ::dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (library == nullptr) return 0;
  void* function = ::dlsym(library, "_ZSt20__throw_length_errorPKc");
  ::dlclose(library);
  return reinterpret_cast<std::uint64_t>(function) + 4;
}

}  // namespace

class SymbolizerNetwork : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new Listener;
    cache_ = std::filesystem::temp_directory_path() / ("riptide-debuginfod-" + std::to_string(::getpid()));
    ::setenv("DEBUGINFOD_URLS", ("http://127.0.0.1:" + std::to_string(server_->port())).c_str(), 1);
    ::setenv("DEBUGINFOD_CACHE_PATH", cache_.c_str(), 1);
    ::setenv("DEBUGINFOD_TIMEOUT", "1", 1);  // each unanswered request gives up after a second
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::filesystem::remove_all(cache_);
  }
  static Listener* server_;
  static std::filesystem::path cache_;
};

Listener* SymbolizerNetwork::server_ = nullptr;
std::filesystem::path SymbolizerNetwork::cache_;

// Declared first: gtest runs a suite's tests in order, and this one must see the client before any opt-in.
TEST_F(SymbolizerNetwork, TheDefaultNeverAsksTheServers) {
  ASSERT_GT(server_->port(), 0);
  const std::uint64_t address = address_in_libstdcxx();
  ASSERT_NE(address, 0U);
  rp::Symbolizer local;  // the default: local files only
  const auto frame = local.resolve(address);
  EXPECT_TRUE(frame->has_symbol) << frame->location();  // named from .dynsym all the same
  EXPECT_EQ(server_->accept_for(std::chrono::milliseconds(300)), 0) << "the default symbolizer reached the network";
}

TEST_F(SymbolizerNetwork, TheOptInAsksTheServersForMissingDebugInformation) {
  // Local debug files for libstdc++ (libstdc++6-12-dbg) would answer before any server.
  for (const auto& object : rp::loaded_objects()) {
    if (object.path.find("libstdc++") == std::string::npos || object.build_id.size() < 3) continue;
    const auto local = std::filesystem::path("/usr/lib/debug/.build-id") / object.build_id.substr(0, 2) /
                       (object.build_id.substr(2) + ".debug");
    if (std::filesystem::exists(local)) GTEST_SKIP() << "libstdc++'s debug file is installed: " << local;
  }
  const std::uint64_t address = address_in_libstdcxx();
  ASSERT_NE(address, 0U);
  rp::SymbolizerLimits opted_in;
  opted_in.debuginfod = true;
  rp::Symbolizer downloading(opted_in);
  // The lookup waits for the server (which never answers) until DEBUGINFOD_TIMEOUT; connections it made
  // stay in the listener's queue until accepted.
  (void)downloading.resolve(address);
  const int connections = server_->accept_for(std::chrono::milliseconds(1000), true);
  EXPECT_GE(connections, 1) << "profiling.debuginfod = true did not ask DEBUGINFOD_URLS";
}
