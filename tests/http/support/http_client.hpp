#pragma once
// A minimal HTTP/1.1 client over raw POSIX sockets for the server tests: cheap to compile (no Beast) and
// able to misbehave on purpose (partial requests, garbage, pipelining, holding connections open).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace riptide::performance::test {

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The first header called `name` (case-insensitive), if any.
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
};

class Connection {
 public:
  /// Connects to 127.0.0.1:`port`; throws std::runtime_error on failure.
  explicit Connection(std::uint16_t port);
  ~Connection();
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&&) = delete;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Writes all of `bytes`; false when the peer closed or reset the connection.
  bool send(std::string_view bytes);

  /// Reads one complete response (Content-Length framed); nothing when the connection closed first or
  /// `timeout` passed.
  std::optional<HttpResponse> read_response(std::chrono::milliseconds timeout = std::chrono::seconds{10});

  /// True when the peer closes (EOF or reset) within `timeout`; bytes that arrive meanwhile are kept.
  bool wait_closed(std::chrono::milliseconds timeout);

  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string pending_;
  bool eof_ = false;
};

/// "GET /path HTTP/1.1" with Host and the extra headers, Connection: close unless `keep_alive`.
std::string make_request(std::string_view method, std::string_view target,
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         std::string_view body = {}, bool keep_alive = false);

/// One request on a fresh connection; throws std::runtime_error when no response arrives.
HttpResponse fetch(std::uint16_t port, std::string_view method, std::string_view target,
                   const std::vector<std::pair<std::string, std::string>>& headers = {}, std::string_view body = {});

}  // namespace riptide::performance::test
