#pragma once
// HTTP for the example scraper: the in-process origin server that serves the synthetic Site on
// loopback, and the keep-alive client each worker fetches with. Both live in transport.cpp, the only
// translation unit of the example that includes Boost.Beast (one Beast TU costs ~13 s to compile).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "scraper/site.hpp"

namespace riptide::example {

/// Serves a Site over HTTP/1.1 with keep-alive; the Host header selects the synthetic host.
class OriginServer {
 public:
  /// Binds `bind`:`port` (0: an ephemeral port) and starts `threads` io threads. Throws on bind errors.
  static std::unique_ptr<OriginServer> start(const Site& site, const std::string& bind = "127.0.0.1",
                                             std::uint16_t port = 0, unsigned threads = 2);
  ~OriginServer();
  OriginServer(const OriginServer&) = delete;
  OriginServer& operator=(const OriginServer&) = delete;

  /// The port actually bound.
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// Requests answered so far (any status).
  [[nodiscard]] std::uint64_t requests_served() const noexcept;
  /// Closes the listener and every connection and joins the threads; idempotent.
  void stop();

  struct Impl;

 private:
  explicit OriginServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct FetchResult {
  unsigned status = 0;             ///< HTTP status; 0 when the request failed below HTTP (see `error`)
  std::string body;                ///< response body
  std::string error;               ///< transport error text; empty on any HTTP answer
  bool reused_connection = false;  ///< served over a kept-alive connection (no connect)
};

/// One keep-alive connection to the origin; not thread-safe (one per worker thread).
class FetchClient {
 public:
  FetchClient(std::string origin_address, std::uint16_t origin_port,
              std::chrono::milliseconds timeout = std::chrono::seconds{5});
  ~FetchClient();
  FetchClient(const FetchClient&) = delete;
  FetchClient& operator=(const FetchClient&) = delete;

  /// GETs `url` from the origin, sending url.host as the Host header. Reconnects once when a kept-alive
  /// connection turns out closed. Never throws for network errors: they come back in FetchResult::error.
  [[nodiscard]] FetchResult get(const Url& url);

  /// TCP connections opened so far (1 for a whole run when keep-alive works).
  [[nodiscard]] std::uint64_t connections_opened() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace riptide::example
