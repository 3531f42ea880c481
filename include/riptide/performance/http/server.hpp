#pragma once
// The embedded HTTP/1.1 server (Boost.Beast behind a pimpl: no Beast or Asio type in this header).
// Secure defaults (docs/SECURITY.md): loopback bind, bounded headers/bodies, read and idle timeouts,
// a connection cap (a full server makes room by closing a connection that has no request in progress,
// see Server), blocking routes run off the io threads, graceful stop.

#include "riptide/performance/core/config.hpp"
#include "riptide/performance/http/router.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace riptide::performance {
class PrometheusWriter;
}  // namespace riptide::performance

namespace riptide::performance::http {

struct ServerOptions {
  std::string bind = "127.0.0.1";                   ///< IP literal or "localhost"; loopback unless exposing is decided
  std::uint16_t port = 3000;                        ///< 0 picks a free ephemeral port (see Server::port())
  std::string token;                                ///< bearer token for sensitive routes (see AccessPolicy)
  std::uint32_t threads = 1;                        ///< io threads; one is plenty for scrapes and curl
  std::uint32_t blocking_threads = 2;               ///< threads for blocking routes (gc, CPU profile)
  std::uint32_t max_connections = 256;              ///< when full, eviction or 503: see Server
  std::uint32_t header_limit_bytes = 8192;          ///< larger request headers get 431
  std::uint32_t body_limit_bytes = 65536;           ///< larger request bodies get 413
  std::chrono::milliseconds read_timeout{10'000};   ///< a request must arrive completely within this: else 408
  std::chrono::milliseconds idle_timeout{30'000};   ///< keep-alive connections idle this long are closed
  std::chrono::milliseconds write_timeout{10'000};  ///< a client that does not read its response is dropped
  std::chrono::milliseconds stop_timeout{5'000};    ///< stop() waits this long for responses in flight

  /// The [http] section of the configuration.
  [[nodiscard]] static ServerOptions from_config(const HttpConfig& config);
};

/// Counters of the transport, for /metrics (riptide_http_*) and tests. All count since start() except
/// connections_active.
struct ServerStats {
  /// Connections admitted as sessions (those admitted in place of an evicted one included).
  std::uint64_t connections_accepted = 0;
  /// Connections answered 503 too_many_connections (or, past a second cap of refusals in flight, just
  /// closed) because every slot had a request in progress. Not counted in connections_accepted.
  std::uint64_t connections_refused = 0;
  /// Admitted connections the server closed to make room for a new one at the cap (order: see Server);
  /// a subset of connections_accepted.
  std::uint64_t connections_evicted = 0;
  /// Admitted connections open now (refused ones not included). Can exceed max_connections briefly:
  /// an evicted connection counts until its own strand has closed it.
  std::uint64_t connections_active = 0;
  /// Requests answered, any status: routes' answers and the transport's own 400, 408, 413, 431 (the 503
  /// refusals are not counted here).
  std::uint64_t requests = 0;
  /// Connections closed by the read, idle or write timeout.
  std::uint64_t timeouts = 0;
  /// Requests refused by the parser (400, 413, 431).
  std::uint64_t bad_requests = 0;
};

/// Writes `stats` as the riptide_http_* families (counters *_total, connections_active a gauge). A
/// started Server registers this with its router (Router::set_transport_metrics), so a MemoryMetricsRouter's
/// GET /metrics carries them.
void write_prometheus(PrometheusWriter& out, const ServerStats& stats);

/// Connection cap: at most ServerOptions::max_connections connections are served at once. When all are
/// taken, a new connection is admitted in place of (1) the connection that has waited longest for a
/// complete request (one that sent nothing yet, or a request whose header or body is still arriving),
/// else (2) the longest-idle keep-alive connection, else (3) the one draining longest after its last
/// response; the evicted connection is closed without an answer (no 408). "Longest" counts from when the
/// connection entered that state (accept, first byte of the request, end of the last response), not from
/// its accept: a long-lived keep-alive client is not the first to go. Only when every connection has a
/// request in progress (being handled or its response written) does the newcomer get 503
/// too_many_connections, Retry-After: 1, and a close. ServerStats counts both.
class Server {
 public:
  /// Binds, listens and starts the io threads. The router must outlive the server; its access policy
  /// is set from `options` (token, loopback), and its /metrics carry this server's counters
  /// (Router::set_transport_metrics, write_prometheus above). Throws ConfigError for a bad bind address or option and
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
