#pragma once
// A deterministic synthetic web site for the example scraper and the overhead benchmark: several hosts
// of HTML pages of varied sizes that link to each other, some hosts slow, one failing on purpose.
// Everything here is plain functions of (seed, host, page): no sockets, so a benchmark can generate the
// same workload in-process and the origin server can serve it over HTTP.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace riptide::example {

/// How one synthetic host behaves.
struct HostProfile {
  std::string name;                    ///< Host header value and URL authority, e.g. "news.example"
  std::chrono::milliseconds delay{0};  ///< base response delay (slow hosts); jitter of up to half is added
  double failure_rate = 0.0;           ///< share of requests answered 503 (decided per request, seeded)
};

struct SiteOptions {
  std::uint64_t seed = 42;                           ///< same seed, same pages, same links, same failures
  std::uint32_t pages_per_host = 400;                ///< pages /page/0 .. /page/N-1 on every host
  std::vector<HostProfile> hosts = default_hosts();  ///< the hosts and how they behave

  /// Six hosts: four healthy, one slow (~120 ms), one failing most requests (trips a circuit breaker).
  static std::vector<HostProfile> default_hosts();
};

/// What the origin answers for one request; the transport adds headers and honours `delay`.
struct SiteResponse {
  unsigned status = 200;               ///< 200, 404 (unknown host/page) or 503 (failure on purpose)
  std::string content_type;            ///< "text/html; charset=utf-8" or "text/plain"
  std::string body;                    ///< the page, or a short error text
  std::chrono::milliseconds delay{0};  ///< how long the origin waits before answering
};

/// A URL split into what the scraper needs: the host names the HostProfile, the target is the path.
struct Url {
  std::string host;    ///< authority without port ("news.example")
  std::string target;  ///< path and query ("/page/17")
  [[nodiscard]] std::string to_string() const { return "http://" + host + target; }
};

/// Parses "http://host/path"; nullopt for anything else (other schemes, no host, spaces).
[[nodiscard]] std::optional<Url> parse_url(std::string_view text);

class Site {
 public:
  explicit Site(SiteOptions options = {});

  [[nodiscard]] const SiteOptions& options() const noexcept { return options_; }

  /// The HTML of page `page` of host `host_index` (deterministic; between ~1 KiB and ~256 KiB).
  [[nodiscard]] std::string generate_page(std::size_t host_index, std::uint32_t page) const;

  /// Answers a request for `target` on `host`. `request_number` (counted per host by the caller)
  /// drives the seeded failure decision so a run is reproducible.
  [[nodiscard]] SiteResponse serve(std::string_view host, std::string_view target, std::uint64_t request_number) const;

  /// Index of a host by name, nullopt when it is not part of the site.
  [[nodiscard]] std::optional<std::size_t> host_index(std::string_view host) const;

  /// Start URLs for a crawl: page 0 of every host.
  [[nodiscard]] std::vector<Url> seed_urls() const;

  /// A deterministic pseudo-random page URL (for re-seeding an empty frontier).
  [[nodiscard]] Url random_url(std::uint64_t draw) const;

 private:
  SiteOptions options_;
};

/// SplitMix64: the one hash every deterministic choice here is made from.
[[nodiscard]] std::uint64_t mix64(std::uint64_t x) noexcept;

}  // namespace riptide::example
