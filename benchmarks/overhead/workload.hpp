#pragma once
// The overhead harness's workload: what a scraper does to a page once it has the bytes, run in-process
// without a network so only CPU and the allocator are measured. Per page: generate the HTML (the
// example site's deterministic generator stands in for the fetch: a large string built piece by piece),
// parse it with gumbo (the demo's parser), resolve and count links in hash maps, count words, and build
// a JSON-like result record. The pages and the results are fixed by the seed, so every run does the
// same work and the checksum proves it.

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "scraper/html.hpp"
#include "scraper/site.hpp"

namespace riptide::overhead {

/// One page of the fixed work list.
struct PageJob {
  std::size_t host_index = 0;  ///< which synthetic host
  std::uint32_t page = 0;      ///< which of its pages
};

/// The fixed list of pages a run processes (`count` draws from `seed`; pages repeat, as revisits do).
[[nodiscard]] std::vector<PageJob> make_page_list(const riptide::example::Site& site, std::uint64_t seed,
                                                  std::size_t count);

/// What one page produced; `checksum` depends only on the page, never on timing or thread.
struct PageResult {
  std::string record;          ///< the result record a scraper would store (and cache)
  std::uint64_t checksum = 0;  ///< hash of the record
  std::size_t links = 0;       ///< links found
};

/// Per-thread state that lives across pages like a scraper's (seen links, per-host tallies), cleared
/// every kResetEvery pages so the heap stays flat over a run instead of growing like a leak.
class PageProcessor {
 public:
  static constexpr std::size_t kResetEvery = 256;

  explicit PageProcessor(const riptide::example::Site& site) : site_(site) {}

  /// The steps, separately callable so the instrumented configurations can time each as a stage.
  [[nodiscard]] std::string url_of(const PageJob& job) const;
  [[nodiscard]] std::string fetch(const PageJob& job) const;
  [[nodiscard]] riptide::example::ParsedPage parse(const std::string& html, const PageJob& job) const;
  [[nodiscard]] PageResult extract(const riptide::example::ParsedPage& parsed, const PageJob& job,
                                   std::size_t html_bytes);

 private:
  struct HostTally {
    std::uint64_t pages = 0;
    std::uint64_t bytes = 0;
    std::uint64_t outbound_links = 0;
    std::map<std::string, std::uint32_t> linked_hosts;
  };

  const riptide::example::Site& site_;
  std::unordered_map<std::string, std::uint32_t> seen_links_;
  std::map<std::string, HostTally> hosts_;
  std::size_t pages_ = 0;
};

}  // namespace riptide::overhead
