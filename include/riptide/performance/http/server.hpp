#pragma once
// The embedded HTTP/1.1 server (Boost.Beast behind a pimpl: no Beast or Asio type in this header).
// Secure defaults from DESIGN.md §4: loopback bind, bounded headers/bodies, read and idle timeouts,
// a connection cap, blocking routes run off the io threads, graceful stop.

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/http/router.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace riptide::performance::http {

struct ServerOptions {
  std::string bind = "127.0.0.1";                   ///< IP literal or "localhost"; loopback unless exposing is decided
  std::uint16_t port = 3000;                        ///< 0 picks a free ephemeral port (see Server::port())
  std::string token;                                ///< bearer token for sensitive routes (see AccessPolicy)
  std::uint32_t threads = 1;                        ///< io threads; one is plenty for scrapes and curl
  std::uint32_t blocking_threads = 2;               ///< threads for blocking routes (gc, CPU profile)
  std::uint32_t max_connections = 256;              ///< beyond this new connections get 503 and are closed
  std::uint32_t header_limit_bytes = 8192;          ///< larger request headers get 431
  std::uint32_t body_limit_bytes = 4096;            ///< larger request bodies get 413
  std::chrono::milliseconds read_timeout{10'000};   ///< a request must arrive completely within this: else 408
  std::chrono::milliseconds idle_timeout{30'000};   ///< keep-alive connections idle this long are closed
  std::chrono::milliseconds write_timeout{10'000};  ///< a client that does not read its response is dropped
  std::chrono::milliseconds stop_timeout{5'000};    ///< stop() waits this long for responses in flight

  /// The [http] section of the configuration.
  [[nodiscard]] static ServerOptions from_config(const HttpConfig& config);
};

/// Counters of the transport, for /metrics and tests.
struct ServerStats {
  std::uint64_t connections_accepted = 0;  ///< connections served since start
  std::uint64_t connections_refused = 0;   ///< connections answered 503 because of the cap
  std::uint64_t connections_active = 0;    ///< connections open now
  std::uint64_t requests = 0;              ///< requests answered (any status)
  std::uint64_t timeouts = 0;              ///< connections closed by the read, idle or write timeout
  std::uint64_t bad_requests = 0;          ///< requests refused by the parser (400, 413, 431)
};

class Server {
 public:
  /// Binds, listens and starts the io threads. The router must outlive the server; its access policy
  /// is set from `options` (token, loopback). Throws ConfigError for a bad bind address or option and
  /// Error when the address cannot be bound (e.g. the port is taken), naming the address and the cause.
  [[nodiscard]] static std::unique_ptr<Server> start(Router& router, ServerOptions options = {});

  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Stops accepting, lets responses in flight finish (up to stop_timeout), closes every connection and
  /// joins the threads. Idempotent; the destructor calls it.
  void stop() noexcept;

  /// The port actually bound (useful with port 0).
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// The address actually bound.
  [[nodiscard]] const std::string& bind_address() const noexcept;

  [[nodiscard]] ServerStats stats() const noexcept;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace riptide::performance::http
